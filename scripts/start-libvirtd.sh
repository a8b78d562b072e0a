#!/bin/sh
# Start virtlogd and libvirtd without systemd and wait until qemu:///system answers.
# Idempotent: does nothing when libvirtd already answers; safe to run twice.
#
# /dev/kvm permissions (measured on the project's machines): with no udev running, /dev/kvm
# can be root:root 0600. QEMU's capability probe runs as libvirt-qemu, cannot open it, and
# records "no KVM"; libvirtd (root) then finds /dev/kvm usable and throws the cache away on
# every lookup, so each domain start re-probes QEMU for ~55 s. Applying udev's own rule
# (group kvm, mode 0660) makes the probe succeed once and domain starts take ~0.35 s, and
# KVM stays available, so the backend's detection can really try it.
#
# LABSITE_LIBVIRT_HIDE_KVM=1 instead runs libvirtd in its own mount namespace with /dev/kvm
# masked by /dev/null (the older workaround): domains can then only use TCG.
#
# Logs: <repo>/var/log/libvirtd.log and virtlogd.log.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOG_DIR="$ROOT/var/log"
URI=qemu:///system
mkdir -p "$LOG_DIR"

answers() { virsh -c "$URI" version >/dev/null 2>&1; }

# A pid file whose process is alive and not a zombie.
alive() {
    [ -f "$1" ] || return 1
    state=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
    case "$state" in Z*|"") return 1 ;; esac
}

if answers; then
    echo "libvirtd already answers on $URI"
    exit 0
fi

if [ -e /dev/kvm ] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

if ! alive /run/virtlogd.pid; then
    echo "starting virtlogd"
    setsid virtlogd >>"$LOG_DIR/virtlogd.log" 2>&1 </dev/null &
fi

if ! alive /run/libvirtd.pid; then
    echo "starting libvirtd"
    if [ "${LABSITE_LIBVIRT_HIDE_KVM:-0}" = 1 ] && [ -e /dev/kvm ]; then
        setsid unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd' \
            >>"$LOG_DIR/libvirtd.log" 2>&1 </dev/null &
    else
        setsid libvirtd >>"$LOG_DIR/libvirtd.log" 2>&1 </dev/null &
    fi
fi

tries=0
until answers; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ]; then
        echo "libvirtd did not answer on $URI within 60 s; see $LOG_DIR/libvirtd.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "libvirtd answers on $URI"
