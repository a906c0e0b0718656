#include <math.h>
#include <string.h>

#include "msim-check.h"
#include "msim-error.h"
#include "msim-json.h"
#include "step.h"

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
switch2 (void)
{
  const char *text = "[topology]\nname = sw2\nbuilder = nvswitch\ngpus = 2\n"
                     "nvlink_bandwidth = 1e9\nnvlink_latency = 0\n"
                     "pcie_bandwidth = 1e9\npcie_latency = 0\n";
  GError *error = NULL;
  MsimTopology *t = msim_topology_load_data (text, -1, "sw2.ini", &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  return t;
}

static MsimTrace *
make_trace (guint tokens, guint layers, guint k, guint experts, const int *ids)
{
  GError *error = NULL;
  guint flags = 0;
  for (gsize i = 0; i < (gsize)tokens * layers * k; i++)
    if (ids[i] < 0)
      flags = MSIM_TRACE_DROPS; /* MSIM_EXPERT_NONE: missing from the trace */
  MsimTrace *t = msim_trace_new (tokens, layers, k, experts, flags, &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  for (guint l = 0; l < layers; l++)
    for (guint i = 0; i < tokens; i++)
      for (guint r = 0; r < k; r++)
        msim_trace_set_expert (t, i, l, r, ids[(l * tokens + i) * k + r]);
  return t;
}

static MsimExpertMap *
map_of (guint layers, guint experts, const guint *gpu_of)
{
  return msim_expert_map_new_single (layers, experts, gpu_of);
}

static MsimTime
kt (const MsimGpuSpec *g, MsimKernelClass c, double flops, double bytes)
{
  MsimTime t;
  ck_assert (msim_time_from_seconds (msim_gpu_kernel_time_s (g, c, flops, bytes), &t));
  return t;
}

static void
options (MsimStepOptions *o, MsimScheme scheme, guint64 tokens)
{
  msim_step_options_init (o);
  o->scheme = scheme;
  o->tokens = tokens;
  o->prompt_len = 2;
  o->comm.base_latency_s = 0.0;
  o->comm.p2p_nvlink_efficiency = 1.0; /* exact hand-computed transfer times */
  o->comm.nccl_tuning = FALSE;          /* the AllGather as a plain ring */
  o->check = TRUE;
}

START_TEST (test_two_gpus_one_layer)
{
  /* 4 tokens, 2 per GPU; experts 0 and 1 on GPUs 0 and 1; token 1 goes
   * to GPU 1 and token 3 to GPU 0, 2000 bytes each way at 1 GB/s. */
  g_autoptr (MsimModelSpec) m = tiny_model (1, 2, 1);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e11);
  g_autoptr (MsimTopology) topo = switch2 ();
  const int ids[] = { 0, 1, 1, 0 };
  g_autoptr (MsimTrace) tr = make_trace (4, 1, 1, 2, ids);
  guint gpu_of[] = { 0, 1 };
  g_autoptr (MsimExpertMap) placement = map_of (1, 2, gpu_of);

  /* Expected kernel times, from the model's formulas: 2 tokens each. */
  double act = 2000.0, ctx = 1.5;
  MsimTime attn
      = kt (g, MSIM_KERNEL_ATTENTION, 2 * msim_model_spec_attention_flops_per_token (m, ctx),
            msim_model_spec_attention_params (m) * 2.0 + 2 * 2 * act);
  MsimTime gate = kt (g, MSIM_KERNEL_GEMM, 2 * msim_model_spec_gate_flops_per_token (m),
                      msim_model_spec_gate_params (m) * 2.0 + 2 * act);
  MsimTime expert = kt (g, MSIM_KERNEL_GROUPED_GEMM, 2 * msim_model_spec_expert_flops_per_token (m),
                        msim_model_spec_expert_bytes (m) + 2 * 2 * act);
  MsimTime sum = kt (g, MSIM_KERNEL_ELEMENTWISE, 2.0 * 2 * 1 * 1000, 2.0 * 2 * act);
  MsimTime xfer = 2000000; /* 2000 B at 1 GB/s over two links, no latency */

  MsimStepOptions o;
  options (&o, MSIM_SCHEME_BASELINE_EP, 4);
  GError *error = NULL;
  g_autoptr (MsimStepRun) base = msim_step_run (topo, m, g, tr, placement, &o, &error);
  ck_assert_msg (base != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq ((MsimTime)llround (msim_step_run_time_s (base) * 1e12),
                    attn + gate + xfer + expert + xfer + sum);
  ck_assert (msim_step_run_dispatch_bytes (base) == 4000.0);
  ck_assert (msim_step_run_combine_bytes (base) == 4000.0);
  ck_assert_int_eq (msim_step_run_assignments (base), 4);

  /* Context-coherent: an AllGather of 4-byte token ids first (ring of 2:
   * one step of 8 bytes), no combine all-to-all (k = 1). */
  options (&o, MSIM_SCHEME_CONTEXT_COHERENT, 4);
  g_autoptr (MsimStepRun) cc = msim_step_run (topo, m, g, tr, placement, &o, &error);
  ck_assert_msg (cc != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq ((MsimTime)llround (msim_step_run_time_s (cc) * 1e12),
                    8000 + attn + gate + xfer + expert + sum);
  ck_assert (msim_step_run_combine_bytes (cc) == 0.0);
}
END_TEST

START_TEST (test_local_placement_moves_nothing)
{
  /* Two layers; token 0 goes to expert 1 (GPU 1) in both.  Baseline moves
   * it out and back twice; context-coherent moves it once and then finds
   * its expert local.  Baseline's combine equals its dispatch. */
  g_autoptr (MsimModelSpec) m = tiny_model (2, 2, 1);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e11);
  g_autoptr (MsimTopology) topo = switch2 ();
  const int ids[] = { 1, 0, 1, 1, /* layer 0 */ 1, 0, 1, 1 /* layer 1 */ };
  g_autoptr (MsimTrace) tr = make_trace (4, 2, 1, 2, ids);
  guint gpu_of[] = { 0, 1, 0, 1 };
  g_autoptr (MsimExpertMap) placement = map_of (2, 2, gpu_of);
  MsimStepOptions o;
  options (&o, MSIM_SCHEME_BASELINE_EP, 4);
  g_autoptr (MsimStepRun) base = msim_step_run (topo, m, g, tr, placement, &o, NULL);
  ck_assert (msim_step_run_dispatch_bytes (base) == 2 * 2000.0);
  ck_assert (msim_step_run_combine_bytes (base) == msim_step_run_dispatch_bytes (base));
  options (&o, MSIM_SCHEME_CONTEXT_COHERENT, 4);
  g_autoptr (MsimStepRun) cc = msim_step_run (topo, m, g, tr, placement, &o, NULL);
  ck_assert (msim_step_run_dispatch_bytes (cc) == 2000.0);
  ck_assert (msim_step_run_combine_bytes (cc) == 0.0);
  /* A placement that keeps every token local moves zero bytes. */
  const int ids2[] = { 0, 0, 1, 1, 0, 0, 1, 1 };
  g_autoptr (MsimTrace) tr2 = make_trace (4, 2, 1, 2, ids2);
  g_autoptr (MsimStepRun) cc2 = msim_step_run (topo, m, g, tr2, placement, &o, NULL);
  ck_assert (msim_step_run_dispatch_bytes (cc2) == 0.0);
  ck_assert (msim_step_run_cross_gpu_fraction (cc2) == 0.0);
  /* Expert 1 replicated on both GPUs: every token finds a local copy. */
  GArray *lists[4];
  guint gl[][2] = { { 0, 0 }, { 0, 1 }, { 0, 0 }, { 0, 1 } };
  guint nl[] = { 1, 2, 1, 2 };
  for (int i = 0; i < 4; i++)
    {
      lists[i] = g_array_new (FALSE, FALSE, sizeof (guint));
      g_array_append_vals (lists[i], gl[i], nl[i]);
    }
  g_autoptr (MsimExpertMap) rep = msim_expert_map_new (2, 2, lists);
  for (int i = 0; i < 4; i++)
    g_array_unref (lists[i]);
  options (&o, MSIM_SCHEME_BASELINE_EP, 4);
  g_autoptr (MsimStepRun) br = msim_step_run (topo, m, g, tr, rep, &o, NULL);
  /* Every token now has a copy of its expert on its own GPU (expert 0 on
   * GPU 0 serves token 1; expert 1's copies on GPUs 0 and 1 serve tokens 0,
   * 2 and 3 locally), so nothing moves. */
  ck_assert (msim_step_run_dispatch_bytes (br) == 0.0);
}
END_TEST

/* Copies not on the token's GPU are shared by token index, also when their
 * number is not a power of two: 4 GPUs on one switch (one host), expert 1
 * on GPUs 1, 2 and 3, every token routed to it.  GPU 0's tokens 0, 1, 2
 * have no local copy and go to GPUs 1, 2, 3 (token mod 3), so each of those
 * serves 4 tokens: load imbalance 4 / (12 / 4) = 4/3 (all three on GPU 1
 * would give 6/3). */
START_TEST (test_replicas_split_by_token)
{
  g_autoptr (MsimModelSpec) m = tiny_model (1, 2, 1);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e11);
  const char *text = "[topology]\nname = sw4\nbuilder = nvswitch\ngpus = 4\n"
                     "nvlink_bandwidth = 1e9\nnvlink_latency = 0\n"
                     "pcie_bandwidth = 1e9\npcie_latency = 0\n";
  GError *error = NULL;
  g_autoptr (MsimTopology) topo = msim_topology_load_data (text, -1, "sw4.ini", &error);
  ck_assert_msg (topo != NULL, "%s", error ? error->message : "");
  int ids[12];
  for (int i = 0; i < 12; i++)
    ids[i] = 1;
  g_autoptr (MsimTrace) tr = make_trace (12, 1, 1, 2, ids);
  GArray *lists[2];
  const guint e0[] = { 0 }, e1[] = { 1, 2, 3 };
  lists[0] = g_array_new (FALSE, FALSE, sizeof (guint));
  g_array_append_vals (lists[0], e0, 1);
  lists[1] = g_array_new (FALSE, FALSE, sizeof (guint));
  g_array_append_vals (lists[1], e1, 3);
  g_autoptr (MsimExpertMap) rep = msim_expert_map_new (1, 2, lists);
  g_array_unref (lists[0]);
  g_array_unref (lists[1]);
  for (int threaded = 0; threaded < 2; threaded++)
    {
      MsimStepOptions o;
      options (&o, MSIM_SCHEME_BASELINE_EP, 12);
      o.route_thread = threaded ? MSIM_ROUTE_THREAD_ON : MSIM_ROUTE_THREAD_OFF;
      g_autoptr (MsimStepRun) run = msim_step_run (topo, m, g, tr, rep, &o, &error);
      ck_assert_msg (run != NULL, "%s", error ? error->message : "");
      ck_assert (msim_step_run_dispatch_bytes (run) == 3 * 2000.0);
      g_autoptr (JsonNode) j = msim_step_run_to_json (run);
      JsonArray *blocks = json_object_get_array_member (json_node_get_object (j), "blocks");
      ck_assert_uint_eq (json_array_get_length (blocks), 1);
      JsonObject *b0 = json_array_get_object_element (blocks, 0);
      msim_ck_assert_near (json_object_get_double_member (b0, "load_imbalance"), 4.0 / 3.0,
                           1e-12);
    }
}
END_TEST

START_TEST (test_capacity_and_conservation)
{
  /* 8 tokens, top-2 of 2 experts, capacity factor 0.5: C = ceil(8*2/2*0.5)
   * = 4 per expert.  Every token's first choice is expert 0 and its second
   * expert 1: tokens 0-3 fill expert 0 with first choices (4 dropped), then
   * tokens 0-3 fill expert 1 with second choices (4 dropped). */
  g_autoptr (MsimModelSpec) m = tiny_model (1, 2, 2);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e11);
  g_autoptr (MsimTopology) topo = switch2 ();
  int ids[16];
  for (int t = 0; t < 8; t++)
    {
      ids[2 * t] = 0;
      ids[2 * t + 1] = 1;
    }
  g_autoptr (MsimTrace) tr = make_trace (8, 1, 2, 2, ids);
  guint gpu_of[] = { 0, 1 };
  g_autoptr (MsimExpertMap) placement = map_of (1, 2, gpu_of);
  MsimStepOptions o;
  options (&o, MSIM_SCHEME_BASELINE_EP, 8);
  o.capacity_factor = 0.5;
  g_autoptr (MsimStepRun) run = msim_step_run (topo, m, g, tr, placement, &o, NULL);
  ck_assert_int_eq (msim_step_run_dropped (run), 8);
  ck_assert_int_eq (msim_step_run_assignments (run), 8);
  /* Token conservation: processed + dropped = tokens x k x layers. */
  ck_assert_int_eq (msim_step_run_assignments (run) + msim_step_run_dropped (run), 8 * 2 * 1);
}
END_TEST

