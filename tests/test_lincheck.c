/* Unit tests of the fault suite's linearizability checker
 * (tests/fault/lincheck.h) on small hand-written histories: it must accept
 * the linearizable ones and reject the others, so it cannot silently pass
 * everything. Prints ok/FAIL lines and "N passed, M failed". */
#include "fault/lincheck.h"
#include "check.h"

#define U LC_INF
/* op(inv, ret, outcome, type, value, expect) */
#define OP(i, r, o, t, v, e) \
    { \
        (i), (r), (o), (t), (v), (e), 0 \
    }

static void expect(const char *name, lc_op *ops, int n, int want)
{
    for (int i = 0; i < n; i++)
        ops[i].id = i;
    lc_result r = lc_check(ops, n, 5.0, 64u << 20);
    check(r.verdict == want, name, "verdict %d, want %d", r.verdict, want);
}

int main(void)
{
    { /* write then read sees it */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'r', 1, 0)};
        expect("write_then_read", h, 2, LC_LINEARIZABLE);
    }
    { /* read after a completed write sees the old (absent) value: stale */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'r', -1, 0)};
        expect("stale_read_after_write", h, 2, LC_VIOLATION);
    }
    { /* concurrent read may see either */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(5, 30, 'o', 'r', -1, 0)};
        expect("concurrent_read_old", h, 2, LC_LINEARIZABLE);
    }
    { /* value never written */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'r', 2, 0)};
        expect("read_unwritten_value", h, 2, LC_VIOLATION);
    }
    { /* reads go backwards: w1 < w2 sequential, read 2 then read 1 */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(11, 20, 'o', 'w', 2, 0),
                     OP(21, 30, 'o', 'r', 2, 0), OP(31, 40, 'o', 'r', 1, 0)};
        expect("reads_go_backwards", h, 4, LC_VIOLATION);
    }
    { /* two concurrent writes, readers agree on one order */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(0, 10, 'o', 'w', 2, 0),
                     OP(11, 20, 'o', 'r', 1, 0), OP(21, 30, 'o', 'r', 1, 0)};
        expect("concurrent_writes_one_order", h, 4, LC_LINEARIZABLE);
    }
    { /* readers disagree after both writes finished */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(0, 10, 'o', 'w', 2, 0),
                     OP(11, 20, 'o', 'r', 1, 0), OP(21, 30, 'o', 'r', 2, 0),
                     OP(31, 40, 'o', 'r', 1, 0)};
        expect("flip_flop_after_writes", h, 5, LC_VIOLATION);
    }
    { /* unknown write may take effect late */
        lc_op h[] = {OP(0, U, 'u', 'w', 1, 0), OP(20, 30, 'o', 'r', -1, 0),
                     OP(40, 50, 'o', 'r', 1, 0)};
        expect("unknown_write_takes_effect_late", h, 3, LC_LINEARIZABLE);
    }
    { /* unknown write may never take effect */
        lc_op h[] = {OP(0, U, 'u', 'w', 1, 0), OP(20, 30, 'o', 'r', -1, 0)};
        expect("unknown_write_never", h, 2, LC_LINEARIZABLE);
    }
    { /* but it cannot take effect before it was invoked */
        lc_op h[] = {OP(0, 10, 'o', 'r', 1, 0), OP(20, U, 'u', 'w', 1, 0)};
        expect("unknown_write_not_before_invoke", h, 2, LC_VIOLATION);
    }
    { /* nor un-happen: seen, then gone without another write */
        lc_op h[] = {OP(0, U, 'u', 'w', 1, 0), OP(20, 30, 'o', 'r', 1, 0),
                     OP(40, 50, 'o', 'r', -1, 0)};
        expect("unknown_write_seen_then_gone", h, 3, LC_VIOLATION);
    }
    { /* lost write: acknowledged write, later read shows older value */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'w', 2, 0),
                     OP(100, 110, 'o', 'r', 1, 0)};
        expect("lost_acknowledged_write", h, 3, LC_VIOLATION);
    }
    { /* delete then read absent; read after delete sees old value: bad */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'd', -1, 0),
                     OP(40, 50, 'o', 'r', -1, 0)};
        expect("delete_then_absent", h, 3, LC_LINEARIZABLE);
        lc_op g[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'd', -1, 0),
                     OP(40, 50, 'o', 'r', 1, 0)};
        expect("delete_then_old_value", g, 3, LC_VIOLATION);
    }
    { /* compare-and-set */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'o', 'c', 2, 1),
                     OP(40, 50, 'o', 'r', 2, 0)};
        expect("cas_ok", h, 3, LC_LINEARIZABLE);
        lc_op g[] = {OP(0, 10, 'o', 'w', 1, 0), OP(11, 19, 'o', 'w', 3, 0),
                     OP(20, 30, 'o', 'c', 2, 1)};
        expect("cas_ok_on_wrong_value", g, 3, LC_VIOLATION);
        lc_op f[] = {OP(0, 10, 'o', 'w', 1, 0), OP(20, 30, 'p', 'c', 2, 1)};
        expect("cas_412_while_value_matches", f, 2, LC_VIOLATION);
        lc_op e[] = {OP(0, 10, 'o', 'w', 1, 0), OP(5, U, 'u', 'w', 3, 0),
                     OP(20, 30, 'p', 'c', 2, 1)};
        expect("cas_412_explained_by_unknown_write", e, 3, LC_LINEARIZABLE);
        lc_op c[] = {OP(0, 10, 'o', 'c', 1, -1), OP(20, 30, 'o', 'c', 2, -1)};
        expect("if_none_match_twice", c, 2, LC_VIOLATION);
        lc_op b[] = {OP(0, 10, 'o', 'c', 1, -1), OP(5, 30, 'o', 'd', -1, 0),
                     OP(20, 40, 'o', 'c', 2, -1), OP(50, 60, 'o', 'r', 2, 0)};
        expect("if_none_match_after_delete", b, 4, LC_LINEARIZABLE);
    }
    { /* a larger linearizable history: 200 sequential ops with overlaps */
        lc_op h[400];
        int n = 0;
        for (int i = 0; i < 100; i++) {
            h[n++] = (lc_op)OP((uint64_t)i * 10, (uint64_t)i * 10 + 15, 'o', 'w', i, 0);
            h[n++] = (lc_op)OP((uint64_t)i * 10 + 16, (uint64_t)i * 10 + 19, 'o', 'r', i, 0);
        }
        expect("long_sequential_history", h, n, LC_LINEARIZABLE);
        h[n - 1].value = 3;
        expect("long_history_bad_last_read", h, n, LC_VIOLATION);
    }
    { /* the stuck op is reported: the read of 1 after 2 was read */
        lc_op h[] = {OP(0, 10, 'o', 'w', 1, 0), OP(11, 20, 'o', 'w', 2, 0),
                     OP(21, 30, 'o', 'r', 2, 0), OP(31, 40, 'o', 'r', 1, 0)};
        for (int i = 0; i < 4; i++)
            h[i].id = i;
        lc_result r = lc_check(h, 4, 5.0, 64u << 20);
        check(r.verdict == LC_VIOLATION && r.stuck == 3, "reports_stuck_op", "verdict %d stuck %d",
              r.verdict, r.stuck);
    }
    { /* budget exceeded: unknown, never passed. Many concurrent unknown
       * deletes and writes with a final impossible read force a full search. */
        enum { N = 60 };
        lc_op h[N + 1];
        for (int i = 0; i < N; i++)
            h[i] = (lc_op)OP(0, U, 'u', i % 2 ? 'd' : 'w', i % 2 ? -1 : i, 0);
        h[N] = (lc_op)OP(100, 110, 'o', 'r', 9999, 0);
        for (int i = 0; i <= N; i++)
            h[i].id = i;
        lc_result r = lc_check(h, N + 1, 0.2, 64u << 20);
        check(r.verdict == LC_UNKNOWN || r.verdict == LC_VIOLATION, "budget_never_passes",
              "verdict %d", r.verdict);
    }
    return check_summary();
}
