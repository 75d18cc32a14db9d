#!/bin/sh
# keyval -fast: raftd on the HTTP port (bin/raftd/http_front.c), lighttpd
# behind it on DATADIR/http.sock. What is specific to the front, not the
# API (modes.sh runs the API suites with KEYVAL_TEST_FAST=1): who holds
# the port; pipelined requests that move from raftd to lighttpd in one
# connection, and pipelined requests then the client's FIN (all answered);
# HTTP/1.0 and keep-alive; HEAD; key requests raftd hands to
# lighttpd (chunked, Expect: 100-continue, a body over 64 KiB, If-Match: *);
# malformed heads get lighttpd's own answer and raftd survives them; a
# /watch stream through the relay, idle past raftd's timeouts; a slow
# reader of a ~1 MiB value, from raftd and through the relay; raftd's
# idle timeouts (partial head 10 s, kept-alive 5 s); 300 concurrent
# keep-alive connections; -fast with -auth-file is -fastcgi.
# One node on HTTP 127.0.0.1:21160 / Raft 21161, one with -auth-file on
# 21162 / 21163. Every client has a timeout. About 15 s.
# Prints ok/FAIL lines and "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/cluster/helpers.inc

if ! command -v python3 >/dev/null 2>&1; then
    bad setup "python3 is not installed"
    finish
fi
P=21160
RP=21161
AP=21162
ARP=21163
require_ports $P $RP $AP $ARP
U=http://127.0.0.1:$P

# The -auth-file node starts now, so that both start together.
hu=$(openssl passwd -6 -salt frontslt "front secret")
printf 'user:%s:rw\n' "$hu" >"$T/users"
start_node n0 -fast -id n0 -haddr 127.0.0.1:$P -raddr 127.0.0.1:$RP "$T/n0"
start_node a0 -fast -id a0 -haddr 127.0.0.1:$AP -raddr 127.0.0.1:$ARP -auth-file "$T/users" "$T/a0"
if wait_until 20 is_leader $P; then ok node_starts; else bad node_starts "no leader on :$P"; finish; fi

# ---- raw-socket clients (python3); every socket has a timeout
cat >"$T/front.py" <<'EOF'
import hashlib, socket, sys, time

def conn(addr, timeout=5.0, rcvbuf=None):
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        host, port = addr.rsplit(":", 1)
        addr = (host, int(port))
    s.settimeout(timeout)
    s.connect(addr)
    return s

class Reader:
    """Responses, one after the other, from one connection."""
    def __init__(self, s, chunk=65536, pause=0.0):
        self.s, self.buf, self.chunk, self.pause, self.eof = s, b"", chunk, pause, False
    def more(self):
        if self.pause:
            time.sleep(self.pause)
        b = self.s.recv(self.chunk)
        if not b:
            self.eof = True
            raise EOFError
        self.buf += b
    def response(self, head_only=False):
        """(status line, {lower-case name: value}, body); body None for HEAD."""
        while b"\r\n\r\n" not in self.buf:
            self.more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        fields = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            fields[k.strip().lower()] = v.strip()
        code = lines[0].split(" ")[1] if " " in lines[0] else ""
        if head_only or code.startswith("1") or code in ("204", "304"):
            return lines[0], fields, None
        n = int(fields.get("content-length", "0"))
        while len(self.buf) < n:
            self.more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return lines[0], fields, body.decode("latin1")
    def closed(self):
        """The server closes the connection (within the socket's timeout)."""
        try:
            while True:
                self.more()
        except EOFError:
            return not self.buf
        except OSError:
            return False

def unescape(s):
    return s.encode().decode("unicode_escape").encode("latin1")

def out(*a):
    print(*a)
    sys.stdout.flush()

cmd, addr = sys.argv[1], sys.argv[2]
H = b"Host: front\r\n"

