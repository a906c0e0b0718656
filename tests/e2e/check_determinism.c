/* Same inputs, same outputs, byte for byte: each command runs twice (three
 * times for moesim run: twice with --timeline, once without) in separate
 * output directories, and every output file must be identical.  The
 * default config's baseline-EP prefill is covered by check_cli; here the
 * other paths through the step engine (context-coherent with micro-batches,
 * decode steps, the hierarchical all-to-all on a two-node cluster with
 * token dropping) and moesim flows (max-min and analytical, ECMP over the
 * equal-cost paths of a leaf-spine fabric, and split routing), a sweep run
 * with 2 jobs and with 1, and the seeded placement policies. */
#include <string.h>

#include "e2e-util.h"
#include "msim-check.h"

static char *
slurp (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *data = NULL;
  GError *error = NULL;
  if (!g_file_get_contents (path, &data, NULL, &error))
    ck_abort_msg ("%s", error->message);
  return data;
}

static void
assert_same_file (const char *dir_a, const char *dir_b, const char *name, const char *what)
{
  g_autofree char *a = slurp (dir_a, name);
  g_autofree char *b = slurp (dir_b, name);
  ck_assert_msg (strlen (a) > 0, "%s: %s is empty", what, name);
  ck_assert_msg (strcmp (a, b) == 0, "%s: %s differs between identical runs (%s, %s)", what, name,
                 dir_a, dir_b);
}

/* moesim run CONFIG with @sets (NULL-terminated "--set" values): twice with
 * a timeline, once without; summary.json, blocks.csv and the timelines
 * must match. */
static void
check_run (const char *what, const char *config, const char *const *sets)
{
  g_autofree char *tmp = e2e_tmpdir ();
  g_autofree char *cfg = msim_test_path (config);
  const char *names[] = { "a", "b", "c" };
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *out = g_build_filename (tmp, names[i], NULL);
      g_autofree char *tl = g_build_filename (out, "timeline.json", NULL);
      g_autoptr (GPtrArray) argv = g_ptr_array_new ();
      g_ptr_array_add (argv, (gpointer) "run");
      g_ptr_array_add (argv, cfg);
      g_ptr_array_add (argv, (gpointer) "-q");
      g_ptr_array_add (argv, (gpointer) "-o");
      g_ptr_array_add (argv, out);
      for (const char *const *s = sets; s && *s; s++)
        {
          g_ptr_array_add (argv, (gpointer) "--set");
          g_ptr_array_add (argv, (gpointer)*s);
        }
      if (i < 2)
        {
          /* The timeline goes inside the output directory, which moesim
           * creates: make it first so that the path is valid. */
          ck_assert_int_eq (g_mkdir_with_parents (out, 0755), 0);
          g_ptr_array_add (argv, (gpointer) "--timeline");
          g_ptr_array_add (argv, tl);
        }
      g_ptr_array_add (argv, NULL);
      E2eRun r = e2e_runv (NULL, (const char *const *)argv->pdata);
      ck_assert_msg (r.status == 0, "%s: run %s failed (%d): %s", what, names[i], r.status, r.err);
      e2e_run_clear (&r);
    }
  g_autofree char *a = g_build_filename (tmp, "a", NULL);
  g_autofree char *b = g_build_filename (tmp, "b", NULL);
  g_autofree char *c = g_build_filename (tmp, "c", NULL);
  assert_same_file (a, b, "summary.json", what);
  assert_same_file (a, c, "summary.json", what);
  assert_same_file (a, b, "blocks.csv", what);
  assert_same_file (a, c, "blocks.csv", what);
  assert_same_file (a, b, "timeline.json", what);
  e2e_rmtree (tmp);
}

START_TEST (test_run_context_coherent)
{
  const char *sets[] = { "engine.scheme=context-coherent", "engine.microbatches=2", NULL };
  check_run ("context-coherent prefill", "configs/default.ini", sets);
}
END_TEST

