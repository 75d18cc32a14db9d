/*
 * fcgi_rec.c - the FastCGI record layer: parse and write records and
 * name-value pairs (see fcgi_rec.h).
 */
#include "fcgi_rec.h"

#include <string.h>

long fcgi_parse_record(const uint8_t *buf, size_t len, fcgi_header *h)
{
    if (len >= 1 && buf[0] != FCGI_VERSION_1)
        return -1;
    if (len < FCGI_HEADER_LEN)
        return 0;
    h->type = buf[1];
    h->id = (unsigned)buf[2] << 8 | buf[3];
    h->clen = (size_t)buf[4] << 8 | buf[5];
    h->plen = buf[6];
    size_t all = FCGI_HEADER_LEN + h->clen + h->plen;
    return len < all ? 0 : (long)all;
}

/* A length of a name-value pair: 1 byte below 128, else 4 (high bit set). */
static int pair_len(const uint8_t *p, size_t len, size_t *off, size_t *out)
{
    if (*off >= len)
        return -1;
    if (!(p[*off] & 0x80)) {
        *out = p[(*off)++];
        return 0;
    }
    if (len - *off < 4)
        return -1;
    *out = ((size_t)(p[*off] & 0x7f) << 24) | ((size_t)p[*off + 1] << 16) |
           ((size_t)p[*off + 2] << 8) | p[*off + 3];
    *off += 4;
    return 0;
}

int fcgi_next_pair(const uint8_t *p, size_t len, const uint8_t **name, size_t *nlen,
                   const uint8_t **value, size_t *vlen, size_t *used)
{
    if (len == 0)
        return 0;
    size_t off = 0;
    if (pair_len(p, len, &off, nlen) < 0 || pair_len(p, len, &off, vlen) < 0)
        return -1;
    if (*nlen > len - off || *vlen > len - off - *nlen)
        return -1;
    *name = p + off;
    *value = p + off + *nlen;
    *used = off + *nlen + *vlen;
    return 1;
}

void fcgi_put_header(uint8_t *out, int type, unsigned id, size_t clen)
{
    out[0] = FCGI_VERSION_1;
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)(id >> 8);
    out[3] = (uint8_t)id;
    out[4] = (uint8_t)(clen >> 8);
    out[5] = (uint8_t)clen;
    out[6] = 0;
    out[7] = 0;
}

static size_t put_len(uint8_t *out, size_t n)
{
    if (n < 128) {
        out[0] = (uint8_t)n;
        return 1;
    }
    out[0] = (uint8_t)(0x80 | (n >> 24));
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    return 4;
}

size_t fcgi_put_pair(uint8_t *out, size_t cap, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    if (nlen > 0x7fffffffu || vlen > 0x7fffffffu || cap < 8 || cap - 8 < nlen ||
        cap - 8 - nlen < vlen)
        return 0;
    size_t off = put_len(out, nlen);
    off += put_len(out + off, vlen);
    memcpy(out + off, name, nlen);
    memcpy(out + off + nlen, value, vlen);
    return off + nlen + vlen;
}

void fcgi_put_end(uint8_t *out, unsigned id, uint32_t app_status, int proto_status)
{
    fcgi_put_header(out, FCGI_END_REQUEST, id, 8);
    out[8] = (uint8_t)(app_status >> 24);
    out[9] = (uint8_t)(app_status >> 16);
    out[10] = (uint8_t)(app_status >> 8);
    out[11] = (uint8_t)app_status;
    out[12] = (uint8_t)proto_status;
    memset(out + 13, 0, 3);
}
