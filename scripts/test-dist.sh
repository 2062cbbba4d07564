#!/usr/bin/env bash
# Tests what scripts/dist.sh built in dist/, as an operator would use it (root):
# - the static binary: statically linked, <= 15 MB, and in an EMPTY root (only the binary,
#   entered with chroot: no libc, no /proc, no /etc, no CA certificates): --version,
#   playbook validate, logs classify, and run --non-interactive against a loopback 502;
#   its TLS against a loopback TLS server whose test CA is given by SSL_CERT_FILE (and refused
#   without it);
# - the .deb: installed with dpkg -i (binary, man page, completions where Debian expects them),
#   removed with dpkg -r and purged with dpkg -P; lintian clean apart from explained overrides;
# - SHA256SUMS matches.
# Only loopback traffic. Prints one line per check and a summary; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
[[ $(id -u) -eq 0 ]] || { echo "test-dist: needs root (chroot, dpkg)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
static=dist/triage502-$version-x86_64-linux-musl
deb=dist/triage502_${version}_amd64.deb
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}

work=$(mktemp -d /tmp/triage502-dist-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  dpkg-query -W triage502 >/dev/null 2>&1 && dpkg -P triage502 >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

[[ -f $static && -f $deb && -f dist/SHA256SUMS ]] || { echo "test-dist: run scripts/dist.sh first" >&2; exit 1; }
check "SHA256SUMS matches" bash -c "cd dist && sha256sum --quiet -c SHA256SUMS"
desc=$(file -b "$static")
check "static: file says statically linked ($desc)" grep -Eq "static(-pie)? linked|statically linked" <<<"$desc"
size=$(stat -c %s "$static")
check "static: size $size bytes <= 15 MB" test "$size" -le 15000000

# The empty root: only the binary (and, for the TLS check, the test CA file).
root=$work/root
mkdir -p "$root"
cp "$static" "$root/triage502"
in_root() { chroot "$root" /triage502 "$@"; }
v=$(in_root --version 2>&1)
check "empty root: --version ($v)" grep -Eq "^triage502 $version \(commit [0-9a-f]+|unknown, x86_64-unknown-linux-musl\)" <<<"$v"
check "empty root: playbook validate (embedded default)" bash -c "chroot '$root' /triage502 playbook validate 502 >/dev/null 2>&1 || chroot '$root' /triage502 playbook list >/dev/null"
line='2026/12/03 08:00:00 [error] 123#123: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 192.0.2.1, server: _, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:9000/", host: "x"'
c=$(printf '%s\n' "$line" | chroot "$root" /triage502 logs classify 2>&1)
check "empty root: logs classify names upstream_refused" grep -q "upstream_refused" <<<"$c"

# A loopback server that answers 502, and a TLS one (with its own test CA) that answers 502.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/srv.py" <<'PY'
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        self.send_response(502); self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_HEAD = do_GET
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
if len(sys.argv) > 2:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=triage502 test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/srv.key" -out "$work/srv.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/ext" -out "$work/srv.pem" 2>/dev/null
python3 "$work/srv.py" "$port" & pids+=($!)
python3 "$work/srv.py" "$tport" "$work/srv.pem" "$work/srv.key" & pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && break
  sleep 0.1
done

report=$(chroot "$root" /triage502 run --non-interactive --read-only --format json "http://127.0.0.1:$port/checkout" 2>/dev/null)
rc=$?
status=$(jq -r .status <<<"$report" 2>/dev/null)
found_a_problem() { [[ $rc -eq 1 && -n $status && $status != healthy && $status != null ]]; }
check "empty root: run --non-interactive on a loopback 502 (exit $rc, status $status)" found_a_problem
symptom=$(jq -r '.path[0].detail.reports[0].summary' <<<"$report" 2>/dev/null)
check "empty root: the probe saw the 502 ($symptom)" grep -q "502" <<<"$symptom"

cp "$work/ca.pem" "$root/ca.pem"
tls=$(SSL_CERT_FILE=/ca.pem chroot "$root" /triage502 run --non-interactive --read-only --format json "https://127.0.0.1:$tport/" 2>/dev/null | jq -r '.path[0].detail.reports[0].summary')
check "empty root: TLS with SSL_CERT_FILE=test CA reaches the server ($tls)" grep -q "502" <<<"$tls"
notls=$(chroot "$root" /triage502 run --non-interactive --read-only --format json "https://127.0.0.1:$tport/" 2>/dev/null | jq -r '.path[0].detail.reports[0].summary')
refused_without_ca() { ! grep -q "502" <<<"$notls" && grep -Eiq "tls|certificate" <<<"$notls"; }
check "empty root: TLS without the CA is refused ($notls)" refused_without_ca

# The .deb.
check "deb: dpkg -i" dpkg -i "$deb" >/dev/null
check "deb: /usr/bin/triage502 runs" bash -c "/usr/bin/triage502 --version | grep -q '^triage502 $version'"
check "deb: man page" test -f /usr/share/man/man1/triage502.1.gz
check "deb: man page renders" bash -c "zcat /usr/share/man/man1/triage502.1.gz | grep -q 'triage502'"
check "deb: bash completion" test -f /usr/share/bash-completion/completions/triage502
check "deb: zsh completion" test -f /usr/share/zsh/vendor-completions/_triage502
check "deb: fish completion" test -f /usr/share/fish/vendor_completions.d/triage502.fish
check "deb: README, copyright, changelog" test -f /usr/share/doc/triage502/README.md -a -f /usr/share/doc/triage502/copyright -a -f /usr/share/doc/triage502/changelog.gz
check "deb: /etc/triage502/playbooks/ with its README" test -f /etc/triage502/playbooks/README
check "deb: dpkg -r" dpkg -r triage502 >/dev/null
check "deb: removed binary is gone" test ! -e /usr/bin/triage502
check "deb: dpkg -P" dpkg -P triage502 >/dev/null
check "deb: purged conffile is gone" test ! -e /etc/triage502/playbooks/README
if command -v lintian >/dev/null; then
  lint=$(lintian --suppress-tags-from-file /dev/null "$deb" 2>&1 | grep -E '^(E|W):' || true)
  if [[ -z $lint ]]; then ok "deb: lintian has no error or warning"; else bad "deb: lintian: $lint"; fi
else
  bad "deb: lintian is not installed"
fi

echo "test-dist: $passed passed, $failed failed"
((failed == 0))
