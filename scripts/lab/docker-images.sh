#!/usr/bin/env bash
# Builds the container lab's images on this machine, from Debian packages (no registry needed):
#
#   1. mmdebstrap --variant=apt bookworm with the host's apt sources and the packages below
#      (nginx logs linked to /dev/stdout and /dev/stderr as in the official image) -> a rootfs tar;
#   2. docker import -> triage502-lab/base:<hash>;
#   3. small images FROM it that only COPY files (scripts/lab/images/<name>/):
#      triage502-lab/nginx, triage502-lab/php-fpm, triage502-lab/app (:latest and :<hash>).
#
# <hash> is the sha256 of this script and of scripts/lab/images/**: when every image carries the
# label triage502.lab.hash=<hash>, nothing is built; the base is keyed by its own recipe only, so
# changing a copied file rebuilds in seconds. Idempotent; root only. Prints what it did
# and how long it took. TRIAGE502_LAB_IMAGES_REBUILD=1 forces a build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
packages=nginx,php8.2-fpm,python3
images=(nginx php-fpm app)
start=$(date +%s.%N)

elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

if [[ $(id -u) -ne 0 ]]; then
  echo "docker-images: needs root (mmdebstrap and the Docker socket): sudo bash $0" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "docker-images: no Docker Engine answers; run scripts/lab/docker-daemon.sh first" >&2
  exit 1
fi
command -v mmdebstrap >/dev/null || {
  echo "docker-images: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
  exit 1
}

# The rootfs is keyed by how it is made (packages, hooks), the images by everything.
debootstrap_args=(--quiet --variant=apt --include="$packages"
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --customize-hook='ln -sf /dev/stdout "$1/var/log/nginx/access.log"'
  --customize-hook='ln -sf /dev/stderr "$1/var/log/nginx/error.log"'
  --customize-hook='rm -f "$1/etc/nginx/sites-enabled/default"'
  --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*.bin'
  bookworm)
base_hash=$(printf '%s\n' "${debootstrap_args[@]}" | sha256sum | cut -c1-16)
hash=$( {
  echo "$base_hash"
  cat "$0"
  (cd "$here/images" && find . -type f | LC_ALL=C sort | xargs sha256sum)
} | sha256sum | cut -c1-16)

current() {
  local name=$1
  [[ $(docker image inspect --format '{{ index .Config.Labels "triage502.lab.hash" }}' \
    "triage502-lab/$name:$hash" 2>/dev/null) == "$hash" ]]
}

if [[ -z ${TRIAGE502_LAB_IMAGES_REBUILD:-} ]]; then
  all=1
  for name in "${images[@]}"; do current "$name" || all=0; done
  if ((all)); then
    for name in "${images[@]}"; do docker tag "triage502-lab/$name:$hash" "triage502-lab/$name:latest"; done
    echo "docker-images: cached (hash $hash): ${images[*]} in $(elapsed) s"
    exit 0
  fi
fi

work=$(mktemp -d /tmp/triage502-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! docker image inspect "triage502-lab/base:$base_hash" >/dev/null 2>&1 || [[ -n ${TRIAGE502_LAB_IMAGES_REBUILD:-} ]]; then
  sources=/etc/apt/sources.list.d/debian.sources
  [[ -f $sources ]] || sources=/etc/apt/sources.list
  echo "docker-images: mmdebstrap bookworm ($packages) from $sources"
  mmdebstrap "${debootstrap_args[@]}" "$work/rootfs.tar" "$sources" >"$work/mmdebstrap.log" 2>&1 || {
    echo "docker-images: mmdebstrap failed; last lines:" >&2
    tail -n 30 "$work/mmdebstrap.log" >&2
    exit 1
  }
  echo "docker-images: rootfs $(du -h "$work/rootfs.tar" | cut -f1) after $(elapsed) s"
  docker import --change "LABEL triage502.lab.hash=$base_hash" --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "triage502-lab/base:$base_hash" >/dev/null
fi

for name in "${images[@]}"; do
  cp -r "$here/images/$name" "$work/$name"
  sed -i "s|^FROM triage502-lab/base:HASH|FROM triage502-lab/base:$base_hash|" "$work/$name/Dockerfile"
  DOCKER_BUILDKIT=0 docker build --quiet --label "triage502.lab.hash=$hash" \
    -t "triage502-lab/$name:$hash" -t "triage502-lab/$name:latest" "$work/$name" >/dev/null 2>"$work/build-$name.log" || {
    echo "docker-images: building triage502-lab/$name failed:" >&2
    cat "$work/build-$name.log" >&2
    exit 1
  }
done

# Older lab images (another hash) only take space.
docker image ls --format '{{.Repository}}:{{.Tag}}' |
  grep -E '^triage502-lab/[a-z-]+:[0-9a-f]{16}$' | grep -v -e ":$hash\$" -e "^triage502-lab/base:$base_hash\$" | xargs -r docker rmi >/dev/null 2>&1 || true

echo "docker-images: built (hash $hash): ${images[*]} in $(elapsed) s"
