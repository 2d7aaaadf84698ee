# Shared by the build/testdeps scripts: each installs or builds one thing
# the tests need, says what it does, and does nothing when it is already
# there (checked by version, not by the presence of a file).

# as_root runs a command as root: directly when we are root, else with sudo
# when it works without a password, else it fails saying why.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        echo "testdeps: setting up what the tests need takes root (to run: $*)." >&2
        echo "testdeps: run make test-deps (or make test) as root, or give this user sudo without a password." >&2
        return 1
    fi
}

say() { echo "testdeps: $*"; }

# A step that fails says where, instead of make reporting only an exit code.
trap 'rc=$?; echo "testdeps: ${BASH_SOURCE[0]##*/} failed at line $LINENO (exit $rc): $BASH_COMMAND" >&2' ERR

# apt_missing prints which of the given packages are not installed.
apt_missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

# apt_install installs the packages not installed yet, from the given apt
# target release when one is given (-t bookworm-backports).
apt_install() {
    local release=
    if [ "${1:-}" = "-t" ]; then release="$2"; shift 2; fi
    local missing
    missing=$(apt_missing "$@")
    if [ -z "$missing" ]; then
        say "$*: installed, nothing to do"
        return 0
    fi
    say "installing $(echo $missing) from Debian${release:+ ($release)} (about a minute)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${release:+-t "$release"} $missing
}
