/*
 * test_lease - unit tests of lib/lease.c (the leader's lease deadlines)
 * and lib/duration.c (the duration parser), every rule at and around its
 * bounds. The cluster-wide argument is tested by raft-sim.
 */
#include "duration.h"
#include "lease.h"
#include "check.h"

#include <stdint.h>
#include <string.h>

#define G 1000 /* guard: the minimum election timeout, ms */

static lease_table *leader_at(uint64_t now)
{
    lease_table *t = lease_table_new(4, G);
    if (t)
        lease_leader_start(t, now);
    return t;
}

static void ttl_bounds(void)
{
    CHECK(!lease_ttl_valid(0), "0");
    CHECK(!lease_ttl_valid(KV_LEASE_TTL_MIN_MS - 1), "min - 1");
    CHECK(lease_ttl_valid(KV_LEASE_TTL_MIN_MS), "min");
    CHECK(lease_ttl_valid(KV_LEASE_TTL_MAX_MS), "max");
    CHECK(!lease_ttl_valid(KV_LEASE_TTL_MAX_MS + 1), "max + 1");
    CHECK(KV_LEASE_TTL_MIN_MS == 1000 && KV_LEASE_TTL_MAX_MS == 86400000, "the contract's numbers");
}

static void table_args(void)
{
    CHECK(lease_table_new(0, G) == NULL, "max 0");
    CHECK(lease_table_new(4, 0) == NULL, "guard 0");
    CHECK(lease_table_new(SIZE_MAX, G) == NULL, "max overflows");
    lease_table_free(NULL);
}

static void bounded(void)
{
    lease_table *t = leader_at(0);
    CHECK(t, "new");
    for (uint64_t id = 1; id <= 4; id++)
        CHECK(lease_granted(t, id, 1000, 0) == LEASE_OK, "grant %llu", (unsigned long long)id);
    CHECK(lease_granted(t, 5, 1000, 0) == LEASE_EFULL, "fifth: full");
    CHECK(lease_granted(t, 3, 2000, 0) == LEASE_OK, "re-grant of a held id");
    CHECK(lease_count(t) == 4, "count %zu", lease_count(t));
    lease_removed(t, 2);
    lease_removed(t, 99); /* unknown: no-op */
    CHECK(lease_count(t) == 3, "after remove %zu", lease_count(t));
    CHECK(lease_granted(t, 5, 1000, 0) == LEASE_OK, "room again");
    CHECK(lease_granted(t, 0, 1000, 0) == LEASE_EINVAL, "id 0");
    CHECK(lease_granted(t, 6, 999, 0) == LEASE_EINVAL, "ttl below min");
    CHECK(lease_granted(t, 6, KV_LEASE_TTL_MAX_MS + 1, 0) == LEASE_EINVAL, "ttl above max");
    lease_table_free(t);
}

static void follower_decides_nothing(void)
{
    lease_table *t = lease_table_new(4, G);
    CHECK(t, "new");
    CHECK(!lease_leading(t), "not leading");
    CHECK(lease_granted(t, 1, 1000, 0) == LEASE_ENOTLEADER, "grant");
    CHECK(lease_count(t) == 0, "nothing kept");
    CHECK(lease_load(t, 1, 1000) == LEASE_OK, "load");
    CHECK(lease_renew_check(t, 1, 0, 0) == LEASE_ENOTLEADER, "renew");
    uint64_t ms, out[4];
    CHECK(lease_remaining(t, 1, 0, &ms) == LEASE_ENOTLEADER, "remaining");
    CHECK(lease_next_expiry(t) == UINT64_MAX, "next expiry");
    CHECK(lease_due(t, UINT64_MAX, out, 4) == 0, "due");
    lease_table_free(t);
}

static void load_rules(void)
{
    lease_table *t = lease_table_new(2, G);
    CHECK(t, "new");
    CHECK(lease_load(t, 7, 999) == LEASE_EINVAL, "bad ttl");
    CHECK(lease_load(t, 0, 1000) == LEASE_EINVAL, "id 0");
    CHECK(lease_load(t, 9, 1000) == LEASE_OK, "9");
    CHECK(lease_load(t, 3, 2000) == LEASE_OK, "3, out of order");
    CHECK(lease_load(t, 5, 1000) == LEASE_EFULL, "full");
    lease_leader_start(t, 100);
    CHECK(lease_load(t, 5, 1000) == LEASE_EINVAL, "load while leading");
    uint64_t ms;
    CHECK(lease_remaining(t, 3, 100, &ms) == LEASE_OK && ms == G + 2000, "3: guard + ttl, got %llu",
          (unsigned long long)ms);
    CHECK(lease_remaining(t, 9, 100, &ms) == LEASE_OK && ms == G + 1000, "9: guard + ttl, got %llu",
          (unsigned long long)ms);
    lease_table_free(t);
}

/* Rule 2: a fresh term plus one guard, for loaded leases and for grants
 * applied in the first guard of the term. */
