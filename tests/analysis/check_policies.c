/* Check suite for the placement policies: every built-in returns a valid
 * placement, the exact chain DP and the GLPK ILP find the optimum known by
 * enumeration on tiny cases, the heuristic is never worse than contiguous,
 * results are deterministic for a seed, and EPLB replicates and balances as
 * specified. */
#include <math.h>
#include <string.h>

#include "analysis-test-util.h"
#include "msim-error.h"
#include "synthetic-trace.h"

/* ---- enumeration ---- */

/* Every layout of one layer: E experts on G GPUs with at most cap each. */
static void
layer_layouts (guint E, guint G, guint cap, guint e, guint32 *cur, guint *used, GArray *out)
{
  if (e == E)
    {
      g_array_append_vals (out, cur, E);
      return;
    }
  for (guint g = 0; g < G; g++)
    if (used[g] < cap)
      {
        used[g]++;
        cur[e] = g;
        layer_layouts (E, G, cap, e + 1, cur, used, out);
        used[g]--;
      }
}

/* The minimum cost over every placement (product of layer layouts). */
static guint64
brute_force (const MsimPlacementProblem *pb)
{
  const guint L = pb->layers, E = pb->experts;
  g_autoptr (GArray) lay = g_array_new (FALSE, FALSE, sizeof (guint32));
  guint32 cur[16];
  guint used[16] = { 0 };
  layer_layouts (E, pb->gpus, pb->slots_per_gpu, 0, cur, used, lay);
  guint n = lay->len / E;
  g_autofree guint32 *gpu = g_new (guint32, (gsize)L * E);
  g_autofree guint *idx = g_new0 (guint, L);
  guint64 best = G_MAXUINT64;
  for (;;)
    {
      for (guint l = 0; l < L; l++)
        memcpy (gpu + (gsize)l * E, &g_array_index (lay, guint32, (gsize)idx[l] * E),
                E * sizeof (guint32));
      best = MIN (best, msim_placement_problem_cost (pb, gpu));
      guint l = 0;
      while (l < L && ++idx[l] == n)
        idx[l++] = 0;
      if (l == L)
        break;
    }
  return best;
}

static guint64
cost_of (const MsimPlacementProblem *pb, const MsimPlacement *p)
{
  return msim_placement_problem_cost (pb, msim_placement_gpu_array (p));
}

/* ---- tests ---- */

START_TEST (tc_all_valid)
{
  /* Shapes: divisible, not divisible, more GPUs than experts, two levels. */
  static const guint shapes[][4] = {
    { 4, 8, 4, 1 }, { 3, 10, 4, 1 }, { 3, 4, 8, 1 }, { 4, 8, 8, 2 }, { 3, 16, 4, 2 },
  };
  guint n;
  const MsimPlacementPolicy *const *list = msim_placement_policy_list (&n);
  for (gsize s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      g_autoptr (MsimPlacementProblem) pb
          = test_problem (shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 3 + s);
      for (guint i = 0; i < n; i++)
        {
          const char *ilp_opts[] = { "time-limit=1", NULL };
          const char *eplb_opts[] = { "mode=global", NULL };
          const char *const *opts = NULL;
          if (strcmp (list[i]->name, "exflow-ilp") == 0)
            opts = ilp_opts;
          else if (strcmp (list[i]->name, "eplb") == 0)
            {
              /* E + R must divide by G: R = G works when G divides E. */
              if (shapes[s][1] % shapes[s][2] != 0)
                continue;
              opts = eplb_opts;
            }
          g_autoptr (GArray) stats = NULL;
          g_autoptr (MsimPlacement) p = test_run (list[i]->name, opts, pb, &stats);
          guint slots = pb->slots_per_gpu;
          if (msim_placement_n_extra (p) > 0)
            slots = (pb->experts + pb->gpus) / pb->gpus;
          g_autoptr (GError) error = NULL;
          ck_assert_msg (msim_placement_validate (p, slots, &error), "%s on shape %zu: %s",
                         list[i]->name, s, error ? error->message : "");
          ck_assert (!isnan (msim_placement_stats_get (stats, "seconds")));
        }
    }
}
END_TEST

