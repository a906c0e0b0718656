#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#include "msim-check.h"
#include "msim-error.h"
#include "offload.h"

/* ---------- fixtures ---------- */

static MsimModelSpec *
tiny_model (int layers, int experts, int k)
{
  g_autofree char *text
      = g_strdup_printf ("[model]\nname = tiny\nlayers = %d\nexperts = %d\n"
                         "top_k = %d\nhidden_size = 1000\nexpert_ffn_size = 1000\n"
                         "heads = 10\ndtype = bf16\n",
                         layers, experts, k);
  GError *error = NULL;
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "tiny-model.ini", &error);
  ck_assert_msg (ini != NULL, "%s", error ? error->message : "");
  MsimModelSpec *m = msim_model_spec_new_from_ini (ini, "model", &error);
  ck_assert_msg (m != NULL, "%s", error ? error->message : "");
  return m;
}

/* 1 TFLOP/s, 1 TB/s, no launch overhead: kernel times are plain rooflines. */
static MsimGpuSpec *
unit_gpu (double capacity)
{
  g_autofree char *text = g_strdup_printf (
      "[gpu]\nname = unit\npeak_flops = 1e12\nhbm_bandwidth_Bps = 1e12\n"
      "hbm_capacity_bytes = %.0f\nlaunch_overhead_s = 0\n"
      "gemm_flops_efficiency = 1\ngemm_bandwidth_efficiency = 1\n"
      "grouped_gemm_flops_efficiency = 1\ngrouped_gemm_bandwidth_efficiency = 1\n"
      "attention_flops_efficiency = 1\nattention_bandwidth_efficiency = 1\n"
      "elementwise_flops_efficiency = 1\nelementwise_bandwidth_efficiency = 1\n",
      capacity);
  GError *error = NULL;
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "unit-gpu.ini", &error);
  ck_assert_msg (ini != NULL, "%s", error ? error->message : "");
  MsimGpuSpec *g = msim_gpu_spec_new_from_ini (ini, "gpu", &error);
  ck_assert_msg (g != NULL, "%s", error ? error->message : "");
  return g;
}

static MsimTopology *
load_topology (const char *text)
{
  GError *error = NULL;
  MsimTopology *t = msim_topology_load_data (text, -1, "test-topology.ini", &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  return t;
}

/* One GPU whose PCIe link to host memory carries @pcie_Bps, no latency. */
static MsimTopology *
one_gpu (double pcie_Bps)
{
  g_autofree char *text = g_strdup_printf ("[topology]\nname = one\n"
                                           "[vertex.h0]\nkind = host\n"
                                           "[vertex.g0]\nkind = gpu\nhost = h0\n"
                                           "[link.g0-h0]\na = g0\nb = h0\nbandwidth = %g\n"
                                           "latency = 0\ntype = pcie\n",
                                           pcie_Bps);
  return load_topology (text);
}

/* Two GPUs under one PCIe switch, 1 GB/s each; a wide uplink to host
 * memory, so the switch-to-GPU links are the only bottlenecks. */
static MsimTopology *
pcie_pair (void)
{
  return load_topology ("[topology]\nname = pair\n"
                        "[vertex.h0]\nkind = host\n"
                        "[vertex.sw]\nkind = switch\n"
                        "[vertex.g0]\nkind = gpu\nhost = h0\n"
                        "[vertex.g1]\nkind = gpu\nhost = h0\n"
                        "[link.g0-sw]\na = g0\nb = sw\nbandwidth = 1e9\ntype = pcie\n"
                        "[link.g1-sw]\na = g1\nb = sw\nbandwidth = 1e9\ntype = pcie\n"
                        "[link.h0-sw]\na = h0\nb = sw\nbandwidth = 1e10\ntype = pcie\n");
}

/* ids[(l * tokens + t) * k + r] */
static MsimTrace *
make_trace (guint tokens, guint layers, guint k, guint experts, const int *ids)
{
  GError *error = NULL;
  MsimTrace *t = msim_trace_new (tokens, layers, k, experts, 0, &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  for (guint l = 0; l < layers; l++)
    for (guint i = 0; i < tokens; i++)
      for (guint r = 0; r < k; r++)
        msim_trace_set_expert (t, i, l, r, ids[(l * tokens + i) * k + r]);
  return t;
}

/* k distinct experts per (token, layer), sticky like real routing: with
 * probability 0.6 a token reuses the previous token's choice. */
static MsimTrace *
random_trace (guint tokens, guint layers, guint k, guint experts, unsigned long seed)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, seed);
  g_autofree int *ids = g_new (int, (gsize)tokens *layers *k);
  for (guint l = 0; l < layers; l++)
    for (guint i = 0; i < tokens; i++)
      {
        int *row = ids + ((gsize)l * tokens + i) * k;
        if (i > 0 && gsl_rng_uniform (rng) < 0.6)
          {
            memcpy (row, row - k, sizeof (int) * k);
            continue;
          }
        for (guint r = 0; r < k; r++)
          {
            int e;
            gboolean dup;
            do
              {
                e = (int)gsl_rng_uniform_int (rng, experts);
                dup = FALSE;
                for (guint q = 0; q < r; q++)
                  dup |= row[q] == e;
              }
            while (dup);
            row[r] = e;
          }
      }
  gsl_rng_free (rng);
  return make_trace (tokens, layers, k, experts, ids);
}

