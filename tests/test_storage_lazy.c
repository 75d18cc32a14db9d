/*
 * test_storage_lazy - store_begin_lazy: a lazy transaction commits its
 * writes (seen after reopening), a rollback of one undoes them, an
 * ordinary transaction works after one, and a second begin inside a
 * transaction is refused. (That a lazy commit skips the sync is measured
 * by make bench, not tested here.) Prints ok/FAIL lines and
 * "N passed, M failed".
 */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

static void check(const char *name, int cond, const char *detail)
{
    if (cond) {
        printf("ok %s\n", name);
        passed++;
    } else {
        printf("FAIL %s: %s\n", name, detail);
        failed++;
    }
}

int main(void)
{
    char dir[] = "/tmp/test_storage_lazy.XXXXXX";
    if (!mkdtemp(dir)) {
        printf("FAIL setup: mkdtemp\n0 passed, 1 failed\n");
        return 1;
    }
    char path[256], buf[64];
    snprintf(path, sizeof path, "%s/raft.db", dir);
    store *s = store_open(path);
    if (!s) {
        printf("FAIL setup: %s\n0 passed, 1 failed\n", store_open_error());
        return 1;
    }
    check("begin_lazy", store_begin_lazy(s) == 0, store_error(s));
    check("write_in_lazy", store_meta_set(s, "bench", "one") == 0, store_error(s));
    check("commit_lazy", store_commit(s) == 0, store_error(s));
    check("begin_lazy_again", store_begin_lazy(s) == 0, store_error(s));
    check("write_then_rollback", store_meta_set(s, "bench", "two") == 0, store_error(s));
    store_rollback(s);
    check("ordinary_txn_after_lazy", store_begin(s) == 0 && store_meta_set(s, "other", "x") == 0 &&
                                         store_commit(s) == 0,
          store_error(s));
    check("nested_begin_refused", store_begin_lazy(s) == 0 && store_begin_lazy(s) < 0,
          "a second begin inside a transaction succeeded");
    store_rollback(s);
    store_close(s);
    s = store_open(path);
    check("reopen", s != NULL, store_open_error());
    if (s) {
        int r = store_meta_get(s, "bench", buf, sizeof buf);
        check("lazy_commit_kept", r == 1 && strcmp(buf, "one") == 0, r == 1 ? buf : "absent");
        r = store_meta_get(s, "other", buf, sizeof buf);
        check("durable_commit_kept", r == 1 && strcmp(buf, "x") == 0, "absent");
        store_close(s);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
