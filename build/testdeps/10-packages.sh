#!/usr/bin/env bash
# Debian packages the build and the tests need: cgo for go test -race. The
# XMPP servers come from 20-xmpp-servers.sh (Prosody 13 and ejabberd from
# bookworm-backports).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apt_install gcc libc6-dev git make
