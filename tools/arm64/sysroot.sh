#!/usr/bin/env bash
# Makes an arm64 sysroot of the Debian 12 libraries edge-agent links, without installing
# any arm64 package: adds the arm64 package index (dpkg --add-architecture arm64; the host
# stays amd64), downloads the -dev packages and everything they depend on as .debs, and
# unpacks them into SYSROOT. Arm64 -dev packages do not all co-install beside the amd64
# ones (libyaml-cpp-dev, prometheus-cpp-dev), which is why they are unpacked, not installed.
# Idempotent: a SYSROOT whose stamp matches the package list and this script is kept. The
# default place is outside any clone, so that fresh clones (CI) reuse it.
#
# Usage: tools/arm64/sysroot.sh [SYSROOT]
#        (default: $EDGE_ARM64_SYSROOT, else ${XDG_CACHE_HOME:-~/.cache}/edge-agent/arm64-sysroot)
#        tools/arm64/sysroot.sh --path   prints where it is, makes nothing
set -euo pipefail
DEFAULT=${EDGE_ARM64_SYSROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-agent/arm64-sysroot}
if [ "${1:-}" = --path ]; then
  realpath -m "$DEFAULT"
  exit 0
fi
SYSROOT=$(realpath -m "${1:-$DEFAULT}")  # resolved where the caller stands
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/../.."

PACKAGES=(
  libpaho-mqttpp-dev libpaho-mqtt-dev libsqlite3-dev libboost1.81-dev prometheus-cpp-dev
  libssl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev zlib1g-dev
  libprotobuf-dev libmodbus-dev
)
STAMP="$SYSROOT/.packages"
WANT="${PACKAGES[*]} $(sha256sum "$SELF" | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "arm64 sysroot: $SYSROOT is up to date"
  exit 0
fi
# Only a directory this script made (its stamp) or an empty one is replaced.
if [ -e "$SYSROOT" ] && [ ! -f "$STAMP" ] && [ -n "$(ls -A "$SYSROOT" 2>/dev/null)" ]; then
  echo "arm64 sysroot: $SYSROOT exists and is not a sysroot made here; not touching it" >&2
  exit 1
fi

# apt-cache's output is taken whole before it is parsed: under pipefail, a reader that stops
# early (grep -q, head) would make apt-cache die of SIGPIPE and the test read as false.
arch_of() {  # arch_of PACKAGE[:ARCH]: its Architecture field, empty if it has no candidate
  local info
  info=$(apt-cache show "$1" 2>/dev/null || true)
  sed -n '/^Architecture: /{s/^Architecture: //p;q}' <<<"$info"
}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
elif [ -z "$(arch_of libc6:arm64)" ]; then
  $SUDO apt-get update -qq
fi

# The dependency closure, arm64 packages only (architecture-independent ones, such as
# headers of -common packages, are taken as well); the C library and the compiler's own
# libraries come from the cross toolchain, but unpacking them too does no harm.
requests=()
for p in "${PACKAGES[@]}"; do  # architecture-independent packages take no :arm64
  if [ "$(arch_of "$p")" = all ]; then
    requests+=("$p")
  else
    requests+=("$p:arm64")
  fi
done
deps=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${requests[@]}" 2>/dev/null)
mapfile -t closure < <(sed -n 's/^\([a-z0-9][a-z0-9.+-]*\)\(:arm64\)\{0,1\}$/\1/p' <<<"$deps" | sort -u)
debs=$(mktemp -d)
chmod 0755 "$debs"  # apt downloads as the _apt user where it can
trap 'rm -rf "$debs"' EXIT
names=()
for p in "${closure[@]}"; do
  # Virtual packages have no candidate; architecture-independent ones are "all".
  arch=$(arch_of "$p:arm64")
  [ -n "$arch" ] || arch=$(arch_of "$p")
  case "$arch" in
    arm64) names+=("$p:arm64") ;;
    all) names+=("$p") ;;
  esac
done
for r in "${requests[@]}"; do  # a package list being rewritten (apt-get update) hides some
  case " ${names[*]} " in
    *" $r "*) ;;
    *) echo "arm64 sysroot: $r is not in the package index; run apt-get update" >&2; exit 1 ;;
  esac
done
echo "arm64 sysroot: downloading ${#names[@]} packages"
(cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "${names[@]}" >/dev/null)
got=$(find "$debs" -name '*.deb' | wc -l)
[ "$got" = "${#names[@]}" ] \
  || { echo "arm64 sysroot: downloaded $got of ${#names[@]} packages" >&2; exit 1; }
rm -rf "$SYSROOT"
mkdir -p "$SYSROOT"
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
# Absolute symlinks inside the sysroot (libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1)
# would point at the host: make them relative to the sysroot.
find "$SYSROOT" -type l -lname '/*' | while read -r link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
done
echo "$WANT" > "$STAMP"
echo "arm64 sysroot: $SYSROOT ($(du -sh "$SYSROOT" | cut -f1))"
