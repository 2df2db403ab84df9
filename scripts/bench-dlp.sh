#!/usr/bin/env bash
# DLP throughput, side by side in one run: dlp on 1 and 2 threads with the
# built-in packs plus 50 custom literals, ripgrep given the same patterns,
# and the cost of 10,000 registered protected files. Uses a generated
# 100 MiB corpus (kept in $CORPUS between runs).
# Usage: ./scripts/bench-dlp.sh        (MIB=100 REPS=3 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-100}
REPS=${REPS:-3}
CORPUS=${CORPUS:-/tmp/cordon-dlp-corpus-$MIB}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -p dlp -q
dlp=target/release/dlp
command -v rg >/dev/null || cargo install --locked ripgrep
[ -f "$CORPUS/manifest.jsonl" ] || $dlp corpus --out "$CORPUS" --mib "$MIB" --seed 1 >/dev/null
# The bench reads every file but the manifest.
mkdir -p "$work/corpus"
for f in "$CORPUS"/*; do [ "$(basename "$f")" = manifest.jsonl ] || ln -s "$f" "$work/corpus/"; done

{
    echo '[[rule]]'
    echo 'id = "codenames"'
    echo 'severity = "high"'
    echo 'kind = "literal"'
    printf 'patterns = ['
    for i in $(seq 1 50); do printf '"PROJ-%04d-ORCA"%s' $((i * 37)) "$([ "$i" -lt 50 ] && echo ', ')"; done
    echo ']'
} >"$work/literals.toml"

echo "== dlp (built-in packs + 50 literals)"
for t in 1 2; do $dlp bench --corpus "$work/corpus" --threads $t --reps "$REPS" --rules "$work/literals.toml"; done

echo "== ripgrep $(rg --version | head -1 | cut -d' ' -f2), same patterns (-c, count only)"
$dlp patterns --rules "$work/literals.toml" >"$work/patterns.txt"
bytes=$(du -bL "$work/corpus" | cut -f1)
for t in 1 2; do
    best=999999
    for _ in $(seq 1 "$REPS"); do
        s=$(date +%s.%N)
        rg -L -j$t -c -f "$work/patterns.txt" "$work/corpus" >/dev/null || true
        e=$(date +%s.%N)
        best=$(awk -v a="$best" -v b="$(echo "$e $s" | awk '{print $1-$2}')" 'BEGIN{print (b<a)?b:a}')
    done
    awk -v b="$bytes" -v s="$best" -v t=$t 'BEGIN { printf "rg: %d thread(s): best %.3f s = %.0f MB/s\n", t, s, b / s / 1e6 }'
done

echo "== fingerprints: 10,000 protected files registered"
mkdir -p "$work/protected"
python3 - "$work/protected" <<'PY'
import os, random, sys
random.seed(5)
d = sys.argv[1]
for i in range(10000):
    lines = [f"  assign n{i}_{j} = (r{random.randrange(1<<20):x} & 8'h{random.randrange(256):02x}) ^ s{random.randrange(999)};" for j in range(40)]
    open(os.path.join(d, f"m{i:05}.v"), "w").write(f"module m{i}(input clk);\n" + "\n".join(lines) + "\nendmodule\n")
PY
cat "$work/literals.toml" >"$work/with-fp.toml"
printf '[[rule]]\nid = "rtl"\nseverity = "critical"\nkind = "fingerprint"\ndir = "%s"\n' "$work/protected" >>"$work/with-fp.toml"
$dlp bench --corpus "$work/corpus" --threads 1 --reps "$REPS" --rules "$work/with-fp.toml"
