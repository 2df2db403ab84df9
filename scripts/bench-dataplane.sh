#!/usr/bin/env bash
# Data-plane benchmark, all peers side by side in one run: two namespaces
# joined by one veth pair (198.19.250.0/24), iperf3 TCP with one and four
# streams (median of REPS runs of SECONDS each) and ping, over
#   raw veth | boringtun-cli (--threads 1, its best here) | wireguard-go | overlay-node
# Needs root, iperf3, wireguard-go, wg (scripts/setup.sh) and boringtun-cli
# (cargo install --locked boringtun-cli). Traffic stays inside the two
# namespaces it creates; everything is removed on exit, also on failure.
#
#   sudo ./scripts/bench-dataplane.sh            # SECONDS=10 REPS=3
#   SECONDS_PER_RUN=3 REPS=1 sudo ./scripts/bench-dataplane.sh   # quick look
set -euo pipefail
cd "$(dirname "$0")/.."

umask 077
DUR=${SECONDS_PER_RUN:-10}
REPS=${REPS:-3}
P="cb$$"
A="${P}a" B="${P}b"
UA=198.19.250.1 UB=198.19.250.2
OA=100.64.250.1 OB=100.64.250.2
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in iperf3 wireguard-go wg boringtun-cli python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of this script)" >&2; exit 2; }
done

cargo build --release --locked -q -p overlay-node -p overlay-controller
NODE=$PWD/target/release/overlay-node
CTL=$PWD/target/release/overlay-controller

ip netns add "$A"; ip netns add "$B"
ip -n "$A" link set lo up; ip -n "$B" link set lo up
ip link add "${P}x" netns "$A" type veth peer name "${P}y" netns "$B"
ip -n "$A" addr add "$UA/24" dev "${P}x"; ip -n "$B" addr add "$UB/24" dev "${P}y"
ip -n "$A" link set "${P}x" up; ip -n "$B" link set "${P}y" up
ip netns exec "$A" ping -c1 -W2 "$UB" >/dev/null

