#!/bin/sh
# Installs a ferry release tarball (built by scripts/dist) on this agent, once
# per version: used by the ferryInstall step (libraryResource), runnable alone.
#
#   FERRY_ROOT      where to install: $FERRY_ROOT/bin/ferry
#   FERRY_VERSION   e.g. 0.2.0
#   FERRY_BASE_URL  where ferry-<version>-<arch>-linux.tar.gz are
#   FERRY_SHA256_X86_64, FERRY_SHA256_AARCH64
#                   the tarballs' SHA-256 (only this machine's is needed)
#
# The architecture is this machine's (`uname -m`). The tarball is checked
# before anything is unpacked, and unpacked beside FERRY_ROOT then renamed
# into place, so two executors installing at once never see half a ferry:
# the first rename wins, the other finds it installed.
set -eu

case "$(uname -m)" in
x86_64 | amd64) arch=x86_64 sha=${FERRY_SHA256_X86_64:-} ;;
aarch64 | arm64) arch=aarch64 sha=${FERRY_SHA256_AARCH64:-} ;;
*)
    echo "ferryInstall: there is no ferry build for $(uname -m); ferry ships x86_64 and aarch64 Linux." >&2
    exit 1
    ;;
esac
if [ -x "$FERRY_ROOT/bin/ferry" ]; then
    exit 0
fi
if [ -z "$sha" ]; then
    echo "ferryInstall: this agent is $arch, and no sha256 was given for $arch (sha256: [$arch: '…'])." >&2
    exit 1
fi
name="ferry-$FERRY_VERSION-$arch-linux"
parent=$(dirname "$FERRY_ROOT")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "$FERRY_BASE_URL/$name.tar.gz" -o "$tmp/ferry.tar.gz"
if ! echo "$sha  $tmp/ferry.tar.gz" | sha256sum -c - >/dev/null 2>&1; then
    echo "ferryInstall: $FERRY_BASE_URL/$name.tar.gz does not have the SHA-256 given for $arch ($sha): not installed." >&2
    exit 1
fi
mkdir "$tmp/root"
tar -xzf "$tmp/ferry.tar.gz" -C "$tmp/root" --strip-components=1
# rename(2) of a directory onto a missing path is atomic; if another executor
# got there first, theirs stays and this copy is dropped.
mv -T "$tmp/root" "$FERRY_ROOT" 2>/dev/null || [ -x "$FERRY_ROOT/bin/ferry" ]
