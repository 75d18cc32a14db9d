#!/bin/sh
# The man pages: every page is clean under mandoc -Tlint, every program has
# a page, and each program's -h and its page name the same options (in the
# page's SYNOPSIS and in its list of options), and -h describes (on a line
# of its own, not only in its usage) every option the page describes, and
# the page every option -h describes. The CGI programs are named
# in keyval-cgi(8). Prints "ok NAME" / "FAIL NAME: why", then a summary.
BUILD=${BUILD:-build}
MAN=man
passed=0
failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

if ! command -v mandoc >/dev/null 2>&1; then
    bad setup "mandoc is not installed (make deps)"
    finish
fi
T=$(mktemp -d /tmp/keyval-man.XXXXXX)
trap 'rm -rf "$T"' EXIT

pages=$(ls $MAN/*.[1-8] 2>/dev/null)
[ -n "$pages" ] || { bad setup "no pages in $MAN/"; finish; }

# 1. mandoc -Tlint: nothing at all, except the two notes that depend on
# which other manuals this machine has installed. Pages are linted in a
# manN/ tree so that a .so link would resolve as it does when installed.
for p in $pages; do
    sec=${p##*.}
    mkdir -p "$T/tree/man$sec"
    cp "$p" "$T/tree/man$sec/"
done
for p in $pages; do
    sec=${p##*.}
    name=$(basename "$p")
    out=$(cd "$T/tree" && mandoc -Tlint -W style "man$sec/$name" 2>&1 |
        grep -v -e 'referenced manual not found' -e 'mandoc.db')
    if [ -z "$out" ]; then ok "lint $name"; else bad "lint $name" "$(echo "$out" | head -n 3)"; fi
done

# Negative control: the lint check does catch a broken page.
printf '.Dd November 26, 2026\n.Dt X 1\n.Os\n.Sh NAME\n.Nm x\n.Sh DESCRIPTION\n.Bl -tag\n' \
    > "$T/broken.1"
if [ -n "$(mandoc -Tlint -W style "$T/broken.1" 2>&1)" ]; then
    ok "lint catches a broken page"
else
    bad "lint catches a broken page" "mandoc -Tlint said nothing about $T/broken.1"
fi

# Options in text: "-x" or "-long-name" after a start, blank, [ ( or |.
opts() {
    grep -oE '(^|[][[:space:]|(])-[A-Za-z][A-Za-z-]*' | sed -E 's/^[^-]*//' |
        grep -vx -e '-h' -e '-help' | sort -u
}
# The options a -h text defines: those in its usage lines ("usage:" and
# the indented lines after it) and those that start an indented line (its
# list of options); not those merely mentioned in prose.
help_opts() {
    awk '/^usage:/ { u = 1; print; next }
         u && /^[ \t]/ { print; next }
         { u = 0 }
         /^[ \t]+-[A-Za-z]/ { print }' | opts
}
# The options a -h text describes: those that start an indented line
# outside its usage lines (so an option only in the usage is not enough).
help_items() {
    awk '/^usage:/ { u = 1; next }
         u && /^[ \t]/ { next }
         { u = 0 }
         /^[ \t]+-[A-Za-z]/ { print }' | opts
}
render() { mandoc -Tascii "$1" 2>/dev/null | sed 's/.\x08//g'; }
# section NAME: the lines of one section of rendered text on stdin.
section() { awk -v s="$1" '/^[A-Z]/ { on = ($0 == s) ; next } on'; }