if cmd == "pipeline":
    # 4 requests in one send; raftd answers the first two, hands the
    # connection to lighttpd at the third; all four answers, in order.
    body = b'{"a": "one"}'
    s = conn(addr)
    s.sendall(b"POST /key HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(body) + body +
              b"GET /key/a HTTP/1.1\r\n" + H + b"\r\n" +
              b"GET /status HTTP/1.1\r\n" + H + b"\r\n" +
              b"GET /key/a HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    r = Reader(s)
    for i in range(4):
        st, f, b = r.response()
        if i == 2:
            b = '"state":"leader"' in b and "status" or b[:80]
        out(i + 1, st, "relayed" if "accept-ranges" in f else "raftd", b)
    out("closed", r.closed())

elif cmd == "halfclose":
    # 3 PUTs and a GET in one send, then the client's FIN (shutdown
    # SHUT_WR, as printf ... | socat or nc -N do): every request sent
    # before the FIN is answered, as lighttpd answers them.
    k = sys.argv[3].encode()
    s = conn(addr)
    s.sendall(b"".join(b"PUT /key/%s%d HTTP/1.1\r\n" % (k, i) + H +
                       b"Content-Length: 2\r\n\r\nhi" for i in range(3)) +
              b"GET /key/%s1 HTTP/1.1\r\n" % k + H + b"\r\n")
    s.shutdown(socket.SHUT_WR)
    r = Reader(s)
    got = []
    try:
        for i in range(4):
            st, f, b = r.response()
            got.append(b if i == 3 else st.split(" ")[1])
    except (EOFError, OSError):
        pass
    out(len(got), "answers:", " ".join(got))

elif cmd == "http10":
    s = conn(addr)
    s.sendall(b"GET /key/a HTTP/1.0\r\n\r\n")
    r = Reader(s)
    st, f, b = r.response()
    out("plain", st, b, "closed" if r.closed() else "open")
    s = conn(addr)
    s.sendall(b"GET /key/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = Reader(s)
    st, f, b = r.response()
    out("keep1", st, f.get("connection", "-"), b)
    s.sendall(b"GET /key/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, f, b = r.response()
    out("keep2", st, f.get("connection", "-"), b)
    s.sendall(b"GET /key/a HTTP/1.0\r\n\r\n")
    st, f, b = r.response()
    out("keep3", st, f.get("connection", "-"), b, "closed" if r.closed() else "open")

elif cmd == "head":
    s = conn(addr)
    s.sendall(b"HEAD /key/a HTTP/1.1\r\n" + H + b"\r\nGET /key/a HTTP/1.1\r\n" + H +
              b"Connection: close\r\n\r\n")
    r = Reader(s)
    st, f, _ = r.response(head_only=True)
    st2, f2, b2 = r.response()
    # The byte right after HEAD's head is the GET's status line.
    out(st, f.get("content-length"), st2, len(b2), b2, r.closed())

elif cmd == "raw":
    # Bytes as sent; the status line of the answer, or HANG / CLOSED.
    s = conn(addr)
    try:
        s.sendall(unescape(sys.argv[3]))
        r = Reader(s)
        st, f, b = r.response()
        out(st)
    except EOFError:
        out("CLOSED")
    except socket.timeout:
        out("HANG")
    except OSError as e:
        out("ERROR", e)

elif cmd == "slowread":
    # GET PATH with extra header lines, reading at most 64 KiB per 0.1 s
    # through a small receive buffer (the server has to wait for the
    # reader): length and sha256 of the body.
    s = conn(addr, timeout=15, rcvbuf=65536)
    s.sendall(b"GET " + sys.argv[3].encode() + b" HTTP/1.1\r\n" + H + unescape(sys.argv[4]) +
              b"Connection: close\r\n\r\n")
    time.sleep(0.5)
    r = Reader(s, chunk=65536, pause=0.1)
    t = time.time()
    st, f, b = r.response()
    out(st, len(b), hashlib.sha256(b.encode("latin1")).hexdigest(), round(time.time() - t, 1))

elif cmd == "idle":
    # Half a request head, then nothing: seconds until the server closes.
    # And a kept-alive connection after its answer, idle.
    which = sys.argv[3]
    s = conn(addr, timeout=16)
    if which == "partial":
        s.sendall(b"GET /key/a HTTP/1.1\r\n" + H)
    else:
        s.sendall(b"GET /key/a HTTP/1.1\r\n" + H + b"\r\n")
        Reader(s).response()
    t = time.time()
    try:
        b = s.recv(100)
        out(which, "EOF" if not b else "DATA", round(time.time() - t, 1))
    except socket.timeout:
        out(which, "OPEN", round(time.time() - t, 1))
    except OSError as e:
        out(which, "ERROR", round(time.time() - t, 1))

elif cmd == "many":
    # N connections at once, each open the whole time: a GET /key/a on
    # every one, twice (keep-alive). How many got the value both times.
    n = int(sys.argv[3])
    socks = [conn(addr, timeout=10) for _ in range(n)]
    good = [0] * n
    for round_ in range(2):
        for s in socks:
            s.sendall(b"GET /key/a HTTP/1.1\r\n" + H + b"\r\n")
        for i, s in enumerate(socks):
            try:
                st, f, b = Reader(s).response()
                if st.startswith("HTTP/1.1 200") and b == '{"a":"one"}':
                    good[i] += 1
            except (OSError, EOFError):
                pass
    out(sum(1 for g in good if g == 2), "of", n)
EOF
fpy() { timeout 30 python3 "$T/front.py" "$@" 2>&1; }

# ---- background, from now on: raftd's idle timeouts (measured below) and
# a watch stream through the relay that stays idle past both of them.
fpy idle 127.0.0.1:$P partial >"$T/idle.partial" &
all_pids="$all_pids $!"
fpy idle 127.0.0.1:$P kept >"$T/idle.kept" &
all_pids="$all_pids $!"
curl -sN -m 25 "$U/watch?prefix=fw/" >"$T/watch" 2>/dev/null &
wpid=$!
all_pids="$all_pids $wpid"
watch_t0=$(date +%s)

# ---- 1. who holds the port
check log_says_raftd_in_front grep -q "serving HTTP on 127.0.0.1:$P (.*raftd with lighttpd behind it)" "$T/n0.log"
raftd_pid=$(ps -o pid=,comm= --ppid "$pid_n0" | awk '$2 == "raftd" {print $1}')
lighttpd_pid=$(ps -o pid=,comm= --ppid "$pid_n0" | awk '$2 == "lighttpd" {print $1}')
holders=$(ss -ltnHp "sport = :$P" 2>/dev/null)
check "port_held_by_raftd (raftd $raftd_pid, lighttpd $lighttpd_pid)" \
    sh -c 'echo "$1" | grep -q "\"raftd\",pid=$2," && ! echo "$1" | grep -q "pid=$3,"' - \
    "$holders" "$raftd_pid" "$lighttpd_pid"
check lighttpd_binds_http_sock grep -q "^server.bind = \"$T/n0/http.sock\"" "$T/n0/lighttpd.conf"
check http_sock_is_lighttpds sh -c 'ss -xlpH | grep -F "$1/n0/http.sock" | grep -q "pid=$2,"' - "$T" "$lighttpd_pid"

# ---- 2. pipelining across the hand-over, in order, on one connection
fpy pipeline 127.0.0.1:$P >"$T/pipe"
cat >"$T/pipe.want" <<'EOF'
1 HTTP/1.1 200 OK raftd {"index":3}
2 HTTP/1.1 200 OK raftd {"a":"one"}
3 HTTP/1.1 200 OK relayed status
4 HTTP/1.1 200 OK relayed {"a":"one"}
closed True
EOF
# (lighttpd's answers have Accept-Ranges, raftd's do not: "relayed")
sed -i 's/{"index":[0-9]*}/{"index":3}/' "$T/pipe"
if cmp -s "$T/pipe" "$T/pipe.want"; then ok pipeline_four_in_order_one_connection
else bad pipeline_four_in_order_one_connection "got: $(cat "$T/pipe")"; fi

# Pipelined requests, then the client half-closes: all of them answered
# (lighttpd, sent the same bytes on its own socket, answers all four).
hc_front=$(fpy halfclose 127.0.0.1:$P hcf)
hc_direct=$(fpy halfclose "$T/n0/http.sock" hcd)
check "pipeline_then_half_close_all_answered (front: $hc_front; lighttpd: $hc_direct)" \
    test "$hc_front" = '4 answers: 200 200 200 {"hcf1":"hi"}'
check pipeline_then_half_close_all_written body_is $P /key/hcf2 '{"hcf2":"hi"}'

# ---- 3. HTTP/1.0
fpy http10 127.0.0.1:$P >"$T/h10"
check http10_answered_then_closed grep -qx 'plain HTTP/1.0 200 OK {"a":"one"} closed' "$T/h10"
check http10_keep_alive_first grep -qx 'keep1 HTTP/1.0 200 OK keep-alive {"a":"one"}' "$T/h10"
check http10_keep_alive_second_on_same_connection grep -qx 'keep2 HTTP/1.0 200 OK keep-alive {"a":"one"}' "$T/h10"
check http10_without_keep_alive_closes grep -qx 'keep3 HTTP/1.0 200 OK close {"a":"one"} closed' "$T/h10"
[ "$failed" -ne 0 ] && echo "# $(cat "$T/h10")"

# ---- 4. HEAD: the GET's Content-Length, no body
h=$(fpy head 127.0.0.1:$P)
check "head_length_of_get_and_no_body ($h)" test "$h" = 'HTTP/1.1 200 OK 11 HTTP/1.1 200 OK 11 {"a":"one"} True'

# ---- 5. key requests raftd hands over still work
code=$(curl -s -m 10 -o "$T/body" -w '%{http_code}' -XPOST -H 'Transfer-Encoding: chunked' \
    $U/key -d '{"ch": "unked"}')
check chunked_post_200 test "$code" = 200
check chunked_post_value test "$(curl -s -m 5 $U/key/ch)" = '{"ch":"unked"}'
tr -dc 'a-z' </dev/urandom | head -c 102400 >"$T/v100k"
code=$(curl -sv -m 10 -o "$T/body" -w '%{http_code}' -XPUT -H 'Expect: 100-continue' \
    $U/key/big100 --data-binary @"$T/v100k" 2>"$T/expect.err")
check expect_100k_put_200 test "$code" = 200
check expect_100k_saw_100_continue grep -q '^< HTTP/1.1 100 Continue' "$T/expect.err"
got=$(curl -s -m 10 $U/key/big100 | jq -j .big100 | sha256sum)
check expect_100k_value_intact test "$got" = "$(sha256sum <"$T/v100k")"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XPUT -H 'If-Match: *' $U/key/a --data-binary two)
check if_match_star_existing_200 test "$code" = 200
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -XPUT -H 'If-Match: *' $U/key/absent --data-binary x)
check if_match_star_absent_412 test "$code" = 412
check if_match_star_value test "$(curl -s -m 5 $U/key/a)" = '{"a":"two"}'
check if_match_star_absent_still_absent test "$(curl -s -m 5 -o /dev/null -w '%{http_code}' $U/key/absent)" = 404
curl -s -m 5 -o /dev/null -XPUT $U/key/a --data-binary one

# ---- 6. malformed or odd requests: lighttpd's own answer (the same bytes
# sent straight to lighttpd's socket), never a hang; raftd survives.
# odd NAME BYTES WANT_STATUS (- for any status, as long as it is lighttpd's)
odd() {
    front=$(fpy raw 127.0.0.1:$P "$2")
    direct=$(fpy raw "$T/n0/http.sock" "$2")
    if [ "$front" = "$direct" ] && { [ "${front#HTTP/1.? $3 }" != "$front" ] ||
        { [ "$3" = - ] && [ "${front#HTTP/1.? }" != "$front" ]; }; }; then
        ok "odd_$1 ($front)"
    else
        bad "odd_$1" "front '$front', lighttpd directly '$direct', want $3"
    fi
    check "odd_$1_then_get_works" body_is $P /key/a '{"a":"one"}'
}
odd bare_lf 'GET /key/a HTTP/1.1\nHost: x\n\n' 400
big=$(head -c 9000 /dev/zero | tr '\0' y)
odd header_over_8KiB "GET /key/a HTTP/1.1\\r\\nHost: x\\r\\nX-Big: $big\\r\\n\\r\\n" 431
odd http11_without_host 'GET /key/a HTTP/1.1\r\n\r\n' 400
odd garbage '\x00\x16\x03\x01\xff\xfe garbage \x7f\r\n\r\n' 400
odd lower_case_method 'get /key/a HTTP/1.1\r\nHost: x\r\n\r\n' 501
odd http2_version 'GET /key/a HTTP/2.0\r\nHost: x\r\n\r\n' 505
odd obs_fold 'GET /key/a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n' -
check raftd_pid_unchanged sh -c '[ -n "$1" ] && kill -0 "$1" && [ "$(ps -o pid=,comm= --ppid "$2" | awk "\$2 == \"raftd\" {print \$1}")" = "$1" ]' - "$raftd_pid" "$pid_n0"

# ---- 8. a slow reader of a ~1 MiB value, from raftd and through the relay
tr -dc 'A-Za-z0-9' </dev/urandom | head -c 1000000 >"$T/v1m"
{ printf '{"big": "'; cat "$T/v1m"; printf '"}'; } >"$T/big.json"
code=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -XPOST $U/key --data-binary @"$T/big.json")
check set_1MB_value test "$code" = 200
want=$({ printf '{"big":"'; cat "$T/v1m"; printf '"}'; } | sha256sum | cut -d' ' -f1)
wlen=$((1000000 + 10))
s=$(fpy slowread 127.0.0.1:$P /key/big '')
check "slow_reader_from_raftd_whole ($s)" test "${s% *}" = "HTTP/1.1 200 OK $wlen $want"
# Authorization makes it lighttpd's (this node has no -auth-file): relayed.
s=$(fpy slowread 127.0.0.1:$P /key/big 'Authorization: Basic eDp5\r\n')
check "slow_reader_through_relay_whole ($s)" test "${s% *}" = "HTTP/1.1 200 OK $wlen $want"

