#!/usr/bin/env bash
# The Windows build (x86_64-pc-windows-gnu, Debian's mingw-w64) and a smoke test of it under
# Wine (Debian's wine64): --version, playbook validate, the walk scenarios, logs classify on the
# IIS fixtures (or, before they exist, on the log catalogue) and route on an applicationHost.config
# fixture when there is one. Every answer of the Windows binary is compared with the Linux
# binary's on the same input. Then the library's unit tests run under Wine.
#
# Usage: bash scripts/test-windows.sh [--no-unit]   (needs ./target/debug/triage502 for the
# comparison: `cargo build` first). Prints the time each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
# CARGO_TARGET_DIR lets scripts/test.sh build this beside the Linux tests without waiting on
# their build-directory lock.
tdir=${CARGO_TARGET_DIR:-target}
unit=1
[[ ${1:-} == --no-unit ]] && unit=0

if ! rustup target list --installed | grep -qx "$target"; then
  echo "==> rustup target add $target"
  rustup target add "$target"
fi
command -v x86_64-w64-mingw32-gcc >/dev/null || {
  echo "error: x86_64-w64-mingw32-gcc missing: apt-get install gcc-mingw-w64-x86-64" >&2
  exit 1
}
WINE=${WINE:-$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)}
[[ -x $WINE ]] || {
  echo "error: wine64 missing: apt-get install wine64" >&2
  exit 1
}
linux=./target/debug/triage502
[[ -x $linux ]] || {
  echo "error: $linux missing: run cargo build first" >&2
  exit 1
}
# A copy: the Linux tests may rebuild target/debug while this runs beside them.
linux_copy=$(mktemp /tmp/triage502-linux.XXXXXX)
cp "$linux" "$linux_copy"
chmod 0700 "$linux_copy" # mktemp makes it 0600: not executable
linux=$linux_copy
trap 'rm -f "$linux_copy"' EXIT

secs() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(secs)" 'BEGIN {printf "%.1f", b - a}'; }

t=$(secs)
echo "==> cargo build --target $target --bin triage502"
cargo build --quiet --target "$target" --bin triage502
echo "build: $(took "$t") s"
exe=$tdir/$target/debug/triage502.exe

# A throwaway Wine prefix; no Mono/Gecko installers (the binary is a console program).
WINEPREFIX=$(mktemp -d /tmp/triage502-wine.XXXXXX)
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
scratch=$(mktemp -d /tmp/triage502-winsmoke.XXXXXX)
cleanup() {
  WINEPREFIX=$WINEPREFIX timeout 20 "$(dirname "$WINE")/wineserver" -k 2>/dev/null || true
  rm -rf "$WINEPREFIX" "$scratch" "$linux_copy"
}
trap cleanup EXIT

t=$(secs)
timeout 300 "$WINE" wineboot --init >/dev/null 2>&1 || true
# Debian 12's Wine 8.0 has no bcryptprimitives.dll, which every Rust program for Windows imports
# (ProcessPrng): a test-only shim over RtlGenRandom goes into the throwaway prefix.
x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  scripts/wine/bcryptprimitives.c -ladvapi32
echo "wine prefix: $(took "$t") s"

fails=0
ok() { echo "ok   $*"; }
fail() {
  echo "FAIL $*"
  fails=$((fails + 1))
}
# The Windows binary, bounded; Wine prints CRLF line ends, compared as LF.
win() { timeout 300 "$WINE" "$exe" "$@"; }

t=$(secs)
echo "==> Wine smoke test ($($WINE --version 2>/dev/null || echo wine))"
# The wineserver stays up between the commands (its own default ends it 3 s after the last).
"$(dirname "$WINE")/wineserver" -p 60 2>/dev/null || true
if v=$(win --version 2>&1 | tr -d '\r') && [[ $v == *triage502* && $v == *$target* ]]; then
  ok "--version: $v"
else
  fail "--version: $v"
fi

# Compare one command's output and exit code between Linux and Windows.
same() {
  local name=$1
  shift
  local lo wo ls=0 ws=0
  lo=$("$linux" "$@" 2>&1 </dev/null | tr '\\' /; exit "${PIPESTATUS[0]}") || ls=$?
  # Windows joins paths with `\`: both sides are compared with `\` read as `/`; Wine shows the
  # Linux root as drive Z: (an absolute path is `Z:\work\...`).
  wo=$(win "$@" 2>&1 </dev/null | tr -d '\r' | tr '\\' / | sed 's#Z:/#/#g'; exit "${PIPESTATUS[0]}") || ws=$?
  if [[ $ls == "$ws" && $lo == "$wo" ]]; then
    ok "$name (exit $ws, same output as on Linux)"
  else
    fail "$name: Linux exit $ls, Windows exit $ws"
    diff <(echo "$lo") <(echo "$wo") | head -20 || true
  fi
}

