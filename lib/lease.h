/*
 * lease.h - the leader's lease deadlines: when may the leader propose
 * lease_expire, and may it answer a renewal 200.
 *
 * Pure, as the Raft core: no I/O, no clock, no global state. `now` is an
 * argument (ms of a monotonic clock; raftd passes CLOCK_MONOTONIC, the
 * simulator ticks x a fixed ms). The leases themselves (id, ttl_ms, keys)
 * live in the replicated state machine (lib/storage); this table holds
 * only what is not in the log: the deadlines, on the leader, in memory.
 * It must not decide anything from a follower's point of view: a table
 * that is not leading answers LEASE_ENOTLEADER.
 *
 * How raftd drives it (docs/coordination.md, "Leases"; tests/raft-sim.c
 * does exactly this):
 *   - at every ready, before applying its committed entries: role became
 *     leader (or the term changed while leader) -> lease_leader_stop() if
 *     leading, lease_load() every lease of the applied state, then
 *     lease_leader_start(now); role no longer leader -> lease_leader_stop();
 *   - applying a lease_grant while leading: lease_granted(); applying a
 *     lease_revoke or lease_expire (any role): lease_removed();
 *   - a lease_renew reaching the leader (a follower forwards it):
 *     submitted_at = now, THEN raft_read_index() (a round started after
 *     submitted_at); when that read is released and applied >= its index,
 *     and the node still leads in the term it was submitted in:
 *     lease_renew_check(id, submitted_at, now) -- LEASE_OK is the 200;
 *   - every loop turn: lease_next_expiry() bounds the poll timeout;
 *     lease_due() lists the leases to propose lease_expire for; a refused
 *     raft_propose -> lease_expire_refused(id, now);
 *   - lease_get's remaining_ms: lease_remaining().
 * A grant is answered by whichever node proposed it, once applied there,
 * possibly long after (a deposed leader applies it late): clients count a
 * ttl from when they sent the request, which is what the rules give.
 * Not covered: clock rate drift between nodes (CLOCK_MONOTONIC is slewed
 * by NTP by up to 500 ppm: 43 s of a 24 h ttl): clients renew well
 * within the ttl.
 *
 * THE RULES, and why no lease ends early (G = guard_ms, the minimum
 * election timeout; a renewal answered at A was submitted at S > A - G):
 *   1. A renewal is answered only if A - S < G, and then deadline = A+ttl.
 *   2. A new leader elected at E gives every lease deadline E + G + ttl
 *      ("a fresh term plus one guard"); a grant applied by it at time T
 *      gets max(T, E + G) + ttl.
 *   3. Once lease_due() handed out a lease (its expire is proposed), no
 *      renewal of it is answered 200 (LEASE_EEXPIRING, a 404), also while
 *      the expire entry is not committed yet.
 * Rule 2's "+ G": a renewal answered by an old leader at A had its
 * ReadIndex round acknowledged by a majority at the old term after S;
 * any later leader's election needs a vote from one of them, given after
 * its ack, so E > S > A - G and E + G + ttl > A + ttl. This needs no
 * follower lease: it holds through leadership transfer (whose votes skip
 * the lease), without check-quorum, and whatever the tick granularity.
 * The contract's "E + ttl" relied on followers refusing votes for an
 * election timeout after the round; a transfer breaks that (the
 * simulator's mutant LEASE_FRESH_NO_GUARD shows the early expiry).
 * Rule 3: without it a renewal whose round started before the expire was
 * committed is answered 200 and the lease is deleted just after.
 * The cost: an abandoned lease lives at most ttl + G longer per leader
 * change (etcd's Promote() extends by an election timeout as well).
 *
 * Re-proposal: an expire proposed by a leader cannot be lost while that
 * leader stays leader (a lost term ends in lease_leader_stop()); only a
 * refused raft_propose (a transfer in progress, say) loses one. So
 * lease_due() hands a lease out once per term, and again G ms after the
 * caller reports a refused proposal (lease_expire_refused()). Not on a
 * timer: when the log commits slowly (a follower far behind), timed
 * re-proposals pile up faster than they commit (raft-sim seed 113166 at
 * 5 nodes grew the leader's log by 12,000 expire entries that way).
 */
