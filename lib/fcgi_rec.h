/*
 * fcgi_rec.h - the FastCGI record layer (FastCGI 1.0 specification),
 * pure: record headers, name-value pairs, records out. No I/O; raftd's
 * responder (bin/raftd/fcgi.c) and the fuzz target use it.
 */
#ifndef KEYVAL_FCGI_REC_H
#define KEYVAL_FCGI_REC_H

#include <stddef.h>
#include <stdint.h>

#define FCGI_HEADER_LEN 8
#define FCGI_VERSION_1 1
#define FCGI_BEGIN_REQUEST 1
#define FCGI_ABORT_REQUEST 2
#define FCGI_END_REQUEST 3
#define FCGI_PARAMS 4
#define FCGI_STDIN 5
#define FCGI_STDOUT 6
#define FCGI_STDERR 7
#define FCGI_DATA 8
#define FCGI_GET_VALUES 9
#define FCGI_GET_VALUES_RESULT 10
#define FCGI_UNKNOWN_TYPE 11
#define FCGI_RESPONDER 1
#define FCGI_KEEP_CONN 1
#define FCGI_REQUEST_COMPLETE 0
#define FCGI_CANT_MPX_CONN 1
#define FCGI_UNKNOWN_ROLE 3
#define FCGI_CONTENT_MAX 65535u

typedef struct fcgi_header {
    int type;
    unsigned id;
    size_t clen, plen; /* content, padding */
} fcgi_header;

/* Parses one record at buf[0..len). Returns the record's whole length
 * (header + content + padding) and *h when it is all there, 0 when more
 * bytes are needed, -1 when it is not a version-1 record. */
long fcgi_parse_record(const uint8_t *buf, size_t len, fcgi_header *h);

/* One name-value pair at p[0..len): 1 with name/value (pointers into p)
 * and *used, 0 at the end (len 0), -1 when malformed (truncated). */
int fcgi_next_pair(const uint8_t *p, size_t len, const uint8_t **name, size_t *nlen,
                   const uint8_t **value, size_t *vlen, size_t *used);

/* Writes a record header for type/id with clen content bytes (no
 * padding) into out[0..8). */
void fcgi_put_header(uint8_t *out, int type, unsigned id, size_t clen);

/* Writes a name-value pair into out (capacity cap); returns its length,
 * or 0 when it does not fit. */
size_t fcgi_put_pair(uint8_t *out, size_t cap, const char *name, size_t nlen, const char *value,
                     size_t vlen);

/* An END_REQUEST record (16 bytes) into out. */
void fcgi_put_end(uint8_t *out, unsigned id, uint32_t app_status, int proto_status);

#endif
