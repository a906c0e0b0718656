#!/bin/sh
# The fidelity table and its figure: relative error of every case, with the
# published range as an error bar, coloured by role.
#   experiments/fidelity/plot.sh   (needs build-release/sim/moesim)
# Writes table.md, results.csv, fidelity.png and fidelity.svg here.
set -eu
cd "$(dirname "$0")/../.."
B=${MOESIM:-./build-release/sim/moesim}
D=experiments/fidelity
$B fidelity "$D" -o "$D/table.md" > /dev/null
$B fidelity "$D" -o "$D/results.csv" > /dev/null
T=$(mktemp)
trap 'rm -f "$T"' EXIT
# index, case, error %, range low/high as errors relative to the published value, role
awk -F, 'NR > 1 { n++; low = 100 * ($7 / $6 - 1); high = 100 * ($7 / $5 - 1);
  printf "%d %s %.3f %.3f %.3f %s\n", n, $1, 100 * $8, low, high, $9 }' "$D/results.csv" > "$T"
N=$(wc -l < "$T")
gnuplot <<GP
set grid ytics
set xtics rotate by -40 left font ",8"
set ylabel "simulated vs published (%)"
set yrange [-80:20]
set xrange [0:$N + 1]
set key top left
set arrow from graph 0, first 10 to graph 1, first 10 nohead dt 2 lc "gray"
set arrow from graph 0, first -10 to graph 1, first -10 nohead dt 2 lc "gray"
set bmargin 12
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 1400,560; set output "$D/fidelity.svg" } \
  else { set terminal pngcairo size 1400,560; set output "$D/fidelity.png" }
  plot for [r in "validation calibration spec unmodelled"] \
    "< awk '\$6 == \"".r."\"' $T" u 1:3:4:5:xtic(2) w yerrorbars pt 7 t r
}
GP
echo "wrote $D/table.md, results.csv, fidelity.png and fidelity.svg"
