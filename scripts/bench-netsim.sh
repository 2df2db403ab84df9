#!/usr/bin/env bash
# Time to bring up and check a 20-host topology with netsim (target: < 60 s
# after the build on 2 cores). Writes the topology it times to a temp file.
# Run as root: sudo ./scripts/bench-netsim.sh [HOSTS]
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-20}
cargo build --workspace --locked --bins -q
topo=$(mktemp --suffix=.toml)
trap 'rm -f "$topo"' EXIT
{
    echo 'description = "bench: enclaves of 5 hosts each"'
    for ((e = 0; e < (hosts + 4) / 5; e++)); do
        echo "[[enclave]]"
        echo "name = \"e$e\""
        echo "agent_to_agent = $([ $((e % 2)) -eq 0 ] && echo true || echo false)"
        echo "[[enclave.chamber]]"
        echo "name = \"c$e\""
        echo "asset = \"db$e\""
        echo "allow = [\"a${e}x0\", \"role:gateway\"]"
    done
    for ((h = 0; h < hosts; h++)); do
        e=$((h / 5)); k=$((h % 5))
        echo "[[host]]"
        echo "name = \"h$h\""
        echo "[[host.member]]"
        case $k in
            0|1|2) echo "name = \"a${e}x$k\""; echo "enclave = \"e$e\""; echo 'role = "agent"'
                   [ "$k" -lt 2 ] && echo "sandbox = true"
                   echo 'services = ["tcp/7000"]' ;;
            3) echo "name = \"db$e\""; echo "enclave = \"e$e\""; echo 'role = "asset"'; echo 'services = ["tcp/5432", "udp/5353"]' ;;
            4) echo "name = \"gw$e\""; echo "enclave = \"e$e\""; echo 'role = "gateway"'; echo 'services = ["tcp/8443"]' ;;
        esac
    done
} >"$topo"
start=$(date +%s.%N)
target/debug/netsim run "$topo" ${NETSIM_JSON:+--json "$NETSIM_JSON"} | tail -1
end=$(date +%s.%N)
awk -v h="$hosts" -v s="$start" -v e="$end" 'BEGIN { printf "hosts=%d wall=%.1f s (bring-up, probing and teardown)\n", h, e - s }'
