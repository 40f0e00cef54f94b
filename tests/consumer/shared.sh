#!/usr/bin/env bash
# Builds platoon's three libraries alone as shared libraries in a temporary
# folder, installs them, and checks the consumer project against that
# install (run.sh). Only the libraries are built, to keep it short.
#   shared.sh <platoon source dir> <consumer dir> <C++ compiler>
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: shared.sh <platoon source dir> <consumer dir> <C++ compiler>" >&2; exit 2; }
source_dir=$1
here=$2
compiler=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
cmake -S "$source_dir" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$compiler" \
  -DBUILD_SHARED_LIBS=ON -DPLATOON_BUILD_TESTS=OFF -DPLATOON_BUILD_EXAMPLES=OFF -DPLATOON_BUILD_TOOLS=OFF \
  -DPLATOON_BUILD_PYTHON=OFF >/dev/null
cmake --build "$work/build" -j2 >/dev/null
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
echo "built and installed the shared libraries in $((SECONDS - start)) s"
"$here/run.sh" "$here" shared --prefix "$work/prefix"
