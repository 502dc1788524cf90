#!/bin/bash
# Install what bock's tests need on a fresh Debian 12 machine (run as root):
# Debian packages (the runtimes, clients and tools the tests drive for real) and tox.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  python3 python3-venv python3-pip python3-dev gcc
  busybox-static runc containerd podman buildah conmon skopeo umoci docker-registry
  criu bats iptables nftables iproute2 jq libseccomp2 curl util-linux file procps
  apache2-utils uidmap fuse-overlayfs openssl debootstrap systemd catatonit
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# docker-registry is started by the tests themselves, on 127.0.0.1 and a free port.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
if [ ! -x /opt/bock-tools/bin/tox ]; then
  /usr/bin/python3 -m venv /opt/bock-tools
  /opt/bock-tools/bin/pip install -q 'tox>=4'
fi
ln -sf /opt/bock-tools/bin/tox /usr/local/bin/tox
echo "host ready: $(runc --version | head -1); tox $(/opt/bock-tools/bin/tox --version | cut -d' ' -f1)"
