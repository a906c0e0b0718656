/* Check suite for analysis/placement.c: the placement type and its
 * validation, CSV files (moesim and ExFlow), evaluation computed by hand on
 * a tiny trace (cross-GPU, cross-node, loads, replicas under both routing
 * models), problems and their cost. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "analysis-test-util.h"
#include "msim-error.h"

/* 4 tokens, 3 layers, top-1, 4 experts; see tc_eval_by_hand. */
static const int tiny_ids[] = {
  0, 0, 0, /* t0 */
  1, 1, 1, /* t1 */
  2, 3, 2, /* t2 */
  3, 2, 3, /* t3 */
};

/* layer 0 contiguous, layer 1 e0->1 e1->0 e2->0 e3->1, layer 2 contiguous */
static MsimPlacement *
tiny_placement (void)
{
  MsimPlacement *p = msim_placement_new_contiguous (3, 4, 2);
  msim_placement_set_gpu (p, 1, 0, 1);
  msim_placement_set_gpu (p, 1, 1, 0);
  msim_placement_set_gpu (p, 1, 2, 0);
  msim_placement_set_gpu (p, 1, 3, 1);
  return p;
}

START_TEST (tc_contiguous)
{
  g_autoptr (MsimPlacement) p = msim_placement_new_contiguous (2, 8, 4);
  for (guint e = 0; e < 8; e++)
    ck_assert_uint_eq (msim_placement_get_gpu (p, 1, e), e / 2);
  ck_assert (msim_placement_validate (p, 2, NULL));
  /* G not dividing E: floor(e * G / E) keeps every GPU within ceil(E/G). */
  g_autoptr (MsimPlacement) q = msim_placement_new_contiguous (1, 10, 4);
  ck_assert (msim_placement_validate (q, 3, NULL));
  ck_assert_uint_eq (msim_placement_get_gpu (q, 0, 9), 3);
  /* More GPUs than experts: one expert per GPU, some GPUs empty. */
  g_autoptr (MsimPlacement) r = msim_placement_new_contiguous (1, 4, 8);
  ck_assert (msim_placement_validate (r, 1, NULL));
}
END_TEST

START_TEST (tc_validate)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimPlacement) p = msim_placement_new (2, 4, 2);
  ck_assert (!msim_placement_validate (p, 2, &error));
  ck_assert (strstr (error->message, "layer 0 expert 0 is not placed") != NULL);
  g_clear_error (&error);
  for (guint l = 0; l < 2; l++)
    for (guint e = 0; e < 4; e++)
      msim_placement_set_gpu (p, l, e, 0);
  ck_assert (!msim_placement_validate (p, 2, &error));
  ck_assert (strstr (error->message, "GPU 0 holds 4 experts, more than its 2 slots") != NULL);
  g_clear_error (&error);
  msim_placement_set_gpu (p, 1, 3, 7);
  ck_assert (!msim_placement_validate (p, 4, &error));
  ck_assert (strstr (error->message, "GPU 7") != NULL);
}
END_TEST

