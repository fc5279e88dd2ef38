#!/bin/sh
# collect-rootfs BINARY DEST: lays out in DEST everything BINARY needs to run from an
# empty (scratch) image:
#   /usr/local/bin/<name>           the binary
#   every shared library it needs, at the path the dynamic loader finds it, and the loader
#   /etc/ssl/certs/ca-certificates.crt, also as OpenSSL's default /usr/lib/ssl/cert.pem
#   /etc/passwd, /etc/group (root and nonroot = 65532), /etc/nsswitch.conf
#   /tmp (1777), a mount point for a writable tmpfs
# Native binaries: the libraries ldd resolves. A cross-compiled one (SYSROOT set, READELF
# the target's readelf, e.g. aarch64-linux-gnu-readelf): its interpreter and the closure of
# its DT_NEEDED libraries, looked up in SYSROOT's library directories. Runs in the image's
# build stage (Debian 12); fails if a library cannot be found.
set -eu
bin=$1
dest=$2
name=$(basename "$bin")

install -d "$dest/usr/local/bin" "$dest/etc/ssl/certs" "$dest/usr/lib/ssl"
install -m 0755 "$bin" "$dest/usr/local/bin/$name"

if [ -n "${SYSROOT:-}" ]; then
  readelf=${READELF:?READELF must name the target readelf with SYSROOT}
  copy() {  # copy PATH (absolute, as the target sees it) from the sysroot
    mkdir -p "$dest$(dirname "$1")"
    cp -L "$SYSROOT$1" "$dest$1"
  }
  interp=$($readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [ -n "$interp" ] && [ -e "$SYSROOT$interp" ] \
    || { echo "collect-rootfs: no interpreter '$interp' in $SYSROOT" >&2; exit 1; }
  copy "$interp"
  todo=$bin
  seen=" "
  while [ -n "$todo" ]; do
    file=${todo%% *}
    [ "$todo" = "$file" ] && todo="" || todo=${todo#* }
    for lib in $($readelf -d "$file" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
      case "$seen" in *" $lib "*) continue ;; esac
      seen="$seen$lib "
      found=""
      for dir in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /lib /usr/lib; do
        if [ -e "$SYSROOT$dir/$lib" ]; then found=$dir/$lib; break; fi
      done
      [ -n "$found" ] || { echo "collect-rootfs: $lib (needed by $file) not in $SYSROOT" >&2; exit 1; }
      copy "$found"
      todo="${todo:+$todo }$SYSROOT$found"
    done
  done
else
  if ldd "$bin" | grep -q 'not found'; then
    ldd "$bin" >&2
    echo "collect-rootfs: unresolved libraries for $bin" >&2
    exit 1
  fi
  # "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
    while read -r lib; do
      mkdir -p "$dest$(dirname "$lib")"
      cp -L "$lib" "$dest$lib"
    done
fi

cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$dest/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$dest/usr/lib/ssl/certs"

printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' \
  > "$dest/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$dest/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$dest/etc/nsswitch.conf"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group" "$dest/etc/nsswitch.conf"
install -d -m 1777 "$dest/tmp"
