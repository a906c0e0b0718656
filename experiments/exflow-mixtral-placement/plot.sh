#!/bin/sh
# The figure of this study from results/results.csv (run.py writes it and
# then calls this script): cross-GPU fraction of top-1 layer boundaries on
# held-out Mixtral routing, mean over the four held-out categories, per
# layout and policy, beside ExFlow's published range.
#   experiments/exflow-mixtral-placement/plot.sh   -> placement.png, placement.svg
set -eu
cd "$(dirname "$0")"
T=$(mktemp)
trap 'rm -f "$T"' EXIT
# One row per layout: contiguous, exflow-ilp, affinity-local-search, in-sample
# means, then ExFlow's published range (low, high; 0 where none).
awk -F, 'NR > 1 { k = $2 SUBSEP $5; s[k] += $7; n[k]++; shapes[$2] = 1 }
  END {
    split("2 GPUs;4 GPUs;8 GPUs;2 nodes x 4 GPUs", order, ";");
    lo["4 GPUs"] = 0.58; hi["4 GPUs"] = 0.62; lo["8 GPUs"] = 0.73; hi["8 GPUs"] = 0.76;
    for (i = 1; i <= 4; i++) {
      sh = order[i]; if (!(sh in shapes)) continue;
      printf "\"%s\"", sh;
      split("contiguous exflow-ilp affinity-local-search in-sample", pol, " ");
      for (j = 1; j <= 4; j++) { k = sh SUBSEP pol[j]; printf " %.4f", n[k] ? s[k] / n[k] : 0 }
      m = (sh in lo) ? (lo[sh] + hi[sh]) / 2 : 0;
      printf " %.3f %.3f %.3f\n", m, (sh in lo) ? lo[sh] : 0, (sh in hi) ? hi[sh] : 0
    }
  }' results/results.csv > "$T"
gnuplot <<GP
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set yrange [0:1]
set grid ytics
set key outside bottom center horizontal maxrows 2
set ylabel "cross-GPU fraction (held-out, mean of 4)"
set title "Mixtral-8x7B expert placement, fit on 3 categories, evaluated on the 4th"
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 760,500; set output "placement.svg" } \
  else { set terminal pngcairo size 760,500; set output "placement.png" }
  plot "$T" u 2:2:2:xtic(1) t "contiguous", \
       "" u 3:3:3 t "exflow-ilp (GLPK, 60 s)", \
       "" u 4:4:4 t "affinity-local-search (default)", \
       "" u 5:5:5 t "in-sample optimum", \
       "" u 6:7:8 t "ExFlow, published"
}
GP
echo "wrote placement.png and placement.svg"
