#!/usr/bin/env bash
# Independent client implementations the integration tests send with, beside
# the project's own Go clients, so the bridge is checked against what real
# people's apps send and not only against what our own client produces:
# matrix-nio (python3-matrix-nio, 0.20.1 in bookworm) drives the Matrix
# client checks (server/bridge/matrix/niotest). The tests run the system's
# python3 with these modules; a missing one fails the test, it never skips.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apt_install python3 python3-matrix-nio
