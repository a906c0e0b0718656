#!/bin/sh
# Installs what moesim needs (Debian packages), builds an optimised moesim,
# and runs the default job: one prefill step of Mixtral-8x7B on a DGX H100
# replaying a real routing trace (configs/default.ini).  Outputs go to
# out/default/ (summary.json, blocks.csv, timeline.json).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ -d build-release ]; then
  meson setup --reconfigure build-release --buildtype=release >/dev/null
else
  meson setup build-release --buildtype=release >/dev/null
fi
meson compile -C build-release moesim >/dev/null
mkdir -p out/default
./build-release/sim/moesim run configs/default.ini -o out/default --timeline out/default/timeline.json
