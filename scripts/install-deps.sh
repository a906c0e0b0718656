#!/bin/sh
# Install the Debian packages moesim needs to build, test and plot.
# Idempotent: packages already present are skipped, so running it twice is
# cheap. Called by the README's two set-up commands and by .ci/run.
set -eu

# jq and python3 serve the experiment scripts (experiments/*/run.sh, run.py).
PKGS="meson ninja-build pkg-config gcc libc6-dev \
libglib2.0-dev libigraph-dev libgsl-dev check libglpk-dev libjson-glib-dev \
gnuplot-nox valgrind libopenmpi-dev openmpi-bin cppcheck jq python3"

# Optional: SimGrid and a C++ compiler for the cross-check of the flow model
# against SimGrid (tests/simgrid/, suite "simgrid"; built only when found).
# On request only: libsimgrid-dev pulls in the Boost headers and ns-3, about
# 23 MB to download and 200 MB installed (~10 s from a near mirror).
#   MSIM_WITH_SIMGRID=1 scripts/install-deps.sh
if [ -n "${MSIM_WITH_SIMGRID:-}" ]; then
  PKGS="$PKGS g++ libsimgrid-dev"
fi

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
