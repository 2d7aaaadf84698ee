#!/usr/bin/env bash
# The XMPP servers the tests start on loopback, each with its own config and
# data in a temporary folder: Prosody 13 with prosody-modules
# (server/bridge/xmpp/prosodytest) and ejabberd 24.12
# (server/bridge/xmpp/ejabberdtest). On Debian bookworm both come from
# bookworm-backports, which this adds to apt's sources (same mirror as
# bookworm) when it is missing. Debian has one prosody package, so bookworm's
# Prosody 0.12 is upgraded to 13: the suite runs on current releases.
#
# The system services these packages install are stopped and disabled: the
# tests run their own instances, and nothing else should listen for XMPP on a
# test machine. To undo: apt-get remove prosody prosody-modules ejabberd, and
# delete /etc/apt/sources.list.d/bookworm-backports.sources.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# TESTDEPS_DRY_RUN=1 says what would be done as root without doing it.
if [ "${TESTDEPS_DRY_RUN:-}" = 1 ]; then
    as_root() { echo "testdeps: (dry run) would run: $*" >&2; }
fi

# Oldest versions the suite is known to pass on (dpkg version order).
PROSODY_MIN=13.0.1
PROSODY_MODULES_MIN=0.0~hg20250101
EJABBERD_MIN=24.12
BACKPORTS=bookworm-backports
SOURCES=/etc/apt/sources.list.d/$BACKPORTS.sources

# version prints a package's installed version, nothing if not installed.
version() {
    # dpkg-query fails for a package it never saw: that is "not installed",
    # not an error (pipefail would end the script without a word).
    { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true; } | sed -n 's/^install ok installed //p'
}

# at_least reports whether package $1 is installed in version $2 or later.
at_least() {
    local v
    v=$(version "$1")
    [ -n "$v" ] && dpkg --compare-versions "$v" ge "$2"
}

codename() {
    (. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

# add_backports adds bookworm-backports from the mirror apt already uses for
# bookworm, unless apt knows the suite already.
add_backports() {
    if apt-get indextargets --format '$(RELEASE)' 2>/dev/null | grep -qx "$BACKPORTS"; then
        return 0
    fi
    local mirror
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2 == "bookworm" { print $1; exit }')
    mirror=${mirror:-http://deb.debian.org/debian/}
    say "adding $BACKPORTS ($mirror) to apt's sources in $SOURCES"
    as_root tee "$SOURCES" >/dev/null <<EOF
# Added by build/testdeps/20-xmpp-servers.sh for Prosody 13 and ejabberd 24.12.
Types: deb
URIs: $mirror
Suites: $BACKPORTS
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# stop_service stops the system's instance of a server and keeps it from
# starting at boot; it does nothing when it is already off.
stop_service() {
    local svc=$1
    [ -e "/etc/init.d/$svc" ] || [ -e "/lib/systemd/system/$svc.service" ] || return 0
    if [ -d /run/systemd/system ]; then
        if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
            say "stopping and disabling the system's $svc service: the tests start their own"
            as_root systemctl disable --now --quiet "$svc"
        fi
        return 0
    fi
    if ls /etc/rc[2-5].d/S??"$svc" >/dev/null 2>&1; then
        say "keeping the system's $svc service from starting at boot: the tests start their own"
        as_root update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
    if pgrep -u "$svc" >/dev/null 2>&1; then
        say "stopping the system's $svc service: the tests start their own"
        as_root service "$svc" stop >/dev/null 2>&1 || true
    fi
}

need=()
at_least prosody "$PROSODY_MIN" || need+=(prosody)
at_least prosody-modules "$PROSODY_MODULES_MIN" || need+=(prosody-modules)
at_least ejabberd "$EJABBERD_MIN" || need+=(ejabberd)

if [ ${#need[@]} -gt 0 ]; then
    release=
    if [ "$(codename)" = bookworm ]; then
        add_backports
        release=$BACKPORTS
    fi
    have=
    for p in prosody prosody-modules ejabberd; do
        v=$(version "$p")
        [ -n "$v" ] && have="${have:+$have, }$p $v"
    done
    say "installing ${need[*]}${release:+ from $release}${have:+ (installed now: $have)}; about two minutes the first time"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ${release:+-t "$release"} "${need[@]}"
    for pv in "prosody $PROSODY_MIN" "prosody-modules $PROSODY_MODULES_MIN" "ejabberd $EJABBERD_MIN"; do
        set -- $pv
        if ! at_least "$1" "$2"; then
            echo "testdeps: $1 ${2}+ is needed, but apt installed '$(version "$1")'" >&2
            exit 1
        fi
    done
else
    say "prosody $(version prosody), prosody-modules, ejabberd $(version ejabberd): installed, nothing to do"
fi

stop_service ejabberd
stop_service prosody
