/*
 * fuzz_snapshot - libFuzzer target for the snapshot file reader
 * (store_snapshot_install, lib/storage_snap.c) on an in-memory database.
 *
 * The input is written to a file and installed. To get past the checksum
 * the harness fixes the trailing FNV-1a 64 checksum when the input length
 * is even (odd lengths keep the fuzzer's bytes, so the mismatch path is
 * fuzzed too), and expects the index/term the file's header claims.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"

static store *st;
static unsigned runs;
static char path[64];

static uint64_t get64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0])
        snprintf(path, sizeof path, "/dev/shm/fuzz_snapshot.%d", (int)getpid());
    if (!st || ++runs % 2000 == 0) {
        store_close(st);
        st = store_open(":memory:");
        if (!st)
            abort();
    }
    uint8_t *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (size >= 16 && size % 2 == 0) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < size - 8; i++)
            h = (h ^ buf[i]) * 0x100000001b3ULL;
        for (int i = 0; i < 8; i++)
            buf[size - 8 + i] = (uint8_t)(h >> (56 - 8 * i));
    }
    raft_snap_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.index = 1;
    meta.term = 1;
    if (size >= 24) {
        meta.index = get64(buf + 8);
        meta.term = get64(buf + 16);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(buf, 1, size, f) != size)
        abort();
    fclose(f);
    free(buf);
    uint64_t before = store_applied(st);
    int rc = store_snapshot_install(st, path, &meta);
    if (rc == 0 && store_applied(st) != meta.index)
        abort();
    if (rc < 0 && store_applied(st) != before)
        abort();
    unlink(path);
    return 0;
}
