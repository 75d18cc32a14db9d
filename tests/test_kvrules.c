/*
 * test_kvrules.c - the shared limits and checks of lib/kvrules.c: keys,
 * node names, addresses and the member meta, at and around each limit.
 *
 * Prints "ok NAME" or "FAIL NAME: reason" per case (tests/check.h), then
 * "N passed, M failed"; exits 1 on any failure.
 */
#include "kvrules.h"
#include "check.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    char k[KV_KEY_MAX + 2];
    const char *why = NULL;
    memset(k, 'k', sizeof k);
    EXPECT(KV_KEY_MAX == 1024, "key_limit_1024");
    EXPECT(kv_key_ok(k, KV_KEY_MAX) && kv_key_check(k, KV_KEY_MAX, &why) == 0, "key_max_ok");
    EXPECT(!kv_key_ok(k, KV_KEY_MAX + 1) && kv_key_check(k, KV_KEY_MAX + 1, &why) == 413 &&
               strstr(why, "1024"),
           "key_too_long_413");
    EXPECT(!kv_key_ok("", 0) && kv_key_check("", 0, &why) == 400, "key_empty_400");
    EXPECT(!kv_key_ok("a\0b", 3) && kv_key_check("a\0b", 3, &why) == 400 && strstr(why, "NUL"),
           "key_nul_400");
    EXPECT(KV_VALUE_MAX == 1048576 && KV_BATCH_MAX == 1000 && KV_LIST_DEFAULT == 100 &&
               KV_LIST_MAX == 1000,
           "limits");

    char name[KV_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[KV_NAME_MAX] = 0;
    EXPECT(kv_name_ok(name), "name_63_ok");
    name[KV_NAME_MAX] = 'n';
    name[KV_NAME_MAX + 1] = 0;
    EXPECT(!kv_name_ok(name), "name_64_refused");
    EXPECT(kv_name_ok("node-0.a_B") && !kv_name_ok("") && !kv_name_ok("a b") &&
               !kv_name_ok("a/b") && !kv_name_ok("a:b"),
           "name_chars");

    EXPECT(kv_addr_ok("127.0.0.1:12000") && kv_addr_ok("[::1]:1") && kv_addr_ok("h:65535"),
           "addr_ok");
    EXPECT(!kv_addr_ok("h:0") && !kv_addr_ok("h:65536") && !kv_addr_ok("h:") && !kv_addr_ok("h") &&
               !kv_addr_ok("h :1") && !kv_addr_ok("h:1x"),
           "addr_bad");
    EXPECT(kv_addr_unspecified("0.0.0.0:11000") && kv_addr_unspecified("[::]:1") &&
               kv_addr_unspecified("::1") == 0 && kv_addr_unspecified(":11000"),
           "addr_unspecified");
    EXPECT(!kv_addr_unspecified("10.0.0.1:11000") && !kv_addr_unspecified("[::1]:1") &&
               !kv_addr_unspecified("localhost:1") && !kv_addr_unspecified("0.0.0.1:1"),
           "addr_specified");
    char addr[KV_ADDR_MAX + 2];
    memset(addr, 'a', sizeof addr);
    memcpy(addr + KV_ADDR_MAX - 3, ":80", 4);
    EXPECT(strlen(addr) == KV_ADDR_MAX && kv_addr_ok(addr), "addr_95_ok");
    memset(addr, 'a', sizeof addr);
    memcpy(addr + KV_ADDR_MAX - 2, ":80", 4);
    EXPECT(!kv_addr_ok(addr), "addr_96_refused");

    char meta[256], n[KV_NAME_MAX + 1], r[KV_ADDR_MAX + 1], h[KV_ADDR_MAX + 1];
    EXPECT(kv_meta_format(meta, sizeof meta, "a", "h:1", "h:2") == 0 && !strcmp(meta, "a h:1 h:2"),
           "meta_format");
    kv_meta_format(meta, sizeof meta, "a", "h:1", NULL);
    EXPECT(!strcmp(meta, "a h:1 -"), "meta_no_haddr");
    kv_meta_split(meta, n, sizeof n, r, sizeof r, h, sizeof h);
    EXPECT(!strcmp(n, "a") && !strcmp(r, "h:1") && h[0] == 0, "meta_split_dash");
    kv_meta_split("b h:3 h:4", n, sizeof n, r, sizeof r, h, sizeof h);
    EXPECT(!strcmp(n, "b") && !strcmp(r, "h:3") && !strcmp(h, "h:4"), "meta_split");
    kv_meta_split("", n, sizeof n, r, sizeof r, h, sizeof h);
    EXPECT(!n[0] && !r[0] && !h[0], "meta_split_empty");
    EXPECT(kv_meta_format(meta, 8, "abc", "h:1", "h:2") == -1, "meta_too_long");

    return check_summary();
}
