#!/bin/sh
# Single-path ECMP vs application-level flow splitting into k sub-flows vs
# ideal spraying, for the MoE all-to-alls of one Mixtral-8x7B prefill step
# (8192 tokens of the MT-Bench writing trace) on a 16-node leaf-spine with
# 4 spines, at oversubscription 1:1, 2:1 and 4:1.
#   experiments/leaf-spine-paths/run.sh   (needs build-release/sim/moesim)
# Writes results/ (the sweep), table.md and leaf-spine.png/.svg.
set -eu
cd "$(dirname "$0")/../.."
B=${MOESIM:-./build-release/sim/moesim}
D=experiments/leaf-spine-paths
rm -rf "$D/results"
$B sweep "$D/sweep.ini" -o "$D/results"

# One row per (oversubscription, strategy); spraying ignores the sub-flow
# count, so its four sweep points are identical and one is kept.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  {
    o = $c["topology.override.oversubscription"]; k = $c["engine.alltoall_subflows"];
    s = $c["engine.alltoall_spray"];
    if (s == "true" && k != 1) next;
    name = (s == "true") ? "spray" : (k == 1 ? "ecmp" : "split-" k);
    rank = (s == "true") ? 9 : k;
    printf "%s,%s,%.3f,%.3f,%.3f,%d\n", o, name, 1e3 * $c["alltoall_time_s"],
      1e3 * $c["max_link_load_s"], 1e3 * $c["time_s"], rank
  }' "$D/results/points.csv" | sort -t, -k1,1n -k6,6n | cut -d, -f1-5 > "$D/results/strategies.csv"

{
  echo "| oversubscription | strategy | all-to-all time (ms) | vs spray | max link busy time (ms) | step time (ms) |"
  echo "|---|---|---|---|---|---|"
  awk -F, '{ row[NR] = $0; if ($2 == "spray") spray[$1] = $3 }
    END { for (i = 1; i <= NR; i++) { split(row[i], f, ",");
      printf "| %s:1 | %s | %.2f | %+.1f %% | %.2f | %.2f |\n", f[1], f[2], f[3],
        100 * (f[3] / spray[f[1]] - 1), f[4], f[5] } }' "$D/results/strategies.csv"
} > "$D/table.md"

gnuplot <<GP
set datafile separator ","
set key left top
set grid
set xlabel "leaf-spine oversubscription (x:1)"
set ylabel "all-to-all time per prefill step (ms)"
set logscale x 2
set xtics ("1" 1, "2" 2, "4" 4)
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 720,460; set output "$D/leaf-spine.svg" } \
  else { set terminal pngcairo size 720,460; set output "$D/leaf-spine.png" }
  plot for [s in "ecmp split-2 split-4 split-8 spray"] \
    "< awk -F, '\$2==\"".s."\"' $D/results/strategies.csv" u 1:3 w lp t s
}
GP
cat "$D/table.md"
