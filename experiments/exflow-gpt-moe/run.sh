#!/bin/sh
# Runs the ExFlow GPT-MoE sweep and makes results/table.md and the figures.
#   experiments/exflow-gpt-moe/run.sh     (needs build-release/sim/moesim)
set -eu
cd "$(dirname "$0")/../.."
B=${MOESIM:-./build-release/sim/moesim}
D=experiments/exflow-gpt-moe
rm -rf "$D/results"
$B sweep "$D/sweep.ini" -o "$D/results" -j 2
# One row per (experts, GPUs): baseline-EP + contiguous (DeepSpeed-MoE) vs
# context-coherent + affinity placement (ExFlow).
awk -F, 'NR > 1 {
    key = $2 "," $3 * 4; v = $5 "/" $6
    t[key, v] = $9; a[key, v] = $11; keys[key] = 1 }
  END {
    print "experts,gpus,a2a_base_ms,a2a_exflow_ms,a2a_reduction,step_base_ms,step_exflow_ms,speedup"
    for (k in keys) {
      b = "baseline-ep/contiguous"; x = "context-coherent/affinity-local-search"
      printf "%s,%.4f,%.4f,%.3f,%.4f,%.4f,%.3f\n", k, a[k,b] * 1e3, a[k,x] * 1e3,
             1 - a[k,x] / a[k,b], t[k,b] * 1e3, t[k,x] * 1e3, t[k,b] / t[k,x] } }' \
  "$D/results/points.csv" | sed 's/gpt-moe-//; s/e,/,/' | sort -t, -k1,1n -k2,2n > "$D/results/summary.csv"
{
  echo "| experts | GPUs | all-to-all, baseline (ms) | all-to-all, ExFlow (ms) | reduction | step, baseline (ms) | step, ExFlow (ms) | throughput gain |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  tail -n +2 "$D/results/summary.csv" | awk -F, '{ printf "| %s | %s | %.3f | %.3f | %.0f %% | %.3f | %.3f | %.2fx |\n", $1, $2, $3, $4, 100 * $5, $6, $7, $8 }'
} > "$D/results/table.md"
gnuplot <<GP
set datafile separator ","
set key left top
set xlabel "GPUs (Wilkes3-like nodes of 4 A100)"
set logscale x 2
set grid
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 760,460; set output "$D/exflow-gpt-moe.svg" } \
  else { set terminal pngcairo size 760,460; set output "$D/exflow-gpt-moe.png" }
  set multiplot layout 1,2
  set ylabel "all-to-all time reduction"
  set yrange [0:1]
  plot for [e in "8 16 32 64"] "< awk -F, '\$1==".e."' $D/results/summary.csv" u 2:5 w lp t e." experts"
  set ylabel "throughput gain (x)"
  set yrange [0.8:*]
  plot for [e in "8 16 32 64"] "< awk -F, '\$1==".e."' $D/results/summary.csv" u 2:8 w lp t e." experts"
  unset multiplot
}
GP
cat "$D/results/table.md"
