#include <string.h>

#include <json-glib/json-glib.h>

#include "e2e-util.h"
#include "msim-check.h"

START_TEST (test_version_and_help)
{
  E2eRun r = e2e_run (NULL, "--version", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (g_str_has_prefix (r.out, "moesim "));
  e2e_run_clear (&r);
  r = e2e_run (NULL, "--help", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "bench") != NULL);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "queue", "--help", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "--prefill") != NULL);
  e2e_run_clear (&r);
}
END_TEST

START_TEST (test_usage_errors)
{
  const char *none[] = { NULL };
  E2eRun r = e2e_runv (NULL, none);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "no-such-command", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "unknown command 'no-such-command'") != NULL);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "queue", "--no-such-flag", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "queue", "--runs", "0", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "warp-drive", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "step", "--network", "fluid", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "'fluid'") != NULL);
  ck_assert_str_eq (r.out, "");
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "step", "--route-thread", "sometimes", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "'sometimes'") != NULL);
  e2e_run_clear (&r);
}
END_TEST

START_TEST (test_bench_queue_small)
{
  E2eRun r = e2e_run (NULL, "bench", "queue", "--prefill", "1000", "--ops", "20000", "--runs",
                      "3", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "hold ") != NULL);
  ck_assert (strstr (r.out, "hold+cancel") != NULL);
  ck_assert (strstr (r.out, "(median Mops/s)") != NULL);
  e2e_run_clear (&r);
}
END_TEST

static char *
read_file (const char *path)
{
  char *data = NULL;
  if (!g_file_get_contents (path, &data, NULL, NULL))
    return NULL;
  return data;
}

START_TEST (test_run_default)
{
  g_autofree char *dir = e2e_tmpdir ();
  g_autofree char *cfg = msim_test_path ("configs/default.ini");
  g_autofree char *out1 = g_build_filename (dir, "a", NULL);
  g_autofree char *out2 = g_build_filename (dir, "b", NULL);
  g_autofree char *tl = g_build_filename (dir, "timeline.json", NULL);
  E2eRun r = e2e_run (NULL, "run", cfg, "-o", out1, "--timeline", tl, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "cross-GPU fraction") != NULL);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "run", cfg, "-o", out2, "--quiet", NULL);
  ck_assert_int_eq (r.status, 0);
  e2e_run_clear (&r);
  g_autofree char *j1p = g_build_filename (out1, "summary.json", NULL);
  g_autofree char *j2p = g_build_filename (out2, "summary.json", NULL);
  g_autofree char *j1 = read_file (j1p);
  g_autofree char *j2 = read_file (j2p);
  ck_assert_ptr_nonnull (j1);
  /* Same config, byte-identical output (with or without a timeline). */
  ck_assert_msg (strcmp (j1, j2) == 0, "summary.json differs between identical runs");
  g_autoptr (JsonParser) p = json_parser_new ();
  ck_assert (json_parser_load_from_data (p, j1, -1, NULL));
  JsonObject *sum = json_object_get_object_member (json_node_get_object (json_parser_get_root (p)),
                                                   "summary");
  /* 4096 tokens x top-2 x 32 MoE layers, none dropped. */
  ck_assert_int_eq (json_object_get_int_member (sum, "assignments"), 4096 * 2 * 32);
  ck_assert_int_eq (json_object_get_int_member (sum, "dropped"), 0);
  /* ExFlow reports about 0.88 of top-1 boundaries crossing GPUs with the
   * contiguous placement on 8 GPUs. */
  double x = json_object_get_double_member (sum, "cross_gpu_fraction");
  ck_assert_msg (x > 0.85 && x < 0.91, "cross_gpu_fraction %g", x);
  g_autoptr (JsonParser) tp = json_parser_new ();
  g_autofree char *tls = read_file (tl);
  ck_assert (json_parser_load_from_data (tp, tls, -1, NULL));
  e2e_rmtree (dir);
}
END_TEST