#ifndef KEYVAL_LEASE_H
#define KEYVAL_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "kvrules.h" /* KV_LEASE_TTL_MIN_MS, KV_LEASE_TTL_MAX_MS */

enum lease_result {
    LEASE_OK = 0,
    LEASE_EUNKNOWN = -1,   /* no such lease (revoked, expired, never): 404 */
    LEASE_ETOOLATE = -2,   /* the renewal waited >= guard: not renewed,
                              nothing changed; 503, the client retries */
    LEASE_EEXPIRING = -3,  /* its expire is proposed: answer 404 */
    LEASE_ENOTLEADER = -4, /* this table is not leading: forward / retry */
    LEASE_EFULL = -5,      /* the table holds max leases already */
    LEASE_EINVAL = -6,     /* ttl out of bounds, id 0, load while leading */
};

typedef struct lease_table lease_table;

/* 1 if ttl_ms is within KV_LEASE_TTL_MIN_MS .. KV_LEASE_TTL_MAX_MS. */
int lease_ttl_valid(uint64_t ttl_ms);

/* A table of at most max leases (max >= the state machine's own limit,
 * or a leader could not load them all); guard_ms = the minimum election
 * timeout in ms (> 0). NULL on a bad argument or out of memory. */
lease_table *lease_table_new(size_t max, uint64_t guard_ms);
void lease_table_free(lease_table *t);

/* Before lease_leader_start: one lease of the applied state (ids in any
 * order). LEASE_EINVAL while leading or on a bad ttl, LEASE_EFULL. */
int lease_load(lease_table *t, uint64_t id, uint64_t ttl_ms);

/* Leadership won at now: every loaded lease gets now + guard + ttl. */
void lease_leader_start(lease_table *t, uint64_t now);

/* Leadership lost: every lease and deadline is dropped. */
void lease_leader_stop(lease_table *t);

/* 1 while leading (between start and stop). */
int lease_leading(const lease_table *t);

/* A lease_grant (id = its log index) applied while leading: deadline
 * max(now, start + guard) + ttl. LEASE_ENOTLEADER (nothing kept) when
 * not leading, LEASE_EINVAL, LEASE_EFULL. */
int lease_granted(lease_table *t, uint64_t id, uint64_t ttl_ms, uint64_t now);

/* A lease_revoke or lease_expire of id applied (unknown id: no-op). */
void lease_removed(lease_table *t, uint64_t id);

/* A renewal submitted at submitted_at whose ReadIndex round has been
 * confirmed and applied: LEASE_OK (deadline = now + ttl; answer 200),
 * LEASE_ETOOLATE (now - submitted_at >= guard), LEASE_EUNKNOWN,
 * LEASE_EEXPIRING, LEASE_ENOTLEADER. */
int lease_renew_check(lease_table *t, uint64_t id, uint64_t submitted_at, uint64_t now);

/* The earliest time lease_due() may return something: UINT64_MAX when
 * not leading or no lease is pending. For the loop's poll timeout. */
uint64_t lease_next_expiry(const lease_table *t);

/* The leases whose deadline is <= now and whose expire is not proposed
 * (or was refused >= guard ago), at most max of them into out[]; each is
 * marked proposed. The caller proposes one lease_expire each. Returns
 * how many; call again if it returned max. */
size_t lease_due(lease_table *t, uint64_t now, uint64_t *out, size_t max);

/* raft_propose refused the expire of id handed out by lease_due(): hand
 * it out again guard ms after now (renewals stay refused meanwhile). */
void lease_expire_refused(lease_table *t, uint64_t id, uint64_t now);

/* Time left of id (0 once due) into *ms: LEASE_OK, LEASE_EUNKNOWN,
 * LEASE_ENOTLEADER. For lease_get's remaining_ms. */
int lease_remaining(const lease_table *t, uint64_t id, uint64_t now, uint64_t *ms);

/* How many leases the table holds. */
size_t lease_count(const lease_table *t);

const char *lease_strerror(int err);

#endif
