/*
 * test_storage_lazy - store_begin_lazy: a lazy transaction commits its
 * writes (seen after reopening), a rollback of one undoes them, an
 * ordinary transaction works after one, and a second begin inside a
 * transaction is refused. (That a lazy commit skips the sync is measured
 * by make bench, not tested here.) Prints ok/FAIL lines and
 * "N passed, M failed".
 */
#include "storage.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char dir[] = "/tmp/test_storage_lazy.XXXXXX";
    if (!mkdtemp(dir)) {
        check(0, "setup", "mkdtemp");
        return check_summary();
    }
    char path[256], buf[64];
    snprintf(path, sizeof path, "%s/raft.db", dir);
    store *s = store_open(path);
    if (!s) {
        check(0, "setup", "%s", store_open_error());
        return check_summary();
    }
    check(store_begin_lazy(s) == 0, "begin_lazy", "%s", store_error(s));
    check(store_meta_set(s, "bench", "one") == 0, "write_in_lazy", "%s", store_error(s));
    check(store_commit(s) == 0, "commit_lazy", "%s", store_error(s));
    check(store_begin_lazy(s) == 0, "begin_lazy_again", "%s", store_error(s));
    check(store_meta_set(s, "bench", "two") == 0, "write_then_rollback", "%s", store_error(s));
    store_rollback(s);
    check(store_begin(s) == 0 && store_meta_set(s, "other", "x") == 0 && store_commit(s) == 0,
          "ordinary_txn_after_lazy", "%s", store_error(s));
    check(store_begin_lazy(s) == 0 && store_begin_lazy(s) < 0, "nested_begin_refused",
          "a second begin inside a transaction succeeded");
    store_rollback(s);
    store_close(s);
    s = store_open(path);
    check(s != NULL, "reopen", "%s", store_open_error());
    if (s) {
        int r = store_meta_get(s, "bench", buf, sizeof buf);
        check(r == 1 && strcmp(buf, "one") == 0, "lazy_commit_kept", "%s", r == 1 ? buf : "absent");
        r = store_meta_get(s, "other", buf, sizeof buf);
        check(r == 1 && strcmp(buf, "x") == 0, "durable_commit_kept", "absent");
        store_close(s);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return check_summary();
}
