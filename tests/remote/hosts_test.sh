#!/usr/bin/env bash
# Workers on other hosts, for real: two "hosts" made of network namespaces
# joined by a veth pair, on the test network 192.0.2.0/24 (never any other
# address), and the second host with a /dev/shm of its own, so that it
# cannot see the center's segment.
#
#   h1 (192.0.2.1): the controller, its parameter server, worker 0 (creates the center)
#   h2 (192.0.2.2): worker 1, transport automatic: it must find no segment and pick TCP;
#                   a worker told shared_memory there must fail naming the segment
#
# Both endpoints are off loopback, so CURVE is on. Checks: EASGD's conserved
# sum over the center and both workers, worker 1 synced over TCP, worker 0
# through shared memory. Exits 77 (skipped, with the reason) where network
# namespaces cannot be made.
#
# Then the same through platoon-launch --remote-workers 1 --address
# 192.0.2.1 in h1: the remote worker on h2 is started with the command the
# launcher printed (its remote-worker.sh), and the job must end well.
#
# usage: hosts_test.sh PLATOON_TEST_JOB PLATOON_LAUNCH
set -euo pipefail
job=$1
launch=$2
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"
command -v unshare >/dev/null || skip "no 'unshare' command"

p="pt$$"  # a unique prefix per run: parallel runs and a killed run's leftovers never collide
h1="${p}h1" h2="${p}h2"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -z "${PLATOON_KEEP_LOGS:-}" ] || cat "$work"/launch.log
  ip netns del "$h1" 2>/dev/null || true
  ip netns del "$h2" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$h1" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$h2"
ip link add "${p}a" type veth peer name "${p}b"
ip link set "${p}a" netns "$h1"
ip link set "${p}b" netns "$h2"
ip -n "$h1" addr add 192.0.2.1/24 dev "${p}a"
ip -n "$h2" addr add 192.0.2.2/24 dev "${p}b"
for h in "$h1" "$h2"; do ip -n "$h" link set lo up; done
ip -n "$h1" link set "${p}a" up
ip -n "$h2" link set "${p}b" up
ip netns exec "$h2" unshare -m --propagation private true 2>/dev/null || skip "cannot make a private mount namespace"

server_keys="$work/server.keys" worker_keys="$work/worker.keys"
"$job" keygen --out "$server_keys" >/dev/null
worker_public=$("$job" keygen --out "$worker_keys")
server_public=$(sed -n 's/^public //p' "$server_keys")

