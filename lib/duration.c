/*
 * duration.c - parse "500ms", "10s", "5m", "1h" into milliseconds (see
 * duration.h for the grammar and why a bare number is refused).
 * Pure: no I/O, no clock.
 */
#include "duration.h"

#include <string.h>

int duration_parse_ms(const char *s, uint64_t max_ms, uint64_t *ms)
{
    if (!s || *s < '0' || *s > '9')
        return DURATION_EINVAL;
    uint64_t n = 0;
    int overflow = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            overflow = 1; /* keep reading: junk after it is still EINVAL */
        else
            n = n * 10 + d;
    }
    uint64_t unit;
    if (!strcmp(p, "ms"))
        unit = 1;
    else if (!strcmp(p, "s"))
        unit = 1000;
    else if (!strcmp(p, "m"))
        unit = 60 * 1000;
    else if (!strcmp(p, "h"))
        unit = 60 * 60 * 1000;
    else
        return DURATION_EINVAL;
    if (overflow || n > UINT64_MAX / unit || n * unit > max_ms)
        return DURATION_ERANGE;
    *ms = n * unit;
    return DURATION_OK;
}

const char *duration_strerror(int err)
{
    switch (err) {
    case DURATION_OK: return "ok";
    case DURATION_EINVAL: return "a duration is digits and one unit: ms, s, m or h (\"10s\")";
    case DURATION_ERANGE: return "duration too long";
    }
    return "unknown error";
}
