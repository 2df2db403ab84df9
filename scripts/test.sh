#!/usr/bin/env bash
# The whole test gate, as CI runs it: set up services, then format, lints,
# every test (unit, integration against SQLite and PostgreSQL, namespace
# tests as root) and the docs. Run as root on Debian: sudo ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (the binaries tests start: asc, fake-upstream, nodes…)"
cargo build --workspace --locked --bins
echo "== cargo nextest"
cargo nextest run --workspace --locked --no-fail-fast
echo "== fuzz smoke pass (every parser that sees untrusted bytes)"
bash scripts/fuzz.sh 5
echo "== doc tests and docs"
cargo test --workspace --doc --locked
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