fail() {
  echo "FAILED: $*"
  for log in "$work"/*.log; do echo "---- $log"; cat "$log"; done
  exit 1
}
# bounded_wait SECONDS PID...: waits for each in turn; fails naming it when
# one is still running after SECONDS in all, or ends with an error.
bounded_wait() {
  local deadline=$((SECONDS + $1)) pid
  shift
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] || fail "process $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-80)) still runs after the bound"
      sleep 0.05
    done
    wait "$pid" || fail "process $pid failed"
  done
}
wait_for() {  # wait_for FILE PATTERN SECONDS
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no '$2' in $1 within $3 s"
    sleep 0.05
  done
}

steps=60 size=1000
ip netns exec "$h1" "$job" controller --port-file "$work/port" --workers 2 --steps "$steps" --result "$work/result.json" \
  --bind "tcp://192.0.2.1:*" --param-server "tcp://192.0.2.1:*" \
  --server-keys "$server_keys" --allowed-key "$worker_public" >"$work/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || fail "the controller wrote no endpoint"
endpoint=$(cat "$work/port")
case "$endpoint" in tcp://192.0.2.1:*) ;; *) fail "the controller bound $endpoint, not 192.0.2.1" ;; esac

worker_args=(--endpoint "$endpoint" --size "$size" --tau 3 --alpha 0.4 --chunk 128
             --server-public-key "$server_public" --client-keys "$worker_keys")
ip netns exec "$h1" "$job" worker --index 0 "${worker_args[@]}" --step-ms 2 >"$work/worker-0.log" 2>&1 &
pids+=($!)
wait_for "$work/worker-0.log" "created the center" 30

# On h2, with a /dev/shm of its own: the center cannot be mapped there.
on_h2() { ip netns exec "$h2" unshare -m --propagation private sh -c 'mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"' sh "$@"; }
if on_h2 "$job" worker --index 1 "${worker_args[@]}" --transport shared_memory >"$work/worker-shm.log" 2>&1; then
  fail "a worker told to use shared memory on h2 found the center there"
fi
grep -q "cannot open shared-memory segment 'platoon-" "$work/worker-shm.log" || fail "the shared_memory worker on h2 did not name the segment"
on_h2 "$job" worker --index 1 "${worker_args[@]}" --step-ms 1 >"$work/worker-1.log" 2>&1 &
pids+=($!)

bounded_wait 60 "${pids[2]}" "${pids[1]}" "${pids[0]}"  # worker 1 on h2, worker 0, the controller
pids=()
grep -q "syncs over TCP with the center" "$work/worker-1.log" || fail "worker 1 on h2 did not pick TCP"
grep -q "parameter server listening on tcp://192.0.2.1" "$work/controller.log" || fail "no parameter server on 192.0.2.1"

check_result() {  # check_result RESULT_JSON
  /usr/bin/python3 - "$1" "$steps" "$size" <<'PY' || fail "the result does not hold"
import json, sys
result = json.load(open(sys.argv[1]))
steps, size = int(sys.argv[2]), int(sys.argv[3])
reports = result["reports"]
assert len(reports) == 2, f"{len(reports)} reports"
assert sorted(r["remote"] for r in reports) == [False, True], "one worker through shared memory, one over TCP"
center = result["center"]
worst = 0.0
for j in range(size):
    total = center[j] + sum(r["local"][j] for r in reports)
    expected = 3.0 + steps * sum(0.001 * (r["index"] + 1) * (j % 7 + 1) for r in reports)
    worst = max(worst, abs(total - expected) / expected)
assert worst < 1e-4, f"EASGD's sum is off by {worst:.2e}"
assert any(abs(c - 1.0) > 1e-3 for c in center), "the center never moved"
print(f"conserved within {worst:.1e}; the worker on h2 synced over TCP with CURVE, the other through shared memory")
PY
}
check_result "$work/result.json"

# The same job through platoon-launch --remote-workers.
ip netns exec "$h1" "$launch" --workers 1 --remote-workers 1 --address 192.0.2.1 --log-dir "$work/run" \
  --controller "$job controller --port-file $work/port2 --workers 2 --steps $steps --result $work/result2.json" \
  --worker "$job worker --index 0 --size $size --tau 3 --alpha 0.4 --chunk 128 --step-ms 2" >"$work/launch.log" 2>&1 &
launcher=$!
pids+=("$launcher")
deadline=$((SECONDS + 60))
script=""
until [ -n "$script" ]; do
  script=$(find "$work/run" -name remote-worker.sh 2>/dev/null | head -n 1 || true)
  [ "$SECONDS" -lt "$deadline" ] || fail "platoon-launch wrote no remote-worker.sh"
  kill -0 "$launcher" 2>/dev/null || [ -n "$script" ] || fail "platoon-launch ended before announcing the remote worker"
  sleep 0.05
done
grep -q "this job takes 1 worker(s) on other hosts" "$work/launch.log" || fail "the launcher did not print the command"
grep -q -- "--endpoint tcp://192.0.2.1:" "$script" || fail "the remote command has no endpoint on 192.0.2.1"
on_h2 sh "$script" 0 >"$work/remote-0.log" 2>&1 &
pids+=($!)
bounded_wait 60 "${pids[1]}" "$launcher"  # the remote worker, then the launcher
pids=()
grep -q "syncs over TCP with the center" "$work/remote-0.log" || fail "the remote worker did not pick TCP"
check_result "$work/result2.json"
echo "hosts test: passed"
