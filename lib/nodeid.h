/*
 * nodeid.h - a node's Raft id: unique per incarnation of its data directory.
 *
 * A node is known to people by its name (keyval -id NAME); Raft knows it by
 * a 64-bit id. The id is FNV-1a 64 of "NAME/INCARNATION", where the
 * incarnation is a random 64-bit number (16 hex digits) made when the data
 * directory is initialised and kept in its database (meta "incarnation").
 * A restart on the same data directory keeps the id; a wiped data
 * directory gets a new incarnation and so a new id, which the cluster does
 * not mistake for the old member (whose vote it may have forgotten).
 *
 * A database made before incarnations existed has a stored name but no
 * incarnation: it keeps the id of those versions, FNV-1a 64 of the name.
 */
#ifndef KEYVAL_NODEID_H
#define KEYVAL_NODEID_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

#define NODEID_HEX_LEN 16 /* an id or incarnation as text: 16 hex digits */

/* FNV-1a 64 of s, never 0: the id of NAME in versions without incarnations. */
uint64_t nodeid_legacy(const char *name);
/* The id of NAME in incarnation INC (16 hex digits); the legacy id when
 * INC is NULL or "". Never 0. */
uint64_t nodeid_derive(const char *name, const char *inc);
/* A new random incarnation into buf (at least NODEID_HEX_LEN + 1 bytes).
 * 0 ok, -1 when /dev/urandom cannot be read. */
int nodeid_new_incarnation(char *buf, size_t cap);
/* 16 lower- or upper-case hex digits, not all zero: 1 and *out set, else 0. */
int nodeid_parse(const char *s, uint64_t *out);
/* id as 16 lower-case hex digits into buf (at least 17 bytes). */
void nodeid_format(uint64_t id, char *buf, size_t cap);

/* At startup: this node's id for NAME in the open database s.
 *   - an incarnation is stored: the id of NAME in it;
 *   - none is stored and the database is new (no name stored yet and
 *     fresh, that is no Raft state at all): a new incarnation is made and
 *     stored (before the name, so a crash in between cannot leave a new
 *     directory looking like an old one);
 *   - otherwise (a database of an older version): the legacy id.
 * inc receives the incarnation ("" for a legacy database); *legacy is set
 * to 1 for the legacy case. The caller checks and stores the name itself.
 * 0 ok, -1 on a storage or random-number error (message in err). */
int nodeid_load(store *s, const char *name, int fresh, uint64_t *id, char *inc, size_t inc_cap,
                int *legacy, char *err, size_t err_cap);

#endif
