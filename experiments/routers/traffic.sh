#!/bin/sh
# What each router does to all-to-all traffic, and the figures of this study.
#   experiments/routers/traffic.sh   (needs build-release/sim/moesim)
# Runs traffic.ini (4 routers x 2 placements x 2 schemes x 2 seeds, about 4
# minutes with 2 cores), writes traffic/ (the sweep), traffic.md (means over seeds), and
# plots fluctuation.png/.svg (from results.csv, made by run.sh) and
# traffic.png/.svg.
set -eu
cd "$(dirname "$0")/../.."
B=${MOESIM:-./build-release/sim/moesim}
D=experiments/routers
if [ "${PLOT_ONLY:-0}" != 1 ]; then # PLOT_ONLY=1: tables and figures from traffic/ again
  rm -rf "$D/traffic"
  $B sweep "$D/traffic.ini" -o "$D/traffic"
fi

# Means over seeds per (router, policy): all-to-all ms, step ms, cross-GPU
# fraction, dispatch GB.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  $c["status"] == "ok" {
    k = $c["router.router"] "," $c["engine.scheme"] "," $c["placement.policy"];
    if (!(k in n)) order[++no] = k;
    n[k]++; a[k] += $c["alltoall_time_s"]; t[k] += $c["time_s"];
    x[k] += $c["cross_gpu_fraction"]; d[k] += $c["dispatch_bytes"]
  }
  END { for (i = 1; i <= no; i++) { k = order[i];
    printf "%s,%.3f,%.3f,%.4f,%.3f\n", k, 1e3 * a[k] / n[k], 1e3 * t[k] / n[k], x[k] / n[k], d[k] / n[k] / 1e9 } }' \
  "$D/traffic/points.csv" > "$D/traffic/means.csv"
{
  echo "| router | scheme | placement | all-to-all (ms) | step (ms) | cross-GPU fraction | dispatch (GB) |"
  echo "|---|---|---|---|---|---|---|"
  awk -F, '{ printf "| %s | %s | %s | %.2f | %.2f | %.3f | %.2f |\n", $1, $2, $3, $4, $5, $6, $7 }' "$D/traffic/means.csv"
} > "$D/traffic.md"

gnuplot <<GP
set datafile separator ","
set grid
set key left top
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 720,460; set output "$D/fluctuation.svg" } \
  else { set terminal pngcairo size 720,460; set output "$D/fluctuation.png" }
  set xlabel "perturbation eps (h' = h + eps rms(h) xi)"
  set ylabel "fluctuation (share of top-1 changes), mixtral-8x7b"
  plot for [r in "topk similarity attention similarity-full attention-full recurrent"] \
    "< awk -F, '\$1==\"mixtral-8x7b\" && \$2==\"".r."\" { s[\$3] += \$5; n[\$3]++ } END { for (e in s) print e \",\" s[e] / n[e] }' $D/results.csv | sort -n" u 1:2 w lp t r
}
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside bottom center horizontal maxrows 2
set yrange [0:*]
unset xlabel
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 720,520; set output "$D/traffic.svg" } \
  else { set terminal pngcairo size 720,520; set output "$D/traffic.png" }
  set ylabel "all-to-all time per step (ms)"
  set title "Mixtral-8x7B prefill, 4096 tokens, one DGX H100"
  plot "< awk -F, '\$2==\"baseline-ep\" && \$3==\"contiguous\"' $D/traffic/means.csv" u 4:xtic(1) t "baseline EP, contiguous", \
       "< awk -F, '\$2==\"baseline-ep\" && \$3==\"affinity-local-search\"' $D/traffic/means.csv" u 4 t "baseline EP, affinity", \
       "< awk -F, '\$2==\"context-coherent\" && \$3==\"contiguous\"' $D/traffic/means.csv" u 4 t "context-coherent, contiguous", \
       "< awk -F, '\$2==\"context-coherent\" && \$3==\"affinity-local-search\"' $D/traffic/means.csv" u 4 t "context-coherent, affinity"
}
GP
cat "$D/traffic.md"
