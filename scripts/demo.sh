#!/usr/bin/env bash
# The main job: build everything and run `netsim demo all` in network
# namespaces, with the real controller (embedded SQLite), nodes and ASC: the
# cross-project isolation demo, the attack scenarios, a controller outage, a
# sandboxed agent using the official SDKs through its enclave's ASC, and the
# five evaluation questions (docs/DEMO.md walks through the output).
# Run as root on Debian/Ubuntu: sudo ./scripts/demo.sh [isolation|asc|all]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: network namespaces need root: sudo $0" >&2
    exit 2
fi
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v sysctl >/dev/null || missing+=(procps)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v wireguard-go >/dev/null || missing+=(wireguard-go)
command -v wg >/dev/null || missing+=(wireguard-tools)
command -v python3 >/dev/null || missing+=(python3)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
bash scripts/sdk-venv.sh
if ! command -v cargo >/dev/null; then
    echo "demo.sh: cargo not found: install Rust from https://rustup.rs" >&2
    exit 2
fi
cargo build --workspace --locked --bins
exec target/debug/netsim demo "${@:-all}"
