#!/usr/bin/env bash
# Installs platoon from the build tree into a temporary prefix, builds the
# consumer project against it with find_package(platoon), and runs its
# controller with one worker.  Usage: run.sh <platoon build dir> <source dir>
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
cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build"
"$work/build/consumer_controller" >"$work/port" 2>"$work/controller.log" &
controller=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
timeout 60 "$work/build/consumer_worker" "$(head -1 "$work/port")"
timeout 30 tail --pid=$controller -f /dev/null
wait "$controller"
controller=""
echo "consumer project built against the installed package and ran a job"
