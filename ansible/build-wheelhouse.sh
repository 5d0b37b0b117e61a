#!/bin/sh
# Build the wheelhouse that the playbook installs on the boxes (they need no package index).
#
#   ansible/build-wheelhouse.sh [--platform native|aarch64] [OUTDIR]
#
# native  : wheels for this machine's architecture (a box of the same kind, e.g. an x86_64 test box).
# aarch64 : wheels for a Raspberry Pi (64-bit Raspberry Pi OS bookworm, CPython 3.11): pure-Python
#           wheels are built here, compiled ones (numpy, pandas, pyarrow, ...) are downloaded as
#           manylinux aarch64 wheels with `pip download --platform ... --only-binary=:all:`.
# OUTDIR defaults to dist/wheelhouse (the playbook's common_wheelhouse_dir). PIP overrides the pip used.
set -eu
platform=native
if [ "${1:-}" = "--platform" ]; then platform=$2; shift 2; fi
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/dist/wheelhouse}
pip=${PIP:-python3 -m pip}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/sensor_box-*.whl "$out/SHA256SUMS"

case $platform in
native)
    $pip wheel --quiet --wheel-dir "$out" "$repo"
    ;;
aarch64)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Every requirement as a wheel for this machine; keep the platform-independent ones.
    $pip wheel --quiet --wheel-dir "$tmp" "$repo"
    cp "$tmp"/*-none-any.whl "$out"/
    # The rest as binary wheels for the Pi; the pure wheels above satisfy sdist-only packages.
    $pip download --quiet --dest "$out" --find-links "$out" --only-binary=:all: \
        --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        "$out"/sensor_box-*.whl
    ;;
*)
    echo "unknown platform: $platform (native or aarch64)" >&2
    exit 2
    ;;
esac

(cd "$out" && sha256sum ./*.whl > SHA256SUMS)
echo "wheelhouse: $out ($(wc -l < "$out/SHA256SUMS") wheels)"
