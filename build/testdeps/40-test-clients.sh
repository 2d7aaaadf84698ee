#!/usr/bin/env bash
# Independent client implementations the integration tests drive beside the
# project's own Go clients, so the bridge is checked against what people's
# apps really send: slixmpp (server/bridge/xmpp/slixmpptest) and matrix-nio
# (server/bridge/matrix/niotest). The tests run Debian's /usr/bin/python3
# with these modules; a missing one fails the test, it never skips.
#
# python3-slixmpp comes from bookworm main (1.8.3), not from backports (1.10):
# 1.8 still sends the older namespaces (urn:xmpp:feature-fallback:0,
# urn:xmpp:message-retract:0) that the bridge must keep understanding.
# python3-aiohttp is only a Recommends of python3-slixmpp, but its HTTP File
# Upload plugin (xep_0363) cannot upload without it. python3-matrix-nio is
# bookworm's 0.20.1.
# To undo: apt-get remove python3-slixmpp python3-aiohttp python3-matrix-nio.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_install python3 python3-slixmpp python3-aiohttp python3-matrix-nio
