#!/usr/bin/env bash
# Run every lab diagnosis once and print how many were diagnosed correctly and
# the median time to diagnosis (the `duration_ms` of each JSON report); then
# the two fixes run for real on lab scenarios (plugin bisection, config rollback).
# Needs root and the servers (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
cargo test --quiet --test lab -- diagnosis --nocapture --test-threads 2 2>&1 | tee "$out" | grep -E "^test result" || true
results=$(grep -o "lab-result .*" "$out" | sort)
echo "$results" | awk '{ split($3, e, "="); split($4, g, "="); split($5, d, "=");
  printf "%-34s %-22s %-22s %6d ms\n", $2, e[2], g[2], d[2] }'
n=$(echo "$results" | grep -c . || true)
ok=$(echo "$results" | awk '{ split($3, e, "="); split($4, g, "="); if (e[2] == g[2]) c++ } END { print c + 0 }')
median=$(echo "$results" | sed -E 's/.*duration_ms=([0-9]+).*/\1/' | sort -n |
  awk '{ t[NR] = $1 } END { if (NR % 2) print t[(NR + 1) / 2]; else print int((t[NR / 2] + t[NR / 2 + 1]) / 2) }')
echo
echo "$ok of $n scenarios diagnosed correctly (right cause first); median time to diagnosis $median ms"
echo
cargo test --quiet --test actions_bisect_lab --test actions_rollback_lab -- --nocapture 2>&1 |
  tee "$out" | grep -E "^test result" || true
grep -o "lab-action .*" "$out" || echo "no lab-action line: see cargo test --test actions_bisect_lab --test actions_rollback_lab"
rm -f "$out"