same "playbook validate playbooks/*.toml" playbook validate playbooks/*.toml
same "playbook test playbooks/tests" playbook test playbooks/tests
same "checks list" checks list

# Log lines: the IIS fixtures once they exist (tests/fixtures/iis: whole .log files, and the
# entry column of .tsv tables), else the log catalogue's entries.
lines=$scratch/lines.log
: >"$lines"
iis=tests/fixtures/iis
if [[ -d $iis ]]; then
  source_desc="IIS fixtures ($iis)"
  while IFS= read -r -d '' f; do
    case $f in
    *.tsv) grep -v '^#' "$f" | awk -F'\t' 'NF >= 2 {print $NF}' | sed 's/\\n/\n/g' >>"$lines" ;;
    *.log | *.txt) cat "$f" >>"$lines" ;;
    esac
  done < <(find "$iis" -type f \( -name '*.tsv' -o -name '*.log' -o -name '*.txt' \) -print0 | sort -z)
else
  source_desc="log catalogue (no $iis yet)"
  grep -v '^#' tests/fixtures/logs/catalogue.tsv | awk -F'\t' 'NF >= 3 {print $3}' |
    sed 's/\\n/\n/g' >"$lines"
fi
n=$(grep -c . "$lines" || true)
lo=$("$linux" logs classify - <"$lines" 2>&1) || true
wo=$(win logs classify - <"$lines" 2>&1 | tr -d '\r') || true
if [[ -n $lo && $lo == "$wo" ]]; then
  ok "logs classify on $n lines of the $source_desc: $(grep -c . <<<"$wo") results, same as on Linux"
else
  fail "logs classify on the $source_desc differs from Linux"
  diff <(echo "$lo") <(echo "$wo") | head -20 || true
fi
# A log file named on the command line (positional reads, the file opener).
cp "$lines" "$scratch/fixture.log"
same "logs scan FILE --all" logs scan "$scratch/fixture.log" --all

# route on the applicationHost.config fixture (a loopback URL: nothing is resolved; the
# Default Web Site's global rule sends /_status/ to an address literal).
config=$(find "$iis" -iname 'applicationHost.config' 2>/dev/null | sort | head -1 || true)
status_url=http://127.0.0.1/_status/health
if [[ -n $config ]]; then
  # The same route as on Linux. One note may differ: Windows looks for the site's web.config at
  # its physical path (%SystemDrive%\inetpub\wwwroot), which Wine's C: drive does not have.
  lo=$("$linux" route --config "$config" "$status_url" 2>&1) || true
  wo=$(win route --config "$config" "$status_url" 2>&1 | tr -d '\r' | tr '\\' / | sed 's#Z:/#/#g' |
    grep -v 'note      no web.config read for site') || true
  if [[ -n $lo && $lo == "$wo" && $wo == *10.0.2.50:9100* ]]; then
    ok "route --config $config $status_url (same route as on Linux: 10.0.2.50:9100)"
  else
    fail "route --config $config $status_url differs from Linux"
    diff <(echo "$lo") <(echo "$wo") | head -20 || true
  fi
  # With no front.config given, discovery on Windows reads IIS's own configuration
  # (%windir%\System32\inetsrv\config\applicationHost.config): the front is IIS.
  inetsrv="$WINEPREFIX/drive_c/windows/system32/inetsrv/config"
  mkdir -p "$inetsrv"
  cp "$config" "$inetsrv/applicationHost.config"
  out=$(win map "$status_url" --format json 2>&1 | tr -d '\r') || true
  if [[ $out == *'"iis"'* && $out == *'10.0.2.50:9100'* && $out == *applicationHost.config* ]]; then
    ok "map $status_url reads %windir%\\System32\\inetsrv\\config\\applicationHost.config: IIS front, route to 10.0.2.50:9100"
  else
    fail "map on Windows did not read IIS's applicationHost.config: $(head -c 800 <<<"$out")"
  fi
  rm -f "$inetsrv/applicationHost.config"
else
  fail "no applicationHost.config fixture under $iis"
fi

# A check that needs Linux answers inconclusive, "not available on this platform".
pb=$scratch/linux-only.toml
cat >"$pb" <<'EOF'
id = "linux-only"
title = "A Linux-only check on Windows"
version = "1.0.0"
start = "look"

[[node]]
id = "look"
title = "Listener"
guidance = "Who listens on port 1?"
checks = [{ listener = { address = "127.0.0.1:1" } }]
on = { ok = "done", problem = "done", inconclusive = "done" }

[[node]]
id = "done"
title = "Done"
guidance = "Done."
end = "escalate"
EOF
if out=$(win run --non-interactive --format json --playbook "$pb" http://127.0.0.1:1/ 2>&1 | tr -d '\r'); [[ $out == *"not available on this platform"* ]]; then
  ok "a Linux-only check (listener) is inconclusive: not available on this platform"
else
  fail "Linux-only check on Windows: $(head -c 600 <<<"$out")"
fi
echo "smoke: $(took "$t") s"

if ((unit)); then
  t=$(secs)
  echo "==> cargo test --target $target --lib (under Wine)"
  log=/tmp/triage502-windows-unit.log
  status=0
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE" \
    timeout 1800 cargo test --target "$target" --lib --no-fail-fast >"$log" 2>&1 || status=$?
  grep -E "^test result:" "$log" || true
  if ((status != 0)); then
    fail "unit tests under Wine (exit $status); details in $log"
    grep -E "^(---- |    [a-z_:]+$|failures:)" "$log" | head -40 || true
  fi
  echo "unit tests: $(took "$t") s"
fi

if ((fails)); then
  echo "==> Windows smoke test: $fails FAILED" >&2
  exit 1
fi
echo "==> Windows smoke test passed"