median() { python3 -c 'import sys,statistics; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }

iperf() { # target streams -> Gbit/s
  ip netns exec "$A" iperf3 -c "$1" -t "$DUR" -P "$2" -J \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'
}

measure() { # name target
  local name=$1 target=$2 one=() four=()
  ip netns exec "$B" iperf3 -s -D -B "$target" --pidfile "$WORK/iperf.pid"
  sleep 0.3
  for _ in $(seq "$REPS"); do one+=("$(iperf "$target" 1)"); done
  for _ in $(seq "$REPS"); do four+=("$(iperf "$target" 4)"); done
  local rtt
  rtt=$(ip netns exec "$A" ping -c 20 -i 0.05 -q "$target" | awk -F/ '/rtt/ {print $5}')
  kill -TERM "$(cat "$WORK/iperf.pid")" 2>/dev/null || true
  sleep 0.3
  printf '%s|%s|%s|%s\n' "$name" "$(median "${one[@]}")" "$(median "${four[@]}")" "$rtt" >> "$WORK/results"
  echo "measured $name" >&2
}

# Two stock WireGuard peers configured with wg; $1 = name, $2 = command.
stock_pair() {
  local name=$1; shift
  wg genkey > "$WORK/a.key"; wg genkey > "$WORK/b.key"
  local pa pb; pa=$(wg pubkey < "$WORK/a.key"); pb=$(wg pubkey < "$WORK/b.key")
  for side in a b; do
    local ns=$A; [ $side = b ] && ns=$B
    ip netns exec "$ns" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 "$@" "${P}w$side" >"$WORK/$name-$side.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 50); do [ -S "/var/run/wireguard/${P}wa.sock" ] && [ -S "/var/run/wireguard/${P}wb.sock" ] && break; sleep 0.1; done
  wg set "${P}wa" private-key "$WORK/a.key" listen-port 51820 peer "$pb" endpoint "$UB:51820" allowed-ips "$OB/32"
  wg set "${P}wb" private-key "$WORK/b.key" listen-port 51820 peer "$pa" endpoint "$UA:51820" allowed-ips "$OA/32"
  ip -n "$A" addr add "$OA/24" dev "${P}wa"; ip -n "$A" link set "${P}wa" up mtu 1420
  ip -n "$B" addr add "$OB/24" dev "${P}wb"; ip -n "$B" link set "${P}wb" up mtu 1420
  ip netns exec "$A" ping -c1 -W3 "$OB" >/dev/null
  measure "$name" "$OB"
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  ip -n "$A" link del "${P}wa" 2>/dev/null || true
  ip -n "$B" link del "${P}wb" 2>/dev/null || true
}

# ONLY=overlay-node skips the peers (while profiling); PERF=1 records the
# sending node with perf during its measurement.
if [ -z "${ONLY:-}" ]; then
  measure "raw veth" "$UB"
  stock_pair "boringtun-cli 0.7.1 --threads 1" boringtun-cli --foreground --disable-drop-privileges --threads 1
  stock_pair "wireguard-go (Debian)" wireguard-go -f
fi

# overlay-node: a real controller in A, two nodes joined with real tokens.
ip netns exec "$A" "$CTL" serve --listen "$UA:7443" --data-dir "$WORK/ctl" >"$WORK/ctl.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -f "$WORK/ctl/admin.token" ] && grep -q listening "$WORK/ctl.log" && break; sleep 0.1; done
oc() { local group=$1; shift
  ip netns exec "$A" "$CTL" "$group" --controller "https://$UA:7443" --admin-token-file "$WORK/ctl/admin.token" --ca-file "$WORK/ctl/ca.pem" "$@"; }
oc enclave create bench --cidr 100.64.250.0/24 >/dev/null
for side in a b; do
  ns=$A; ep=$UA; [ $side = b ] && ns=$B && ep=$UB
  token=$(oc token create bench --role agent --name "node-$side")
  ip netns exec "$ns" "$NODE" up --token "$token" --state-dir "$WORK/state-$side" \
    --interface "${P}n$side" --endpoint "$ep:51820" >"$WORK/node-$side.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -f "$WORK/state-$side/membership.json" ] && break; sleep 0.1; done
done
addr_b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"].split("/")[0])' "$WORK/state-b/membership.json")
for _ in $(seq 50); do ip netns exec "$A" ping -c1 -W1 "$addr_b" >/dev/null 2>&1 && break; done
if [ -n "${PERF:-}" ]; then
  if [ "$PERF" = stat ]; then
    perf stat -e 'syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvmsg,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_futex' \
      --per-thread -o "${PERF_OUT:-/tmp/overlay-node.stat}" -p "${PIDS[1]},${PIDS[2]}" -- sleep "$((DUR + 1))" >/dev/null 2>&1 &
  else
    perf record -F 999 -g -o "${PERF_OUT:-/tmp/overlay-node.perf}" -p "${PIDS[1]}" -- sleep "$((DUR + 1))" >/dev/null 2>&1 &
  fi
  PERF_PID=$!
fi
measure "overlay-node" "$addr_b"
[ -n "${PERF:-}" ] && wait "$PERF_PID" || true
[ -n "${ONLY:-}" ] && { cat "$WORK/results"; exit 0; }

python3 - "$WORK/results" <<'PY'
import sys
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
raw = float(rows[0][1]); bt = float(rows[1][1])
print(f"\n| path | 1 stream Gbit/s | 4 streams Gbit/s | ping avg ms | 1 stream vs raw | vs boringtun-cli |")
print("|---|---|---|---|---|---|")
for name, one, four, rtt in rows:
    o = float(one)
    print(f"| {name} | {one} | {four} | {rtt} | {o/raw*100:.1f} % | {o/bt:.2f}x |")
PY
