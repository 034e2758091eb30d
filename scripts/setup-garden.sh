#!/usr/bin/env bash
# Installs what the diego-garden tests and benchmarks need, and builds the busybox root
# filesystem the LinuxBackend tests use. Idempotent; run as root on a fresh machine.
#
#   /var/lib/diego-rs/rootfs/busybox       the rootfs directory
#   /var/lib/diego-rs/rootfs/busybox.tar   the same as a tarball
#
# Set DIEGO_GARDEN_ROOTFS to use another directory (the tests read the same variable).
set -euo pipefail

ROOTFS="${DIEGO_GARDEN_ROOTFS:-/var/lib/diego-rs/rootfs/busybox}"
TARBALL="${ROOTFS%/}.tar"

if [ "$(id -u)" != "0" ]; then
    echo "setup-garden: not root; the LinuxBackend tests will skip (no rootfs built)" >&2
    exit 0
fi

need_apt=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
# Bridged networking: nft drives the NAT rules; the tests use ip to make a second host.
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        # runc is only for the benchmark ratio; busybox, nftables and iproute2 are required.
        apt-get install -y -qq busybox-static nftables iproute2 >/dev/null
        apt-get install -y -qq runc >/dev/null 2>&1 || echo "setup-garden: runc not installed (benchmark ratio will skip)" >&2
    else
        echo "setup-garden: no apt-get; install busybox-static, nftables and iproute2 by hand" >&2
        exit 1
    fi
fi
if ! nft list tables >/dev/null 2>&1; then
    echo "setup-garden: nft cannot reach the kernel's nf_tables; the bridged LinuxBackend tests will fail" >&2
fi

BUSYBOX="$(command -v busybox || echo /bin/busybox)"
if ! "$BUSYBOX" --list 2>/dev/null | grep -qx sh; then
    echo "setup-garden: $BUSYBOX has no sh applet" >&2
    exit 1
fi

if [ ! -x "$ROOTFS/bin/busybox" ] || ! cmp -s "$BUSYBOX" "$ROOTFS/bin/busybox"; then
    mkdir -p "$(dirname "$ROOTFS")"
    tmp="$(mktemp -d "${ROOTFS%/}.tmp.XXXXXX")"
    chmod 755 "$tmp"
    mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,dev,sys,tmp,root,home,var/tmp}
    chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
    cp "$BUSYBOX" "$tmp/bin/busybox"
    for applet in $("$BUSYBOX" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$tmp/bin/$applet"
    done
    cat > "$tmp/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
vcap:x:2000:2000:vcap:/home/vcap:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
    cat > "$tmp/etc/group" <<'GROUP'
root:x:0:
vcap:x:2000:
nogroup:x:65534:
GROUP
    mkdir -p "$tmp/home/vcap" && chown 2000:2000 "$tmp/home/vcap"
    echo "127.0.0.1 localhost" > "$tmp/etc/hosts"
    mkdir -p "$(dirname "$ROOTFS")"
    rm -rf "$ROOTFS"
    mv "$tmp" "$ROOTFS"
    rm -f "$TARBALL"
fi
if [ ! -f "$TARBALL" ]; then
    tar -C "$ROOTFS" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
fi

echo "setup-garden: rootfs directory $ROOTFS"
echo "setup-garden: rootfs tarball $TARBALL"
