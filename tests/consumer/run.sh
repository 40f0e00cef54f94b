#!/usr/bin/env bash
# Installs platoon from the build tree into a temporary prefix, builds the
# consumer project against it with find_package(platoon), and runs its
# controller with one worker.  Usage: run.sh <platoon build dir> <source dir>
#
# The consumer sees what a user's machine with only the stated prerequisites
# would: its compiler's include path hides ZeroMQ's and Boost's headers, and
# CMake may not find cppzmq or Boost. So the build fails if a public header
# (every installed one is compiled) or the package config needs either.
set -euo pipefail
build=$1
here=$2
work=$(mktemp -d)
controller=""
cleanup() {
  if [ -n "$controller" ]; then kill "$controller" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null

# The compiler's system include path, with /usr/include replaced by a copy
# (of links) that lacks ZeroMQ and Boost.
mkdir "$work/include"
for entry in /usr/include/*; do
  case ${entry##*/} in zmq.h | zmq_utils.h | zmq.hpp | zmq_addon.hpp | boost) continue ;; esac
  ln -s "$entry" "$work/include/"
done
flags="-nostdinc"
while read -r dir; do
  dir=$(realpath "$dir")
  case $dir in
    /usr/include) flags+=" -isystem $work/include" ;;
    /usr/include/*) flags+=" -isystem $work/include/${dir#/usr/include/}" ;;
    *) flags+=" -isystem $dir" ;;
  esac
done < <(c++ -xc++ -E -v /dev/null 2>&1 | sed -n '/search starts here:/,/End of search list/p' | grep '^ ')

# One source file that includes every installed public header.
headers=$(cd "$work/prefix/include" && find platoon -name '*.hpp' | sort)
[ -n "$headers" ] || { echo "no public headers were installed"; exit 1; }
for h in $headers; do echo "#include <$h>"; done >"$work/all_headers.cpp"

cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_DISABLE_FIND_PACKAGE_cppzmq=ON -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON \
  -DCONSUMER_ALL_HEADERS="$work/all_headers.cpp" >/dev/null
cmake --build "$work/build"
"$work/build/consumer_controller" >"$work/port" 2>"$work/controller.log" &
controller=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
timeout 60 "$work/build/consumer_worker" "$(head -1 "$work/port")"
timeout 30 tail --pid=$controller -f /dev/null
wait "$controller"
controller=""
echo "consumer project built against the installed package ($(wc -l <"$work/all_headers.cpp") public headers, no ZeroMQ or Boost headers visible) and ran a job"
