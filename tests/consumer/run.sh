#!/usr/bin/env bash
# Builds the consumer project against an installed platoon with
# find_package(platoon), and runs its controller with one worker.
#   run.sh <consumer dir> <static|shared> --build <platoon build dir>
#       installs that build into a temporary prefix first
#   run.sh <consumer dir> <static|shared> --prefix <installed prefix>
#       uses a prefix that is already installed (and leaves it where it is)
# static|shared is the kind of libraries the install must hold: the consumer's
# programs must (shared) or must not (static) name libplatoon_*.so.0.
#
# The consumer sees what a user's machine with only the stated prerequisites
# would: its compiler's include path hides ZeroMQ's and Boost's headers, and
# CMake may not find cppzmq or Boost. So the build fails if a public header
# (every installed one is compiled) or the package config needs either.
#
# Nothing runs with LD_LIBRARY_PATH: the programs find shared libraries
# through their RPATH. Last, a copy of the prefix in another folder must still
# resolve every installed program's and library's libraries, from the copy:
# installed RPATHs are relative ($ORIGIN).
set -euo pipefail
usage() { echo "usage: run.sh <consumer dir> <static|shared> --build DIR | --prefix DIR" >&2; exit 2; }
[ $# -eq 4 ] || usage
here=$1
kind=$2
case $kind in static | shared) ;; *) usage ;; esac
work=$(mktemp -d)
controller=""
cleanup() {
  if [ -n "$controller" ]; then kill "$controller" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
case $3 in
  --build)
    prefix=$work/prefix
    cmake --install "$4" --prefix "$prefix" >/dev/null
    ;;
  --prefix) prefix=$(realpath "$4") ;;
  *) usage ;;
esac
unset LD_LIBRARY_PATH

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

# A shared install must not need what only static libraries pass on to the
# program: libzmq through pkg-config.
only_static=()
if [ "$kind" = shared ]; then only_static=(-DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON); fi

# One source file that includes every installed public header.
headers=$(cd "$prefix/include" && find platoon -name '*.hpp' | sort)
[ -n "$headers" ] || { echo "no public headers were installed"; exit 1; }
for h in $headers; do echo "#include <$h>"; done >"$work/all_headers.cpp"

cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_DISABLE_FIND_PACKAGE_cppzmq=ON -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON \
  -DCONSUMER_ALL_HEADERS="$work/all_headers.cpp" "${only_static[@]}" >/dev/null
cmake --build "$work/build"

# The programs link the kind of libraries the install holds.
for program in controller worker; do
  needed=$(readelf -d "$work/build/consumer_$program" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  if [ "$kind" = shared ] && ! grep -qx "libplatoon_$program.so.0" <<<"$needed"; then
    echo "consumer_$program does not link libplatoon_$program.so.0; it needs: $(echo $needed)"
    exit 1
  fi
  if [ "$kind" = static ] && grep -q '^libplatoon_' <<<"$needed"; then
    echo "consumer_$program links a shared platoon library in a static install: $(echo $needed)"
    exit 1
  fi
done

"$work/build/consumer_controller" >"$work/port" 2>"$work/controller.log" &
controller=$!
for _ in $(seq 100); do
  [ -s "$work/port" ] && break
  kill -0 "$controller" 2>/dev/null || break  # it exited: no port will come
  sleep 0.05
done
if [ ! -s "$work/port" ]; then
  echo "consumer_controller printed no port (it exited, or 5 s passed); its stderr:"
  cat "$work/controller.log"
  exit 1
fi
timeout 60 "$work/build/consumer_worker" "$(head -1 "$work/port")"
timeout 30 tail --pid=$controller -f /dev/null
wait "$controller"
controller=""

# Every installed program and shared library, in a copy of the prefix: each
# library it needs is found, and platoon's own are found in the copy.
cp -a "$prefix" "$work/moved"
checked=0
while read -r file; do
  readelf -d "$file" 2>/dev/null | grep -q '(NEEDED)' || continue  # links nothing, or not ELF
  libs=$(ldd "$file" 2>&1) || { echo "ldd $file failed: $libs"; exit 1; }
  if grep -q 'not found' <<<"$libs"; then
    echo "${file#"$work/moved/"} (prefix moved) misses libraries:"
    grep 'not found' <<<"$libs"
    exit 1
  fi
  if grep 'libplatoon_' <<<"$libs" | grep -v "=> $work/moved/"; then
    echo "${file#"$work/moved/"} (prefix moved) loads platoon from outside the prefix"
    exit 1
  fi
  checked=$((checked + 1))
done < <(find "$work/moved" -type f \( -path "$work/moved/bin/*" -o -name '*.so' -o -name '*.so.*' \) | sort)

echo "consumer project built against the installed $kind package ($(wc -l <"$work/all_headers.cpp") public headers," \
  "no ZeroMQ or Boost headers visible) and ran a job; $checked installed files find their libraries from a moved prefix"