START_TEST (tc_eval_by_hand)
{
  g_autoptr (MsimTrace) t = test_trace_new (4, 3, 1, 4, tiny_ids);
  g_autoptr (MsimPlacement) p = tiny_placement ();
  g_autoptr (MsimClusterShape) one = msim_cluster_shape_new (2, 1, NULL);
  g_autoptr (MsimClusterShape) two = msim_cluster_shape_new (2, 2, NULL);
  MsimPlacementEval ev;
  /* t0: GPUs 0,1,0 (2 crossings); t1: 0,0,0; t2: 1,1,1; t3: 1,0,1 (2). */
  ck_assert (msim_placement_evaluate (p, t, one, &ev, NULL));
  ck_assert_uint_eq (ev.boundaries, 8);
  msim_ck_assert_near (ev.cross_gpu, 0.5, 1e-12);
  ck_assert (ev.cross_node == 0.0);
  msim_ck_assert_near (ev.mean_cost, 0.5, 1e-12);
  msim_ck_assert_near (ev.load_imbalance, 1.0, 1e-12);
  /* Two nodes of one GPU: every GPU crossing is a node crossing (cost 2). */
  ck_assert (msim_placement_evaluate (p, t, two, &ev, NULL));
  msim_ck_assert_near (ev.cross_node, 0.5, 1e-12);
  msim_ck_assert_near (ev.mean_cost, 1.0, 1e-12);
  ck_assert (msim_placement_evaluate (p, t, NULL, &ev, NULL));
  msim_ck_assert_near (ev.cross_gpu, 0.5, 1e-12);

  /* A copy of layer 1 expert 0 on GPU 0.  Split routing: t0 reaches either
   * copy with probability 1/2, so each of its two boundaries crosses with
   * probability 1/2: 3 expected crossings of 8.  Locality first: t0 stays
   * on GPU 0 throughout: 2 of 8.  Layer 1 loads: GPU 0 has e1, e2 and half
   * of e0 (2.5), GPU 1 has e3 and half of e0 (1.5): max/mean 1.25. */
  msim_placement_add_replica (p, 1, 0, 0);
  ck_assert_uint_eq (msim_placement_n_replicas (p, 1, 0), 2);
  ck_assert_uint_eq (msim_placement_n_extra (p), 1);
  ck_assert_uint_eq (msim_placement_slots_used (p, 1, 0), 3);
  ck_assert (msim_placement_evaluate (p, t, one, &ev, NULL));
  msim_ck_assert_near (ev.cross_gpu, 3.0 / 8.0, 1e-12);
  msim_ck_assert_near (ev.cross_gpu_local, 2.0 / 8.0, 1e-12);
  msim_ck_assert_near (ev.load_imbalance_max, 1.25, 1e-12);
  ck_assert_uint_eq (ev.worst_layer, 1);
  msim_ck_assert_near (ev.load_imbalance, (1.0 + 1.25 + 1.0) / 3.0, 1e-12);
  double loads[2];
  msim_placement_layer_loads (p, t, 1, loads);
  msim_ck_assert_near (loads[0], 2.5, 1e-12);
  msim_ck_assert_near (loads[1], 1.5, 1e-12);
}
END_TEST

START_TEST (tc_eval_mismatch)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimTrace) t = test_trace_new (4, 3, 1, 4, tiny_ids);
  g_autoptr (MsimPlacement) p = msim_placement_new_contiguous (2, 4, 2);
  MsimPlacementEval ev;
  ck_assert (!msim_placement_evaluate (p, t, NULL, &ev, &error));
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
  ck_assert (strstr (error->message, "3 layers") != NULL);
}
END_TEST