# ---- 10. 300 concurrent keep-alive connections
n=$(fpy many 127.0.0.1:$P 300)
check "300_keep_alive_connections_all_answered_twice ($n)" test "$n" = "300 of 300"

# ---- 7. the watch stream (through lighttpd), idle for over 10 s: raftd's
# timeouts are not for relayed connections; it gets the next event.
while [ $(( $(date +%s) - watch_t0 )) -lt 12 ]; do sleep 0.5; done
curl -s -m 5 -o /dev/null -XPUT $U/key/fw/x --data-binary late
if wait_until 5 grep -q '"key":"fw/x"' "$T/watch"; then
    ok watch_through_relay_idle_12s_gets_event
else
    bad watch_through_relay_idle_12s_gets_event "watch got: $(head -c 300 "$T/watch")"
fi
check watch_event_value sh -c 'grep "\"key\":\"fw/x\"" "$1" | jq -e ".op == \"set\" and .value == \"late\"" >/dev/null' - "$T/watch"
kill "$wpid" 2>/dev/null

# ---- 9. raftd's idle timeouts (started at the beginning)
wait_until 10 sh -c 'grep -q . "$1/idle.partial" && grep -q . "$1/idle.kept"' - "$T"
read -r _ what secs <"$T/idle.partial"
check "partial_head_closed_after_10s ($what after ${secs}s)" \
    sh -c '[ "$1" = EOF ] && awk -v s="$2" "BEGIN { exit !(s >= 9.5 && s <= 13.5) }"' - "$what" "$secs"
