#!/usr/bin/env bash
# Installs and starts what Cordon's tests need on a fresh Debian machine.
# Idempotent: safe to run again. Needs root (apt, PostgreSQL, namespaces).
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# A stock WireGuard peer for interoperability tests (no kernel module here),
# and iperf3 for the data-plane benchmark.
command -v wireguard-go >/dev/null 2>&1 || need_apt+=(wireguard-go)
command -v wg >/dev/null 2>&1 || need_apt+=(wireguard-tools)
command -v iperf3 >/dev/null 2>&1 || need_apt+=(iperf3)
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql-common)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  need_apt=()
fi

# The official LLM and MCP client SDKs, in a venv the ASC tests use.
bash "$(dirname "$0")/sdk-venv.sh"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# PostgreSQL: start the Debian cluster and make a test role that may create
# databases (each test makes and drops its own).
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
  cluster=$(pg_lsclusters -h | awk 'NR==1{print $2}')
  [ -n "$cluster" ] || { pg_createcluster "$ver" main; cluster=main; }
  log "starting PostgreSQL $ver/$cluster"
  pg_ctlcluster "$ver" "$cluster" start
fi
for _ in $(seq 1 50); do
  su postgres -c "psql -qtAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='cordon'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE cordon LOGIN PASSWORD 'cordon' CREATEDB\""
log "PostgreSQL ready: postgres://cordon:cordon@127.0.0.1:5432/postgres"