/* A run config in memory; takes ownership of everything it is given. */
static MsimRunConfig *
make_cfg (MsimTopology *topo, MsimModelSpec *m, MsimGpuSpec *g, MsimTrace *t, const guint *gpu_of)
{
  MsimRunConfig *cfg = g_new0 (MsimRunConfig, 1);
  cfg->topology = topo;
  cfg->model = m;
  cfg->gpu = g;
  cfg->trace = t;
  guint L = (guint)msim_model_spec_n_moe_layers (m), E = (guint)m->experts;
  g_autofree guint *own = g_new0 (guint, L * E);
  if (gpu_of)
    memcpy (own, gpu_of, sizeof (guint) * L * E);
  cfg->placement = msim_expert_map_new_single (L, E, own);
  msim_step_options_init (&cfg->options);
  cfg->options.prompt_len = 2;
  cfg->options.comm.base_latency_s = 0.0;
  cfg->options.comm.p2p_nvlink_efficiency = 1.0;
  cfg->options.check = TRUE;
  cfg->seed = 1;
  return cfg;
}

static void
opts (MsimOffloadOptions *o, const char *policy, guint cache, guint steps)
{
  msim_offload_options_init (o);
  o->policy = policy;
  o->cache_experts_per_layer = cache;
  o->steps = steps;
  o->check = TRUE; /* conservation checks are always on in tests */
}

static MsimOffloadRun *
run_ok (MsimRunConfig *cfg, const MsimOffloadOptions *o)
{
  GError *error = NULL;
  MsimOffloadRun *run = msim_offload_run (cfg, o, &error);
  ck_assert_msg (run != NULL, "%s", error ? error->message : "");
  return run;
}

static MsimTime
kt (const MsimGpuSpec *g, MsimKernelClass c, double flops, double bytes)
{
  MsimTime t;
  ck_assert (msim_time_from_seconds (msim_gpu_kernel_time_s (g, c, flops, bytes), &t));
  return t;
}

static MsimTime
ps (double seconds)
{
  return (MsimTime)llround (seconds * 1e12);
}

/* Outcome letters of a run's accesses: H hit, P prefetch hit, M miss. */
static char *
outcomes (const MsimOffloadRun *run)
{
  gsize n;
  const MsimOffloadAccess *a = msim_offload_run_accesses (run, &n);
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < n; i++)
    g_string_append_c (s, "HPM"[a[i].outcome]);
  return g_string_free (s, FALSE);
}

/* The trace of the hand-computed cache sequences: one MoE layer, experts
 * 0..3, top-1, tokens 0 0 1 2 1 0. */
static MsimRunConfig *
sequence_cfg (void)
{
  const int ids[] = { 0, 0, 1, 2, 1, 0 };
  return make_cfg (one_gpu (1e9), tiny_model (1, 4, 1), unit_gpu (1e11),
                   make_trace (6, 1, 1, 4, ids), NULL);
}

/* ---------- cache sequences ---------- */

START_TEST (test_lru_sequence)
{
  /* C = 2.  0 miss {0}; 0 hit; 1 miss {0,1}; 2 miss, 0 is older than 1:
   * {1,2}; 1 hit; 0 miss, 2 is older than 1: {1,0}. */
  g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
  MsimOffloadOptions o;
  opts (&o, "lru", 2, 6);
  g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
  g_autofree char *seq = outcomes (run);
  ck_assert_str_eq (seq, "MHMMHM");
  gsize n;
  const MsimOffloadFetch *f = msim_offload_run_fetches (run, &n);
  ck_assert_uint_eq (n, 4);
  const int fetched[] = { 0, 1, 2, 0 }, evicted[] = { -1, -1, 0, 2 };
  for (gsize i = 0; i < n; i++)
    {
      ck_assert_uint_eq (f[i].expert, fetched[i]);
      ck_assert_int_eq (f[i].evicted_expert, evicted[i]);
      ck_assert (!f[i].prefetch);
    }
  msim_ck_assert_near (msim_offload_run_hit_rate (run, MSIM_OFFLOAD_ALL_LAYERS), 2.0 / 6, 1e-12);
  ck_assert_uint_eq (msim_offload_run_misses (run), 4);
}
END_TEST