START_TEST (test_run_decode)
{
  /* 64 sequences, 4 decode steps, both schemes' code paths for decode. */
  const char *sets[] = { "workload.phase=decode", "workload.tokens=64", "workload.steps=4",
                         "workload.prompt_len=256", NULL };
  check_run ("decode", "configs/default.ini", sets);
  const char *cc[] = { "workload.phase=decode", "workload.tokens=64", "workload.steps=4",
                       "engine.scheme=context-coherent", NULL };
  check_run ("context-coherent decode", "configs/default.ini", cc);
}
END_TEST

START_TEST (test_run_hierarchical_cluster)
{
  /* Two DGX nodes: inter-node routes through the rail switches, the
   * hierarchical all-to-all, and a capacity factor that drops tokens. */
  const char *sets[] = {
    "topology.preset=dgx-h100-cluster", "topology.override.nodes=2", "engine.alltoall=hierarchical",
    "engine.capacity_factor=1.0",       "workload.tokens=2048",      NULL
  };
  check_run ("hierarchical all-to-all on 2 nodes", "configs/default.ini", sets);
}
END_TEST

/* A leaf-spine fabric with several equal-cost paths between nodes, so ECMP
 * choices and split routing matter. */
static const char *const fabric
    = "[topology]\nname = fabric\nbuilder = leaf-spine\nnodes = 4\ngpus_per_node = 2\n"
      "nics_per_node = 2\nnodes_per_leaf = 1\nspines = 3\nnvlink_bandwidth = 100e9\n"
      "pcie_bandwidth = 20e9\nnic_bandwidth = 12.5e9\nnic_latency = 1e-6\n"
      "spine_latency = 1e-6\n";

/* 300 flows between random GPUs with random sizes and start times, from a
 * fixed seed; some start at the same instant and some have zero bytes. */
static char *
random_flows (void)
{
  GRand *rng = g_rand_new_with_seed (12345);
  GString *s = g_string_new ("id,src,dst,bytes,start_s\n");
  for (int i = 0; i < 300; i++)
    {
      int src = g_rand_int_range (rng, 0, 8);
      int dst = (src + g_rand_int_range (rng, 1, 8)) % 8;
      double bytes = i % 37 == 0 ? 0.0 : (double)g_rand_int_range (rng, 1, 1 << 24);
      double start = i % 5 == 0 ? 0.0 : g_rand_int_range (rng, 0, 1000) * 1e-6;
      g_string_append_printf (s, "f%d,%d,%d,%.0f,%.6f\n", i, src, dst, bytes, start);
    }
  g_rand_free (rng);
  return g_string_free (s, FALSE);
}

static void
check_flows (const char *what, const char *topology_text, const char *model)
{
  g_autofree char *tmp = e2e_tmpdir ();
  g_autofree char *topo = g_build_filename (tmp, "fabric.ini", NULL);
  g_autofree char *flows = g_build_filename (tmp, "flows.csv", NULL);
  g_autofree char *flows_text = random_flows ();
  ck_assert (g_file_set_contents (topo, topology_text, -1, NULL));
  ck_assert (g_file_set_contents (flows, flows_text, -1, NULL));
  const char *names[] = { "a.csv", "b.csv" };
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *out = g_build_filename (tmp, names[i], NULL);
      E2eRun r = e2e_run (NULL, "flows", "--topology", topo, "--flows", flows, "--model", model,
                          "-o", out, "-q", NULL);
      ck_assert_msg (r.status == 0, "%s: flows failed (%d): %s", what, r.status, r.err);
      e2e_run_clear (&r);
    }
  g_autofree char *a = slurp (tmp, "a.csv");
  g_autofree char *b = slurp (tmp, "b.csv");
  ck_assert_msg (strcmp (a, b) == 0, "%s: flows output differs between identical runs", what);
  /* Every flow is reported once. */
  g_auto (GStrv) lines = g_strsplit (a, "\n", -1);
  ck_assert_int_eq (g_strv_length (lines), 1 + 300 + 1);
  e2e_rmtree (tmp);
}

