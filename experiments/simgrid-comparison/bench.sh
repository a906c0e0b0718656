#!/bin/sh
# Times SimGrid 3.32 and moesim on the same AllToAllv (README.md here).
#
#   experiments/simgrid-comparison/bench.sh [N ...]     (default: 16 32 64 128)
#
# For each N: the all-to-all of N GPUs on one non-blocking switch (450 GB/s
# per GPU and direction), one flow per ordered pair, with the per-pair bytes
# of `moesim bench network --skew 1 --seed 1` (lognormal, mean 1 MiB) rounded
# to whole bytes.  It runs, RUNS times each (default 3), and reports medians:
#   - moesim-simgrid with the DESIGN.md settings and otherwise SimGrid's
#     defaults (network/optim:Lazy, surf/precision:1e-9), one actor per
#     flow: the setup of the issue's reference times;
#   - moesim-simgrid as the cross-check runs it (network/optim:Full,
#     surf/precision:1e-12);
#   - moesim flows on the same files;
#   - moesim bench network --gpus N --skew 1 --topology switch (its own
#     median of RUNS).
# Table cells: the tools' own simulation wall times (input parsing and
# start-up excluded), then in parentheses the whole process's CPU time
# (user + system; for bench network per run), which load from other work on
# the machine inflates much less.  results.csv also has whole-process walls.  It also compares every
# completion time of moesim flows with SimGrid Full, and Lazy with Full.
#
# Environment: BUILD (build directory, default build; it must have been
# configured with SimGrid found), RUNS (default 3), SG_LIMIT (seconds: after
# an N whose SimGrid run took longer, larger N are skipped; default 300),
# OUT (results directory, default a temporary one; results.csv and table.md
# are written there).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
SG_LIMIT=${SG_LIMIT:-300}
SIZES=${*:-16 32 64 128}
MOESIM=$BUILD/sim/moesim
SG=$BUILD/tests/simgrid/moesim-simgrid
GEN=$BUILD/tests/simgrid/xcheck-gen
for b in "$MOESIM" "$SG" "$GEN"; do
  if [ ! -x "$b" ]; then
    echo "bench.sh: $b not found: build with SimGrid installed" \
         "(MSIM_WITH_SIMGRID=1 scripts/install-deps.sh; meson setup $BUILD; ninja -C $BUILD)" >&2
    exit 2
  fi
done
OUT=${OUT:-$(mktemp -d /tmp/moesim-sg-bench-XXXXXX)}
mkdir -p "$OUT"
# meson's MALLOC_PERTURB_ would make glibc write every actor stack.
unset MALLOC_PERTURB_ || true

