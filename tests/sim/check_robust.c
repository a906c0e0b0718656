/* Numerical robustness of the step engine at the edges where the work is
 * zero: GPUs that receive no token for their experts, GPUs that hold no
 * expert, micro-batches with no token, layers where the capacity limit
 * drops almost everything, and decode steps that collapse every sequence
 * onto one GPU.  Each run has the network invariant checks on and must
 * finish, conserve tokens (processed + dropped = tokens x k x MoE layers),
 * move exactly the bytes the routing implies, and produce a report whose
 * every number is finite (NaN and infinities are not JSON). */
#include <math.h>
#include <string.h>

#include "msim-check.h"
#include "msim-error.h"
#include "msim-json.h"
#include "step.h"

/* Activation bytes per token of tiny_model (hidden 1000, bf16). */
#define ACT_BYTES 2000.0

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

/* A GPU with no launch overhead, so that an empty kernel takes no time. */
static MsimGpuSpec *
unit_gpu (void)
{
  const char *text = "[gpu]\nname = unit\npeak_flops = 1e12\nhbm_bandwidth_Bps = 1e12\n"
                     "hbm_capacity_bytes = 1e11\nlaunch_overhead_s = 0\n"
                     "gemm_flops_efficiency = 1\ngemm_bandwidth_efficiency = 1\n"
                     "grouped_gemm_flops_efficiency = 1\ngrouped_gemm_bandwidth_efficiency = 1\n"
                     "attention_flops_efficiency = 1\nattention_bandwidth_efficiency = 1\n"
                     "elementwise_flops_efficiency = 1\nelementwise_bandwidth_efficiency = 1\n";
  GError *error = NULL;
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "unit-gpu.ini", &error);
  ck_assert_msg (ini != NULL, "%s", error ? error->message : "");
  MsimGpuSpec *g = msim_gpu_spec_new_from_ini (ini, "gpu", &error);
  ck_assert_msg (g != NULL, "%s", error ? error->message : "");
  return g;
}

/* @gpus GPUs on one switch, two per host (so cross-node counts are
 * exercised), no latency. */