static void fresh_term(void)
{
    lease_table *t = lease_table_new(4, G);
    CHECK(t, "new");
    CHECK(lease_load(t, 1, 5000) == LEASE_OK, "load");
    lease_leader_start(t, 10000);
    CHECK(lease_next_expiry(t) == 10000 + G + 5000, "next %llu",
          (unsigned long long)lease_next_expiry(t));
    uint64_t out[4];
    CHECK(lease_due(t, 10000 + G + 5000 - 1, out, 4) == 0, "1 ms before");
    CHECK(lease_due(t, 10000 + G + 5000, out, 4) == 1 && out[0] == 1, "due at the deadline");
    /* a grant applied inside the first guard counts from start + guard */
    CHECK(lease_granted(t, 2, 1000, 10000 + G - 1) == LEASE_OK, "grant");
    uint64_t ms;
    CHECK(lease_remaining(t, 2, 10000 + G - 1, &ms) == LEASE_OK && ms == 1 + 1000,
          "inside the guard: %llu", (unsigned long long)ms);
    CHECK(lease_granted(t, 3, 1000, 10000 + G) == LEASE_OK, "grant at guard");
    CHECK(lease_remaining(t, 3, 10000 + G, &ms) == LEASE_OK && ms == 1000, "at the guard: %llu",
          (unsigned long long)ms);
    CHECK(lease_granted(t, 4, 1000, 20000) == LEASE_OK, "grant later");
    CHECK(lease_remaining(t, 4, 20500, &ms) == LEASE_OK && ms == 500, "later: now + ttl, %llu",
          (unsigned long long)ms);
    /* leadership lost: everything dropped; won again: fresh again */
    lease_leader_stop(t);
    CHECK(!lease_leading(t) && lease_count(t) == 0, "stop drops all");
    CHECK(lease_load(t, 1, 5000) == LEASE_OK, "reload");
    lease_leader_start(t, 50000);
    CHECK(lease_remaining(t, 1, 50000, &ms) == LEASE_OK && ms == G + 5000,
          "fresh after a new election, proposed mark cleared: %llu", (unsigned long long)ms);
    lease_table_free(t);
}

/* Rule 1: the guard, at and around it; the deadline never moves back. */
static void renew_guard(void)
{
    lease_table *t = leader_at(0);
    CHECK(t && lease_granted(t, 1, 2000, 5000) == LEASE_OK, "grant");
    CHECK(lease_renew_check(t, 1, 6000, 6000 + G - 1) == LEASE_OK, "guard - 1 ms");
    uint64_t ms;
    CHECK(lease_remaining(t, 1, 6000 + G - 1, &ms) == LEASE_OK && ms == 2000,
          "deadline = now + ttl: %llu", (unsigned long long)ms);
    CHECK(lease_renew_check(t, 1, 7000, 7000 + G) == LEASE_ETOOLATE, "exactly the guard");
    CHECK(lease_renew_check(t, 1, 7000, 7000 + G + 1) == LEASE_ETOOLATE, "guard + 1");
    CHECK(lease_renew_check(t, 1, 8001, 8000) == LEASE_ETOOLATE, "submitted after now");
    CHECK(lease_renew_check(t, 1, 7500, 7500) == LEASE_OK, "at once");
    CHECK(lease_remaining(t, 1, 7500, &ms) == LEASE_OK && ms == 2000, "at once: %llu",
          (unsigned long long)ms);
    /* an earlier renewal's answer never shortens a later deadline */
    CHECK(lease_renew_check(t, 1, 7000, 7400) == LEASE_OK, "older one");
    CHECK(lease_remaining(t, 1, 7500, &ms) == LEASE_OK && ms == 2000, "kept: %llu",
          (unsigned long long)ms);
    CHECK(lease_renew_check(t, 2, 7500, 7500) == LEASE_EUNKNOWN, "unknown");
    lease_removed(t, 1);
    CHECK(lease_renew_check(t, 1, 7500, 7500) == LEASE_EUNKNOWN, "removed");
    lease_table_free(t);
}

