#!/usr/bin/env bash
# Record a pawscope sample from real kernels in network namespaces.
#
# Several client hosts behind a MASQUERADE NAT (limited to a few public ports;
# or, with --nat none, behind a plain router) make HTTP-like requests to one
# server. tcpdump captures at the server, and the server namespace's own TCP
# counters (nstat) are written alongside, covering exactly the span of the
# capture.
#
# Outputs: DIR/NAME.pcap and DIR/NAME.truth.json (see usage below).
# Must run as root; exits 77 when it cannot (not root, no working `ip netns`,
# tools missing and not installable).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TRAFFIC="$SCRIPT_DIR/traffic.py"
PROG=record-sample

usage() {
    cat <<'EOF'
usage: record-sample.sh --name NAME --out DIR [options]

  --name NAME             sample name (letters, digits, '.', '_', '-')
  --out DIR               output directory (created if missing)
  --clients N             client hosts behind the NAT (default 4, at most 64)
  --ports LO-HI           NAT public source port range (default 40000-40002;
                          --nat masquerade only)
  --nat masquerade|none   masquerade: the clients share the NAT's public address
                          (default); none: the NAT namespace only routes, and
                          the server sees each client's own address and port
  --client-port-range LO-HI
                          net.ipv4.ip_local_port_range of every client
                          (default: the kernel's); also adds per-client port
                          usage to the truth file
  --connects N            connects per client (default 15, at most 2000)
  --gap-ms MS             pause between one client's connects (default 200)
  --jitter-ms MS          random extra pause 0..MS (default 100)
  --client-ts LIST        comma list of 0/1: per-client net.ipv4.tcp_timestamps,
                          cycled over the clients (default 1)
  --server-ts 0|1         server net.ipv4.tcp_timestamps (default 1)
  --close server|client   who closes first (default server)
  --family 4|6            IP version (default 4)
  --capture eth|any       capture on the server interface (EN10MB) or with
                          `-i any` (LINUX_SLL2, link type 276) (default eth)
  --rfc1337 0|1           server net.ipv4.tcp_rfc1337 (default 0)
  --invalid-ratelimit MS  server net.ipv4.tcp_invalid_ratelimit (default 500)
  --connect-timeout SECS  client connect (and read) timeout (default 4)
  --seed N                seed of the client pauses (default random; recorded)

Writes DIR/NAME.pcap (tcpdump at the server, filter tcp, snaplen 200) and
DIR/NAME.truth.json (parameters, server nstat counters, client results,
tcpdump statistics; with --client-port-range, client_port_usage: per client
address, connects attempted, connects failed with EADDRNOTAVAIL and the time of
the first such failure in seconds since the client's first connect).
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
skip() { echo "$PROG: $*" >&2; exit 77; }
bad_usage() { echo "$PROG: $*" >&2; usage >&2; exit 2; }

# ---------------------------------------------------------------- arguments
NAME=""
OUT=""
CLIENTS=4
PORTS=40000-40002
PORTS_SET=""
NAT=masquerade
CLIENT_PORT_RANGE=""
CONNECTS=15
GAP_MS=200
JITTER_MS=100
CLIENT_TS=1
SERVER_TS=1
CLOSE=server
FAMILY=4
CAPTURE=eth
RFC1337=0
INVALID_RATELIMIT=500
CONNECT_TIMEOUT=4
SEED=""

while (($#)); do
    opt=$1
    case $opt in
        -h | --help) usage; exit 0 ;;
        --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
    esac
    (($# >= 2)) || bad_usage "missing value for $opt"
    val=$2
    case $opt in
        --name) NAME=$val ;;
        --out) OUT=$val ;;
        --clients) CLIENTS=$val ;;
        --ports) PORTS=$val PORTS_SET=1 ;;
        --nat) NAT=$val ;;
        --client-port-range) CLIENT_PORT_RANGE=$val ;;
        --connects) CONNECTS=$val ;;
        --gap-ms) GAP_MS=$val ;;
        --jitter-ms) JITTER_MS=$val ;;
        --client-ts) CLIENT_TS=$val ;;
        --server-ts) SERVER_TS=$val ;;
        --close) CLOSE=$val ;;
        --family) FAMILY=$val ;;
        --capture) CAPTURE=$val ;;
        --rfc1337) RFC1337=$val ;;
        --invalid-ratelimit) INVALID_RATELIMIT=$val ;;
        --connect-timeout) CONNECT_TIMEOUT=$val ;;
        --seed) SEED=$val ;;
        *) bad_usage "unknown option $opt" ;;
    esac
    shift 2
