#!/usr/bin/env bash
# End to end: platoon-launch runs an example controller and 2 workers on a
# subset of Fashion-MNIST; the job must finish cleanly, report a test
# accuracy above a threshold, and leave no shared-memory segment behind.
#   e2e.sh <platoon-launch> <controller> <worker> <min accuracy> [extra worker flags...]
# Without the data set it exits 77, which ctest reports as skipped.
# PLATOON_E2E_CONTROLLER_FLAGS adds flags to the controller's command line
# (e.g. "--group-size 2" for synchronous workers).
set -euo pipefail
launch=$1 controller=$2 worker=$3 threshold=$4
shift 4
data=/usr/share/datasets/fashion-mnist
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
  # Exit 77: ctest reports the test as skipped (SKIP_RETURN_CODE), not passed.
  echo "skipped: Fashion-MNIST is not installed in $data (Debian package dataset-fashion-mnist)"
  exit 77
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
"$launch" --workers 2 --log-dir "$logs" \
  --controller "$controller --max-minibatches 800 --valid-every 200 --patience 100 ${PLATOON_E2E_CONTROLLER_FLAGS:-}" \
  --worker "$worker --train-limit 6000 $*" | tee "$logs/console.txt"
accuracy=$(grep -o 'final test accuracy [0-9.]*' "$logs/console.txt" | awk '{print $4}' | tail -n 1)
if [ -z "$accuracy" ]; then
  echo "FAIL: the job reported no test accuracy"
  exit 1
fi
validations=$(grep -c 'validation [0-9]*: accuracy' "$logs/console.txt" || true)
echo "test accuracy $accuracy after $validations validations (threshold $threshold)"
awk -v a="$accuracy" -v t="$threshold" 'BEGIN { exit !(a >= t) }' || { echo "FAIL: accuracy below $threshold"; exit 1; }
[ "$validations" -ge 3 ] || { echo "FAIL: expected at least 3 validations"; exit 1; }
# This job's segment (named by the launcher) must be gone; other tests' jobs may run beside it.
segment=$(grep -o 'shared-memory segment platoon-[A-Za-z0-9-]*' "$logs/console.txt" | head -n 1 | awk '{print $3}')
[ -n "$segment" ] || { echo "FAIL: the launcher did not name the job's segment"; exit 1; }
[ ! -e "/dev/shm/$segment" ] || { echo "FAIL: segment $segment was left behind"; exit 1; }
# And so must its other objects (group segments, slots, shared data).
left=$(ls /dev/shm | grep -F "$segment." || true)
[ -z "$left" ] || { echo "FAIL: left behind in /dev/shm: $left"; exit 1; }
echo "end-to-end run passed"