START_TEST (test_flows)
{
  check_flows ("flows max-min, ECMP", fabric, "maxmin");
  check_flows ("flows analytical, ECMP", fabric, "analytical");
  g_autofree char *split = g_strconcat (fabric, "routing = split\n", NULL);
  check_flows ("flows max-min, split routing", split, "maxmin");
}
END_TEST

/* moesim sweep: the example sweep at -j 2 and at -j 1 (points finish in a
 * different order) must write the same merged rows. */
START_TEST (test_sweep)
{
  g_autofree char *tmp = e2e_tmpdir ();
  g_autofree char *cfg = msim_test_path ("configs/sweep-example.ini");
  const char *names[] = { "a", "b" };
  const char *jobs[] = { "2", "1" };
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *out = g_build_filename (tmp, names[i], NULL);
      E2eRun r = e2e_run (NULL, "sweep", cfg, "-o", out, "-j", jobs[i], NULL);
      ck_assert_msg (r.status == 0, "sweep -j %s failed (%d): %s", jobs[i], r.status, r.err);
      e2e_run_clear (&r);
    }
  g_autofree char *a = g_build_filename (tmp, "a", NULL);
  g_autofree char *b = g_build_filename (tmp, "b", NULL);
  assert_same_file (a, b, "points.csv", "sweep -j 2 vs -j 1");
  assert_same_file (a, b, "points.jsonl", "sweep -j 2 vs -j 1");
  /* 12 points, a header, and every point ok. */
  g_autofree char *csv = slurp (a, "points.csv");
  g_auto (GStrv) lines = g_strsplit (csv, "\n", -1);
  ck_assert_int_eq (g_strv_length (lines), 1 + 12 + 1);
  for (guint i = 1; i <= 12; i++)
    ck_assert_msg (strstr (lines[i], ",ok,") != NULL, "point %u not ok: %s", i, lines[i]);
  e2e_rmtree (tmp);
}
END_TEST

/* moesim place: every seeded policy gives the same placement twice. */
START_TEST (test_place)
{
  g_autofree char *tmp = e2e_tmpdir ();
  g_autofree char *trace = msim_test_path ("workloads/traces/mixtral-8x7b-mtbench/math.json");
  const char *policies[] = { "affinity-local-search", "graph-partition", "eplb", "round-robin" };
  for (guint p = 0; p < G_N_ELEMENTS (policies); p++)
    {
      const char *names[] = { "a.csv", "b.csv" };
      for (int i = 0; i < 2; i++)
        {
          g_autofree char *out = g_build_filename (tmp, names[i], NULL);
          E2eRun r = e2e_run (NULL, "place", "--trace", trace, "--gpus", "4", "--nodes", "2",
                              "--policy", policies[p], "--seed", "7", "-o", out, NULL);
          ck_assert_msg (r.status == 0, "place %s failed (%d): %s", policies[p], r.status, r.err);
          e2e_run_clear (&r);
        }
      g_autofree char *a = slurp (tmp, "a.csv");
      g_autofree char *b = slurp (tmp, "b.csv");
      ck_assert_msg (strcmp (a, b) == 0, "place %s: placement differs between identical runs",
                     policies[p]);
      /* A header and at least one row per (layer, expert): 32 x 8. */
      g_auto (GStrv) lines = g_strsplit (a, "\n", -1);
      ck_assert_uint_ge (g_strv_length (lines), 1 + 256);
    }
  e2e_rmtree (tmp);
}
END_TEST

static Suite *
determinism_suite (void)
{
  Suite *s = suite_create ("determinism");
  TCase *tc = tcase_create ("run");
  tcase_add_test (tc, test_run_context_coherent);
  tcase_add_test (tc, test_run_decode);
  tcase_add_test (tc, test_run_hierarchical_cluster);
  suite_add_tcase (s, tc);
  tc = tcase_create ("flows");
  tcase_add_test (tc, test_flows);
  suite_add_tcase (s, tc);
  tc = tcase_create ("sweep-place");
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_sweep);
  tcase_add_test (tc, test_place);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (determinism_suite)
