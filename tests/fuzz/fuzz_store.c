/*
 * fuzz_store - libFuzzer target for storage's command JSON: store_apply on
 * an in-memory SQLite database. The input is the data of up to 8
 * RAFT_ENTRY_NORMAL entries (what a leader would replicate), one per line.
 * Each input starts from the same state, so commands can name it: leases
 * 1 (ttl 10000) and 2 (ttl 2000), keys a and b at index 3 on lease 1, key
 * c at index 4 without one; the input's entries are indexes 5, 6, ...
 * All of it runs in one transaction that is rolled back at the end (the
 * store is opened once: opening one per input is 30 times slower).
 *
 * Checked for every entry: never a storage error; code 200, 400, 404 or
 * 412; a refused command (not 200) changes neither the kv table nor the
 * leases nor the history; the history rows the result names are the new
 * ones, all of this entry's index; a grant creates lease = the index; a
 * revoke or expire leaves the lease without keys and gone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

#define MAX_ENTRIES 8

static const char *const preset[] = {
    "{\"op\":\"lease_grant\",\"ttl_ms\":10000}",
    "{\"op\":\"lease_grant\",\"ttl_ms\":2000}",
    "{\"op\":\"set\",\"kv\":{\"a\":\"1\",\"b\":\"2\"},\"lease\":1}",
    "{\"set\":{\"c\":\"3\"}}",
};

static int apply(store *st, uint64_t idx, const uint8_t *p, size_t n, store_result *res)
{
    raft_entry e = {.term = 1,
                    .index = idx,
                    .type = RAFT_ENTRY_NORMAL,
                    .len = (uint32_t)n,
                    .data = n ? (uint8_t *)p : NULL};
    memset(res, 0, sizeof *res);
    return store_apply(st, &e, res);
}

typedef struct rows_seen {
    uint64_t index;
    int wrong;
} rows_seen;

static int row_index(void *arg, const store_change *c)
{
    rows_seen *r = arg;
    if (c->index != r->index || (c->del && c->value) || (!c->del && !c->value))
        r->wrong = 1;
    return 0;
}

static int count_key(void *arg, const char *k, size_t kl)
{
    (void)k;
    (void)kl;
    ++*(int *)arg;
    return 0;
}

static void check_entry(store *st, uint64_t idx, const store_result *res, int64_t kv0,
                        int64_t leases0, uint64_t seq0)
{
    if (res->code != 200 && res->code != 400 && res->code != 404 && res->code != 412)
        abort();
    if (store_applied(st) != idx)
        abort();
    if (res->code != 200 && (store_count(st) != kv0 || store_lease_count(st) != leases0 ||
                             store_history_last_seq(st) != seq0 || res->first_seq))
        abort(); /* a refused command wrote something */
    if (res->code == 412 && strlen(res->key) >= sizeof res->key)
        abort();
    if (!res->first_seq && store_history_last_seq(st) != seq0)
        abort();
    if (res->first_seq) {
        rows_seen r = {.index = idx};
        if (res->first_seq != seq0 + 1 || res->last_seq != store_history_last_seq(st) ||
            store_changes(st, 0, seq0, NULL, 0, 1, 1u << 20, row_index, &r) !=
                (int)(res->last_seq - seq0) ||
            r.wrong)
            abort();
    }
    uint64_t ttl;
    if (res->code == 200 && res->op == STORE_OP_LEASE_GRANT &&
        (res->lease != idx || store_lease_get(st, idx, &ttl) != 1 || ttl != res->ttl_ms))
        abort();
    int keys = 0;
    if (res->code == 200 && res->lease &&
        (res->op == STORE_OP_LEASE_REVOKE || res->op == STORE_OP_LEASE_EXPIRE) &&
        (store_lease_get(st, res->lease, &ttl) != 0 ||
         store_lease_keys(st, res->lease, NULL, 10, count_key, &keys) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > UINT32_MAX)
        return 0;
    static store *st;
    if (!st && !(st = store_open(":memory:")))
        abort();
    if (store_applied(st) != 0 || store_begin(st) < 0)
        abort();
    store_result res;
    uint64_t idx = 0;
    for (size_t i = 0; i < sizeof preset / sizeof *preset; i++)
        if (apply(st, ++idx, (const uint8_t *)preset[i], strlen(preset[i]), &res) < 0 ||
            res.code != 200)
            abort();
    size_t off = 0;
    for (int n = 0; n < MAX_ENTRIES && off <= size; n++) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            break;
        memcpy(copy, data + off, len);
        int64_t kv0 = store_count(st), leases0 = store_lease_count(st);
        uint64_t seq0 = store_history_last_seq(st);
        if (apply(st, ++idx, copy, len, &res) < 0)
            abort(); /* a command must never be a storage error */
        check_entry(st, idx, &res, kv0, leases0, seq0);
        free(copy);
        if (!nl)
            break;
        off += len + 1;
    }
    store_rollback(st); /* back to the empty store */
    return 0;
}
