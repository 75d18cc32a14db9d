/*
 * storage_lease.c - reads of the leases table and of a lease's keys. The
 * writes (grant, revoke, expire, attaching keys) are commands, applied by
 * storage_cmd.c. Deadlines are not kept here: only the leader has them,
 * in memory (docs/coordination.md).
 */
#include "storage_impl.h"

#include <string.h>

int store_lease_get(store *s, uint64_t id, uint64_t *ttl_ms)
{
    sqlite3_stmt *q = storage_stmt(s, ST_LEASE_GET);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *ttl_ms = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return storage_db_fail(s, "read lease");
}

int store_lease_keys(store *s, uint64_t id, const char *after, size_t limit,
                     int (*fn)(void *arg, const char *k, size_t klen), void *arg)
{
    sqlite3_stmt *q = storage_stmt(s, ST_KV_BY_LEASE);
    sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
    sqlite3_bind_blob(q, 2, after ? after : "", after ? (int)strlen(after) : 0, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    int rc, visited = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *k = sqlite3_column_blob(q, 0);
        visited++;
        if (fn(arg, k ? k : "", (size_t)sqlite3_column_bytes(q, 0))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return storage_db_fail(s, "read lease keys");
    return visited;
}

int store_lease_scan(store *s, uint64_t after_id, size_t limit,
                     int (*fn)(void *arg, uint64_t id, uint64_t ttl_ms), void *arg)
{
    sqlite3_stmt *q = storage_stmt(s, ST_LEASE_SCAN);
    sqlite3_bind_int64(q, 1, after_id > INT64_MAX ? INT64_MAX : (sqlite3_int64)after_id);
    sqlite3_bind_int64(q, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    int rc, visited = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        visited++;
        if (fn(arg, (uint64_t)sqlite3_column_int64(q, 0), (uint64_t)sqlite3_column_int64(q, 1))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return storage_db_fail(s, "scan leases");
    return visited;
}

void store_set_lease_max(store *s, uint64_t n)
{
    s->lease_max = n;
}

int64_t store_lease_count(store *s)
{
    sqlite3_stmt *q = storage_stmt(s, ST_LEASE_COUNT);
    int64_t n = -1;
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    else
        storage_db_fail(s, "count leases");
    sqlite3_reset(q);
    return n;
}