now () { date +%s.%N; }
minus () { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.6f", a - b}'; }
median () { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# "... simulation wall 1.234 s" (moesim-simgrid) / "... re-solves, 0.092 s wall" (moesim flows)
sg_wall () { sed -n 's/.*simulation wall \([0-9.]*\) s.*/\1/p' "$1"; }
flows_wall () { sed -n 's/.*re-solves, \([0-9.]*\) s wall.*/\1/p' "$1"; }
rel_of () { sed -n 's/.*max rel (end) \([0-9.e+-]*\),.*/\1/p' "$1"; }
# The shell's `times` (children's user and system time) around a command:
# CPU seconds, which other work on the machine inflates much less than wall
# time.  timed OUT ERR CMD...: sets WALL and CPU.
cpu_of () {
  awk 'FNR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] } v[FILENAME] = s }
       END { printf "%.3f", v[ARGV[2]] - v[ARGV[1]] }' "$1" "$2"
}
timed () {
  o=$1 e=$2
  shift 2
  times > "$OUT/.times0"
  t0=$(now)
  "$@" > "$o" 2> "$e"
  t1=$(now)
  times > "$OUT/.times1"
  WALL=$(minus "$t1" "$t0")
  CPU=$(cpu_of "$OUT/.times0" "$OUT/.times1")
}

echo "N,flows,simgrid_lazy_s,simgrid_full_s,moesim_flows_s,moesim_bench_s,simgrid_lazy_cpu_s,simgrid_full_cpu_s,moesim_flows_cpu_s,moesim_bench_cpu_per_run_s,simgrid_lazy_process_s,simgrid_full_process_s,moesim_flows_process_s,rel_moesim_vs_full,rel_lazy_vs_full" \
  > "$OUT/results.csv"
{
  echo "| N | flows | SimGrid, default (Lazy) | SimGrid, Full | moesim flows | moesim bench network | SimGrid Full / moesim flows (CPU) | max rel diff moesim vs SimGrid Full | max rel diff SimGrid Lazy vs Full |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$OUT/table.md"

for n in $SIZES; do
  d=$OUT/n$n
  "$GEN" alltoall --gpus "$n" --skew 1 --seed 1 -o "$d" > /dev/null
  flows=$(($(wc -l < "$d/flows.csv") - 1))
  lazy="" full="" mf="" lazy_p="" full_p="" mf_p="" lazy_c="" full_c="" mf_c="" slowest=0
  for r in $(seq "$RUNS"); do
    timed /dev/null "$d/lazy.log" "$SG" --cfg=network/optim:Lazy --cfg=surf/precision:1e-9 -t "$d/topology.ini" -f "$d/flows.csv" -o "$d/lazy.csv"
    lazy="$lazy $(sg_wall "$d/lazy.log")" lazy_p="$lazy_p $WALL" lazy_c="$lazy_c $CPU" slowest=$WALL
    timed /dev/null "$d/full.log" "$SG" -t "$d/topology.ini" -f "$d/flows.csv" -o "$d/full.csv"
    full="$full $(sg_wall "$d/full.log")" full_p="$full_p $WALL" full_c="$full_c $CPU"
    timed "$d/moesim.log" /dev/null "$MOESIM" flows -t "$d/topology.ini" -f "$d/flows.csv" -o "$d/moesim.csv"
    mf="$mf $(flows_wall "$d/moesim.log")" mf_p="$mf_p $WALL" mf_c="$mf_c $CPU"
    echo "N=$n run $r: SimGrid Lazy $(sg_wall "$d/lazy.log") s, Full $(sg_wall "$d/full.log") s, moesim flows $(flows_wall "$d/moesim.log") s (simulation walls)" >&2
  done
  timed "$d/bench.log" /dev/null "$MOESIM" bench network --gpus "$n" --skew 1 --seed 1 --topology switch --runs "$RUNS"
  mb=$(awk '$1 == "switch" && $2 == "med" {print $3}' "$d/bench.log")
  mbc=$(awk -v c="$CPU" -v r="$RUNS" 'BEGIN {printf "%.4f", c / r}')
  "$GEN" compare "$d/moesim.csv" "$d/full.csv" --abs 1e-11 > "$d/cmp-moesim.txt" || true
  "$GEN" compare "$d/lazy.csv" "$d/full.csv" > "$d/cmp-lazy.txt" || true
  lm=$(echo "$lazy" | median) fm=$(echo "$full" | median) mm=$(echo "$mf" | median)
  lpm=$(echo "$lazy_p" | median) fpm=$(echo "$full_p" | median) mpm=$(echo "$mf_p" | median)
  lcm=$(echo "$lazy_c" | median) fcm=$(echo "$full_c" | median) mcm=$(echo "$mf_c" | median)
  r1=$(rel_of "$d/cmp-moesim.txt") r2=$(rel_of "$d/cmp-lazy.txt")
  echo "$n,$flows,$lm,$fm,$mm,$mb,$lcm,$fcm,$mcm,$mbc,$lpm,$fpm,$mpm,$r1,$r2" >> "$OUT/results.csv"
  ratio=$(awk -v a="$fcm" -v b="$mcm" 'BEGIN {if (b > 0) printf "%.0fx", a / b; else print "-"}')
  printf '| %s | %s | %.3f s (%.2f) | %.3f s (%.2f) | %.4f s (%.2f) | %.4f s (%.3f) | %s | %s | %s |\n' \
    "$n" "$flows" "$lm" "$lcm" "$fm" "$fcm" "$mm" "$mcm" "$mb" "$mbc" "$ratio" "$r1" "$r2" >> "$OUT/table.md"
  if awk -v a="$slowest" -v b="$SG_LIMIT" 'BEGIN {exit !(a > b)}'; then
    echo "bench.sh: SimGrid took ${slowest} s at N=$n (> SG_LIMIT=$SG_LIMIT s): stopping here" >&2
    break
  fi
done
rm -f "$OUT/.times0" "$OUT/.times1"
cat "$OUT/table.md"
echo "bench.sh: results in $OUT (results.csv, table.md, one directory per N)" >&2
