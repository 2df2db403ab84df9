#!/usr/bin/env bash
# The main job: build everything and run the cross-project isolation demo in
# network namespaces, with the real controller (embedded SQLite) and nodes.
# Run as root on Debian/Ubuntu: sudo ./scripts/demo.sh
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
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "demo.sh: cargo not found: install Rust from https://rustup.rs" >&2
    exit 2
fi
cargo build --workspace --locked --bins
exec target/debug/netsim demo isolation "$@"
