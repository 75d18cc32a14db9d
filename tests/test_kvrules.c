/*
 * test_kvrules.c - the shared limits and checks of lib/kvrules.c: keys,
 * node names, addresses and the member meta, at and around each limit.
 *
 * Prints "ok NAME" or "FAIL NAME: reason" per case, then
 * "N passed, M failed"; exits 1 on any failure.
 */
#include "kvrules.h"

#include <stdio.h>
#include <string.h>

static int n_pass, n_fail;

#define CHECK(name, cond)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            printf("ok %s\n", name);                                          \
            n_pass++;                                                         \
        } else {                                                              \
            printf("FAIL %s: line %d: %s\n", name, __LINE__, #cond);         \
            n_fail++;                                                         \
        }                                                                     \
    } while (0)

int main(void)
{
    char k[KV_KEY_MAX + 2];
    const char *why = NULL;
    memset(k, 'k', sizeof k);
    CHECK("key_limit_1024", KV_KEY_MAX == 1024);
    CHECK("key_max_ok", kv_key_ok(k, KV_KEY_MAX) && kv_key_check(k, KV_KEY_MAX, &why) == 0);
    CHECK("key_too_long_413", !kv_key_ok(k, KV_KEY_MAX + 1) &&
                                  kv_key_check(k, KV_KEY_MAX + 1, &why) == 413 &&
                                  strstr(why, "1024"));
    CHECK("key_empty_400", !kv_key_ok("", 0) && kv_key_check("", 0, &why) == 400);
    CHECK("key_nul_400", !kv_key_ok("a\0b", 3) && kv_key_check("a\0b", 3, &why) == 400 &&
                             strstr(why, "NUL"));
    CHECK("limits", KV_VALUE_MAX == 1048576 && KV_BATCH_MAX == 1000 &&
                        KV_LIST_DEFAULT == 100 && KV_LIST_MAX == 1000);

    char name[KV_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[KV_NAME_MAX] = 0;
    CHECK("name_63_ok", kv_name_ok(name));
    name[KV_NAME_MAX] = 'n';
    name[KV_NAME_MAX + 1] = 0;
    CHECK("name_64_refused", !kv_name_ok(name));
    CHECK("name_chars", kv_name_ok("node-0.a_B") && !kv_name_ok("") && !kv_name_ok("a b") &&
                            !kv_name_ok("a/b") && !kv_name_ok("a:b"));

    CHECK("addr_ok", kv_addr_ok("127.0.0.1:12000") && kv_addr_ok("[::1]:1") &&
                         kv_addr_ok("h:65535"));
    CHECK("addr_bad", !kv_addr_ok("h:0") && !kv_addr_ok("h:65536") && !kv_addr_ok("h:") &&
                          !kv_addr_ok("h") && !kv_addr_ok("h :1") && !kv_addr_ok("h:1x"));
    char addr[KV_ADDR_MAX + 2];
    memset(addr, 'a', sizeof addr);
    memcpy(addr + KV_ADDR_MAX - 3, ":80", 4);
    CHECK("addr_95_ok", strlen(addr) == KV_ADDR_MAX && kv_addr_ok(addr));
    memset(addr, 'a', sizeof addr);
    memcpy(addr + KV_ADDR_MAX - 2, ":80", 4);
    CHECK("addr_96_refused", !kv_addr_ok(addr));

    char meta[256], n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
    CHECK("meta_format", kv_meta_format(meta, sizeof meta, "a", "h:1", "h:2") == 0 &&
                             !strcmp(meta, "a h:1 h:2"));
    kv_meta_format(meta, sizeof meta, "a", "h:1", NULL);
    CHECK("meta_no_haddr", !strcmp(meta, "a h:1 -"));
    kv_meta_split(meta, n, sizeof n, r, sizeof r, h, sizeof h);
    CHECK("meta_split_dash", !strcmp(n, "a") && !strcmp(r, "h:1") && h[0] == 0);
    kv_meta_split("b h:3 h:4", n, sizeof n, r, sizeof r, h, sizeof h);
    CHECK("meta_split", !strcmp(n, "b") && !strcmp(r, "h:3") && !strcmp(h, "h:4"));
    kv_meta_split("", n, sizeof n, r, sizeof r, h, sizeof h);
    CHECK("meta_split_empty", !n[0] && !r[0] && !h[0]);
    CHECK("meta_too_long", kv_meta_format(meta, 8, "abc", "h:1", "h:2") == -1);

    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
