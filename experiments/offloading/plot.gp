# Figures of the offloading study from summary.csv (run.sh calls this):
#   gnuplot -e "out='experiments/offloading/results'" experiments/offloading/plot.gp
# latency-vs-cache.{png,svg}: latency per token vs cache size, every policy,
#   on 1, 2 and 4 H100s;
# hitrate-vs-sch.{png,svg}: hit rate of the caches vs the trace's SCH(16, C).
if (!exists("out")) out = "experiments/offloading/results"
data = out."/summary.csv"
set datafile separator ","

policies = "on-demand pregated lru lfu lru+pregate oracle-evict sch-oracle"
titles = "on-demand pregated LRU LFU LRU+pre-gate oracle-eviction SCH-oracle"
colours = "#7f7f7f #d62728 #1f77b4 #2ca02c #9467bd #ff7f0e #8c564b"
pts = "4 5 6 7 8 9 10"

# Column numbers in summary.csv.
c_gpus = 2; c_policy = 3; c_cache = 5; c_lat = 9; c_hit = 12; c_schhit = 13; c_sch = 15
sel(study, g, p) = (strcol(1) eq study && column(c_gpus) == g && strcol(c_policy) eq p)

do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1500,520 font "sans,11" }
  else { set terminal svg size 1500,520 font "sans,11" dynamic }

  # ---- latency per token vs cache size ----
  set output out."/latency-vs-cache.".fmt
  set multiplot layout 1,3 title "Mixtral-8x7B decode (batch 1) with experts offloaded to host memory: MT-Bench traces, mean of 4"
  set logscale y
  set ylabel "latency per token (ms)"
  set grid ytics mytics xtics
  set key bottom left font ",9"
  do for [g in "1 2 4"] {
    gi = int(g)
    set title sprintf("%d H100%s", gi, gi == 1 ? ", PCIe Gen5 host link" : "s (DGX H100), each caching its own")
    set xlabel gi == 1 ? "cached experts per layer (C)" : "cached experts per layer per GPU (C)"
    set xrange [0.5:8.0/gi + 0.5]
    set xtics 1
    unset arrow; unset label
    if (gi == 1) {
      set arrow 1 from 7.5, graph 0 to 7.5, graph 1 nohead dt 2 lc "black"
      set label 1 "> 80 GiB" at 7.55, graph 0.06 font ",9"
    }
    plot for [i=1:words(policies)] data using \
      (sel("cache", gi, word(policies, i)) ? column(c_cache) : 1/0):(column(c_lat)) \
      with linespoints lw 2 pt int(word(pts, i)) lc rgb word(colours, i) title word(titles, i)
  }
  unset multiplot
  unset logscale y

  # ---- hit rate vs SCH ----
  set output out."/hitrate-vs-sch.".fmt
  set multiplot layout 1,3 title "Hit rate of the GPU expert caches vs the trace's SCH(16, C) (Mixtral-8x7B, MT-Bench, batch 1)"
  set ylabel "hit rate"
  set yrange [0:1.02]
  set key bottom right font ",9"
  do for [g in "1 2 4"] {
    gi = int(g)
    set title sprintf("%d GPU%s", gi, gi == 1 ? "" : "s (C per GPU; SCH at C x GPUs)")
    set xlabel gi == 1 ? "cached experts per layer (C)" : "cached experts per layer per GPU (C)"
    set xrange [0.5:8.0/gi + 0.5]
    unset arrow; unset label
    plot data using (sel("cache", gi, "lru") ? column(c_cache) : 1/0):(column(c_sch)) \
           with lines lw 3 dt 2 lc "black" title "trace SCH(16, C)", \
         data using (sel("cache", gi, "sch-oracle") ? column(c_cache) : 1/0):(column(c_schhit)) \
           with linespoints lw 2 pt 10 lc rgb "#8c564b" title "SCH-oracle (SCH convention)", \
         data using (sel("cache", gi, "oracle-evict") ? column(c_cache) : 1/0):(column(c_hit)) \
           with linespoints lw 2 pt 9 lc rgb "#ff7f0e" title "oracle eviction, no prefetch", \
         data using (sel("cache", gi, "lfu") ? column(c_cache) : 1/0):(column(c_hit)) \
           with linespoints lw 2 pt 7 lc rgb "#2ca02c" title "LFU", \
         data using (sel("cache", gi, "lru") ? column(c_cache) : 1/0):(column(c_hit)) \
           with linespoints lw 2 pt 6 lc rgb "#1f77b4" title "LRU"
  }
  unset multiplot
  set yrange [*:*]
  set output
}
