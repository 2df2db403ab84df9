#!/usr/bin/env bash
# ASC cost, side by side in one run. The same OpenAI chat requests go
# straight to the fake upstream and through the ASC (reverse proxy over TLS,
# DLP on with the secrets and pii packs and a custom literal, TLS to the
# upstream, every exchange in the session log), driven by oha:
#   1. added latency at a fixed rate (RATE req/s, default 2000), 1 KiB and
#      64 KiB bodies, p50/p99;
#   2. saturation throughput (64 connections, no rate limit);
#   3. time to first token of streams (one at a time), unpaced and with the
#      upstream pacing events 20 ms apart.
# Everything runs on loopback; all processes are ended on exit.
# Usage: ./scripts/bench-asc.sh      (DUR=10s RATE=2000 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
RATE=${RATE:-2000}
cargo build --release --locked -p asc -p fake-upstream -q
command -v oha >/dev/null || cargo install --locked oha
. scripts/bench/lib.sh

target/release/fake-upstream --tls-dir "$work/fake-ca" >"$work/fake.out" &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/fake.out" 2>/dev/null && break; sleep 0.1; done
fake=$(sed -n 's/^listening on //p' "$work/fake.out")
rev=$(free_port); adm=$(free_port)
umask 077
echo -n "sk-real-openai-0123456789abcdef" >"$work/openai.key"
cat >"$work/policy.toml" <<POLICY
[models]
allow = ["gpt-4o*"]
[dlp]
packs = ["secrets", "pii"]
action = "block"
literals = ["NIGHTJAR"]
POLICY
cat >"$work/asc.toml" <<CONFIG
enclave = "bench"
[listen]
reverse = "127.0.0.1:$rev"
reverse_tls = true
admin = "127.0.0.1:$adm"
[upstream.openai]
base_url = "https://$fake"
ca_file = "fake-ca/ca.pem"
credential = "openai"
[credentials]
openai = { file = "openai.key" }
[[agent]]
name = "bench"
substitute_key = "sub-bench-0123456789abcdef"
[policy]
file = "policy.toml"
[log]
database = "asc-log.db"
CONFIG
RUST_LOG=warn target/release/asc serve --config "$work/asc.toml" &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$rev) 2>/dev/null && break; sleep 0.1; done

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
words = "the build of the floating point unit passed timing closure after the clock tree was rebalanced and the regression suite ran clean overnight".split()
for name, size in (("1k", 1024), ("64k", 65536)):
    text, i = [], 0
    while len(" ".join(text)) < size - 120:
        text.append(words[i % len(words)]); i += 1
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": " ".join(text)}]}
    open(f"{work}/body-{name}.json", "w").write(json.dumps(body))
PY

direct="https://$fake/v1/chat/completions"
viaasc="https://127.0.0.1:$rev/openai/v1/chat/completions"
run() { # label url key body extra-args…
    local label=$1 url=$2 key=$3 body=$4; shift 4
    oha --no-tui --output-format json --insecure -z "$DUR" "$@" -m POST \
        -H "authorization: Bearer $key" -H "content-type: application/json" -D "$body" "$url" >"$work/$label.json"
    python3 - "$work/$label.json" "$label" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
print(f"{sys.argv[2]:<28} {s['requestsPerSec']:>9.0f} req/s  p50 {p['p50']*1000:7.3f} ms  p99 {p['p99']*1000:7.3f} ms  codes {codes}")
PY
}
echo "== fixed rate $RATE req/s for $DUR (latency-corrected)"
for b in 1k 64k; do
    run "direct-$b" "$direct" "sk-real-openai-0123456789abcdef" "$work/body-$b.json" -q "$RATE" --latency-correction -c 32
    run "asc-$b" "$viaasc" "sub-bench-0123456789abcdef" "$work/body-$b.json" -q "$RATE" --latency-correction -c 32
done
echo "== saturation, 64 connections, $DUR"
for b in 1k 64k; do
    run "direct-sat-$b" "$direct" "sk-real-openai-0123456789abcdef" "$work/body-$b.json" -c 64
    run "asc-sat-$b" "$viaasc" "sub-bench-0123456789abcdef" "$work/body-$b.json" -c 64
done
echo "== time to first token, streamed, 200 requests one at a time"
for pace in 0 20; do
    n=$([ "$pace" = 0 ] && echo 200 || echo 30)
    echo "direct pace=${pace}ms  $(python3 scripts/bench/asc_ttft.py "$direct" sk-real-openai-0123456789abcdef "$n" "$pace")"
    echo "asc    pace=${pace}ms  $(python3 scripts/bench/asc_ttft.py "$viaasc" sub-bench-0123456789abcdef "$n" "$pace")"
done
echo "== session log: $(target/release/asc log verify --config "$work/asc.toml")"
