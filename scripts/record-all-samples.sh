#!/usr/bin/env bash
# Regenerate the committed samples in samples/ with fixed parameters and seeds.
#
# usage: record-all-samples.sh [OUTDIR] [SAMPLE...]
#   OUTDIR defaults to samples/ at the top of the repository; with SAMPLE
#   names only those samples are recorded.
#
# Each sample is recorded by record-sample.sh from real kernels, so the exact
# packets differ between runs (ISNs, timestamp offsets, scheduling); the seeds
# fix only the client pauses. Every sample is checked against what it exists
# to show and recorded again (up to 3 times) if the kernel did not show it.
# Must run as root; exits 77 when recording is not possible here.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
RECORD="$SCRIPT_DIR/record-sample.sh"
OUT=${1:-$REPO/samples}
(($# == 0)) || shift
ONLY=("$@")
ATTEMPTS=3
MAX_BYTES=$((1024 * 1024))

# name | record-sample.sh options | condition on the truth file (Python
# expression over c = server_counters, cl = clients, t = whole truth)
SAMPLES=(
    "nat-paws-reject|--seed 1001|c['TcpExtPAWSTimewait'] > 0 and c['TcpExtTW'] > 0"
    "mixed-timestamps|--seed 1002 --client-ts 1,0,1,0|c['TcpExtPAWSTimewait'] > 0 and no_ts_syn_accepted_from_tw > 0"
    "ipv6-nat|--seed 1003 --family 6|c['TcpExtPAWSTimewait'] > 0"
    "client-closes-first|--seed 1004 --close client|c['TcpExtPAWSTimewait'] == 0 and c['TcpExtTW'] == 0"
    "sll2-any|--seed 1005 --capture any|c['TcpExtPAWSTimewait'] > 0 and linktype == 276"
    "rfc1337|--seed 1006 --rfc1337 1|c['TcpExtPAWSTimewait'] > 0 and c['TcpExtTCPACKSkippedTimeWait'] > 0"
    "rfc1337-ratelimit-100|--seed 1008 --rfc1337 1 --invalid-ratelimit 100|c['TcpExtPAWSTimewait'] > 0 and c['TcpExtTCPACKSkippedTimeWait'] > 0"
    "server-timestamps-off|--seed 1009 --server-ts 0|c['TcpExtPAWSTimewait'] == 0 and c['TcpExtTW'] > 0 and c['TcpPassiveOpens'] > 0"
    "client-port-exhaustion|--seed 1007 --nat none --close client --client-port-range 40000-40049 --clients 2 --connects 75 --gap-ms 300 --jitter-ms 100|cl['failures_by_kind'].get('addr_not_available', 0) > 0 and cl['failures'] == cl['failures_by_kind']['addr_not_available'] and c['TcpExtPAWSTimewait'] == 0 and client_syns == cl['successes']"
)

# Print the number of SYNs without a timestamp option that met a server
# TIME_WAIT (the previous connection on that public port ended with the server's
# FIN less than 60 s earlier) and were answered directly by the TIME_WAIT socket
# (SYN-ACK with ISN = the old snd_nxt + 65537).
no_ts_syn_accepted_from_tw() {
    tcpdump -S -tt -n -r "$1" 2>/dev/null | python3 -c '
import re
import sys

line_re = re.compile(r"^(\S+)\s.*?IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\], seq (\d+)(.*)$")
tw = {}
pending = {}
count = 0
for line in sys.stdin:
    m = line_re.match(line)
    if not m:
        continue
    t, src, sport, dst, dport, flags, seq, rest = m.groups()
    t, seq = float(t), int(seq)
    if dport == "80":
        key = (src, sport)
        if flags == "S":
            old = tw.get(key)
            if old and old[0] is not None and t - old[0] < 60 and "TS val" not in rest:
                pending[key] = old[1]
            else:
                pending.pop(key, None)
        elif "F" in flags and key in tw:
            tw[key] = (t, tw[key][1])
    else:
        key = (dst, dport)
        if flags == "S.":
            if key in pending and (seq - pending.pop(key)) % (1 << 32) == 65537:
                count += 1
            tw.pop(key, None)
        elif "F" in flags:
            tw[key] = (None, seq + 1)
print(count)
'
}

# Print the number of distinct SYNs (client address, port, ISN) sent to the
# server: connects that failed before sending anything (EADDRNOTAVAIL) add none.
client_syns() {
    tcpdump -S -n -r "$1" 2>/dev/null | python3 -c '
import re
import sys

line_re = re.compile(r"IP6? (\S+)\.(\d+) > (\S+)\.80: Flags \[S\], seq (\d+)")
print(len({m.groups() for m in map(line_re.search, sys.stdin) if m}))
'
}

check() {
    local name=$1 cond=$2 pcap="$OUT/$1.pcap" truth="$OUT/$1.truth.json" size linktype nots syns
    [[ -f $pcap && -f $truth ]] || return 1
    size=$(stat -c %s "$pcap")
    if ((size >= MAX_BYTES)); then
        echo "  $name: capture is $size bytes (limit $MAX_BYTES)" >&2
        return 1
    fi
    linktype=$(od -An -tu4 -j20 -N4 "$pcap" | tr -d ' ')
    nots=0
    if [[ $cond == *no_ts_syn_accepted_from_tw* ]]; then
        nots=$(no_ts_syn_accepted_from_tw "$pcap")
    fi
    syns=0
    if [[ $cond == *client_syns* ]]; then
        syns=$(client_syns "$pcap")
    fi
    python3 - "$truth" "$cond" "$linktype" "$nots" "$syns" <<'EOF'
import json
import sys

path, cond, linktype, nots = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
syns = int(sys.argv[5])
with open(path, encoding="ascii") as f:
    t = json.load(f)
c, cl, p = t["server_counters"], t["clients"], t["params"]
ok = True
def fail(msg):
    global ok
    print("  %s: %s" % (t["name"], msg), file=sys.stderr)
    ok = False
if cl["attempts"] != p["clients"] * p["connects"]:
    fail("attempts %d, expected %d" % (cl["attempts"], p["clients"] * p["connects"]))
if cl["successes"] + cl["failures"] != cl["attempts"]:
    fail("successes + failures != attempts")
if c["TcpPassiveOpens"] < cl["successes"]:
    fail("TcpPassiveOpens %d < client successes %d" % (c["TcpPassiveOpens"], cl["successes"]))
if t["tcpdump"]["dropped_by_kernel"] != 0 or t["tcpdump"]["packets_captured"] == 0:
    fail("bad tcpdump statistics %r" % t["tcpdump"])
env = {"c": c, "cl": cl, "t": t, "linktype": linktype, "no_ts_syn_accepted_from_tw": nots,
       "client_syns": syns}
if not eval(cond, {}, env):
    fail("expected %s; counters %r, clients %r, link type %d, no-TS SYNs accepted from TIME_WAIT %d,"
         " client SYNs %d" % (cond, c, cl, linktype, nots, syns))
sys.exit(0 if ok else 1)
EOF
}

summary() {
    python3 - "$OUT/$1.truth.json" "$2" <<'EOF'
import json
import sys

with open(sys.argv[1], encoding="ascii") as f:
    t = json.load(f)
c, cl = t["server_counters"], t["clients"]
keys = ["TcpPassiveOpens", "TcpExtPAWSTimewait", "TcpExtTCPACKSkippedTimeWait", "TcpExtTW"]
print("%-20s %4ss  %s  clients %d/%d ok %s  packets %d" % (
    t["name"], sys.argv[2], " ".join("%s=%d" % (k, c[k]) for k in keys),
    cl["successes"], cl["attempts"], json.dumps(cl["failures_by_kind"]),
    t["tcpdump"]["packets_captured"]))
EOF
}

mkdir -p "$OUT"
for entry in "${SAMPLES[@]}"; do
    IFS='|' read -r name opts cond <<<"$entry"
    if ((${#ONLY[@]})); then
        want=""
        for o in "${ONLY[@]}"; do
            [[ $o == "$name" ]] && want=1
        done
        [[ -n $want ]] || continue
    fi
    read -r -a args <<<"$opts"
    ok=""
    for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
        start=$SECONDS
        rc=0
        "$RECORD" --name "$name" --out "$OUT" "${args[@]}" 2>"$OUT/.$name.log" || rc=$?
        elapsed=$((SECONDS - start))
        if ((rc == 77)); then
            cat "$OUT/.$name.log" >&2
            rm -f "$OUT/.$name.log"
            exit 77
        fi
        if ((rc == 0)) && check "$name" "$cond"; then
            ok=1
            break
        fi
        echo "$name: attempt $attempt did not give the expected sample (exit $rc)" >&2
        tail -n 3 "$OUT/.$name.log" >&2
    done
    rm -f "$OUT/.$name.log"
    [[ -n $ok ]] || { echo "$name: failed after $ATTEMPTS attempts" >&2; exit 1; }
    summary "$name" "$elapsed"
done
