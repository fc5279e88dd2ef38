#!/bin/sh
# build-mode TARGETARCH: records in /etc/edge-build-mode how the image build stage makes
# binaries for TARGETARCH (empty: this stage's own architecture): "native" for its own
# architecture, "cross" for arm64 from another one (Debian's aarch64 toolchain and the
# arm64 sysroot). Any other combination fails: images are built for amd64 and arm64.
set -eu
here=$(dpkg --print-architecture)
target=${1:-$here}
case "$target" in
  "$here") echo native > /etc/edge-build-mode ;;
  arm64) echo cross > /etc/edge-build-mode ;;
  *) echo "images are built for amd64 and arm64; $target from $here is not supported" >&2
     exit 1 ;;
esac
