#!/usr/bin/env bash
# Builds what we ship, from a fresh clone, into dist/:
#   triage502-VERSION-x86_64-linux-musl   the static binary (runs on any x86_64 Linux, no libc needed)
#   triage502_VERSION_amd64.deb           binary, man page, bash/zsh/fish completions, README,
#                                         licences, /etc/triage502/playbooks/
#   SHA256SUMS
# Adds the musl target with rustup and installs Debian's musl-tools when missing (as root).
# TRIAGE502_DIST_LTO=thin trades a larger binary (over the 15 MB cap test-dist.sh checks) for a quicker build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

target=x86_64-unknown-linux-musl
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
out=dist
stage=$out/build

need_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=()
for pkg in musl-tools file; do need_pkg "$pkg" || missing+=("$pkg"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "dist: missing ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"

echo "==> cargo build --profile dist --target $target"
export CC_x86_64_unknown_linux_musl=musl-gcc
# mimalloc (the static build's allocator, see src/main.rs) commits its first arena eagerly on
# Linux: 19 MiB resident at the first frame instead of 9. Commit on demand instead.
export CFLAGS_x86_64_unknown_linux_musl="${CFLAGS_x86_64_unknown_linux_musl:-} -DMI_DEFAULT_ARENA_EAGER_COMMIT=0"
if [[ ${TRIAGE502_DIST_LTO:-fat} != fat ]]; then
  export CARGO_PROFILE_DIST_LTO=$TRIAGE502_DIST_LTO
fi
cargo build --quiet --locked --profile dist --target "$target" --bin triage502
bin=target/$target/dist/triage502
# The profile's `strip = true` is not applied to the binary once the package has its own profile
# override (its opt-level, in Cargo.toml): strip it here (binutils, present wherever cc links).
strip --strip-all "$bin"

rm -rf "$out"
mkdir -p "$stage"
static=$out/triage502-$version-x86_64-linux-musl
cp "$bin" "$static"

# Man page and completions come from the binary itself, so they always match it.
"$bin" man | gzip -9n >"$stage/triage502.1.gz"
"$bin" completions bash >"$stage/triage502.bash"
"$bin" completions zsh >"$stage/_triage502"
"$bin" completions fish >"$stage/triage502.fish"

echo "==> .deb (dpkg-deb)"
root=$stage/deb
install -Dm755 "$bin" "$root/usr/bin/triage502"
install -Dm644 "$stage/triage502.1.gz" "$root/usr/share/man/man1/triage502.1.gz"
install -Dm644 "$stage/triage502.bash" "$root/usr/share/bash-completion/completions/triage502"
install -Dm644 "$stage/_triage502" "$root/usr/share/zsh/vendor-completions/_triage502"
install -Dm644 "$stage/triage502.fish" "$root/usr/share/fish/vendor_completions.d/triage502.fish"
install -Dm644 README.md "$root/usr/share/doc/triage502/README.md"
install -Dm644 packaging/deb/copyright "$root/usr/share/doc/triage502/copyright"
gzip -9nc packaging/deb/changelog >"$stage/changelog.gz"
install -Dm644 "$stage/changelog.gz" "$root/usr/share/doc/triage502/changelog.gz"
install -Dm644 packaging/deb/playbooks-README "$root/etc/triage502/playbooks/README"
install -Dm644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/triage502"
mkdir -p "$root/DEBIAN"
printf '/etc/triage502/playbooks/README\n' >"$root/DEBIAN/conffiles"
installed_kib=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$installed_kib/" packaging/deb/control >"$root/DEBIAN/control"
chmod -R u+rwX,go+rX,go-w "$root"
deb=$out/triage502_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null

(cd "$out" && sha256sum "$(basename "$static")" "$(basename "$deb")" >SHA256SUMS)
rm -rf "$stage"
echo "==> dist/"
ls -l "$out"
