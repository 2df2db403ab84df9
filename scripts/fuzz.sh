#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 60 s each; CI
# runs a 5 s smoke pass). A crash stops the script with the input saved in
# fuzz/artifacts/TARGET/; turn it into a regression test.
# Usage: ./scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token_decode api_bodies wireguard_datagram dlp_scan netsim_topology asc_adapters asc_streams mcp_jsonrpc)
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# Stable toolchain: cargo-fuzz needs -Zsanitizer, hence RUSTC_BOOTSTRAP.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs}s"
    if RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$t" -- -max_total_time="$secs" >"$log" 2>&1; then
        grep -E "^Done" "$log" || true
    else
        tail -40 "$log"
        echo "fuzz: $t failed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
