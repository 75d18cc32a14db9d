/*
 * fuzz_store - libFuzzer target for storage's command JSON: store_apply on
 * an in-memory SQLite database. The input is the data of one
 * RAFT_ENTRY_NORMAL entry (what a leader would replicate). A malformed
 * command must give code 400 and change nothing; a valid one 200 or 412.
 * The database is reopened every few thousand inputs to bound memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

static store *st;
static uint64_t idx;
static unsigned runs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > UINT32_MAX)
        return 0;
    if (!st || ++runs % 5000 == 0) {
        store_close(st);
        st = store_open(":memory:");
        if (!st)
            abort();
        idx = 0;
    }
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    raft_entry e = {.term = 1, .index = ++idx, .type = RAFT_ENTRY_NORMAL,
                    .len = (uint32_t)size, .data = size ? copy : NULL};
    int64_t before = store_count(st);
    store_result res;
    memset(&res, 0, sizeof res);
    if (store_apply(st, &e, &res) < 0)
        abort(); /* a command must never be a storage error */
    if (res.code != 200 && res.code != 400 && res.code != 412)
        abort();
    if (res.code != 200 && store_count(st) != before)
        abort(); /* a refused command changed the table */
    if (store_applied(st) != idx)
        abort();
    if (res.code == 412 && strlen(res.key) >= sizeof res.key)
        abort();
    free(copy);
    return 0;
}
