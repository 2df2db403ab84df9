#!/usr/bin/env bash
# MCP governance cost, side by side in one run: `tools/call` latency, one
# call at a time, straight to the server and through the gateway, the calls
# alternating between the two paths so that drift affects both alike.
#   1. stdio: a minimal raw JSON-RPC server (scripts/bench/mcp_echo_server.py)
#      direct, and wrapped in `asc mcp-stdio` (policy, pins, DLP on
#      arguments and results, request and response in the session log);
#   2. streamable HTTP: the official SDK's MCPServer, driven by the SDK's
#      client, direct and through `asc serve` at /mcp/files.
# Loopback only; every process started here is ended on exit.
# Usage: ./scripts/bench-mcp.sh      (CALLS=3000 HTTP_CALLS=500 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-3000}
HTTP_CALLS=${HTTP_CALLS:-500}
PY=${CORDON_PYTHON:-/opt/cordon-venv/bin/python}
cargo build --release --locked -p asc -q
. scripts/bench/lib.sh
rev=$(free_port); adm=$(free_port); mcp=$(free_port)
cat >"$work/policy.toml" <<POLICY
[models]
allow = []
[dlp]
packs = ["secrets", "pii"]
action = "block"
[mcp.servers.echo]
allow = ["echo"]
[mcp.servers.files]
url = "http://127.0.0.1:$mcp/mcp"
allow = ["get_*"]
POLICY
cat >"$work/asc.toml" <<CONFIG
enclave = "bench"
[listen]
reverse = "127.0.0.1:$rev"
admin = "127.0.0.1:$adm"
[[agent]]
name = "bench"
substitute_key = "sub-bench-0123456789abcdef"
source = "127.0.0.1"
[policy]
file = "policy.toml"
[log]
database = "asc-log.db"
CONFIG

echo "== stdio: $CALLS sequential tools/call on each path, alternating"
server="python3 scripts/bench/mcp_echo_server.py"
stdio=$(RUST_LOG=warn python3 scripts/bench/mcp_latency.py stdio "$CALLS" "$server" \
    "target/release/asc mcp-stdio --config $work/asc.toml --server echo -- $server")
echo "$stdio"

"$PY" crates/asc/tests/py/mcp_files_server.py "$mcp" >/dev/null 2>&1 &
pids+=($!)
RUST_LOG=warn target/release/asc serve --config "$work/asc.toml" &
pids+=($!)
for port in "$mcp" "$rev"; do
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
echo "== streamable HTTP: $HTTP_CALLS sequential tools/call on each path, alternating (official SDK both ends)"
http=$("$PY" scripts/bench/mcp_latency.py http "$HTTP_CALLS" "http://127.0.0.1:$mcp/mcp" "http://127.0.0.1:$rev/mcp/files")
echo "$http"

python3 - "$stdio" "$http" <<'PY'
import json, sys
for name, arg in zip(("stdio", "http"), sys.argv[1:]):
    r = json.loads(arg)
    a, b = r["direct"], r["gateway"]
    print(f"{name:5} direct p50/p99 {a['p50_us']:8.1f} /{a['p99_us']:8.1f} us   gateway {b['p50_us']:8.1f} /{b['p99_us']:8.1f} us"
          f"   added p50 {b['p50_us'] - a['p50_us']:7.1f} us  p99 {b['p99_us'] - a['p99_us']:7.1f} us")
PY