START_TEST (tc_exact_small)
{
  /* Exact DP and ILP against enumeration: flat 2 GPUs (6 layouts a layer),
   * and 2 nodes x 2 GPUs with one expert per GPU (24 a layer). */
  static const guint shapes[][4] = { { 3, 4, 2, 1 }, { 3, 4, 4, 2 }, { 4, 4, 2, 1 } };
  for (gsize s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (guint64 seed = 1; seed <= 3; seed++)
      {
        g_autoptr (MsimPlacementProblem) pb
            = test_problem (shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], seed * 11 + s);
        guint64 opt = brute_force (pb);
        g_autoptr (GArray) st = NULL;
        g_autoptr (MsimPlacement) dp = test_run ("affinity-local-search", NULL, pb, &st);
        ck_assert (msim_placement_stats_get (st, "exact") == 1.0);
        ck_assert_uint_eq (cost_of (pb, dp), opt);
        /* Local search alone (no DP) finds it too on these sizes. */
        const char *nodp[] = { "max-states=0", NULL };
        g_autoptr (MsimPlacement) ls = test_run ("affinity-local-search", nodp, pb, NULL);
        ck_assert_uint_ge (cost_of (pb, ls), opt);
        /* The direct ILP proves it. */
        const char *ilp[] = { "mode=direct", "time-limit=30", NULL };
        g_autoptr (GArray) is = NULL;
        g_autoptr (MsimPlacement) ip = test_run ("exflow-ilp", ilp, pb, &is);
        ck_assert_uint_eq (cost_of (pb, ip), opt);
        ck_assert (msim_placement_stats_get (is, "mip_gap") == 0.0);
        ck_assert (msim_placement_stats_get (is, "subproblems_optimal") == 1.0);
        msim_ck_assert_near (msim_placement_stats_get (is, "objective"), (double)opt, 1e-12);
      }
}
END_TEST

START_TEST (tc_ilp_modes)
{
  g_autoptr (MsimPlacementProblem) pb = test_problem (4, 8, 4, 2, 5);
  guint64 contig;
  {
    g_autoptr (MsimPlacement) c = test_run ("contiguous", NULL, pb, NULL);
    contig = cost_of (pb, c);
  }
  static const char *const modes[] = { "staged", "bisection", "direct" };
  for (gsize m = 0; m < G_N_ELEMENTS (modes); m++)
    {
      g_autofree char *mode = g_strdup_printf ("mode=%s", modes[m]);
      const char *opts[] = { mode, "time-limit=2", NULL };
      g_autoptr (GArray) st = NULL;
      g_autoptr (MsimPlacement) p = test_run ("exflow-ilp", opts, pb, &st);
      /* Warm-started from contiguous, so never worse than it. */
      ck_assert_uint_le (cost_of (pb, p), contig);
      ck_assert (msim_placement_stats_get (st, "subproblems") >= 1);
    }
  /* Bad options and a sub-program too large for max-rows without a warm
   * start are errors, not aborts. */
  g_autoptr (GError) error = NULL;
  const char *bad[] = { "mode=quantum", NULL };
  ck_assert (msim_placement_run (msim_placement_policy_find ("exflow-ilp"), bad, pb, NULL, &error)
             == NULL);
  ck_assert (strstr (error->message, "'quantum' is not one of") != NULL);
  g_clear_error (&error);
  const char *tiny[] = { "max-rows=10", "warm-start=none", NULL };
  ck_assert (msim_placement_run (msim_placement_policy_find ("exflow-ilp"), tiny, pb, NULL, &error)
             == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_LIMIT);
  /* With a warm start the same limit keeps it and says so. */
  const char *tiny2[] = { "max-rows=10", NULL };
  g_autoptr (GArray) st = NULL;
  g_autoptr (MsimPlacement) p = test_run ("exflow-ilp", tiny2, pb, &st);
  ck_assert_uint_eq (cost_of (pb, p), contig);
  ck_assert (msim_placement_stats_get (st, "subproblems_too_large") >= 1);
}
END_TEST

START_TEST (tc_never_worse)
{
  static const guint shapes[][4] = {
    { 6, 16, 4, 1 }, { 5, 12, 8, 1 }, { 4, 8, 16, 1 }, { 6, 16, 8, 2 }, { 5, 32, 8, 4 },
  };
  for (gsize s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (guint64 seed = 1; seed <= 2; seed++)
      {
        g_autoptr (MsimPlacementProblem) pb
            = test_problem (shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], seed + 100 * s);
        g_autoptr (MsimPlacement) c = test_run ("contiguous", NULL, pb, NULL);
        const char *few[] = { "restarts=4", NULL };
        g_autoptr (MsimPlacement) h = test_run ("affinity-local-search", few, pb, NULL);
        ck_assert_uint_le (cost_of (pb, h), cost_of (pb, c));
        /* On affinity-structured counts it should be strictly better. */
        ck_assert_uint_lt (cost_of (pb, h), cost_of (pb, c));
      }
}
END_TEST