START_TEST (tc_csv_roundtrip)
{
  g_autoptr (MsimPlacement) p = tiny_placement ();
  g_autofree char *csv = msim_placement_to_csv (p, MSIM_PLACEMENT_CSV_MOESIM, NULL);
  ck_assert (g_str_has_prefix (csv, "layer,expert,gpu\n0,0,0\n"));
  g_autoptr (MsimPlacement) q
      = msim_placement_load_data (csv, strlen (csv), "x.csv", 0, 0, 0, NULL);
  ck_assert (q != NULL);
  ck_assert_uint_eq (msim_placement_layers (q), 3);
  ck_assert_uint_eq (msim_placement_experts (q), 4);
  ck_assert_uint_eq (msim_placement_gpus (q), 2);
  ck_assert (
      memcmp (msim_placement_gpu_array (p), msim_placement_gpu_array (q), 12 * sizeof (guint32))
      == 0);
  /* With replicas the replica column appears and survives. */
  msim_placement_add_replica (p, 2, 3, 0);
  g_autofree char *csv2 = msim_placement_to_csv (p, MSIM_PLACEMENT_CSV_MOESIM, NULL);
  ck_assert (g_str_has_prefix (csv2, "layer,expert,gpu,replica\n"));
  ck_assert (strstr (csv2, "2,3,1,0\n2,3,0,1\n") != NULL);
  g_autoptr (MsimPlacement) r
      = msim_placement_load_data (csv2, strlen (csv2), "r.csv", 0, 0, 0, NULL);
  ck_assert_uint_eq (msim_placement_n_replicas (r, 2, 3), 2);
  ck_assert_uint_eq (msim_placement_replica_gpu (r, 2, 3, 1), 0);
  /* ExFlow cannot hold replicas. */
  g_autoptr (GError) error = NULL;
  ck_assert (msim_placement_to_csv (p, MSIM_PLACEMENT_CSV_EXFLOW, &error) == NULL);

  /* Atomic save and load from a file. */
  g_autofree char *dir = g_dir_make_tmp ("msim-place-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "p.csv", NULL);
  ck_assert (msim_placement_save (q, path, MSIM_PLACEMENT_CSV_EXFLOW, NULL));
  g_autoptr (MsimPlacement) x = msim_placement_load (path, 0, 4, 0, NULL);
  ck_assert (x != NULL);
  ck_assert_uint_eq (msim_placement_get_gpu (x, 1, 0), 1);
  g_unlink (path);
  g_rmdir (dir);
}
END_TEST

START_TEST (tc_csv_exflow)
{
  /* ExFlow's files: a pandas index column, Expert = layer * E + expert. */
  const char *csv = ",Expert,Node\n0,0,1\n1,1,0\n2,2,0\n3,3,1\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimPlacement) p
      = msim_placement_load_data (csv, strlen (csv), "ex.csv", 0, 2, 0, &error);
  ck_assert_msg (p != NULL, "%s", error ? error->message : "");
  ck_assert_uint_eq (msim_placement_layers (p), 2);
  ck_assert_uint_eq (msim_placement_get_gpu (p, 1, 1), 1);
  ck_assert_uint_eq (msim_placement_get_gpu (p, 0, 0), 1);
  /* Without E it cannot be read. */
  g_autoptr (MsimPlacement) q
      = msim_placement_load_data (csv, strlen (csv), "ex.csv", 0, 0, 0, &error);
  ck_assert (q == NULL);
  ck_assert (strstr (error->message, "number of experts") != NULL);
}
END_TEST

START_TEST (tc_csv_errors)
{
  static const struct
  {
    const char *text;
    const char *needle;
  } bad[] = {
    { "layer,expert,gpu\n0,0,0\n0,1,x\n", "bad.csv:3: gpu" },
    { "layer,expert,gpu\n0,0,0\n0,1\n", "bad.csv:3: expected 3 columns" },
    { "layer,expert,gpu\n0,0,0\n0,0,1\n", "bad.csv:3: layer 0 expert 0 copy 0 is placed twice" },
    { "layer,expert,gpu\n0,0,0\n0,2,1\n", "layer 0 expert 1 has no row" },
    { "layer,expert,gpu,replica\n0,0,0,0\n0,0,1,2\n", "copy 2 without copy 1" },
    { "foo,bar\n1,2\n", "bad.csv:1: unknown header" },
    { "# nothing\n\n", "no placement rows" },
    { "layer,expert,gpu\n0,0,-1\n", "gpu: expected a non-negative integer" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (MsimPlacement) p = msim_placement_load_data (bad[i].text, strlen (bad[i].text),
                                                              "bad.csv", 0, 0, 0, &error);
      ck_assert_msg (p == NULL, "case %zu accepted", i);
      ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
      ck_assert_msg (strstr (error->message, bad[i].needle) != NULL, "case %zu: '%s'", i,
                     error->message);
    }
  /* A GPU beyond the given count names its line. */
  g_autoptr (GError) error = NULL;
  const char *csv = "layer,expert,gpu\n0,0,0\n0,1,5\n";
  ck_assert (msim_placement_load_data (csv, strlen (csv), "g.csv", 0, 0, 2, &error) == NULL);
  ck_assert_str_eq (error->message, "g.csv:3: GPU 5 is out of range (expected fewer than 2)");
  g_clear_error (&error);
  ck_assert (msim_placement_load ("/nonexistent/p.csv", 0, 0, 0, &error) == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_IO);
}
END_TEST

START_TEST (tc_problem_counts)
{
  g_autoptr (MsimTrace) t = test_trace_new (4, 3, 1, 4, tiny_ids);
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (2, 1, NULL);
  g_autoptr (MsimPlacementProblem) pb = msim_placement_problem_new (t, shape, 7, NULL);
  ck_assert (pb != NULL);
  ck_assert_uint_eq (pb->slots_per_gpu, 2);
  ck_assert_uint_eq (pb->node_cost, 1);
  /* Boundary 0: 0->0, 1->1, 2->3, 3->2. */
  ck_assert_uint_eq (pb->pair_counts[0 * 4 + 0], 1);
  ck_assert_uint_eq (pb->pair_counts[2 * 4 + 3], 1);
  ck_assert_uint_eq (pb->pair_counts[2 * 4 + 2], 0);
  g_autoptr (MsimPlacement) p = tiny_placement ();
  ck_assert_uint_eq (msim_placement_problem_cost (pb, msim_placement_gpu_array (p)), 4);
  guint64 xg, xn, tot;
  msim_placement_problem_crossings (pb, msim_placement_gpu_array (p), &xg, &xn, &tot);
  ck_assert_uint_eq (xg, 4);
  ck_assert_uint_eq (xn, 0);
  ck_assert_uint_eq (tot, 8);
  /* Two nodes: node crossings cost 2. */
  g_autoptr (MsimClusterShape) two = msim_cluster_shape_new (2, 2, NULL);
  g_autoptr (MsimPlacementProblem) pb2 = msim_placement_problem_new (t, two, 7, NULL);
  ck_assert_uint_eq (pb2->node_cost, 2);
  ck_assert_uint_eq (msim_placement_problem_cost (pb2, msim_placement_gpu_array (p)), 8);
}
END_TEST

START_TEST (tc_shapes)
{
  g_autoptr (GError) error = NULL;
  ck_assert (msim_cluster_shape_new (8, 3, &error) == NULL);
  ck_assert (strstr (error->message, "does not divide") != NULL);
  g_autoptr (MsimClusterShape) s = msim_cluster_shape_new (8, 2, NULL);
  ck_assert_uint_eq (s->gpu_node[3], 0);
  ck_assert_uint_eq (s->gpu_node[4], 1);
  ck_assert (s->uniform);
  g_autoptr (MsimTopology) topo = msim_topology_load_preset ("dgx-h100", NULL, NULL);
  if (topo)
    {
      g_autoptr (MsimClusterShape) ts = msim_cluster_shape_new_from_topology (topo, NULL);
      ck_assert (ts != NULL);
      ck_assert_uint_eq (ts->gpus, msim_topology_n_gpus (topo));
      ck_assert_uint_eq (ts->nodes, 1);
    }
}
END_TEST

START_TEST (tc_policy_lookup)
{
  g_autoptr (GError) error = NULL;
  guint n = 0;
  const MsimPlacementPolicy *const *list = msim_placement_policy_list (&n);
  ck_assert_uint_eq (n, 6);
  for (guint i = 0; i < n; i++)
    ck_assert (msim_placement_policy_find (list[i]->name) == list[i]);
  ck_assert (msim_placement_policy_find (MSIM_PLACEMENT_DEFAULT_POLICY) != NULL);
  MsimPlacementPlugin *pl = NULL;
  ck_assert (msim_placement_policy_resolve ("no-such-policy", &pl, &error) == NULL);
  ck_assert (strstr (error->message, "affinity-local-search") != NULL);
  ck_assert (pl == NULL);
  /* Bad options are errors naming the policy and the key. */
  g_clear_error (&error);
  g_autoptr (MsimPlacementProblem) pb = test_problem (3, 4, 2, 1, 1);
  const char *opts[] = { "restarts=lots", NULL };
  ck_assert (msim_placement_run (msim_placement_policy_find ("affinity-local-search"), opts, pb,
                                 NULL, &error)
             == NULL);
  ck_assert (strstr (error->message, "'restarts'") != NULL);
  g_clear_error (&error);
  const char *opts2[] = { "colour=blue", NULL };
  ck_assert (msim_placement_run (msim_placement_policy_find ("contiguous"), opts2, pb, NULL, &error)
             == NULL);
  ck_assert (strstr (error->message, "unknown option 'colour'") != NULL);
}
END_TEST

static Suite *
placement_suite (void)
{
  test_quiet_libraries ();
  Suite *s = suite_create ("placement");
  TCase *tc;
  tc = tcase_create ("contiguous");
  tcase_add_test (tc, tc_contiguous);
  suite_add_tcase (s, tc);
  tc = tcase_create ("validate");
  tcase_add_test (tc, tc_validate);
  suite_add_tcase (s, tc);
  tc = tcase_create ("eval_by_hand");
  tcase_add_test (tc, tc_eval_by_hand);
  tcase_add_test (tc, tc_eval_mismatch);
  suite_add_tcase (s, tc);
  tc = tcase_create ("csv");
  tcase_add_test (tc, tc_csv_roundtrip);
  tcase_add_test (tc, tc_csv_exflow);
  tcase_add_test (tc, tc_csv_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("problem");
  tcase_add_test (tc, tc_problem_counts);
  tcase_add_test (tc, tc_shapes);
  suite_add_tcase (s, tc);
  tc = tcase_create ("policies");
  tcase_add_test (tc, tc_policy_lookup);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (placement_suite)
