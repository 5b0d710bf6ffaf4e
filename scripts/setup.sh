#!/usr/bin/env bash
# Installs what mproc needs to build, test and benchmark on Debian 12, with apt-get, as root.
# Idempotent, and silent when everything is already there.
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  libboost-dev libboost-serialization-dev
  libspdlog-dev libfmt-dev
  libssl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-matplotlib
  libboost-mpi-dev openmpi-bin python3-mpi4py
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "setup.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
