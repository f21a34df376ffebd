#!/bin/sh
# /init of scripts/old-kernel.sh's initramfs (busybox): the host's / over 9p, read-only,
# under a tmpfs overlay as the new root, the results share at /ndpr-out, then the test
# runner scripts/old-kernel-guest.sh from the host's checkout.
export PATH=/bin
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys
busybox mount -t devtmpfs devtmpfs /dev
halt() {
    echo "init: $*"
    busybox sleep 1
    echo o >/proc/sysrq-trigger
    busybox sleep 10
}
for m in $(busybox cat /modules); do
    busybox modprobe "$m" || halt "modprobe $m failed"
done
busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /lower ||
    halt "mounting the host's root over 9p failed"
busybox mount -t tmpfs -o size=1536m tmpfs /upper
busybox mkdir -p /upper/up /upper/work
busybox mount -t overlay -o lowerdir=/lower,upperdir=/upper/up,workdir=/upper/work overlay /newroot ||
    halt "the overlay on the 9p root failed"
busybox mkdir -p /newroot/ndpr-out
busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ndprout /newroot/ndpr-out ||
    halt "mounting the results share failed"
. /newroot/ndpr-out/env
busybox umount /proc /sys /dev 2>/dev/null
exec busybox switch_root /newroot /bin/bash "$REPO/scripts/old-kernel-guest.sh"
