#!/bin/sh
# Build the wheelhouse that the playbook installs on the boxes (they need no package index).
#
#   ansible/build-wheelhouse.sh [--platform native|aarch64] [OUTDIR]
#
# native  : wheels for this machine's architecture (a box of the same kind, e.g. an x86_64 test box).
# aarch64 : wheels for a Raspberry Pi (64-bit Raspberry Pi OS bookworm, CPython 3.11): pure-Python
#           wheels are built here, compiled ones (numpy, pyarrow, ...) are downloaded as
#           manylinux aarch64 wheels with `pip download --platform ... --only-binary=:all:`.
# OUTDIR defaults to dist/wheelhouse (the playbook's common_wheelhouse_dir). PIP overrides the pip used.
#
# It builds the committed HEAD of this clone (uncommitted changes are not included), with the
# dashboard's front-end files fetched by `npm ci`, and it is reproducible: the same commit gives
# the same bytes (file times come from the commit, SOURCE_DATE_EPOCH), so rebuilding the wheelhouse
# is no upgrade for the playbook. Only the box's dependencies go in: not the analysis extras.
set -eu
platform=native
if [ "${1:-}" = "--platform" ]; then platform=$2; shift 2; fi
case $platform in native|aarch64) ;; *) echo "unknown platform: $platform (native or aarch64)" >&2; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/dist/wheelhouse}
pip=${PIP:-python3 -m pip}
for tool in git npm; do
    command -v $tool >/dev/null || { echo "build-wheelhouse: $tool is needed" >&2; exit 2; }
done

commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
    echo "build-wheelhouse: note: uncommitted changes are not built (building $commit)" >&2
fi
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct HEAD)
SENSOR_BOX_COMMIT=$commit
export SOURCE_DATE_EPOCH SENSOR_BOX_COMMIT

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir -p "$src" "$tmp/wheels"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$src"
(cd "$src/web/frontend" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build >/dev/null)

mkdir -p "$out"
out=$(cd "$out" && pwd)
before=$(cat "$out/SHA256SUMS" 2>/dev/null || true)
rm -f "$out"/*.whl "$out/SHA256SUMS"

case $platform in
native)
    $pip wheel --quiet --wheel-dir "$out" "$src"
    ;;
aarch64)
    # Every requirement as a wheel for this machine; keep the platform-independent ones.
    $pip wheel --quiet --wheel-dir "$tmp/wheels" "$src"
    cp "$tmp"/wheels/*-none-any.whl "$out"/
    # The rest as binary wheels for the Pi; the pure wheels above satisfy sdist-only packages.
    $pip download --quiet --dest "$out" --find-links "$out" --only-binary=:all: \
        --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        "$out"/sensor_box-*.whl
    ;;
esac

(cd "$out" && sha256sum ./*.whl > SHA256SUMS)
if [ "$before" = "$(cat "$out/SHA256SUMS")" ]; then state=unchanged; else state=changed; fi
echo "wheelhouse: $out ($(wc -l < "$out/SHA256SUMS") wheels, $(cd "$out" && ls sensor_box-*.whl)) ($state)"