START_TEST (test_lfu_sequence)
{
  /* C = 2.  0 miss (n0=1); 0 hit (n0=2); 1 miss {0,1}; 2 miss, 1 has fewer
   * uses than 0: {0,2}; 1 miss (n1=2), 2 has fewer: {0,1}; 0 hit. */
  g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
  MsimOffloadOptions o;
  opts (&o, "lfu", 2, 6);
  g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
  g_autofree char *seq = outcomes (run);
  ck_assert_str_eq (seq, "MHMMMH");
  gsize n;
  const MsimOffloadFetch *f = msim_offload_run_fetches (run, &n);
  ck_assert_uint_eq (n, 4);
  const int fetched[] = { 0, 1, 2, 1 }, evicted[] = { -1, -1, 1, 2 };
  for (gsize i = 0; i < n; i++)
    {
      ck_assert_uint_eq (f[i].expert, fetched[i]);
      ck_assert_int_eq (f[i].evicted_expert, evicted[i]);
    }
}
END_TEST

START_TEST (test_on_demand_keeps_nothing)
{
  /* Even with room for every expert, nothing survives its token. */
  g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
  MsimOffloadOptions o;
  opts (&o, "on-demand", 4, 6);
  g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
  g_autofree char *seq = outcomes (run);
  ck_assert_str_eq (seq, "MMMMMM");
}
END_TEST

START_TEST (test_oracle_sequence)
{
  /* C = 1, m = 2.  The cache holds the top expert of the window [t, t+2)
   * (uses, then most recent use, then lower id), prefetched one position
   * ahead:
   *   t=0 window {0,0}: {0}, prefetched -> P
   *   t=1 window {0,1}: 0 (used at 0) beats 1 (never): {0} -> H
   *   t=2 window {1,2}: both unused, lower id: {1} -> P
   *   t=3 window {2,1}: 1 (used at 2) beats 2: {1}; 2 is demanded -> M
   *   t=4 window {1,0}: 1 (used at 2) beats 0 (used at 1): {1} -> P
   *   t=5 window {0}: {0} -> P
   * SCH(2, 1) = 5/6: the miss at t=3 is not a cold one (2 experts seen). */
  g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
  MsimOffloadOptions o;
  opts (&o, "sch-oracle", 1, 6);
  o.sch_window = 2;
  g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
  g_autofree char *seq = outcomes (run);
  ck_assert_str_eq (seq, "PHPMPP");
  msim_ck_assert_near (msim_offload_run_sch_hit_rate (run, 0), 5.0 / 6, 1e-12);
  msim_ck_assert_near (msim_offload_run_sch (run, 0), 5.0 / 6, 1e-12);
  double sch[4];
  gsize first = 0;
  msim_offload_trace_sch (cfg->trace, 0, &first, 1, 6, 2, sch);
  msim_ck_assert_near (sch[0], 5.0 / 6, 1e-12);
  ck_assert (sch[3] == 1.0);

  /* Without prefetch the oracle only ranks victims: 0 miss; 0 hit;
   * 1 miss (evicts 0); 2 miss (evicts 1); 1 miss (evicts 2); 0 miss. */
  o.prefetch = MSIM_OFFLOAD_PREFETCH_NONE;
  g_autoptr (MsimOffloadRun) demand = run_ok (cfg, &o);
  g_autofree char *seq2 = outcomes (demand);
  ck_assert_str_eq (seq2, "MHMMMM");
}
END_TEST

