#!/usr/bin/env bash
# The headless browser the web app's end-to-end test drives
# (build/webe2e): Debian's chromium, started by playwright-core from the
# webapp's npm packages (playwright-core downloads no browser of its own).
# fonts-dejavu-core gives the screenshots readable text on a machine that
# has no fonts yet. A missing chromium fails that test, it never skips.
# To undo: apt-get remove chromium.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_install chromium fonts-dejavu-core