read -r _ what secs <"$T/idle.kept"
check "kept_alive_idle_closed_after_5s ($what after ${secs}s)" \
    sh -c '[ "$1" = EOF ] && awk -v s="$2" "BEGIN { exit !(s >= 4.5 && s <= 7.5) }"' - "$what" "$secs"

# ---- 11. -fast with -auth-file: runs as -fastcgi, lighttpd has the port
alead() { [ "$(curl -s -m 2 -u 'user:front secret' http://127.0.0.1:$AP/status | jq -r .state)" = leader ]; }
if wait_until 20 alead; then ok auth_node_starts; else bad auth_node_starts "no leader on :$AP"; fi
check auth_fast_falls_back_note grep -q -- '-fast: with -https-cert or -auth-file .*running as -fastcgi' "$T/a0.log"
a_lighttpd=$(ps -o pid=,comm= --ppid "$pid_a0" | awk '$2 == "lighttpd" {print $1}')
a_raftd=$(ps -o pid=,comm= --ppid "$pid_a0" | awk '$2 == "raftd" {print $1}')
holders=$(ss -ltnHp "sport = :$AP" 2>/dev/null)
check "auth_port_held_by_lighttpd (lighttpd $a_lighttpd, raftd $a_raftd)" \
    sh -c 'echo "$1" | grep -q "\"lighttpd\",pid=$2," && ! echo "$1" | grep -q "pid=$3,"' - \
    "$holders" "$a_lighttpd" "$a_raftd"
check auth_no_http_fd_for_raftd sh -c '! tr "\0" " " <"/proc/$1/cmdline" | grep -q -- -http-fd' - "$a_raftd"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:$AP/key/a)
check auth_key_route_without_password_401 test "$code" = 401
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -u 'user:front secret' -XPUT \
    http://127.0.0.1:$AP/key/k --data-binary v)
check auth_key_route_with_password_200 test "$code" = 200
finish
