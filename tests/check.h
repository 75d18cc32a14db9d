/*
 * check.h - the one harness of keyval's unit tests (tests/test_*.c), also
 * used by raft-sim for its summary. A check prints "ok NAME" or
 * "FAIL NAME: why"; check_summary() prints the last line,
 * "N passed, M failed", which tests/run-all.sh adds up, and returns the
 * exit status (1 if anything failed).
 *
 * The condition comes first, as in TAP's ok(). Two kinds of check:
 *   check(ok, name, fmt, ...)   one named check, reported at once; the
 *                               printf-formatted why is printed on failure;
 *   EXPECT(cond, name)          the same, with "line N: cond" as the why;
 *   CHECK(cond, fmt, ...)       inside a case run by RUN(fn): the first
 *                               failure ends the case (it returns) and the
 *                               case is reported once, by its name, as
 *                               "FAIL fn: line N: why" or "ok fn".
 * A program that runs its cases its own way (test_raft forks one child per
 * case) uses check_case_begin/check_case_end and check_why directly.
 *
 * Header-only: each test is one program of one .c file. Not for lib/.
 */
#ifndef KEYVAL_TESTS_CHECK_H
#define KEYVAL_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static long check_passed, check_failed;

static inline void check(int ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void check(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("ok %s\n", name);
        check_passed++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    check_failed++;
}

#define EXPECT(cond, name) check((cond), (name), "line %d: %s", __LINE__, #cond)

/* ---- cases: CHECK ends the case at its first failure ---- */

static const char *check_case; /* the case running */
static int check_case_failed;  /* it failed a CHECK */
static char check_why[1024];   /* its first failure: "line N: why" */

static inline void check_fail_at(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void check_fail_at(int line, const char *fmt, ...)
{
    if (check_case_failed)
        return; /* report the first failure of a case only */
    check_case_failed = 1;
    int n = snprintf(check_why, sizeof check_why, "line %d: ", line);
    if (n < 0 || (size_t)n >= sizeof check_why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_why + n, sizeof check_why - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CHECK(cond, ...) \
    do { \
        if (!(cond)) { \
            check_fail_at(__LINE__, __VA_ARGS__); \
            return; \
        } \
    } while (0)

static inline void check_case_begin(const char *name)
{
    check_case = name;
    check_case_failed = 0;
    check_why[0] = 0;
}

/* Report the case that ran; returns 1 if it failed. */
static inline int check_case_end(void)
{
    check(!check_case_failed, check_case, "%s", check_why);
    return check_case_failed;
}

#define RUN(fn) \
    do { \
        check_case_begin(#fn); \
        fn(); \
        check_case_end(); \
    } while (0)

/* The last line of every test program; returns its exit status. */
static inline int check_summary(void)
{
    printf("%ld passed, %ld failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
