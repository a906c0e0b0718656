#!/bin/sh
# Simulator wall time vs GPUs and tokens, max-min vs analytical network, and
# the 1000-point analytical sweep (-j1 vs -j2, side by side).
#   experiments/scaling/run.sh            # writes results/ and scaling.png/.svg
# Needs a release build: meson setup build-release --buildtype=release
set -eu
cd "$(dirname "$0")/../.."
B=./build-release/sim/moesim
OUT=experiments/scaling/results
mkdir -p "$OUT"

# 1. bench step over cluster sizes (nodes of 4 A100) and token counts.
echo "gpus,tokens,network,wall_s" > "$OUT/step-wall.csv"
for nodes in 2 4 8 16 32 64 128 256; do
  for tokens in 4096 16384; do
    [ "$tokens" -ge $((nodes * 4)) ] || continue
    $B bench step --nodes "$nodes" --tokens "$tokens" --runs 3 \
      | awk -v g=$((nodes * 4)) -v t="$tokens" '$2 == "med" { print g "," t "," $1 "," $3 }' \
      >> "$OUT/step-wall.csv"
  done
done

# 2. The 1000-point analytical sweep, -j1 then -j2.
rm -rf "$OUT/sweep-j1" "$OUT/sweep-j2"
$B sweep experiments/scaling/sweep-1000.ini -o "$OUT/sweep-j1" -j 1 | tee "$OUT/sweep-j1.txt"
$B sweep experiments/scaling/sweep-1000.ini -o "$OUT/sweep-j2" -j 2 | tee "$OUT/sweep-j2.txt"
cmp "$OUT/sweep-j1/points.csv" "$OUT/sweep-j2/points.csv"

# 3. Figure.
gnuplot <<'GP'
set datafile separator ","
set logscale xy
set key left top
set xlabel "GPUs"
set ylabel "wall time per prefill step (s)"
set grid
do for [fmt in "pngcairo svg"] {
  if (fmt eq "svg") { set terminal svg size 720,480; set output "experiments/scaling/scaling.svg" } \
  else { set terminal pngcairo size 720,480; set output "experiments/scaling/scaling.png" }
  plot "< awk -F, '$3==\"maxmin\" && $2==16384' experiments/scaling/results/step-wall.csv" u 1:4 w lp t "max-min, 16384 tokens", \
       "< awk -F, '$3==\"analytical\" && $2==16384' experiments/scaling/results/step-wall.csv" u 1:4 w lp t "analytical, 16384 tokens", \
       "< awk -F, '$3==\"maxmin\" && $2==4096' experiments/scaling/results/step-wall.csv" u 1:4 w lp t "max-min, 4096 tokens", \
       "< awk -F, '$3==\"analytical\" && $2==4096' experiments/scaling/results/step-wall.csv" u 1:4 w lp t "analytical, 4096 tokens"
}
GP
echo "wrote experiments/scaling/scaling.png and .svg"
