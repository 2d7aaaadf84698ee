#!/usr/bin/env bash
# Debian packages the build and the tests need: cgo for go test -race, and
# the XMPP server the tests start on loopback (server/bridge/xmpp/prosodytest).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apt_install gcc libc6-dev git make prosody prosody-modules