START_TEST (tc_deterministic)
{
  g_autoptr (MsimPlacementProblem) pb = test_problem (6, 16, 4, 2, 9);
  const char *opts[] = { "restarts=6", NULL };
  g_autoptr (MsimPlacement) a = test_run ("affinity-local-search", opts, pb, NULL);
  g_autoptr (MsimPlacement) b = test_run ("affinity-local-search", opts, pb, NULL);
  ck_assert (
      memcmp (msim_placement_gpu_array (a), msim_placement_gpu_array (b), sizeof (guint32) * 6 * 16)
      == 0);
  g_autoptr (MsimPlacement) c = test_run ("graph-partition", NULL, pb, NULL);
  g_autoptr (MsimPlacement) d = test_run ("graph-partition", NULL, pb, NULL);
  ck_assert (
      memcmp (msim_placement_gpu_array (c), msim_placement_gpu_array (d), sizeof (guint32) * 6 * 16)
      == 0);
}
END_TEST

START_TEST (tc_dp_matches_ils_on_trace)
{
  /* A synthetic trace with Mixtral's shape on 4 GPUs: the DP's optimum is
   * never above what local search alone finds. */
  g_autoptr (MsimTrace) t = msim_synthetic_affinity_trace_new (600, 6, 8, 2, 0.5, 64, 4, NULL);
  ck_assert (t != NULL);
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (4, 1, NULL);
  g_autoptr (MsimPlacementProblem) pb = msim_placement_problem_new (t, shape, 1, NULL);
  g_autoptr (GArray) st = NULL;
  g_autoptr (MsimPlacement) dp = test_run ("affinity-local-search", NULL, pb, &st);
  ck_assert (msim_placement_stats_get (st, "exact") == 1.0);
  ck_assert (msim_placement_stats_get (st, "dp_states") == 105.0);
  const char *nodp[] = { "max-states=0", "restarts=8", NULL };
  g_autoptr (MsimPlacement) ls = test_run ("affinity-local-search", nodp, pb, NULL);
  ck_assert_uint_le (cost_of (pb, dp), cost_of (pb, ls));
  /* Evaluation on the fitted trace agrees with the policy's statistic. */
  MsimPlacementEval ev;
  ck_assert (msim_placement_evaluate (dp, t, shape, &ev, NULL));
  msim_ck_assert_near (ev.cross_gpu, msim_placement_stats_get (st, "cross_gpu_fraction"), 1e-12);
}
END_TEST

START_TEST (tc_graph_partition)
{
  g_autoptr (MsimTrace) t = msim_synthetic_affinity_trace_new (2000, 6, 16, 2, 0.8, 256, 2, NULL);
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (4, 2, NULL);
  g_autoptr (MsimPlacementProblem) pb = msim_placement_problem_new (t, shape, 1, NULL);
  g_autoptr (GArray) st = NULL;
  g_autoptr (MsimPlacement) p = test_run ("graph-partition", NULL, pb, &st);
  g_autoptr (MsimPlacement) c = test_run ("contiguous", NULL, pb, NULL);
  ck_assert (msim_placement_stats_get (st, "communities") >= 1);
  /* Strong affinity: communities are good parts, far better than contiguous. */
  ck_assert_uint_lt (cost_of (pb, p), cost_of (pb, c));
  ck_assert (msim_placement_stats_get (st, "objective")
             <= msim_placement_stats_get (st, "partition_objective"));
  const char *raw[] = { "refine=false", NULL };
  g_autoptr (MsimPlacement) r = test_run ("graph-partition", raw, pb, NULL);
  ck_assert (msim_placement_validate (r, pb->slots_per_gpu, NULL));
}
END_TEST