START_TEST (test_json_exponents)
{
  /* json-glib 1.6 writes 1e-08 as "1e-08.0"; the writer repairs it, and
   * nothing else (strings and ordinary numbers are untouched). */
  char text[] = "{\"a\":1e-08.0,\"b\":2.0,\"c\":\"x1e5.0\",\"d\":[3E+21.0,4.5e-3]}";
  msim_json_fix_exponents (text);
  ck_assert_str_eq (text, "{\"a\":1e-08,\"b\":2.0,\"c\":\"x1e5.0\",\"d\":[3E+21,4.5e-3]}");
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tiny");
  json_builder_add_double_value (b, 1e-08);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *out = msim_json_to_data (root, FALSE);
  g_autoptr (JsonParser) p = json_parser_new ();
  ck_assert_msg (json_parser_load_from_data (p, out, -1, NULL), "not JSON: %s", out);
  ck_assert (json_object_get_double_member (json_node_get_object (json_parser_get_root (p)), "tiny")
             == 1e-08);
}
END_TEST

START_TEST (test_determinism_and_errors)
{
  g_autoptr (MsimModelSpec) m = tiny_model (2, 2, 1);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e11);
  g_autoptr (MsimTopology) topo = switch2 ();
  const int ids[] = { 1, 0, 1, 1, 0, 0, 1, 0 };
  g_autoptr (MsimTrace) tr = make_trace (4, 2, 1, 2, ids);
  guint gpu_of[] = { 0, 1, 1, 0 };
  g_autoptr (MsimExpertMap) placement = map_of (2, 2, gpu_of);
  MsimStepOptions o;
  options (&o, MSIM_SCHEME_BASELINE_EP, 4);
  o.microbatches = 2;
  o.record_timeline = TRUE;
  g_autoptr (MsimStepRun) a = msim_step_run (topo, m, g, tr, placement, &o, NULL);
  g_autoptr (MsimStepRun) b = msim_step_run (topo, m, g, tr, placement, &o, NULL);
  g_autoptr (JsonNode) ja = msim_step_run_to_json (a);
  g_autoptr (JsonNode) jb = msim_step_run_to_json (b);
  g_autofree char *sa = msim_json_to_data (ja, FALSE);
  g_autofree char *sb = msim_json_to_data (jb, FALSE);
  ck_assert_str_eq (sa, sb);
  g_autofree char *ta = msim_step_run_timeline (a);
  g_autofree char *tb = msim_step_run_timeline (b);
  ck_assert_str_eq (ta, tb);
  /* The timeline is valid JSON. */
  g_autoptr (JsonParser) p = json_parser_new ();
  ck_assert (json_parser_load_from_data (p, ta, -1, NULL));

  /* Too many tokens for the trace; a GPU index out of range; not enough
   * memory. */
  GError *error = NULL;
  options (&o, MSIM_SCHEME_BASELINE_EP, 8);
  ck_assert_ptr_null (msim_step_run (topo, m, g, tr, placement, &o, &error));
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_clear_error (&error);
  options (&o, MSIM_SCHEME_BASELINE_EP, 4);
  guint bad_of[] = { 0, 5, 1, 0 };
  g_autoptr (MsimExpertMap) bad = map_of (2, 2, bad_of);
  ck_assert_ptr_null (msim_step_run (topo, m, g, tr, bad, &o, &error));
  ck_assert (strstr (error->message, "GPU 5") != NULL);
  g_clear_error (&error);
  g_autoptr (MsimGpuSpec) small = unit_gpu (2e6);
  ck_assert_ptr_null (msim_step_run (topo, m, small, tr, placement, &o, &error));
  ck_assert (strstr (error->message, "GiB") != NULL);
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_clear_error (&error);
}
END_TEST

