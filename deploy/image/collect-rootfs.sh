#!/bin/sh
# collect-rootfs BINARY DEST: lays out in DEST everything BINARY needs to run from an
# empty (scratch) image:
#   /usr/local/bin/<name>           the binary
#   every shared library ldd resolves, at the path ldd shows, and the dynamic loader
#   /etc/ssl/certs/ca-certificates.crt, also as OpenSSL's default /usr/lib/ssl/cert.pem
#   /etc/passwd, /etc/group (root and nonroot = 65532), /etc/nsswitch.conf
#   /tmp (1777), a mount point for a writable tmpfs
# Runs in the image's build stage (Debian 12); fails if ldd cannot resolve a library.
set -eu
bin=$1
dest=$2
name=$(basename "$bin")

install -d "$dest/usr/local/bin" "$dest/etc/ssl/certs" "$dest/usr/lib/ssl"
install -m 0755 "$bin" "$dest/usr/local/bin/$name"

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

cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$dest/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$dest/usr/lib/ssl/certs"

printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' \
  > "$dest/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$dest/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$dest/etc/nsswitch.conf"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group" "$dest/etc/nsswitch.conf"
install -d -m 1777 "$dest/tmp"