START_TEST (test_oracle_equals_sch)
{
  /* With batch 1 on one GPU, the oracle cache's hit rate under the SCH
   * convention is SCH(m, C) of the trace, layer by layer. */
  const guint T = 240, L = 2, E = 8, k = 2;
  const guint caches[] = { 1, 2, 3, 5, 8 }, windows[] = { 1, 4, 16 };
  for (guint ci = 0; ci < G_N_ELEMENTS (caches); ci++)
    for (guint wi = 0; wi < G_N_ELEMENTS (windows); wi++)
      {
        g_autoptr (MsimRunConfig) cfg
            = make_cfg (one_gpu (1e12), tiny_model (L, E, k), unit_gpu (1e12),
                        random_trace (T, L, k, E, 7), NULL);
        MsimOffloadOptions o;
        opts (&o, "sch-oracle", caches[ci], T);
        o.sch_window = windows[wi];
        g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
        for (guint l = 0; l < L; l++)
          {
            double sch[8];
            gsize first = 0;
            msim_offload_trace_sch (cfg->trace, l, &first, 1, T, windows[wi], sch);
            ck_assert_msg (fabs (msim_offload_run_sch_hit_rate (run, l) - sch[caches[ci] - 1])
                               < 1e-12,
                           "C=%u m=%u layer %u: oracle %.6f, SCH %.6f", caches[ci], windows[wi], l,
                           msim_offload_run_sch_hit_rate (run, l), sch[caches[ci] - 1]);
            msim_ck_assert_near (msim_offload_run_sch (run, l), sch[caches[ci] - 1], 1e-12);
          }
      }
}
END_TEST

START_TEST (test_global_budget)
{
  /* Two MoE layers sharing one budget.  Tokens route (0, 1), (0, 1), (1, 0).
   * Two slots: step 0 misses both, step 1 hits both, step 2 misses both.
   * One slot: every access misses. */
  const int ids[] = { 0, 0, 1, /* layer 1 */ 1, 1, 0 };
  g_autoptr (MsimRunConfig) cfg = make_cfg (one_gpu (1e9), tiny_model (2, 2, 1), unit_gpu (1e11),
                                            make_trace (3, 2, 1, 2, ids), NULL);
  double eb = (double)msim_model_spec_expert_bytes (cfg->model);
  MsimOffloadOptions o;
  opts (&o, "lru", 0, 3);
  o.cache_bytes = 2.5 * eb;
  g_autoptr (MsimOffloadRun) two = run_ok (cfg, &o);
  g_autofree char *s2 = outcomes (two);
  ck_assert_str_eq (s2, "MMHHMM");
  msim_ck_assert_near (msim_offload_run_bytes_fetched (two), 4 * eb, 1e-12);
  o.cache_bytes = eb;
  g_autoptr (MsimOffloadRun) one = run_ok (cfg, &o);
  g_autofree char *s1 = outcomes (one);
  ck_assert_str_eq (s1, "MMMMMM");
  /* Memory: the resident non-expert weights plus one expert. */
  msim_ck_assert_near (msim_offload_run_memory_used_bytes (one, 0)
                           - msim_offload_run_memory_used_bytes (two, 0),
                       -eb, 1e-12);
}
END_TEST

/* ---------- timing ---------- */

/* Two MoE layers, experts 0 and 1, top-1; one token using expert 0 at
 * layer 0 and expert 1 at layer 1; pre-gated prefetch with exact
 * predictions; PCIe at @pcie_Bps. */
static MsimOffloadRun *
pregated_run (double pcie_Bps, MsimRunConfig **cfg_out)
{
  const int ids[] = { 0, 1 };
  MsimRunConfig *cfg = make_cfg (one_gpu (pcie_Bps), tiny_model (2, 2, 1), unit_gpu (1e11),
                                 make_trace (1, 2, 1, 2, ids), NULL);
  MsimOffloadOptions o;
  opts (&o, "pregated", 2, 1);
  *cfg_out = cfg;
  return run_ok (cfg, &o);
}