/* The routing thread changes nothing: a synthetic trace routed with and
 * without it (micro-batches, capacity drops, context-coherent decode over
 * several steps, baseline prefill) gives byte-identical JSON and timelines. */
START_TEST (test_route_thread_same_results)
{
  const guint layers = 3, E = 4, k = 2, tokens = 240, steps = 3;
  g_autoptr (MsimModelSpec) m = tiny_model (layers, E, k);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e12);
  g_autoptr (MsimTopology) topo = switch2 ();
  g_autofree int *ids = g_new (int, (gsize)tokens * steps * layers * k);
  guint32 x = 12345;
  for (gsize i = 0; i < (gsize)tokens * steps * layers; i++)
    for (guint r = 0; r < k; r++)
      {
        x = x * 1664525u + 1013904223u;
        int e = (int)((x >> 16) % E);
        if (r == 1 && e == ids[i * k])
          e = (e + 1) % (int)E; /* distinct experts per token */
        ids[i * k + r] = e;
      }
  for (gsize i = 7; i < (gsize)tokens * steps * layers * k; i += 97)
    ids[i] = -1; /* some assignments missing from the trace */
  g_autoptr (MsimTrace) tr = make_trace (tokens * steps, layers, k, E, ids);
  guint gpu_of[] = { 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1 };
  g_autoptr (MsimExpertMap) placement = map_of (layers, E, gpu_of);
  for (int variant = 0; variant < 3; variant++)
    {
      MsimStepOptions o;
      options (&o, variant == 0 ? MSIM_SCHEME_BASELINE_EP : MSIM_SCHEME_CONTEXT_COHERENT,
               tokens);
      o.record_timeline = TRUE;
      if (variant >= 1)
        {
          o.phase = MSIM_PHASE_DECODE;
          o.steps = steps;
          o.prompt_len = 16;
        }
      o.microbatches = variant == 2 ? 3 : 2;
      o.capacity_factor = variant == 2 ? 1.0 : 0.0;
      char *out[2], *tl[2];
      guint64 dropped[2];
      for (int t = 0; t < 2; t++)
        {
          o.route_thread = t ? MSIM_ROUTE_THREAD_ON : MSIM_ROUTE_THREAD_OFF;
          GError *error = NULL;
          MsimStepRun *run = msim_step_run (topo, m, g, tr, placement, &o, &error);
          ck_assert_msg (run != NULL, "%s", error ? error->message : "");
          JsonNode *j = msim_step_run_to_json (run);
          out[t] = msim_json_to_data (j, FALSE);
          json_node_unref (j);
          tl[t] = msim_step_run_timeline (run);
          dropped[t] = msim_step_run_dropped (run);
          msim_step_run_free (run);
        }
      ck_assert_str_eq (out[0], out[1]);
      ck_assert_str_eq (tl[0], tl[1]);
      ck_assert_uint_eq (dropped[0], dropped[1]);
      if (variant < 2)
        {
          /* Unlimited capacity routes token by token, a limit rank by rank:
           * a limit never reached must give the same schedule. */
          o.capacity_factor = 1e6;
          MsimStepRun *run = msim_step_run (topo, m, g, tr, placement, &o, NULL);
          ck_assert_ptr_nonnull (run);
          g_autofree char *t2 = msim_step_run_timeline (run);
          ck_assert_str_eq (t2, tl[0]);
          ck_assert_uint_eq (msim_step_run_dropped (run), dropped[0]);
          ck_assert_uint_gt (dropped[0], 0); /* the missing ones */
          msim_step_run_free (run);
        }
      if (variant == 2)
        ck_assert_uint_gt (dropped[0], 0); /* the capacity path was exercised */
      for (int t = 0; t < 2; t++)
        {
          g_free (out[t]);
          g_free (tl[t]);
        }
    }
}
END_TEST

