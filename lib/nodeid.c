/*
 * nodeid.c - a node's Raft id, unique per incarnation (see nodeid.h).
 */
#include "nodeid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv_more(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * FNV_PRIME;
    return h;
}

uint64_t nodeid_legacy(const char *name)
{
    uint64_t h = fnv_more(FNV_BASIS, name);
    return h ? h : 1;
}

uint64_t nodeid_derive(const char *name, const char *inc)
{
    if (!inc || !*inc)
        return nodeid_legacy(name);
    uint64_t h = fnv_more(FNV_BASIS, name);
    h = fnv_more(h, "/");
    h = fnv_more(h, inc);
    return h ? h : 1;
}

int nodeid_new_incarnation(char *buf, size_t cap)
{
    uint8_t b[8];
    if (cap < NODEID_HEX_LEN + 1)
        return -1;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    if (n != (ssize_t)sizeof b)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof b; i++)
        v = (v << 8) | b[i];
    if (v == 0)
        v = 1;
    nodeid_format(v, buf, cap);
    return 0;
}

int nodeid_parse(const char *s, uint64_t *out)
{
    if (!s || strlen(s) != NODEID_HEX_LEN)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < NODEID_HEX_LEN; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return 0;
        v = (v << 4) | d;
    }
    if (v == 0)
        return 0;
    *out = v;
    return 1;
}

void nodeid_format(uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016llx", (unsigned long long)id);
}

int nodeid_load(store *s, const char *name, int fresh, uint64_t *id, char *inc, size_t inc_cap,
                int *legacy, char *err, size_t err_cap)
{
    char stored_name[128], got[64];
    *legacy = 0;
    inc[0] = '\0';
    int irc = store_meta_get(s, "incarnation", got, sizeof got);
    int nrc = irc < 0 ? -1 : store_meta_get(s, "name", stored_name, sizeof stored_name);
    if (irc < 0 || nrc < 0) {
        snprintf(err, err_cap, "read node identity: %s", store_error(s));
        return -1;
    }
    uint64_t dummy;
    if (irc == 1) {
        if (!nodeid_parse(got, &dummy)) {
            snprintf(err, err_cap, "stored incarnation '%.40s' is not 16 hex digits", got);
            return -1;
        }
    } else if (nrc == 0 && fresh) {
        if (nodeid_new_incarnation(got, sizeof got) < 0) {
            snprintf(err, err_cap, "/dev/urandom: %s", strerror(errno ? errno : EIO));
            return -1;
        }
        if (store_meta_set(s, "incarnation", got) < 0) {
            snprintf(err, err_cap, "save incarnation: %s", store_error(s));
            return -1;
        }
    } else {
        *legacy = 1;
        *id = nodeid_legacy(name);
        return 0;
    }
    snprintf(inc, inc_cap, "%s", got);
    *id = nodeid_derive(name, got);
    return 0;
}