START_TEST (test_late_prefetch_stalls_remaining_transfer)
{
  MsimRunConfig *cfg_raw;
  g_autoptr (MsimOffloadRun) run = pregated_run (1e9, &cfg_raw);
  g_autoptr (MsimRunConfig) cfg = cfg_raw;
  const MsimModelSpec *m = cfg->model;
  const MsimGpuSpec *g = cfg->gpu;
  /* Kernel times by the engine's formulas (batch 1, context 2 + 1). */
  double act = 2000.0, ctx = 3.0, eb = (double)msim_model_spec_expert_bytes (m);
  MsimTime attn = kt (g, MSIM_KERNEL_ATTENTION, msim_model_spec_attention_flops_per_token (m, ctx),
                      msim_model_spec_attention_params (m) * 2.0
                          + ctx * msim_model_spec_kv_cache_bytes_per_token (m) + 2 * act);
  MsimTime gate = kt (g, MSIM_KERNEL_GEMM, msim_model_spec_gate_flops_per_token (m),
                      msim_model_spec_gate_params (m) * 2.0 + act);
  MsimTime expert
      = kt (g, MSIM_KERNEL_GEMM, msim_model_spec_expert_flops_per_token (m), eb + 2 * act);
  MsimTime sum = kt (g, MSIM_KERNEL_ELEMENTWISE, 2.0 * 1000, 2 * act);
  MsimTime xfer = ps (eb / 1e9); /* 6 MB at 1 GB/s: 6 ms */

  gsize nf, na;
  const MsimOffloadFetch *f = msim_offload_run_fetches (run, &nf);
  const MsimOffloadAccess *a = msim_offload_run_accesses (run, &na);
  ck_assert_uint_eq (nf, 2);
  ck_assert_uint_eq (na, 2);
  /* Layer 0 misses: fetched after the gate, its kernel waits the whole
   * transfer. */
  ck_assert (!f[0].prefetch && f[0].layer == 0);
  ck_assert_int_eq (ps (f[0].start_s), attn + gate);
  ck_assert_int_eq (ps (f[0].end_s), attn + gate + xfer);
  ck_assert_int_eq (a[0].outcome, MSIM_OFFLOAD_MISS);
  ck_assert_int_eq (ps (a[0].stall_s), xfer);
  /* Layer 1's expert is prefetched behind it on the copy stream and is
   * still moving when layer 1's gate ends: the kernel stalls exactly the
   * rest of the transfer. */
  ck_assert (f[1].prefetch && f[1].layer == 1 && f[1].expert == 1 && f[1].used);
  ck_assert_int_eq (ps (f[1].start_s), attn + gate + xfer);
  ck_assert_int_eq (ps (f[1].end_s), attn + gate + 2 * xfer);
  MsimTime gate1_end = attn + gate + xfer + expert + sum + attn + gate;
  ck_assert_int_eq (a[1].outcome, MSIM_OFFLOAD_PREFETCH_HIT);
  ck_assert_int_eq (ps (a[1].kernel_start_s), attn + gate + 2 * xfer);
  ck_assert_int_eq (ps (a[1].stall_s), attn + gate + 2 * xfer - gate1_end);
  msim_ck_assert_near (msim_offload_run_latency_per_token_s (run),
                       msim_time_to_seconds (attn + gate + 2 * xfer + expert + sum), 1e-12);
}
END_TEST

START_TEST (test_early_prefetch_no_stall)
{
  /* With PCIe fast enough the prefetch lands before layer 1's gate ends. */
  MsimRunConfig *cfg_raw;
  g_autoptr (MsimOffloadRun) run = pregated_run (1e12, &cfg_raw);
  g_autoptr (MsimRunConfig) cfg = cfg_raw;
  gsize na;
  const MsimOffloadAccess *a = msim_offload_run_accesses (run, &na);
  ck_assert_uint_eq (na, 2);
  ck_assert_int_eq (a[1].outcome, MSIM_OFFLOAD_PREFETCH_HIT);
  ck_assert (a[1].stall_s == 0.0);
}
END_TEST