/* The routing thread's ring of blocks (G x G matrices per slot) counts
 * against the working-memory limit: on 256 GPUs a limit that the run fits
 * in with the routing inline refuses the run with the thread forced on. */
START_TEST (test_route_ring_counts_against_memory_limit)
{
  g_autoptr (MsimModelSpec) m = tiny_model (1, 2, 1);
  g_autoptr (MsimGpuSpec) g = unit_gpu (1e12);
  GError *error = NULL;
  g_autoptr (MsimTopology) topo = msim_topology_load_data (
      "[topology]\nname = sw256\nbuilder = nvswitch\ngpus = 256\n"
      "nvlink_bandwidth = 1e9\nnvlink_latency = 0\npcie_bandwidth = 1e9\npcie_latency = 0\n",
      -1, "sw256.ini", &error);
  ck_assert_msg (topo != NULL, "%s", error ? error->message : "");
  int ids[256];
  for (int i = 0; i < 256; i++)
    ids[i] = i % 2;
  g_autoptr (MsimTrace) tr = make_trace (256, 1, 1, 2, ids);
  guint gpu_of[] = { 0, 1 };
  g_autoptr (MsimExpertMap) placement = map_of (1, 2, gpu_of);
  MsimStepOptions o;
  options (&o, MSIM_SCHEME_BASELINE_EP, 256);
  /* Inline: one slot of 256 x (16 x 256 + 16) bytes (~1.05 MB) next to
   * about 3 MB of graph and matrices; threaded: four slots, ~3.1 MB more. */
  msim_trace_set_memory_limit (5u << 20);
  o.route_thread = MSIM_ROUTE_THREAD_OFF;
  MsimStepRun *run = msim_step_run (topo, m, g, tr, placement, &o, &error);
  ck_assert_msg (run != NULL, "%s", error ? error->message : "");
  msim_step_run_free (run);
  o.route_thread = MSIM_ROUTE_THREAD_ON;
  ck_assert_ptr_null (msim_step_run (topo, m, g, tr, placement, &o, &error));
  ck_assert (strstr (error->message, "memory_limit_gib") != NULL);
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_clear_error (&error);
  msim_trace_set_memory_limit (MSIM_TRACE_DEFAULT_MEMORY_LIMIT);
  run = msim_step_run (topo, m, g, tr, placement, &o, &error);
  ck_assert_msg (run != NULL, "%s", error ? error->message : "");
  msim_step_run_free (run);
}
END_TEST

static Suite *
step_suite (void)
{
  Suite *s = suite_create ("step");
  TCase *tc = tcase_create ("schemes");
  tcase_add_test (tc, test_two_gpus_one_layer);
  tcase_add_test (tc, test_local_placement_moves_nothing);
  suite_add_tcase (s, tc);
  tc = tcase_create ("accounting");
  tcase_add_test (tc, test_capacity_and_conservation);
  tcase_add_test (tc, test_determinism_and_errors);
  tcase_add_test (tc, test_json_exponents);
  tcase_add_test (tc, test_replicas_split_by_token);
  tcase_add_test (tc, test_route_thread_same_results);
  tcase_add_test (tc, test_route_ring_counts_against_memory_limit);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (step_suite)
