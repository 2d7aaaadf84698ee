#!/usr/bin/env bash
# Synapse, the second homeserver the Matrix tests run against
# (server/bridge/matrix/synapsetest). Debian packages matrix-synapse only in
# sid (not in bookworm or its backports), and these machines reach no Python
# package index, so this builds a Debian sid chroot with debootstrap, from the
# Debian mirror apt already uses, and installs matrix-synapse inside it. The
# tests run Synapse from it as root (chroot), on SQLite, on loopback, with
# their data bind-mounted in a private mount namespace (nothing stays mounted).
#
# Where: $SYNAPSE_CHROOT, by default /var/cache/mattermost-bridge-tests/sid-synapse
# (outside the repository; synapsetest reads the same variable). Remove it
# with `rm -rf /var/cache/mattermost-bridge-tests/sid-synapse` (nothing is
# mounted in it between test runs).
#
# Cost of the first run: 3 to 5 minutes (debootstrap of sid's minbase 1.5
# min, then matrix-synapse and its Python dependencies 1 to 3 min) and about
# 550 MB of disk. Afterwards it does nothing while the chroot holds
# matrix-synapse at SYNAPSE_MIN_VERSION or newer; an older one is upgraded
# from sid in place. The mirror is taken from apt's sources (override with
# $SYNAPSE_MIRROR). Sid's Release file on a mirror snapshot may be past its
# Valid-Until date, so apt in the chroot does not check it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHROOT="${SYNAPSE_CHROOT:-/var/cache/mattermost-bridge-tests/sid-synapse}"
# The oldest Synapse the suite was run against; keep in step with
# synapsetest.MinVersion.
SYNAPSE_MIN_VERSION=1.160.0

# debian_mirror prints the Debian archive URI apt uses (the first one that
# is not the security archive), or deb.debian.org.
debian_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
            -e 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' |
        grep -E '/debian/?$' | grep -v -- '-security' | head -n1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

# installed_version prints matrix-synapse's version in the chroot, or nothing.
installed_version() {
    [ -x "$CHROOT/usr/bin/dpkg-query" ] || return 0
    as_root chroot "$CHROOT" dpkg-query -W -f='${Status} ${Version}\n' matrix-synapse 2>/dev/null |
        sed -n 's/^install ok installed //p' || true
}

# unmount_under unmounts whatever an interrupted debootstrap left mounted
# below a directory (/proc, /sys), deepest first, so removing it cannot
# reach through a mount into the host's files.
unmount_under() {
    local m
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do as_root umount -l "$m"; done
}

version=$(installed_version)
if [ -n "$version" ] && dpkg --compare-versions "$version" ge "$SYNAPSE_MIN_VERSION"; then
    say "Synapse $version in $CHROOT: nothing to do"
    exit 0
fi

apt_install debootstrap
mirror="${SYNAPSE_MIRROR:-$(debian_mirror)}"
began=$(date +%s)

if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
    if [ -e "$CHROOT" ] && [ -n "$(ls -A "$CHROOT" 2>/dev/null)" ]; then
        echo "testdeps: $CHROOT exists but is no Debian chroot; remove it (rm -rf $CHROOT) and run again" >&2
        exit 1
    fi
    say "building a Debian sid chroot for Synapse in $CHROOT from $mirror (first run: 3 to 5 minutes, about 550 MB)"
    # Built beside its place and moved there when complete, so an interrupted
    # run leaves no half chroot behind that looks finished.
    tmp="$CHROOT.partial"
    unmount_under "$tmp"
    as_root rm -rf --one-file-system "$tmp"
    as_root mkdir -p "$(dirname "$CHROOT")"
    if ! as_root debootstrap --variant=minbase --include=ca-certificates sid "$tmp" "$mirror" >"/tmp/debootstrap-synapse.log" 2>&1; then
        echo "testdeps: debootstrap of sid failed; its log:" >&2
        tail -n 30 /tmp/debootstrap-synapse.log >&2
        exit 1
    fi
    as_root mv "$tmp" "$CHROOT"
fi

say "installing matrix-synapse (>= $SYNAPSE_MIN_VERSION) from sid in $CHROOT${version:+ (has $version)}"
# No service may start inside the chroot while packages are installed.
printf '#!/bin/sh\nexit 101\n' | as_root tee "$CHROOT/usr/sbin/policy-rc.d" >/dev/null
as_root chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
# A private mount namespace: /proc is mounted for apt only, and unmounted
# when it exits, whatever happens.
as_root unshare --mount --propagation private -- chroot "$CHROOT" /bin/sh -euc '
    mount -t proc proc /proc
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o Acquire::Check-Valid-Until=false update -qq
    apt-get -o Acquire::Check-Valid-Until=false install -y -qq --no-install-recommends matrix-synapse >/dev/null
    apt-get clean
'
version=$(installed_version)
if [ -z "$version" ] || ! dpkg --compare-versions "$version" ge "$SYNAPSE_MIN_VERSION"; then
    echo "testdeps: sid at $mirror has matrix-synapse ${version:-(none)}, older than $SYNAPSE_MIN_VERSION" >&2
    exit 1
fi
say "Synapse $version ready in $CHROOT ($(($(date +%s) - began)) s, $(as_root du -sh "$CHROOT" | cut -f1))"