START_TEST (test_pcie_contention_maxmin)
{
  /* GPU 0 holds the token and expert 0, GPU 1 expert 1, which the token
   * uses.  After the gate, GPU 1 fetches expert 1 from host memory while
   * the dispatch sends the token's 2000 bytes from GPU 0 to GPU 1: both
   * cross the switch-to-GPU-1 link (1 GB/s) and get 0.5 GB/s each until the
   * dispatch ends at t0 + 4 us; the fetch then has the link to itself and
   * ends at t0 + (6e6 + 2000) / 1e9. */
  const int ids[] = { 1 };
  const guint gpu_of[] = { 0, 1 };
  g_autoptr (MsimRunConfig) cfg = make_cfg (pcie_pair (), tiny_model (1, 2, 1), unit_gpu (1e11),
                                            make_trace (1, 1, 1, 2, ids), gpu_of);
  const MsimModelSpec *m = cfg->model;
  const MsimGpuSpec *g = cfg->gpu;
  double act = 2000.0, ctx = 3.0, eb = (double)msim_model_spec_expert_bytes (m);
  MsimTime attn = kt (g, MSIM_KERNEL_ATTENTION, msim_model_spec_attention_flops_per_token (m, ctx),
                      msim_model_spec_attention_params (m) * 2.0
                          + ctx * msim_model_spec_kv_cache_bytes_per_token (m) + 2 * act);
  MsimTime gate = kt (g, MSIM_KERNEL_GEMM, msim_model_spec_gate_flops_per_token (m),
                      msim_model_spec_gate_params (m) * 2.0 + act);
  MsimTime t0 = attn + gate;
  MsimOffloadOptions o;
  opts (&o, "lru", 1, 1);
  g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
  gsize nf, na;
  const MsimOffloadFetch *f = msim_offload_run_fetches (run, &nf);
  const MsimOffloadAccess *a = msim_offload_run_accesses (run, &na);
  ck_assert_uint_eq (nf, 1);
  ck_assert_uint_eq (f[0].gpu, 1);
  ck_assert_int_eq (ps (f[0].start_s), t0);
  ck_assert_int_eq (ps (f[0].end_s), t0 + ps ((eb + act) / 1e9));
  /* The kernel was ready when the dispatch arrived (t0 + 2 x 2000 B at
   * 1 GB/s): it stalls from there to the end of the fetch. */
  ck_assert_uint_eq (na, 1);
  ck_assert_int_eq (ps (a[0].kernel_start_s), ps (f[0].end_s));
  ck_assert_int_eq (ps (a[0].stall_s), ps ((eb + act) / 1e9) - ps (2 * act / 1e9));

  /* The same fetch with the token's expert on its own GPU: no dispatch,
   * the fetch alone on GPU 0's link. */
  const int ids0[] = { 0 };
  g_autoptr (MsimRunConfig) cfg0 = make_cfg (pcie_pair (), tiny_model (1, 2, 1), unit_gpu (1e11),
                                             make_trace (1, 1, 1, 2, ids0), gpu_of);
  g_autoptr (MsimOffloadRun) run0 = run_ok (cfg0, &o);
  const MsimOffloadFetch *f0 = msim_offload_run_fetches (run0, &nf);
  ck_assert_int_eq (ps (f0[0].end_s) - ps (f0[0].start_s), ps (eb / 1e9));
}
END_TEST

/* ---------- conservation, determinism, errors ---------- */

START_TEST (test_conservation_multi_gpu)
{
  /* Every policy on 2 GPUs, batch 4, with the checks on; the records
   * themselves also satisfy them. */
  const guint L = 3, E = 4, k = 2, T = 4 * 20;
  const guint gpu_of[] = { 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1 };
  const char *const *names = msim_offload_policy_names ();
  for (const char *const *p = names; *p; p++)
    {
      g_autoptr (MsimRunConfig) cfg = make_cfg (pcie_pair (), tiny_model (L, E, k), unit_gpu (1e11),
                                                random_trace (T, L, k, E, 3), gpu_of);
      MsimOffloadOptions o;
      opts (&o, *p, 1, 18);
      o.batch = 4;
      o.warmup_steps = 2;
      o.prediction_accuracy = 0.7;
      g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
      gsize nf, na;
      const MsimOffloadFetch *f = msim_offload_run_fetches (run, &nf);
      const MsimOffloadAccess *a = msim_offload_run_accesses (run, &na);
      double eb = (double)msim_model_spec_expert_bytes (cfg->model);
      guint64 misses = 0, demand = 0, measured_fetches = 0;
      double bytes = 0.0;
      for (gsize i = 0; i < na; i++)
        {
          ck_assert (a[i].fetch >= 0 && (gsize)a[i].fetch < nf);
          const MsimOffloadFetch *w = &f[a[i].fetch];
          ck_assert (w->expert == a[i].expert && w->layer == a[i].layer && w->gpu == a[i].gpu);
          ck_assert (w->end_s <= a[i].kernel_start_s);
          ck_assert_uint_eq (w->gpu, cfg->placement->gpus[a[i].layer * E + a[i].expert]);
          misses += a[i].outcome == MSIM_OFFLOAD_MISS && a[i].step >= 2;
        }
      for (gsize i = 0; i < nf; i++)
        {
          ck_assert (f[i].bytes == eb);
          if (f[i].step < 2)
            continue;
          demand += !f[i].prefetch;
          measured_fetches++;
          bytes += f[i].bytes;
        }
      ck_assert_uint_eq (misses, msim_offload_run_misses (run));
      ck_assert_uint_eq (demand, misses);
      ck_assert_uint_eq (measured_fetches, msim_offload_run_fetch_count (run));
      msim_ck_assert_near (msim_offload_run_bytes_fetched (run), bytes, 1e-12);
      msim_ck_assert_near (bytes, measured_fetches * eb, 1e-12);
    }
}
END_TEST

