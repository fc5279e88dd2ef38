#!/usr/bin/env bash
# Installs the Debian 12 packages edge-agent needs to build, test and run its demo.
# Idempotent: installs only what is missing. Needs root (or sudo).
# Usage: tools/setup.sh [PACKAGE...]   (extra packages to install as well, e.g. what
# tools/deploy-test.sh needs for podman)
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache pkg-config
  libpaho-mqttpp-dev libpaho-mqtt-dev libsqlite3-dev libboost1.81-dev prometheus-cpp-dev
  libssl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  mosquitto mosquitto-clients prometheus python3 python3-yaml python3-matplotlib curl iproute2
  clang libclang-rt-14-dev
  libprotobuf-dev protobuf-compiler libmodbus-dev python3-pymodbus python3-serial
  python3-serial-asyncio python3-paho-mqtt
)

PACKAGES+=("$@")

# The manifest tests type-check with npm packages; any Node.js with npm will do.
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian mosquitto package starts a system broker on port 1883; the demo and the tests
# run their own brokers on ports they choose, so the system one is left as the package set it.
echo "setup: done"
