#!/bin/sh
# Expert offloading study (README.md here): Mixtral-8x7B decoding with its
# experts in host memory, on one H100 and on 2 and 4 H100s of a DGX H100,
# replaying the four MT-Bench routing traces.
#
#   experiments/offloading/run.sh            # all studies, then tables and figures
#   PLOT_ONLY=1 experiments/offloading/run.sh  # redo tables and figures from results/
#
# Environment: BUILD (build directory, default build), MOESIM (the binary,
# default $BUILD/sim/moesim), JOBS (parallel runs, default: the cores),
# OUT (results directory, default experiments/offloading/results).
#
# Every point is one `moesim offload` run with --set overrides of the
# configs here; its JSON is reduced to one CSV row by jq.  Studies:
#   cache     latency and hit rate vs cache size C (experts per layer per
#             GPU), every policy, 1 GPU (C = 1..8) and 2, 4 GPUs (C = 1..E/G)
#   memory    on-demand and pre-gated with a buffer of 2k = 4 experts
#             (the current and next layer), Pre-gated MoE's memory setting
#   accuracy  pre-gate prediction accuracy 1, 0.946 (the pre-gated router's
#             measured recall), 0.8, 0.6
#   pcie      host-link bandwidth x1, x4, x16, x64 (pre-gating vs on-demand)
#   batch     batch 1, 4, 16, 64
#   switch    Switch-Base-128 on one A100 (PCIe Gen4), synthetic trace of the
#             pre-gated router: on-demand vs pre-gated with exact predictions
#             and with the router's own (batch 1 and 8)
# Points beyond 80 GiB of GPU memory are simulated (memory_check = false)
# and flagged oom = 1.
set -eu
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/../.."
HERE=experiments/offloading
BUILD=${BUILD:-build}
MOESIM=${MOESIM:-$BUILD/sim/moesim}
JOBS=${JOBS:-$(nproc)}
OUT=${OUT:-$HERE/results}
TRACES="coding math humanities writing"
HBM=85899345920
mkdir -p "$OUT"

policy_sets () {
  case $1 in
    pregated-router) echo "--set offload.policy=pregated --set offload.predicted_trace=$OUT/.switch/predicted.mtr" ;;
    lru+pregate) echo "--set offload.policy=lru --set offload.prefetch=pregate" ;;
    oracle-evict) echo "--set offload.policy=sch-oracle --set offload.prefetch=none" ;;
    *) echo "--set offload.policy=$1" ;;
  esac
}