static char *
json_of (const MsimOffloadRun *run)
{
  g_autoptr (JsonNode) root = msim_offload_run_to_json (run);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

START_TEST (test_deterministic)
{
  const guint gpu_of[] = { 0, 0, 1, 1, 0, 0, 1, 1 };
  char *out[2];
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (MsimRunConfig) cfg = make_cfg (pcie_pair (), tiny_model (2, 4, 2), unit_gpu (1e11),
                                                random_trace (64, 2, 2, 4, 5), gpu_of);
      MsimOffloadOptions o;
      opts (&o, "pregated", 1, 16);
      o.batch = 4;
      o.prediction_accuracy = 0.5;
      g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
      out[i] = json_of (run);
    }
  ck_assert_str_eq (out[0], out[1]);
  g_free (out[0]);
  g_free (out[1]);
}
END_TEST

START_TEST (test_prediction_accuracy)
{
  /* Degraded predictions: the realised recall follows the setting, and
   * wrong prefetches show up as unused ones and as misses. */
  g_autoptr (MsimRunConfig) cfg = make_cfg (one_gpu (1e12), tiny_model (4, 8, 2), unit_gpu (1e12),
                                            random_trace (400, 4, 2, 8, 11), NULL);
  MsimOffloadOptions o;
  opts (&o, "pregated", 4, 400);
  o.prediction_accuracy = 1.0;
  g_autoptr (MsimOffloadRun) exact = run_ok (cfg, &o);
  g_autoptr (JsonNode) je = msim_offload_run_to_json (exact);
  JsonObject *se = json_object_get_object_member (json_node_get_object (je), "summary");
  ck_assert (json_object_get_double_member (se, "prediction_recall") == 1.0);
  ck_assert_int_eq (json_object_get_int_member (se, "prefetches_unused"), 0);
  /* Only layer 0 (never predicted) misses. */
  msim_ck_assert_near (msim_offload_run_hit_rate (exact, 0), 0.0, 1e-12);
  for (guint l = 1; l < 4; l++)
    msim_ck_assert_near (msim_offload_run_hit_rate (exact, l), 1.0, 1e-12);

  o.prediction_accuracy = 0.6;
  g_autoptr (MsimOffloadRun) rough = run_ok (cfg, &o);
  g_autoptr (JsonNode) jr = msim_offload_run_to_json (rough);
  JsonObject *sr = json_object_get_object_member (json_node_get_object (jr), "summary");
  double recall = json_object_get_double_member (sr, "prediction_recall");
  ck_assert_msg (fabs (recall - 0.6) < 0.05, "recall %.4f", recall);
  ck_assert_int_gt (json_object_get_int_member (sr, "prefetches_unused"), 0);
  ck_assert (msim_offload_run_hit_rate (rough, 2) < 0.8);
}
END_TEST

static MsimIni *
ini_of (const char *text)
{
  GError *error = NULL;
  MsimIni *ini = msim_ini_load_data (text, strlen (text), "offload-test.ini", &error);
  ck_assert_msg (ini != NULL, "%s", error ? error->message : "");
  return ini;
}

START_TEST (test_options_from_ini)
{
  MsimOffloadOptions o;
  g_autoptr (MsimIni) empty = ini_of ("[model]\nlayers = 1\n");
  ck_assert (msim_offload_options_from_ini (empty, &o, NULL));
  ck_assert_str_eq (o.policy, "lru");
  ck_assert_uint_eq (o.batch, 1);
  ck_assert_uint_eq (o.sch_window, 16);
  ck_assert (o.prediction_accuracy == 1.0);
  msim_offload_options_clear (&o);

  g_autoptr (MsimIni) full = ini_of ("[offload]\npolicy = pregated\ncache_bytes = 8e9\n"
                                     "prediction_accuracy = 0.9\nbatch = 16\nsteps = 10\n"
                                     "warmup_steps = 2\nbatch_from = consecutive\n"
                                     "sch_window = 64\nmemory_check = false\ncheck = true\n");
  GError *error = NULL;
  ck_assert_msg (msim_offload_options_from_ini (full, &o, &error), "%s",
                 error ? error->message : "");
  ck_assert_str_eq (o.policy, "pregated");
  ck_assert (o.cache_bytes == 8e9 && o.cache_experts_per_layer == 0);
  ck_assert (o.prediction_accuracy == 0.9);
  ck_assert_uint_eq (o.batch, 16);
  ck_assert_uint_eq (o.warmup_steps, 2);
  ck_assert_int_eq (o.batch_from, MSIM_OFFLOAD_BATCH_CONSECUTIVE);
  ck_assert (!o.memory_check && o.check);
  msim_offload_options_clear (&o);

  const char *bad[] = {
    "[offload]\ncache_experts_per_layer = 2\ncache_bytes = 1e9\n", /* both */
    "[offload]\npolicy = lru\ncolour = blue\n",                    /* unknown key */
    "[offload]\npolicy = fifo\n",                                  /* unknown policy */
    "[offload]\nprediction_accuracy = 1.5\n",
    "[offload]\npolicy = lru\nprefetch = oracle\n",
    "[offload]\nbatch = 0\n",
  };
  const char *key[]
      = { "cache_bytes", "colour", "policy", "prediction_accuracy", "prefetch", "batch" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (MsimIni) ini = ini_of (bad[i]);
      g_autoptr (GError) err = NULL;
      ck_assert (!msim_offload_options_from_ini (ini, &o, &err));
      ck_assert_msg (err && strstr (err->message, "offload-test.ini:")
                         && strstr (err->message, key[i]),
                     "case %zu: %s", i, err ? err->message : "(none)");
      msim_offload_options_clear (&o);
    }
}
END_TEST