START_TEST (tc_eplb)
{
  g_autoptr (MsimTrace) t = msim_synthetic_affinity_trace_new (3000, 4, 8, 2, 0.5, 128, 6, NULL);
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (4, 2, NULL);
  g_autoptr (MsimPlacementProblem) pb = msim_placement_problem_new (t, shape, 1, NULL);
  static const char *const modes[] = { "mode=global", "mode=hierarchical" };
  for (gsize m = 0; m < 2; m++)
    {
      const char *opts[] = { modes[m], "extra-slots=4", NULL };
      g_autoptr (GArray) st = NULL;
      g_autoptr (MsimPlacement) p = test_run ("eplb", opts, pb, &st);
      /* 4 extra copies per layer, 3 slots per GPU, every slot used. */
      ck_assert_uint_eq (msim_placement_n_extra (p), 4 * 4);
      ck_assert (msim_placement_validate (p, 3, NULL));
      for (guint l = 0; l < 4; l++)
        for (guint g = 0; g < 4; g++)
          ck_assert_uint_eq (msim_placement_slots_used (p, l, g), 3);
      double before = msim_placement_stats_get (st, "load_imbalance_before");
      double after = msim_placement_stats_get (st, "load_imbalance_after");
      ck_assert_msg (after < before, "imbalance %g -> %g", before, after);
      ck_assert (after >= 1.0);
      ck_assert (!isnan (msim_placement_stats_get (st, "cross_gpu_after_local")));
      ck_assert (msim_placement_stats_get (st, "cross_gpu_after_local")
                 <= msim_placement_stats_get (st, "cross_gpu_after_split") + 1e-12);
      ck_assert (msim_placement_stats_get (st, "hierarchical") == (double)m);
      if (m == 1)
        {
          /* Hierarchical: all copies of an expert stay in one node. */
          for (guint l = 0; l < 4; l++)
            for (guint e = 0; e < 8; e++)
              {
                guint n0 = shape->gpu_node[msim_placement_get_gpu (p, l, e)];
                for (guint r = 1; r < msim_placement_n_replicas (p, l, e); r++)
                  ck_assert_uint_eq (shape->gpu_node[msim_placement_replica_gpu (p, l, e, r)], n0);
              }
        }
    }
  /* On top of the affinity layout: replicas in R / G extra slots. */
  const char *aff[] = { "base=affinity", NULL };
  g_autoptr (GArray) st = NULL;
  g_autoptr (MsimPlacement) p = test_run ("eplb", aff, pb, &st);
  ck_assert_uint_eq (msim_placement_n_extra (p), 4 * 4);
  ck_assert (msim_placement_validate (p, 3, NULL));
  /* Invalid slot counts are input errors. */
  g_autoptr (GError) error = NULL;
  const char *bad[] = { "extra-slots=3", NULL };
  ck_assert (msim_placement_run (msim_placement_policy_find ("eplb"), bad, pb, NULL, &error)
             == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
  ck_assert (strstr (error->message, "multiple of 4 GPUs") != NULL);
}
END_TEST

START_TEST (tc_round_robin)
{
  g_autoptr (MsimPlacementProblem) pb = test_problem (2, 8, 4, 1, 1);
  g_autoptr (MsimPlacement) p = test_run ("round-robin", NULL, pb, NULL);
  for (guint e = 0; e < 8; e++)
    ck_assert_uint_eq (msim_placement_get_gpu (p, 1, e), e % 4);
}
END_TEST

static Suite *
policies_suite (void)
{
  test_quiet_libraries ();
  Suite *s = suite_create ("policies");
  TCase *tc;
  tc = tcase_create ("valid");
  tcase_add_test (tc, tc_all_valid);
  tcase_add_test (tc, tc_round_robin);
  suite_add_tcase (s, tc);
  tc = tcase_create ("exact");
  tcase_add_test (tc, tc_exact_small);
  tcase_add_test (tc, tc_dp_matches_ils_on_trace);
  suite_add_tcase (s, tc);
  tc = tcase_create ("ilp");
  tcase_add_test (tc, tc_ilp_modes);
  suite_add_tcase (s, tc);
  tc = tcase_create ("heuristic");
  tcase_add_test (tc, tc_never_worse);
  tcase_add_test (tc, tc_deterministic);
  suite_add_tcase (s, tc);
  tc = tcase_create ("graph_partition");
  tcase_add_test (tc, tc_graph_partition);
  suite_add_tcase (s, tc);
  tc = tcase_create ("eplb");
  tcase_add_test (tc, tc_eplb);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (policies_suite)