# One point: study gpus trace policy cache batch accuracy pcie_scale
point () {
  study=$1 gpus=$2 trace=$3 policy=$4 cache=$5 batch=$6 acc=$7 scale=$8
  dir=$(mktemp -d "${TMPDIR:-/tmp}/moesim-offload.XXXXXX")
  tracefile=workloads/traces/mixtral-8x7b-mtbench/$trace.json
  if [ "$study" = switch ]; then
    cfg=$HERE/switch-a100.ini
    tracefile=$OUT/.switch/trace.mtr
    topo=""
  elif [ "$gpus" = 1 ]; then
    cfg=$HERE/mixtral-h100.ini
    if [ "$scale" != 1 ]; then
      # The host link at $scale x PCIe Gen5.
      awk -v s="$scale" '/^bandwidth = /{ printf "bandwidth = %.6g\n", 63e9 * s; next } { print }' \
        $HERE/h100-single.ini > "$dir/topo.ini"
      sed "s|^file = h100-single.ini|file = $dir/topo.ini|" "$cfg" > "$dir/cfg.ini"
      cfg=$dir/cfg.ini
    fi
    topo=""
  else
    cfg=$HERE/mixtral-dgx.ini
    topo="--set topology.override.gpus=$gpus"
  fi
  steps="--set offload.steps=256 --set offload.warmup_steps=16"
  if [ "$batch" -gt 16 ]; then
    steps="--set offload.steps=128 --set offload.warmup_steps=16"
  fi
  case $cache in
    b*) cachekey="--set offload.cache_experts_per_layer=0 --set offload.cache_bytes=${cache#b}" ;;
    *) cachekey="--set offload.cache_experts_per_layer=$cache" ;;
  esac
  # shellcheck disable=SC2046,SC2086
  if ! "$MOESIM" offload "$cfg" -q -o "$dir" $topo $(policy_sets "$policy") $cachekey $steps \
      --set workload.trace="$tracefile" \
      --set offload.batch="$batch" --set offload.prediction_accuracy="$acc" \
      --set offload.memory_check=false > "$dir/log" 2>&1; then
    echo "point $*: failed" >&2
    cat "$dir/log" >&2
    rm -rf "$dir"
    return 1
  fi
  jq -r --arg study "$study" --arg gpus "$gpus" --arg trace "$trace" --arg policy "$policy" \
    --arg cache "$cache" --arg batch "$batch" --arg acc "$acc" --arg scale "$scale" \
    --argjson hbm "$HBM" '
    .summary as $s | .setup as $u |
    [$study, $gpus, $trace, $policy, $u.prefetch, $cache, $batch, $acc, ($scale | tonumber) * 63,
     $s.latency_per_token_s * 1e3, $s.latency_p99_s * 1e3, $s.tokens_per_s,
     $s.hit_rate, $s.hit_rate_sch_convention, $s.resident_rate, $s.sch, $s.sch_cache,
     $s.fetches, $s.prefetches, $s.bytes_fetched / 1e9, $s.stall_per_token_s * 1e3,
     $s.memory_used_bytes / 1073741824, (if $s.memory_used_bytes > $hbm then 1 else 0 end),
     ($s.prediction_recall // "")]
    | map(tostring) | join(",")' "$dir/offload.json"
  rm -rf "$dir"
}

points () {
  for t in $TRACES; do
    for p in on-demand pregated lru lfu lru+pregate sch-oracle oracle-evict; do
      for c in 1 2 3 4 5 6 7 8; do echo "cache 1 $t $p $c 1 1 1"; done
      for c in 1 2 3 4; do echo "cache 2 $t $p $c 1 1 1"; done
      for c in 1 2; do echo "cache 4 $t $p $c 1 1 1"; done
    done
    # 4 experts of 352,321,536 bytes: the current and the next layer's top-2.
    for p in on-demand pregated; do echo "memory 1 $t $p b1409286144 1 1 1"; done
    for a in 1 0.946 0.8 0.6; do
      echo "accuracy 1 $t pregated 4 1 $a 1"
      echo "accuracy 1 $t lru+pregate 4 1 $a 1"
    done
    for s in 1 4 16 64; do
      echo "pcie 1 $t on-demand 4 1 1 $s"
      echo "pcie 1 $t pregated 4 1 1 $s"
      echo "pcie 1 $t lru 4 1 1 $s"
      echo "pcie 1 $t lru+pregate 4 1 1 $s"
    done
    for b in 1 4 16 64; do
      for p in on-demand pregated lru lru+pregate; do echo "batch 1 $t $p 4 $b 1 1"; done
    done
  done
  for b in 1 8; do
    for p in on-demand pregated pregated-router; do echo "switch 1 synthetic $p 128 $b 1 0.5"; done
  done
}

HEADER="study,gpus,trace,policy,prefetch,cache,batch,accuracy,host_GBps,latency_ms,p99_ms,tokens_per_s,hit_rate,sch_hit_rate,resident_rate,sch,sch_cache,fetches,prefetches,fetched_GB,stall_ms,memory_GiB,oom,prediction_recall"

if [ "${1:-}" = "--point" ]; then
  shift
  point "$@"
  exit
fi

if [ -z "${PLOT_ONLY:-}" ]; then
  [ -x "$MOESIM" ] || { echo "run.sh: no $MOESIM (build first, or set MOESIM)" >&2; exit 2; }
  export MOESIM OUT
  # Switch-Base-128: a synthetic trace routed by the pre-gated router, with
  # its predictions of every next layer.
  mkdir -p "$OUT/.switch"
  "$MOESIM" trace gen -r pregated -m switch-base-128 -t 4352 --seed 1 \
    -o "$OUT/.switch/trace.mtr" --predicted "$OUT/.switch/predicted.mtr" > /dev/null
  tmp=$OUT/.results.csv.tmp
  points | xargs -P "$JOBS" -L 1 sh "$SELF" --point > "$tmp.unsorted"
  { echo "$HEADER"; sort -t, -k1,1 -k2,2n -k4,4 -k6,6 -k7,7n -k8,8 -k9,9n -k3,3 "$tmp.unsorted"; } > "$tmp"
  rm -f "$tmp.unsorted"
  rm -rf "$OUT/.switch"
  mv "$tmp" "$OUT/results.csv"
fi
sh "$HERE/tables.sh" "$OUT"
gnuplot -e "out='$OUT'" "$HERE/plot.gp"
echo "wrote $OUT/results.csv, $OUT/table.md, $OUT/latency-vs-cache.{png,svg}, $OUT/hitrate-vs-sch.{png,svg}"