START_TEST (test_run_errors)
{
  MsimOffloadOptions o;
  GError *error = NULL;
  {
    /* Not enough trace tokens for batch x steps. */
    g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
    opts (&o, "lru", 2, 4);
    o.batch = 2;
    ck_assert (msim_offload_run (cfg, &o, &error) == NULL);
    ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_INPUT));
    ck_assert (strstr (error->message, "steps") != NULL);
    g_clear_error (&error);
  }
  {
    /* The context-coherent scheme is not modelled. */
    g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
    cfg->options.scheme = MSIM_SCHEME_CONTEXT_COHERENT;
    opts (&o, "lru", 2, 6);
    ck_assert (msim_offload_run (cfg, &o, &error) == NULL);
    ck_assert (strstr (error->message, "scheme") != NULL);
    g_clear_error (&error);
  }
  {
    /* A cache that does not fit: a limit error with the numbers, unless
     * the memory check is off. */
    const int ids[] = { 0, 1 };
    double eb = 6e6;
    g_autoptr (MsimRunConfig) cfg = make_cfg (
        one_gpu (1e9), tiny_model (1, 2, 1), unit_gpu (3 * eb), make_trace (2, 1, 1, 2, ids), NULL);
    opts (&o, "lru", 2, 2);
    ck_assert (msim_offload_run (cfg, &o, &error) == NULL);
    ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_LIMIT));
    ck_assert (strstr (error->message, "GiB") != NULL);
    g_clear_error (&error);
    o.memory_check = FALSE;
    g_autoptr (MsimOffloadRun) run = run_ok (cfg, &o);
    ck_assert (msim_offload_run_memory_used_bytes (run, 0) > 3 * eb);
  }
  {
    /* A budget smaller than one expert. */
    g_autoptr (MsimRunConfig) cfg = sequence_cfg ();
    opts (&o, "lru", 0, 6);
    o.cache_bytes = 1000;
    ck_assert (msim_offload_run (cfg, &o, &error) == NULL);
    ck_assert (strstr (error->message, "cache_bytes") != NULL);
    g_clear_error (&error);
  }
}
END_TEST

static Suite *
offload_suite (void)
{
  Suite *s = suite_create ("offload");
  struct
  {
    const char *name;
    const TTest *test;
  } cases[] = {
    { "lru", test_lru_sequence },
    { "lfu", test_lfu_sequence },
    { "on-demand", test_on_demand_keeps_nothing },
    { "oracle", test_oracle_sequence },
    { "oracle-equals-sch", test_oracle_equals_sch },
    { "global-budget", test_global_budget },
    { "late-prefetch", test_late_prefetch_stalls_remaining_transfer },
    { "early-prefetch", test_early_prefetch_no_stall },
    { "pcie-contention", test_pcie_contention_maxmin },
    { "conservation", test_conservation_multi_gpu },
    { "deterministic", test_deterministic },
    { "prediction-accuracy", test_prediction_accuracy },
    { "options", test_options_from_ini },
    { "errors", test_run_errors },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TCase *tc = tcase_create (cases[i].name);
      tcase_add_test (tc, cases[i].test);
      suite_add_tcase (s, tc);
    }
  return s;
}

MSIM_CHECK_MAIN (offload_suite)