/* Rule 3 and re-proposal. */
static void due_and_expiring(void)
{
    lease_table *t = leader_at(0);
    CHECK(t, "new");
    CHECK(lease_granted(t, 1, 1000, G) == LEASE_OK, "1");
    CHECK(lease_granted(t, 2, 3000, G) == LEASE_OK, "2");
    CHECK(lease_granted(t, 3, 1000, G) == LEASE_OK, "3");
    CHECK(lease_next_expiry(t) == G + 1000, "next");
    uint64_t out[4];
    CHECK(lease_due(t, G + 999, out, 4) == 0, "none before");
    CHECK(lease_due(t, G + 1000, out, 1) == 1 && out[0] == 1, "max 1");
    CHECK(lease_due(t, G + 1000, out, 4) == 1 && out[0] == 3, "then 3");
    CHECK(lease_due(t, G + 1001, out, 4) == 0, "each once");
    CHECK(lease_renew_check(t, 1, G + 1000, G + 1000) == LEASE_EEXPIRING,
          "no renewal once proposed");
    uint64_t ms;
    CHECK(lease_remaining(t, 1, G + 1000, &ms) == LEASE_OK && ms == 0, "remaining 0");
    CHECK(lease_next_expiry(t) == G + 3000, "next: lease 2, not a retry: %llu",
          (unsigned long long)lease_next_expiry(t));
    CHECK(lease_due(t, G + 2999, out, 4) == 0, "once per term");
    /* a refused proposal is handed out again a guard later */
    lease_expire_refused(t, 3, G + 1500);
    lease_expire_refused(t, 2, G + 1500); /* not proposed: no-op */
    lease_expire_refused(t, 9, G + 1500); /* unknown: no-op */
    CHECK(lease_next_expiry(t) == G + 1500 + G, "next: the retry, %llu",
          (unsigned long long)lease_next_expiry(t));
    CHECK(lease_due(t, G + 1500 + G - 1, out, 4) == 0, "no retry before G");
    CHECK(lease_due(t, G + 1500 + G, out, 4) == 1 && out[0] == 3, "retry after G");
    CHECK(lease_renew_check(t, 3, G + 2500, G + 2500) == LEASE_EEXPIRING,
          "still expiring while retried");
    lease_removed(t, 1); /* the expire applied */
    lease_removed(t, 3);
    CHECK(lease_next_expiry(t) == G + 3000, "2 left");
    CHECK(lease_remaining(t, 2, G + 3000 + 5, &ms) == LEASE_OK && ms == 0, "past due: 0");
    lease_table_free(t);
}

static void saturation(void)
{
    lease_table *t = lease_table_new(2, G);
    CHECK(t, "new");
    lease_leader_start(t, UINT64_MAX - 10);
    CHECK(lease_granted(t, 1, KV_LEASE_TTL_MAX_MS, UINT64_MAX - 5) == LEASE_OK,
          "grant near the end of time");
    CHECK(lease_next_expiry(t) == UINT64_MAX, "saturates");
    uint64_t out[2];
    CHECK(lease_due(t, UINT64_MAX - 1, out, 2) == 0, "not due");
    lease_table_free(t);
}

static void durations(void)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"500ms", DURATION_OK, 500},
        {"10s", DURATION_OK, 10000},
        {"5m", DURATION_OK, 300000},
        {"1h", DURATION_OK, 3600000},
        {"0s", DURATION_OK, 0},
        {"007s", DURATION_OK, 7000},
        {"10", DURATION_EINVAL, 0},
        {"", DURATION_EINVAL, 0},
        {"s", DURATION_EINVAL, 0},
        {"-1s", DURATION_EINVAL, 0},
        {"+1s", DURATION_EINVAL, 0},
        {" 1s", DURATION_EINVAL, 0},
        {"1s ", DURATION_EINVAL, 0},
        {"1.5s", DURATION_EINVAL, 0},
        {"1m30s", DURATION_EINVAL, 0},
        {"1d", DURATION_EINVAL, 0},
        {"1S", DURATION_EINVAL, 0},
        {"1sec", DURATION_EINVAL, 0},
        {"1mss", DURATION_EINVAL, 0},
        {"18446744073709551615ms", DURATION_OK, UINT64_MAX},
        {"18446744073709551616ms", DURATION_ERANGE, 0},
        {"99999999999999999999999h", DURATION_ERANGE, 0},
        {"99999999999999999999999x", DURATION_EINVAL, 0},
        {"18446744073709551s", DURATION_OK, 18446744073709551000ULL},
        {"18446744073709552s", DURATION_ERANGE, 0},
        {"5124095576030432h", DURATION_ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 12345;
        int rc = duration_parse_ms(cases[i].s, UINT64_MAX, &ms);
        CHECK(rc == cases[i].rc, "\"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == DURATION_OK)
            CHECK(ms == cases[i].ms, "\"%s\": %llu ms", cases[i].s, (unsigned long long)ms);
        else
            CHECK(ms == 12345, "\"%s\": *ms written on error", cases[i].s);
    }
    uint64_t ms;
    CHECK(duration_parse_ms(NULL, 1, &ms) == DURATION_EINVAL, "NULL");
    /* the caller's bound, at and around it: a blocking query's 10m */
    CHECK(duration_parse_ms("10m", 600000, &ms) == DURATION_OK && ms == 600000, "at max");
    CHECK(duration_parse_ms("600001ms", 600000, &ms) == DURATION_ERANGE, "max + 1");
    CHECK(duration_parse_ms("86400s", KV_LEASE_TTL_MAX_MS, &ms) == DURATION_OK, "lease max");
    CHECK(duration_parse_ms("25h", KV_LEASE_TTL_MAX_MS, &ms) == DURATION_ERANGE, "lease max + 1h");
    CHECK(strcmp(duration_strerror(DURATION_EINVAL), "ok") != 0, "strerror");
}

int main(void)
{
    RUN(ttl_bounds);
    RUN(table_args);
    RUN(bounded);
    RUN(follower_decides_nothing);
    RUN(load_rules);
    RUN(fresh_term);
    RUN(renew_guard);
    RUN(due_and_expiring);
    RUN(saturation);
    RUN(durations);
    return check_summary();
}
