#!/bin/sh
# Style and static checks of keyval's C sources and headers: every *.c and
# *.h under lib bin cgi-bin tests bench (not tests/fuzz/corpus, not
# tests/tmp). It reads the code and changes nothing unless asked to.
#   tests/lint.sh          (make lint) two checks:
#     clang-format  --dry-run -Werror against the committed .clang-format
#                   (clang-format 14, Debian 12's); one FAIL line per file
#                   it would change
#     cppcheck      warning, portability and performance checks, one FAIL
#                   line per finding; a deliberate exception is marked in
#                   the code with a "cppcheck-suppress ID" comment
#   and ends "lint: N passed, M failed" (one per check), exit 1 on a finding.
#   tests/lint.sh format   (make format) clang-format -i over the same files.
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
CPPCHECK=${CPPCHECK:-cppcheck}
# Style checks (--enable=style) were measured noisy on this tree: mostly
# variableScope and knownConditionTrueFalse on defensive code.
CPPCHECK_FLAGS=${CPPCHECK_FLAGS:---enable=warning,portability,performance --std=c11 \
 -D_GNU_SOURCE -DKEYVAL_HAVE_FCGI -Ilib --inline-suppr -q --error-exitcode=1}

files=$(find lib bin cgi-bin tests bench -type f -name '*.[ch]' \
    -not -path 'tests/fuzz/corpus/*' -not -path 'tests/tmp/*' | LC_ALL=C sort)
c_files=$(echo "$files" | grep '\.c$')

if [ "$1" = format ]; then
    # shellcheck disable=SC2086
    exec $CLANG_FORMAT --style=file -i $files
fi
[ $# -eq 0 ] || { echo "usage: tests/lint.sh [format]" >&2; exit 2; }

pass=0
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# clang-format: one "FILE:LINE:COL: error: code should be clang-formatted"
# per place it would change.
if ! command -v "$CLANG_FORMAT" >/dev/null; then
    echo "FAIL clang-format: $CLANG_FORMAT not installed (sh tests/deps.sh)"
    fail=$((fail + 1))
elif [ ! -f .clang-format ]; then
    echo "FAIL clang-format: no .clang-format here (run from the top folder)"
    fail=$((fail + 1))
else
    v=$($CLANG_FORMAT --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
    [ "$v" = 14 ] || echo "note: $CLANG_FORMAT is version $v; the style is checked with 14"
    # shellcheck disable=SC2086
    $CLANG_FORMAT --style=file --dry-run -Werror $files >"$out" 2>&1
    rc=$?
    bad=$(sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' \
        "$out" | uniq -c | awk '{ print "FAIL clang-format: " $2 " (" $1 " places to change)" }')
    if [ -n "$bad" ]; then
        echo "$bad"
        echo "clang-format: $(echo "$bad" | wc -l) of $(echo "$files" | wc -l) files" \
            "not formatted (make format rewrites them)"
        fail=$((fail + 1))
    elif [ "$rc" -ne 0 ]; then
        echo "FAIL clang-format: exit $rc"
        head -n 5 "$out" | sed 's/^/    /'
        fail=$((fail + 1))
    else
        echo "ok clang-format: $(echo "$files" | wc -l) files"
        pass=$((pass + 1))
    fi
fi

if ! command -v "$CPPCHECK" >/dev/null; then
    echo "FAIL cppcheck: $CPPCHECK not installed (sh tests/deps.sh)"
    fail=$((fail + 1))
else
    # shellcheck disable=SC2086
    $CPPCHECK $CPPCHECK_FLAGS --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
        $c_files >"$out" 2>&1
    rc=$?
    n=$(grep -c '\]$' "$out")
    if [ "$rc" -ne 0 ] || [ -s "$out" ]; then
        sed 's/^/FAIL cppcheck: /' "$out"
        echo "cppcheck: $n finding(s) (exit $rc)"
        fail=$((fail + 1))
    else
        echo "ok cppcheck: $(echo "$c_files" | wc -l) files"
        pass=$((pass + 1))
    fi
fi

if [ "$fail" -eq 0 ]; then
    echo "lint: $pass passed, 0 failed: the code follows .clang-format and cppcheck finds nothing"
else
    echo "lint: $pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