START_TEST (test_run_bad_config)
{
  g_autofree char *dir = e2e_tmpdir ();
  g_autofree char *cfg = g_build_filename (dir, "bad.ini", NULL);
  g_autofree char *out = g_build_filename (dir, "out", NULL);
  g_autofree char *base = msim_test_path ("configs/default.ini");
  g_autofree char *text = g_strdup_printf ("[engine]\ninclude = %s\nschem = baseline-ep\n", base);
  g_file_set_contents (cfg, text, -1, NULL);
  E2eRun r = e2e_run (NULL, "run", cfg, "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_msg (strstr (r.err, "bad.ini:3: [engine] schem: unknown key") != NULL, "%s", r.err);
  ck_assert (!g_file_test (out, G_FILE_TEST_EXISTS)); /* no partial output */
  e2e_run_clear (&r);
  /* A bad value names file, line and key. */
  g_autofree char *text2
      = g_strdup_printf ("[engine]\ninclude = %s\nmicrobatches = -3\n", base);
  g_file_set_contents (cfg, text2, -1, NULL);
  r = e2e_run (NULL, "run", cfg, "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_msg (strstr (r.err, "bad.ini:3: [engine] microbatches") != NULL, "%s", r.err);
  ck_assert (!g_file_test (out, G_FILE_TEST_EXISTS));
  e2e_run_clear (&r);
  r = e2e_run (NULL, "run", "/nonexistent.ini", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  e2e_rmtree (dir);
}
END_TEST

START_TEST (test_flows)
{
  g_autofree char *dir = e2e_tmpdir ();
  g_autofree char *topo = g_build_filename (dir, "t.ini", NULL);
  g_autofree char *flows = g_build_filename (dir, "f.csv", NULL);
  g_autofree char *out = g_build_filename (dir, "out.csv", NULL);
  g_file_set_contents (topo,
                       "[topology]\nname = sw\nbuilder = nvswitch\ngpus = 3\n"
                       "nvlink_bandwidth = 1e9\nnvlink_latency = 0\npcie_bandwidth = 1e9\n"
                       "pcie_latency = 0\n",
                       -1, NULL);
  /* Two flows into GPU 2 share its downlink: 1 GB and 2 GB end at 2 s, 3 s. */
  g_file_set_contents (flows, "id,src,dst,bytes,start_s\na,0,2,1e9,0\nb,1,2,2e9,0\n", -1, NULL);
  E2eRun r = e2e_run (NULL, "flows", "--topology", topo, "--flows", flows, "-o", out, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  e2e_run_clear (&r);
  g_autofree char *csv = read_file (out);
  ck_assert_str_eq (csv, "id,start_s,end_s,bytes,avg_rate_Bps\n"
                         "a,0.000000000000,2.000000000000,1000000000,500000000\n"
                         "b,0.000000000000,3.000000000000,2000000000,666666666.66666663\n");
  /* Bad rows: the file and line are named, nothing is written. */
  g_autofree char *out2 = g_build_filename (dir, "out2.csv", NULL);
  g_file_set_contents (flows, "id,src,dst,bytes,start_s\na,0,2,1e9,0\nb,1,9,1,0\n", -1, NULL);
  r = e2e_run (NULL, "flows", "--topology", topo, "--flows", flows, "-o", out2, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_msg (strstr (r.err, "f.csv:3: dst '9'") != NULL, "%s", r.err);
  ck_assert (!g_file_test (out2, G_FILE_TEST_EXISTS));
  e2e_run_clear (&r);
  e2e_rmtree (dir);
}
END_TEST

static Suite *
cli_suite (void)
{
  Suite *s = suite_create ("cli");
  TCase *tc = tcase_create ("basics");
  tcase_add_test (tc, test_version_and_help);
  tcase_add_test (tc, test_usage_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("bench");
  tcase_add_test (tc, test_bench_queue_small);
  suite_add_tcase (s, tc);
  tc = tcase_create ("run");
  tcase_add_test (tc, test_run_default);
  tcase_add_test (tc, test_run_bad_config);
  suite_add_tcase (s, tc);
  tc = tcase_create ("flows");
  tcase_add_test (tc, test_flows);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (cli_suite)