static MsimTopology *
switch_of (int gpus)
{
  g_autofree char *text = g_strdup_printf ("[topology]\nname = sw\nbuilder = nvswitch\ngpus = %d\n"
                                           "gpus_per_host = 2\nnvlink_bandwidth = 1e9\n"
                                           "pcie_bandwidth = 1e9\n",
                                           gpus);
  GError *error = NULL;
  MsimTopology *t = msim_topology_load_data (text, -1, "sw.ini", &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  return t;
}

/* A trace where token t at layer l picks experts expert_of (t, l, r). */
static MsimTrace *
make_trace (guint tokens, guint layers, guint k, guint experts,
            int (*expert_of) (guint t, guint l, guint r))
{
  GError *error = NULL;
  MsimTrace *t = msim_trace_new (tokens, layers, k, experts, 0, &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  for (guint l = 0; l < layers; l++)
    for (guint i = 0; i < tokens; i++)
      for (guint r = 0; r < k; r++)
        msim_trace_set_expert (t, i, l, r, expert_of (i, l, r));
  return t;
}

/* Expert e of every layer on GPU gpu_of_expert[e]. */
static MsimExpertMap *
map_of (guint layers, guint experts, const guint *gpu_of_expert)
{
  g_autofree guint *all = g_new (guint, layers * experts);
  for (guint l = 0; l < layers; l++)
    for (guint e = 0; e < experts; e++)
      all[l * experts + e] = gpu_of_expert[e];
  return msim_expert_map_new_single (layers, experts, all);
}

static void
options (MsimStepOptions *o, MsimScheme scheme, guint64 tokens)
{
  msim_step_options_init (o);
  o->scheme = scheme;
  o->tokens = tokens;
  o->prompt_len = 4;
  o->comm.base_latency_s = 0.0;
  o->check = TRUE;
}

static void
assert_finite_json (JsonNode *node, const char *where)
{
  switch (JSON_NODE_TYPE (node))
    {
      case JSON_NODE_OBJECT:
        {
          JsonObject *o = json_node_get_object (node);
          g_autoptr (GList) members = json_object_get_members (o);
          for (GList *m = members; m; m = m->next)
            assert_finite_json (json_object_get_member (o, m->data), m->data);
          break;
        }
      case JSON_NODE_ARRAY:
        {
          JsonArray *a = json_node_get_array (node);
          for (guint i = 0; i < json_array_get_length (a); i++)
            assert_finite_json (json_array_get_element (a, i), where);
          break;
        }
      case JSON_NODE_VALUE:
        if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
          ck_assert_msg (isfinite (json_node_get_double (node)), "%s is %g", where,
                         json_node_get_double (node));
        break;
      case JSON_NODE_NULL:
        break;
    }
}

/* Runs and checks the invariants every run must keep. */
static MsimStepRun *
run_checked (MsimTopology *topo, const MsimModelSpec *m, const MsimGpuSpec *g, const MsimTrace *tr,
             const MsimExpertMap *map, const MsimStepOptions *o)
{
  GError *error = NULL;
  MsimStepRun *run = msim_step_run (topo, m, g, tr, map, o, &error);
  ck_assert_msg (run != NULL, "%s", error ? error->message : "");
  double t = msim_step_run_time_s (run);
  ck_assert_msg (isfinite (t) && t > 0.0, "step time %g", t);
  ck_assert_msg (isfinite (msim_step_run_tokens_per_s (run)), "tokens/s not finite");
  guint64 expected = o->tokens * o->steps * m->top_k * msim_model_spec_n_moe_layers (m);
  ck_assert_int_eq (msim_step_run_assignments (run) + msim_step_run_dropped (run), expected);
  g_autoptr (JsonNode) json = msim_step_run_to_json (run);
  assert_finite_json (json, "report");
  /* The writer every command uses must give parseable JSON, including
   * doubles like 1e-08 (json-glib 1.6 alone writes "1e-08.0"). */
  g_autofree char *text = msim_json_to_data (json, FALSE);
  g_autoptr (JsonParser) p = json_parser_new ();
  GError *perr = NULL;
  ck_assert_msg (json_parser_load_from_data (p, text, -1, &perr), "report is not JSON: %s",
                 perr ? perr->message : "");
  g_autofree char *csv = msim_step_run_to_csv (run);
  ck_assert (strstr (csv, "nan") == NULL && strstr (csv, "inf") == NULL);
  return run;
}

static int
all_to_expert_0 (guint t, guint l, guint r)
{
  return (int)r; /* rank 0 -> expert 0, rank 1 -> expert 1 */
}

START_TEST (test_zero_token_gpus)
{
  /* 8 tokens on 4 GPUs (2 each), every token's experts are 0 and 1, both
   * on GPU 0: GPUs 1-3 run their expert FFN on zero tokens, and the 6
   * tokens away from GPU 0 send both copies there and back. */
  g_autoptr (MsimModelSpec) m = tiny_model (2, 4, 2);
  g_autoptr (MsimGpuSpec) g = unit_gpu ();
  g_autoptr (MsimTopology) topo = switch_of (4);
  g_autoptr (MsimTrace) tr = make_trace (8, 2, 2, 4, all_to_expert_0);
  const guint gpu_of[] = { 0, 0, 2, 3 };
  g_autoptr (MsimExpertMap) map = map_of (2, 4, gpu_of);
  MsimStepOptions o;
  options (&o, MSIM_SCHEME_BASELINE_EP, 8);
  g_autoptr (MsimStepRun) base = run_checked (topo, m, g, tr, map, &o);
  ck_assert_int_eq (msim_step_run_dropped (base), 0);
  /* Per layer: 6 tokens x 2 experts x 2000 B each way. */
  ck_assert (msim_step_run_dispatch_bytes (base) == 2 * 6 * 2 * ACT_BYTES);
  ck_assert (msim_step_run_combine_bytes (base) == msim_step_run_dispatch_bytes (base));

  /* Context-coherent: after layer 0 every token lives on GPU 0, so layer
   * 1's attention runs on zero tokens on GPUs 1-3 and nothing moves. */
  options (&o, MSIM_SCHEME_CONTEXT_COHERENT, 8);
  g_autoptr (MsimStepRun) cc = run_checked (topo, m, g, tr, map, &o);
  ck_assert (msim_step_run_dispatch_bytes (cc) == 6 * 2 * ACT_BYTES);
  ck_assert (msim_step_run_combine_bytes (cc) == 0.0);
  ck_assert (msim_step_run_time_s (cc) <= msim_step_run_time_s (base));
}
END_TEST

static int
spread (guint t, guint l, guint r)
{
  return (int)((t + l + r) % 4);
}

START_TEST (test_gpu_without_experts)
{
  /* All 4 experts on GPUs 0 and 1; GPUs 2 and 3 hold none, compute no
   * expert FFN and hold no expert weights, only send and receive. */
  g_autoptr (MsimModelSpec) m = tiny_model (3, 4, 2);
  g_autoptr (MsimGpuSpec) g = unit_gpu ();
  g_autoptr (MsimTopology) topo = switch_of (4);
  g_autoptr (MsimTrace) tr = make_trace (16, 3, 2, 4, spread);
  const guint gpu_of[] = { 0, 1, 0, 1 };
  g_autoptr (MsimExpertMap) map = map_of (3, 4, gpu_of);
  for (int scheme = 0; scheme < 2; scheme++)
    {
      MsimStepOptions o;
      options (&o, scheme ? MSIM_SCHEME_CONTEXT_COHERENT : MSIM_SCHEME_BASELINE_EP, 16);
      o.microbatches = 2;
      g_autoptr (MsimStepRun) run = run_checked (topo, m, g, tr, map, &o);
      ck_assert_int_eq (msim_step_run_dropped (run), 0);
      ck_assert (msim_step_run_dispatch_bytes (run) > 0.0);
    }
}
END_TEST

START_TEST (test_empty_microbatches)
{
  /* 8 tokens on 4 GPUs is 2 per GPU; 4 micro-batches leave two of them
   * empty on every GPU: zero-token attention, gate, expert and all-to-alls
   * of zero bytes.  With no launch overhead and no per-call latency, empty
   * micro-batches add no time and the results equal those of 2. */
  g_autoptr (MsimModelSpec) m = tiny_model (2, 4, 2);
  g_autoptr (MsimGpuSpec) g = unit_gpu ();
  g_autoptr (MsimTopology) topo = switch_of (4);
  g_autoptr (MsimTrace) tr = make_trace (8, 2, 2, 4, spread);
  const guint gpu_of[] = { 0, 1, 2, 3 };
  g_autoptr (MsimExpertMap) map = map_of (2, 4, gpu_of);
  for (int scheme = 0; scheme < 2; scheme++)
    {
      MsimStepOptions o;
      options (&o, scheme ? MSIM_SCHEME_CONTEXT_COHERENT : MSIM_SCHEME_BASELINE_EP, 8);
      o.microbatches = 2;
      g_autoptr (MsimStepRun) two = run_checked (topo, m, g, tr, map, &o);
      o.microbatches = 4;
      g_autoptr (MsimStepRun) four = run_checked (topo, m, g, tr, map, &o);
      ck_assert (msim_step_run_dispatch_bytes (four) == msim_step_run_dispatch_bytes (two));
      ck_assert (msim_step_run_combine_bytes (four) == msim_step_run_combine_bytes (two));
      ck_assert_int_eq (msim_step_run_assignments (four), msim_step_run_assignments (two));
      msim_ck_assert_near (msim_step_run_time_s (four), msim_step_run_time_s (two), 1e-12);
      /* More micro-batches than tokens in the whole step. */
      o.microbatches = 64;
      g_autoptr (MsimStepRun) many = run_checked (topo, m, g, tr, map, &o);
      ck_assert (msim_step_run_dispatch_bytes (many) == msim_step_run_dispatch_bytes (two));
    }
}
END_TEST

START_TEST (test_capacity_drops_almost_all)
{
  /* Capacity factor 0.001: C = ceil(T k / E x 0.001) = 1 assignment per
   * expert and micro-batch, so a layer keeps 4 of its 64 assignments. */
  g_autoptr (MsimModelSpec) m = tiny_model (2, 4, 2);
  g_autoptr (MsimGpuSpec) g = unit_gpu ();
  g_autoptr (MsimTopology) topo = switch_of (4);
  g_autoptr (MsimTrace) tr = make_trace (32, 2, 2, 4, spread);
  const guint gpu_of[] = { 0, 1, 2, 3 };
  g_autoptr (MsimExpertMap) map = map_of (2, 4, gpu_of);
  for (int scheme = 0; scheme < 2; scheme++)
    {
      MsimStepOptions o;
      options (&o, scheme ? MSIM_SCHEME_CONTEXT_COHERENT : MSIM_SCHEME_BASELINE_EP, 32);
      o.capacity_factor = 0.001;
      g_autoptr (MsimStepRun) run = run_checked (topo, m, g, tr, map, &o);
      ck_assert_int_eq (msim_step_run_assignments (run), 2 * 4);
      ck_assert_int_eq (msim_step_run_dropped (run), 2 * 64 - 2 * 4);
    }
}
END_TEST

START_TEST (test_decode_collapse)
{
  /* Decode, one sequence per GPU, every token routed to experts 0 and 1
   * on GPU 0 for 3 steps: with context-coherent routing every sequence
   * sits on GPU 0 after the first layer; the other GPUs idle. */
  g_autoptr (MsimModelSpec) m = tiny_model (2, 4, 2);
  g_autoptr (MsimGpuSpec) g = unit_gpu ();
  g_autoptr (MsimTopology) topo = switch_of (4);
  g_autoptr (MsimTrace) tr = make_trace (12, 2, 2, 4, all_to_expert_0);
  const guint gpu_of[] = { 0, 0, 1, 1 };
  g_autoptr (MsimExpertMap) map = map_of (2, 4, gpu_of);
  for (int scheme = 0; scheme < 2; scheme++)
    {
      MsimStepOptions o;
      options (&o, scheme ? MSIM_SCHEME_CONTEXT_COHERENT : MSIM_SCHEME_BASELINE_EP, 4);
      o.phase = MSIM_PHASE_DECODE;
      o.steps = 3;
      g_autoptr (MsimStepRun) run = run_checked (topo, m, g, tr, map, &o);
      ck_assert_int_eq (msim_step_run_dropped (run), 0);
    }
}
END_TEST

static Suite *
robust_suite (void)
{
  Suite *s = suite_create ("robust");
  TCase *tc = tcase_create ("zero_tokens");
  tcase_add_test (tc, test_zero_token_gpus);
  tcase_add_test (tc, test_gpu_without_experts);
  tcase_add_test (tc, test_empty_microbatches);
  suite_add_tcase (s, tc);
  tc = tcase_create ("extremes");
  tcase_add_test (tc, test_capacity_drops_almost_all);
  tcase_add_test (tc, test_decode_collapse);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (robust_suite)
