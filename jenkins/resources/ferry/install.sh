#!/bin/sh
# Installs a ferry release tarball (built by scripts/dist) on this agent, once
# per version: used by the ferryInstall step (libraryResource), runnable alone.
#
#   FERRY_ROOT      where to install: $FERRY_ROOT/bin/ferry
#   FERRY_VERSION   e.g. 0.1.0
#   FERRY_BASE_URL  where ferry-<version>-<arch>-linux.tar.gz are
#   FERRY_SHA256_X86_64, FERRY_SHA256_AARCH64
#                   the tarballs' SHA-256 (only this machine's is needed)
#
# The architecture is this machine's (`uname -m`). The tarball is checked
# before anything is unpacked, and unpacked beside FERRY_ROOT then renamed
# into place, so two executors installing at once never see half a ferry:
# the first rename wins, the other finds it installed. The SHA-256 an install
# came from is kept in $FERRY_ROOT/.sha256: an existing install is used only
# when it came from the tarball named now.
set -eu

case "$(uname -m)" in
x86_64 | amd64) arch=x86_64 sha=${FERRY_SHA256_X86_64:-} ;;
aarch64 | arm64) arch=aarch64 sha=${FERRY_SHA256_AARCH64:-} ;;
*)
    echo "ferryInstall: there is no ferry build for $(uname -m); ferry ships x86_64 and aarch64 Linux." >&2
    exit 1
    ;;
esac
if [ -z "$sha" ]; then
    echo "ferryInstall: this agent is $arch, and no sha256 was given for $arch (sha256: [$arch: '…'])." >&2
    exit 1
fi
# Exactly 64 hex digits: anything else (a short prefix, a second line) could
# make sha256sum -c pass without checking this tarball.
sha=$(printf '%s' "$sha" | tr 'A-F' 'a-f')
case "$sha" in
*[!0-9a-f]*) bad=1 ;;
*) [ ${#sha} -eq 64 ] && bad=0 || bad=1 ;;
esac
if [ "$bad" = 1 ]; then
    echo "ferryInstall: the sha256 given for $arch is not a SHA-256 (64 hex digits): not installed." >&2
    exit 1
fi

# The install that is there, if it came from this tarball.
installed() {
    [ -x "$FERRY_ROOT/bin/ferry" ] || return 1
    recorded=$(cat "$FERRY_ROOT/.sha256" 2>/dev/null || true)
    if [ "$recorded" != "$sha" ]; then
        echo "ferryInstall: $FERRY_ROOT was installed from a tarball with SHA-256 ${recorded:-(not recorded)}, not the $sha given now: not used. Remove $FERRY_ROOT to install the one given." >&2
        exit 1
    fi
}
if installed; then
    exit 0
fi
if [ -e "$FERRY_ROOT" ]; then
    echo "ferryInstall: $FERRY_ROOT exists but holds no bin/ferry (an install that broke off, or something else): remove it and re-run." >&2
    exit 1
fi
name="ferry-$FERRY_VERSION-$arch-linux"
parent=$(dirname "$FERRY_ROOT")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.install-XXXXXX")
fetch=
cleanup() {
    if [ -n "$fetch" ]; then kill "$fetch" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
# A Jenkins abort sends SIGTERM: take the download and the directory with us.
trap 'cleanup; trap - EXIT; exit 143' TERM
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 129' HUP
curl -fsSL "$FERRY_BASE_URL/$name.tar.gz" -o "$tmp/ferry.tar.gz" &
fetch=$!
wait "$fetch"
fetch=
if ! echo "$sha  $tmp/ferry.tar.gz" | sha256sum -c - >/dev/null 2>&1; then
    echo "ferryInstall: $FERRY_BASE_URL/$name.tar.gz does not have the SHA-256 given for $arch ($sha): not installed." >&2
    exit 1
fi
mkdir "$tmp/root"
tar -xzf "$tmp/ferry.tar.gz" -C "$tmp/root" --strip-components=1
echo "$sha" >"$tmp/root/.sha256"
# rename(2) of a directory onto a missing path is atomic; if another executor
# got there first, theirs stays and this copy is dropped.
mv -T "$tmp/root" "$FERRY_ROOT" 2>/dev/null || installed
