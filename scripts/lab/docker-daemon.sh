#!/usr/bin/env bash
# Makes sure a Docker Engine answers for the container lab, safely fenced in.
#
# - An Engine that already answers `docker info` is used as it is (the fence rules below are
#   still added).
# - Otherwise, as root, Debian's dockerd is started in the background with:
#     --bip 10.213.0.1/24 and default address pools inside 10.214.0.0/16 (the lab's own bridges),
#     --dns 10.213.0.1, where dns-nxdomain.py answers NXDOMAIN to everything, so Docker's embedded
#       DNS never forwards a container's unknown name to the host's resolver.
# - DOCKER-USER gets a chain TRIAGE502-FENCE that rejects anything from a bridge towards a
#   non-bridge interface: containers reach each other and the host, nothing beyond.
#
# Idempotent; prints one line saying what it did. Logs: /tmp/triage502-dockerd.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
bridge_ip=10.213.0.1

fence() {
  iptables -N TRIAGE502-FENCE 2>/dev/null || iptables -F TRIAGE502-FENCE
  iptables -A TRIAGE502-FENCE -o docker0 -j RETURN
  iptables -A TRIAGE502-FENCE -o br+ -j RETURN
  iptables -A TRIAGE502-FENCE -m comment --comment "triage502 lab: no traffic off the bridges" -j REJECT
  iptables -N DOCKER-USER 2>/dev/null || true
  for in_if in docker0 br+; do
    iptables -C DOCKER-USER -i "$in_if" -j TRIAGE502-FENCE 2>/dev/null ||
      iptables -I DOCKER-USER -i "$in_if" -j TRIAGE502-FENCE
  done
}

stub() {
  if ! ss -lun 2>/dev/null | grep -q "$bridge_ip:53 "; then
    nohup python3 "$here/dns-nxdomain.py" "$bridge_ip" 53 >/tmp/triage502-dns-stub.log 2>&1 &
    echo $! >/run/triage502-dns-stub.pid
  fi
}

if docker info >/dev/null 2>&1; then
  stub
  fence
  echo "docker: using the Engine that already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "docker: no Engine answers and not root: the container lab cannot run" >&2
  exit 1
fi
command -v dockerd >/dev/null || { echo "docker: dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }

stub
nohup dockerd \
  --bip "$bridge_ip/24" \
  --default-address-pool base=10.214.0.0/16,size=24 \
  --dns "$bridge_ip" \
  --userland-proxy=true \
  --log-level warn \
  >/tmp/triage502-dockerd.log 2>&1 &
echo $! >/run/triage502-dockerd.pid
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && break
  sleep 0.5
done
if ! docker info >/dev/null 2>&1; then
  echo "docker: dockerd did not come up; last lines of /tmp/triage502-dockerd.log:" >&2
  tail -n 20 /tmp/triage502-dockerd.log >&2
  exit 1
fi
fence
echo "docker: started dockerd $(docker version --format '{{.Server.Version}}') (pid $(cat /run/triage502-dockerd.pid))"