# 2. -h of each program against its page: every program with a source in
# bin/ (committed ones, when this is a git work tree: others' work in
# progress is not judged here).
# A program of several files, bin/NAME/*.c, is one program NAME.
progs=$(git ls-files bin 2>/dev/null)
[ -n "$progs" ] || progs=$(ls -d bin/*)
progs=$(for src in $progs; do echo "$src"; done | sed 's|^\(bin/[^/]*\)/.*|\1|' | sort -u)
for src in $progs; do
    name=$(basename "$src"); name=${name%.c}; name=${name%.sh}
    prog=$BUILD/bin/$name
    if [ ! -x "$prog" ]; then
        bad "program $name" "$prog not built"
        continue
    fi
    page=$(ls $MAN/"$name".[18] 2>/dev/null | head -n 1)
    if [ -z "$page" ]; then
        bad "page $name" "no $MAN/$name.1 or $MAN/$name.8"
        continue
    fi
    ok "page $name"
    help=$("$prog" -h 2>&1)
    printf '%s\n' "$help" | help_opts > "$T/h"
    printf '%s\n' "$help" | help_items > "$T/hitems"
    if [ ! -s "$T/h" ] && [ "$name" != keyval ]; then
        # Every program here has options; an empty list means -h broke.
        bad "options $name" "-h named no options: $(printf '%s' "$help" | head -n 2)"
        continue
    fi
    render "$page" > "$T/page"
    section SYNOPSIS < "$T/page" | opts > "$T/syn"
    # Entries of the option lists: an option that starts a line indented
    # at most 8 columns, in DESCRIPTION or OPTIONS.
    { section DESCRIPTION < "$T/page"; section OPTIONS < "$T/page"; } |
        grep -E '^ {1,8}-[A-Za-z]' | opts > "$T/items"
    miss_syn=$(comm -23 "$T/h" "$T/syn" | tr '\n' ' ')
    miss_items=$(comm -23 "$T/h" "$T/items" | tr '\n' ' ')
    extra_syn=$(comm -13 "$T/h" "$T/syn" | tr '\n' ' ')
    extra_items=$(comm -13 "$T/h" "$T/items" | tr '\n' ' ')
    why=""
    [ -n "$miss_syn" ] && why="$why; in -h, not in the SYNOPSIS: $miss_syn"
    [ -n "$miss_items" ] && why="$why; in -h, not described: $miss_items"
    [ -n "$extra_syn" ] && why="$why; in the SYNOPSIS, not in -h: $extra_syn"
    [ -n "$extra_items" ] && why="$why; described, not in -h: $extra_items"
    # Each option the page describes, -h describes too, and the reverse.
    undescribed=$(comm -23 "$T/items" "$T/hitems" | tr '\n' ' ')
    help_only=$(comm -13 "$T/items" "$T/hitems" | tr '\n' ' ')
    [ -n "$undescribed" ] && why="$why; described in the page, not in -h: $undescribed"
    [ -n "$help_only" ] && why="$why; described in -h, not in the page: $help_only"
    if [ -z "$why" ]; then
        ok "options $name ($(tr '\n' ' ' < "$T/h"| sed 's/ $//'))"
    else
        bad "options $name" "${why#; }"
    fi
    # The sections a reader looks for.
    miss=""
    for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
        grep -qx "$s" "$T/page" || miss="$miss, $s"
    done
    if [ -z "$miss" ]; then ok "sections $name"; else bad "sections $name" "missing ${miss#, }"; fi
done

# Negative control: the option comparison notices a missing option.
printf 'usage: x [-a] [-zap N]\n' | opts > "$T/h"
printf 'SYNOPSIS\n     x [-a]\n' | section SYNOPSIS | opts > "$T/syn"
if [ "$(comm -23 "$T/h" "$T/syn")" = "-zap" ]; then
    ok "option check notices a missing option"
else
    bad "option check notices a missing option" "got '$(comm -23 "$T/h" "$T/syn")'"
fi

# Negative control: an option only in the usage lines is not described.
printf 'usage: x [-a] [-zap N]\n\n  -a   all\n' | help_items > "$T/hitems"
printf 'OPTIONS\n     -a   all\n     -zap N\n' | section OPTIONS | grep -E '^ {1,8}-' | opts > "$T/items"
if [ "$(comm -23 "$T/items" "$T/hitems")" = "-zap" ]; then
    ok "option check notices an option -h does not describe"
else
    bad "option check notices an option -h does not describe" "got '$(comm -23 "$T/items" "$T/hitems")'"
fi

# 3. CGI programs and keyval-cgi(8).
cgipage=$MAN/keyval-cgi.8
if [ -f "$cgipage" ]; then
    # (the NAME line may wrap: joined first)
    render "$cgipage" | section NAME | tr '\n' ' ' | sed -E 's/ - .*//' | tr ',' '\n' |
        sed -E 's/^ +//; s/ +$//' |
        grep -v '^$' | grep -vx keyval-cgi | sort -u > "$T/named"
    ls "$BUILD"/cgi-bin | sort -u > "$T/cgis"
    if cmp -s "$T/named" "$T/cgis"; then
        ok "keyval-cgi(8) names every CGI program"
    else
        bad "keyval-cgi(8) names every CGI program" \
            "page only: $(comm -23 "$T/named" "$T/cgis" | tr '\n' ' ') programs only: $(comm -13 "$T/named" "$T/cgis" | tr '\n' ' ')"
    fi
else
    bad "keyval-cgi(8)" "$cgipage is missing"
fi
[ -f $MAN/keyval-http.7 ] && ok "keyval-http(7) exists" || bad "keyval-http(7)" "missing"

finish
