/*
 * kvrules.c - the limits and checks of lib/kvrules.h, one place per rule.
 * Must not call into storage, jansson or the Raft core.
 */
#include "kvrules.h"
#include "raft.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kv_key_ok(const char *k, size_t n)
{
    return n >= 1 && n <= KV_KEY_MAX && memchr(k, 0, n) == NULL;
}

int kv_key_check(const char *k, size_t n, const char **why)
{
    if (n == 0) {
        *why = "key must not be empty";
        return 400;
    }
    if (n > KV_KEY_MAX) {
        *why = "key longer than 1024 bytes";
        return 413;
    }
    if (memchr(k, 0, n)) {
        *why = "key must not contain NUL";
        return 400;
    }
    return 0;
}

int kv_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int kv_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > KV_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!kv_name_char(s[i]))
            return 0;
    return 1;
}

int kv_addr_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > KV_ADDR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    const char *c = strrchr(s, ':');
    if (!c || !c[1])
        return 0;
    char *end;
    errno = 0;
    long port = strtol(c + 1, &end, 10);
    return !errno && *end == 0 && port >= 1 && port <= 65535;
}

int kv_addr_unspecified(const char *s)
{
    const char *c = strrchr(s, ':');
    size_t hl = c ? (size_t)(c - s) : strlen(s);
    static const char *const any[] = {"", "0.0.0.0", "::", "[::]", "0", "[::0]", "::0"};
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++)
        if (strlen(any[i]) == hl && strncmp(s, any[i], hl) == 0)
            return 1;
    return 0;
}

int kv_meta_format(char *buf, size_t cap, const char *name, const char *raddr, const char *haddr)
{
    int n = snprintf(buf, cap, "%s %s %s", name, raddr, haddr && haddr[0] ? haddr : "-");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

void kv_meta_split(const char *meta, char *name, size_t name_cap, char *raddr, size_t raddr_cap,
                   char *haddr, size_t haddr_cap)
{
    char tmp[RAFT_META_MAX];
    snprintf(tmp, sizeof tmp, "%s", meta);
    char *save = NULL;
    char *a = strtok_r(tmp, " ", &save);
    char *b = a ? strtok_r(NULL, " ", &save) : NULL;
    char *c = b ? strtok_r(NULL, " ", &save) : NULL;
    snprintf(name, name_cap, "%s", a ? a : "");
    snprintf(raddr, raddr_cap, "%s", b ? b : "");
    snprintf(haddr, haddr_cap, "%s", c && strcmp(c, "-") ? c : "");
}
