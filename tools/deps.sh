# Sourced by tools/test and tools/demo: installs the Debian packages platoon
# needs, only those that are missing (idempotent, quiet when all are there).

PLATOON_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libzmq3-dev cppzmq-dev nlohmann-json3-dev libboost-dev doctest-dev
  libeigen3-dev zlib1g-dev dataset-fashion-mnist
  libopenmpi-dev openmpi-bin libcli11-dev
  iproute2 util-linux   # the remote-host tests: ip netns, unshare
  python3-dev pybind11-dev python3-numpy python3-pytest   # the Python module and its tests
  python3-matplotlib python3-torch   # platoon-plot; the PyTorch example
)

platoon_missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# platoon_ensure_packages [extra packages...]
platoon_ensure_packages() {
  local missing
  missing=$(platoon_missing_packages "${PLATOON_PACKAGES[@]}" "$@")
  [ -z "$missing" ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "platoon: installing missing packages:" $missing
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
