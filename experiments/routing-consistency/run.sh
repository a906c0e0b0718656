#!/bin/sh
# Local routing consistency (SRP and SCH, DESIGN.md section 4) of the real
# Mixtral-8x7B MT-Bench traces and of synthetic traces from the generators
# (independent tokens, and segment locality with reuse 0.3 and 0.7), with
# the "cache of about 2x active experts" knee.
#   experiments/routing-consistency/run.sh   (needs build-release/sim/moesim)
set -eu
cd "$(dirname "$0")/../.."
B=${MOESIM:-./build-release/sim/moesim}
D=experiments/routing-consistency
mkdir -p "$D/results"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for c in coding math humanities writing; do
  cp "workloads/traces/mixtral-8x7b-mtbench/$c.json" "$T/mixtral-$c.json"
done
# Synthetic Mixtral-shaped traces, 12000 tokens in sequences of 512, Zipf
# popularity like the real traces (moesim trace fit reads 0.35-0.42).
$B trace gen -g zipf -s zipf_s=0.4 -s sequence_len=512 -m mixtral-8x7b -t 12000 --seed 1 -o "$T/synthetic-independent.mtr"
$B trace gen -g segment -s zipf_s=0.4 -s reuse=0.3 -s sequence_len=512 -m mixtral-8x7b -t 12000 --seed 1 -o "$T/synthetic-reuse-0.3.mtr"
$B trace gen -g segment -s zipf_s=0.4 -s reuse=0.7 -s sequence_len=512 -m mixtral-8x7b -t 12000 --seed 1 -o "$T/synthetic-reuse-0.7.mtr"
echo "trace,m,srp,sch_c1,sch_c2,sch_c3,sch_c4,sch_c5,sch_c6,sch_c7,sch_c8" > "$D/results/lrc.csv"
for f in "$T"/*; do
  name=$(basename "$f" | sed 's/\.[a-z]*$//')
  $B lrc "$f" --json > "$T/out.json"
  python3 - "$name" "$T/out.json" >> "$D/results/lrc.csv" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
for s in d["segments"]:
    print(",".join([name, str(s["m"]), "%.4f" % s["srp"]] + ["%.4f" % v for v in s["sch"]]))
PY
done
gnuplot <<GP
set datafile separator ","
set key right bottom
set grid
set xlabel "cache size C (experts per layer; top-2 routing: 2 active)"
set ylabel "SCH(16, C), oracle cache hit rate"
set xrange [1:8]
set yrange [0:1]
do for [fmt in "png svg"] {
  if (fmt eq "svg") { set terminal svg size 720,460; set output "$D/sch.svg" } \
  else { set terminal pngcairo size 720,460; set output "$D/sch.png" }
  plot for [t in "mixtral-coding mixtral-math mixtral-humanities mixtral-writing synthetic-independent synthetic-reuse-0.3 synthetic-reuse-0.7"] \
    "< awk -F, '\$1==\"".t."\" && \$2==16 { for (c = 1; c <= 8; c++) print c \",\" \$(3 + c) }' $D/results/lrc.csv" u 1:2 w lp t t
}
GP
cat "$D/results/lrc.csv"