done

is_uint() { [[ $1 =~ ^[0-9]{1,9}$ ]]; }

[[ -n $NAME ]] || bad_usage "--name is required"
[[ -n $OUT ]] || bad_usage "--out is required"
[[ $NAME =~ ^[A-Za-z0-9._-]+$ && $NAME != .* ]] || bad_usage "bad --name: $NAME"
in_range() { is_uint "$1" && (($1 >= $2 && $1 <= $3)); }
in_range "$CLIENTS" 1 64 || bad_usage "--clients must be 1..64"
in_range "$CONNECTS" 1 2000 || bad_usage "--connects must be 1..2000"
((CLIENTS * CONNECTS <= 20000)) || bad_usage "--clients x --connects must be at most 20000"
in_range "$GAP_MS" 0 60000 || bad_usage "--gap-ms must be 0..60000"
in_range "$JITTER_MS" 0 60000 || bad_usage "--jitter-ms must be 0..60000"
in_range "$CONNECT_TIMEOUT" 1 120 || bad_usage "--connect-timeout must be 1..120"
[[ $PORTS =~ ^([0-9]{1,5})-([0-9]{1,5})$ ]] || bad_usage "--ports must be LO-HI"
PORT_LO=$((10#${BASH_REMATCH[1]}))
PORT_HI=$((10#${BASH_REMATCH[2]}))
((PORT_LO >= 1 && PORT_LO <= PORT_HI && PORT_HI <= 65535)) || bad_usage "bad --ports range: $PORTS"
PORTS="$PORT_LO-$PORT_HI"
[[ $NAT == masquerade || $NAT == none ]] || bad_usage "--nat must be masquerade or none"
[[ $NAT == masquerade || -z $PORTS_SET ]] || bad_usage "--ports applies only to --nat masquerade"
if [[ -n $CLIENT_PORT_RANGE ]]; then
    [[ $CLIENT_PORT_RANGE =~ ^([0-9]{1,5})-([0-9]{1,5})$ ]] || bad_usage "--client-port-range must be LO-HI"
    CPR_LO=$((10#${BASH_REMATCH[1]}))
    CPR_HI=$((10#${BASH_REMATCH[2]}))
    # The kernel refuses a range below ip_unprivileged_port_start (1024).
    ((CPR_LO >= 1024 && CPR_LO <= CPR_HI && CPR_HI <= 65535)) ||
        bad_usage "bad --client-port-range: $CLIENT_PORT_RANGE (1024..65535)"
    CLIENT_PORT_RANGE="$CPR_LO-$CPR_HI"
fi
[[ $CLIENT_TS =~ ^[01](,[01])*$ ]] || bad_usage "--client-ts must be a comma list of 0/1"
[[ $SERVER_TS == [01] ]] || bad_usage "--server-ts must be 0 or 1"
[[ $RFC1337 == [01] ]] || bad_usage "--rfc1337 must be 0 or 1"
in_range "$INVALID_RATELIMIT" 0 60000 || bad_usage "--invalid-ratelimit must be 0..60000 (ms)"
INVALID_RATELIMIT=$((10#$INVALID_RATELIMIT))
[[ $CLOSE == server || $CLOSE == client ]] || bad_usage "--close must be server or client"
[[ $FAMILY == 4 || $FAMILY == 6 ]] || bad_usage "--family must be 4 or 6"
[[ $CAPTURE == eth || $CAPTURE == any ]] || bad_usage "--capture must be eth or any"
if [[ -z $SEED ]]; then
    SEED=$((RANDOM * 32768 + RANDOM))
fi
is_uint "$SEED" || bad_usage "--seed must be a non-negative integer below 10^9"
SEED=$((10#$SEED))

IFS=, read -r -a TS_LIST <<<"$CLIENT_TS"
CLIENT_TS_OF=()
for ((i = 0; i < CLIENTS; i++)); do
    CLIENT_TS_OF+=("${TS_LIST[i % ${#TS_LIST[@]}]}")
done

# ---------------------------------------------------------------- environment
[[ $(id -u) -eq 0 ]] || skip "must be run as root"

have_tools() {
    local t
    for t in ip tcpdump iptables ip6tables nstat timeout; do
        command -v "$t" >/dev/null 2>&1 || return 1
    done
}
if ! have_tools; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq tcpdump iptables iproute2 >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq tcpdump iptables iproute2 >/dev/null 2>&1 || true
    fi
    have_tools || skip "tcpdump, iptables, ip6tables or nstat missing and not installable"
fi
PYTHON=$(command -v python3 || true)
[[ -n $PYTHON ]] || skip "python3 missing"
[[ -r $TRAFFIC ]] || die "missing $TRAFFIC"

# ---------------------------------------------------------------- names
TAG="ps$$"
if compgen -G "/run/netns/$TAG-*" >/dev/null; then
    TAG="ps$$x$RANDOM"
fi
NS_SRV="$TAG-srv"
NS_NAT="$TAG-nat"
NS_CLIENTS=()
for ((i = 1; i <= CLIENTS; i++)); do
    NS_CLIENTS+=("$TAG-c$i")
done

if [[ $FAMILY == 4 ]]; then
    SERVER_ADDR=203.0.113.10
    NAT_PUBLIC=203.0.113.1
    NAT_INSIDE=192.0.2.1
    PLEN=24
    SERVER_ENDPOINT="$SERVER_ADDR:80"
    CLIENT_NET=192.0.2.0/24
    IPT=iptables
    NODAD=()
else
    SERVER_ADDR=2001:db8:2::10
    NAT_PUBLIC=2001:db8:2::1
    NAT_INSIDE=2001:db8:1::1
    PLEN=64
    SERVER_ENDPOINT="[$SERVER_ADDR]:80"
    CLIENT_NET=2001:db8:1::/64
    IPT=ip6tables
    NODAD=(nodad)
fi
client_addr() {
    if [[ $FAMILY == 4 ]]; then
        echo "192.0.2.$((10 + $1))"
    else
        echo "2001:db8:1::$((10 + $1))"
    fi
}

# ---------------------------------------------------------------- cleanup
CREATED_NS=()
TCPDUMP_PID=""
SERVER_PID=""
CLIENT_PIDS=()
WORK=""
TMP_PCAP=""
TMP_TRUTH=""

cleanup() {
    local rc=$? ns pid alive
    set +e
    trap - EXIT INT TERM
    for pid in "${CLIENT_PIDS[@]}" "$SERVER_PID" "$TCPDUMP_PID"; do
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
    done
    # Anything still running inside the namespaces of this run.
    for ns in "${CREATED_NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null
        done
    done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        alive=""
        for ns in "${CREATED_NS[@]}"; do
            [[ -n $(ip netns pids "$ns" 2>/dev/null) ]] && alive=1
        done
        [[ -z $alive ]] && break
        sleep 0.2
    done
    for ns in "${CREATED_NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
    done
    wait 2>/dev/null
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    [[ -n $WORK ]] && rm -rf "$WORK"
    [[ -n $TMP_PCAP ]] && rm -f "$TMP_PCAP"
    [[ -n $TMP_TRUTH ]] && rm -f "$TMP_TRUTH"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

add_ns() {
    ip netns add "$1" 2>/dev/null || return 1
    CREATED_NS+=("$1")
}
# True while process $1 runs (a zombie, exited but not yet reaped, does not count).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# Turn off transmit checksum offload on interfaces $2... of namespace $1, so
# that every captured segment carries its real checksum.
tx_csum_off() {
    local ns=$1
    shift
    ip netns exec "$ns" "$PYTHON" - "$@" <<'EOF'
import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for name in sys.argv[1:]:
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0), 8)
    ifreq = struct.pack("16sP", name.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
EOF
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pawscope-record.XXXXXX")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP_PCAP="$OUT/.$NAME.pcap.$$.tmp"
TMP_TRUTH="$OUT/.$NAME.truth.json.$$.tmp"

# ---------------------------------------------------------------- topology
add_ns "$NS_SRV" || skip "ip netns does not work here"
add_ns "$NS_NAT" || die "cannot create namespace $NS_NAT"
for ns in "${NS_CLIENTS[@]}"; do
    add_ns "$ns" || die "cannot create namespace $ns"
done

for ns in "${CREATED_NS[@]}"; do
    ip -n "$ns" link set lo up
    nsx "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
done
nsx "$NS_SRV" sysctl -q -w net.ipv4.tcp_timestamps="$SERVER_TS" net.ipv4.tcp_rfc1337="$RFC1337" \
    net.ipv4.tcp_invalid_ratelimit="$INVALID_RATELIMIT"
for ((i = 1; i <= CLIENTS; i++)); do
    nsx "${NS_CLIENTS[i - 1]}" sysctl -q -w net.ipv4.tcp_timestamps="${CLIENT_TS_OF[i - 1]}"
    if [[ -n $CLIENT_PORT_RANGE ]]; then
        nsx "${NS_CLIENTS[i - 1]}" sysctl -q -w net.ipv4.ip_local_port_range="$CPR_LO $CPR_HI"
    fi
done
if [[ $FAMILY == 4 ]]; then
    nsx "$NS_NAT" sysctl -q -w net.ipv4.ip_forward=1
else
    nsx "$NS_NAT" sysctl -q -w net.ipv6.conf.all.forwarding=1
fi

ip -n "$NS_NAT" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n "$NS_NAT" addr add "$NAT_INSIDE/$PLEN" dev br0 "${NODAD[@]}"
ip -n "$NS_NAT" link set br0 up
for ((i = 1; i <= CLIENTS; i++)); do
    ns=${NS_CLIENTS[i - 1]}
    ip -n "$NS_NAT" link add "c$i" type veth peer name eth0 netns "$ns"
    ip -n "$NS_NAT" link set "c$i" master br0
    ip -n "$NS_NAT" link set "c$i" up
    ip -n "$ns" addr add "$(client_addr "$i")/$PLEN" dev eth0 "${NODAD[@]}"
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$NAT_INSIDE" dev eth0
    tx_csum_off "$ns" eth0
done
ip -n "$NS_NAT" link add pub0 type veth peer name eth0 netns "$NS_SRV"
ip -n "$NS_NAT" addr add "$NAT_PUBLIC/$PLEN" dev pub0 "${NODAD[@]}"
ip -n "$NS_NAT" link set pub0 up
ip -n "$NS_SRV" addr add "$SERVER_ADDR/$PLEN" dev eth0 "${NODAD[@]}"
ip -n "$NS_SRV" link set eth0 up
tx_csum_off "$NS_SRV" eth0
NAT_IFS=(br0 pub0)
for ((i = 1; i <= CLIENTS; i++)); do
    NAT_IFS+=("c$i")
done
tx_csum_off "$NS_NAT" "${NAT_IFS[@]}"
if [[ $NAT == masquerade ]]; then
    nsx "$NS_NAT" "$IPT" -t nat -A POSTROUTING -o pub0 -p tcp -j MASQUERADE --to-ports "$PORTS"
else
    ip -n "$NS_SRV" route add "$CLIENT_NET" via "$NAT_PUBLIC" dev eth0
fi

# ---------------------------------------------------------------- capture
if [[ $CAPTURE == eth ]]; then
    CAP_ARGS=(-i eth0)
    WANT_LINKTYPE=1
else
    CAP_ARGS=(-i any -y LINUX_SLL2)
    WANT_LINKTYPE=276
fi
MAX_PACKETS=2000000
ip netns exec "$NS_SRV" tcpdump "${CAP_ARGS[@]}" -n -U -s 200 -c "$MAX_PACKETS" -Z root -w "$TMP_PCAP" tcp \
    >"$WORK/tcpdump.out" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!

tcpdump_running() { alive "$TCPDUMP_PID"; }
for ((n = 0; ; n++)); do
    tcpdump_running || die "tcpdump exited early: $(tr '\n' ' ' <"$WORK/tcpdump.err")"
    if [[ -f $TMP_PCAP ]] && (($(stat -c %s "$TMP_PCAP") >= 24)) &&
        grep -q '^tcpdump: listening on' "$WORK/tcpdump.err"; then
        break
    fi
    ((n < 100)) || die "tcpdump did not start within 10 s"
    sleep 0.1
done
LINKTYPE=$(od -An -tu4 -j20 -N4 "$TMP_PCAP" | tr -d ' ')
[[ $LINKTYPE == "$WANT_LINKTYPE" ]] || die "capture link type $LINKTYPE, expected $WANT_LINKTYPE"

# ---------------------------------------------------------------- traffic
ip netns exec "$NS_SRV" "$PYTHON" "$TRAFFIC" server --addr "$SERVER_ADDR" --port 80 --close "$CLOSE" \
    --ready-file "$WORK/server.ready" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
for ((n = 0; ; n++)); do
    alive "$SERVER_PID" || die "server exited: $(tr '\n' ' ' <"$WORK/server.err")"
    [[ -f $WORK/server.ready ]] && break
    ((n < 100)) || die "server did not start within 10 s"
    sleep 0.1
done

# Hard bound on the traffic phase: all pauses, plus a connect and a read
# timeout for every connect, plus slack.
TRAFFIC_LIMIT=$(((CONNECTS * (GAP_MS + JITTER_MS) + JITTER_MS) / 1000 + CONNECTS * 2 * CONNECT_TIMEOUT + 30))
START_NS=$(date +%s%N)
CLIENT_OPTS=()
if [[ -n $CLIENT_PORT_RANGE ]]; then
    CLIENT_OPTS+=(--port-usage)
fi
for ((i = 1; i <= CLIENTS; i++)); do
    timeout -k 5 "$TRAFFIC_LIMIT" ip netns exec "${NS_CLIENTS[i - 1]}" \
        "$PYTHON" "$TRAFFIC" client --addr "$SERVER_ADDR" --port 80 --close "$CLOSE" \
        --count "$CONNECTS" --gap-ms "$GAP_MS" --jitter-ms "$JITTER_MS" \
        --connect-timeout "$CONNECT_TIMEOUT" --seed "$SEED" --index "$i" "${CLIENT_OPTS[@]}" \
        >"$WORK/client$i.json" 2>"$WORK/client$i.err" &
    CLIENT_PIDS+=("$!")
done
for ((i = 1; i <= CLIENTS; i++)); do
    rc=0
    wait "${CLIENT_PIDS[i - 1]}" || rc=$?
    ((rc != 124 && rc != 137)) || die "client $i exceeded the ${TRAFFIC_LIMIT}s traffic limit"
    ((rc == 0)) || die "client $i failed (exit $rc): $(tr '\n' ' ' <"$WORK/client$i.err")"
done
CLIENT_PIDS=()
TRAFFIC_MS=$((($(date +%s%N) - START_NS) / 1000000))

# ---------------------------------------------------------------- counters, stop capture
sleep 1
tcpdump_running || die "tcpdump stopped before the end of the traffic (packet limit $MAX_PACKETS?)"
nsx "$NS_SRV" env NSTAT_HISTORY="$WORK/nstat.history" nstat -az >"$WORK/nstat.txt"

kill -INT "$TCPDUMP_PID"
for ((n = 0; ; n++)); do
    tcpdump_running || break
    ((n < 100)) || die "tcpdump did not stop within 10 s"
    sleep 0.1
done
rc=0
wait "$TCPDUMP_PID" || rc=$?
TCPDUMP_PID=""
((rc == 0 || rc == 130)) || die "tcpdump failed (exit $rc): $(tr '\n' ' ' <"$WORK/tcpdump.err")"

kill -TERM "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

CAPTURED=$(sed -n 's/^\([0-9]\+\) packets\? captured$/\1/p' "$WORK/tcpdump.err")
DROPPED=$(sed -n 's/^\([0-9]\+\) packets\? dropped by kernel$/\1/p' "$WORK/tcpdump.err")
[[ -n $CAPTURED && -n $DROPPED ]] || die "no statistics from tcpdump: $(tr '\n' ' ' <"$WORK/tcpdump.err")"
((DROPPED == 0)) || die "tcpdump: $DROPPED packets dropped by kernel"

# ---------------------------------------------------------------- truth file
CLIENT_TS_JSON=$(IFS=,; echo "[${CLIENT_TS_OF[*]}]")
CLIENT_ADDRS=""
for ((i = 1; i <= CLIENTS; i++)); do
    CLIENT_ADDRS+="${CLIENT_ADDRS:+ }$(client_addr "$i")"
done
export NAME CLIENTS PORTS CONNECTS GAP_MS JITTER_MS CLIENT_TS_JSON SERVER_TS CLOSE FAMILY CAPTURE
export RFC1337 INVALID_RATELIMIT CONNECT_TIMEOUT SEED SERVER_ENDPOINT NAT_PUBLIC CAPTURED DROPPED WORK
export NAT CLIENT_PORT_RANGE CLIENT_ADDRS
KERNEL=$(uname -r)
export KERNEL
"$PYTHON" - "$TMP_TRUTH" <<'EOF'
import json
import os
import sys

e = os.environ
counters = {}
with open(os.path.join(e["WORK"], "nstat.txt"), encoding="ascii") as f:
    for line in f:
        fields = line.split()
        if len(fields) >= 2 and not line.startswith("#"):
            counters[fields[0]] = int(fields[1])
names = ["TcpPassiveOpens", "TcpExtPAWSTimewait", "TcpExtTCPACKSkippedTimeWait",
         "TcpExtTWKilled", "TcpExtTW", "TcpExtPAWSPassive", "TcpExtTCPTimeWaitOverflow",
         "TcpExtTCPACKSkippedFinWait2", "TcpActiveOpens", "TcpAttemptFails", "TcpOutRsts"]

attempts = successes = failures = 0
kinds = {}
port_usage = {}
client_addrs = e["CLIENT_ADDRS"].split()
for i in range(1, int(e["CLIENTS"]) + 1):
    with open(os.path.join(e["WORK"], "client%d.json" % i), encoding="ascii") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    r = json.loads(lines[-1])
    attempts += r["attempts"]
    successes += r["successes"]
    failures += r["failures"]
    for k, v in r["failures_by_kind"].items():
        kinds[k] = kinds.get(k, 0) + v
    if "port_usage" in r:
        port_usage[client_addrs[i - 1]] = r["port_usage"]
order = ["timeout", "refused", "reset", "addr_not_available", "other"]
kinds = {k: kinds[k] for k in order if kinds.get(k)}
masquerade = e["NAT"] == "masquerade"

truth = {
    "name": e["NAME"],
    "kernel": e["KERNEL"],
    "params": {
        "clients": int(e["CLIENTS"]),
        "ports": e["PORTS"] if masquerade else None,
        "connects": int(e["CONNECTS"]),
        "gap_ms": int(e["GAP_MS"]),
        "jitter_ms": int(e["JITTER_MS"]),
        "client_ts": json.loads(e["CLIENT_TS_JSON"]),
        "server_ts": int(e["SERVER_TS"]),
        "close": e["CLOSE"],
        "family": int(e["FAMILY"]),
        "capture": e["CAPTURE"],
        "rfc1337": int(e["RFC1337"]),
        "invalid_ratelimit_ms": int(e["INVALID_RATELIMIT"]),
        "connect_timeout": int(e["CONNECT_TIMEOUT"]),
        "seed": int(e["SEED"]),
        "server": e["SERVER_ENDPOINT"],
        "nat_public": e["NAT_PUBLIC"] if masquerade else None,
        "nat": e["NAT"],
        "client_port_range": e["CLIENT_PORT_RANGE"] or None,
    },
    "server_counters": {n: counters.get(n, 0) for n in names},
    "clients": {
        "attempts": attempts,
        "successes": successes,
        "failures": failures,
        "failures_by_kind": kinds,
    },
}
if e["CLIENT_PORT_RANGE"]:
    truth["client_port_usage"] = port_usage
truth["tcpdump"] = {
    "packets_captured": int(e["CAPTURED"]),
    "dropped_by_kernel": int(e["DROPPED"]),
}
with open(sys.argv[1], "w", encoding="ascii") as f:
    f.write(json.dumps(truth, indent=2) + "\n")
EOF

mv -f "$TMP_PCAP" "$OUT/$NAME.pcap"
TMP_PCAP=""
mv -f "$TMP_TRUTH" "$OUT/$NAME.truth.json"
TMP_TRUTH=""
echo "$PROG: wrote $OUT/$NAME.pcap ($CAPTURED packets) and $OUT/$NAME.truth.json; traffic took ${TRAFFIC_MS} ms" >&2
