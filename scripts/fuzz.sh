#!/usr/bin/env bash
# Run cargo-fuzz targets for SECONDS each (default 10), seeding the corpora from
# the test fixtures and shipped files.
#   scripts/fuzz.sh 600 --record          every target 10 minutes, figures appended to fuzz/RESULTS.md
#   scripts/fuzz.sh 60 nginx_config       one target
#   scripts/fuzz.sh 10 --quick            CI: an unoptimised build without sanitizer (the crate
#                                         forbids unsafe code; overflow checks stay on), quick to
#                                         compile and kept apart from the long runs' build
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10 record=0 build_flags=(--release) only=()
for a in "$@"; do
  case $a in
    --record) record=1 ;;
    --quick) build_flags=(--dev --sanitizer none) ;;
    [0-9]*) seconds=$a ;;
    *) only+=("$a") ;;
  esac
done
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1

seed() { # target, files...
  local dir=fuzz/corpus/$1; shift
  mkdir -p "$dir"
  for f in "$@"; do [[ -f $f ]] && cp -f "$f" "$dir/" || true; done
}
seed playbook playbooks/*.toml tests/fixtures/playbooks/*.toml
seed nginx_config tests/lab/scenarios/*/nginx.conf tests/fixtures/configs/nginx/* 2>/dev/null
seed apache_config tests/lab/scenarios/*/apache2.conf tests/fixtures/configs/apache/* 2>/dev/null
seed haproxy_config tests/lab/scenarios/*/haproxy.cfg tests/fixtures/configs/haproxy/* 2>/dev/null
seed log_classify tests/fixtures/logs/*.log tests/fixtures/logs/*/* 2>/dev/null
# One corpus entry per catalogue message (the third tab-separated column; `\n` joins continuations).
n=0
while IFS=$'\t' read -r _ _ entry; do
  [[ -n $entry ]] || continue
  n=$((n + 1))
  printf '%b\n' "$entry" > "fuzz/corpus/log_classify/catalogue-$n"
done < <(grep -v '^#' tests/fixtures/logs/catalogue.tsv)
seed access_log tests/fixtures/logs/access* tests/fixtures/logs/*/access* 2>/dev/null
seed fingerprint tests/fixtures/responses/* 2>/dev/null

if ((${#only[@]})); then targets=("${only[@]}"); else mapfile -t targets < <(cd fuzz && cargo fuzz list); fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for t in "${targets[@]}"; do
  echo "==> fuzz $t for ${seconds}s"
  log=$(mktemp)
  (cd fuzz && cargo fuzz run "$t" "${build_flags[@]}" -- -max_total_time="$seconds" -rss_limit_mb=512 2>&1) | tee "$log" | grep -E "^(Done|==|SUMMARY|thread)" || true
  runs=$(grep -Eo "Done [0-9]+ runs" "$log" | grep -Eo "[0-9]+" || echo 0)
  if grep -qE "SUMMARY|panicked|ERROR: libFuzzer" "$log"; then
    echo "fuzz target $t failed; see $log" >&2
    exit 1
  fi
  if ((record)); then
    printf '| %s | %ss | %s | clean | %s | %s |\n' "$t" "$seconds" "$runs" "$(date -u +%F)" "$commit" >> fuzz/RESULTS.md
  fi
done
