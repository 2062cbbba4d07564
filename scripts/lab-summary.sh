#!/usr/bin/env bash
# Run every lab diagnosis once and print how many were diagnosed correctly and
# the median time to diagnosis (the `duration_ms` of each JSON report).
# Needs root and the servers (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
cargo test --quiet --test lab -- diagnosis --nocapture --test-threads 2 2>&1 | tee "$out" | grep -E "^test result" || true
grep -o "lab-result .*" "$out" | sort | awk '
  { split($3, e, "="); split($4, g, "="); split($5, d, "=");
    n++; if (e[2] == g[2]) ok++; t[n] = d[2] + 0;
    printf "%-34s %-22s %-22s %6d ms\n", $2, e[2], g[2], d[2] }
  END {
    asort(t); m = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2;
    printf "\n%d of %d scenarios diagnosed correctly (right cause first); median time to diagnosis %d ms\n", ok, n, m }'
