#include <glib/gstdio.h>
#include <string.h>

#include "msim-check.h"
#include "msim-error.h"
#include "offload.h"
#include "run-config.h"
#include "sweep.h"

static const char *base_cfg
    = "[topology]\npreset = dgx-h100\n[model]\npreset = mixtral-8x7b\n"
      "[gpu]\npreset = h100-sxm5-80gb\n"
      "[workload]\ntrace = workloads/traces/mixtral-8x7b-mtbench/math.json\ntokens = 64\n"
      "[engine]\nnetwork = analytical\n";

static char *
write_cfg (const char *dir, const char *sweep_group)
{
  char *path = g_build_filename (dir, "sweep.ini", NULL);
  g_autofree char *text = g_strconcat (base_cfg, sweep_group, NULL);
  ck_assert (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static void
rmtree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  if (d)
    {
      const char *n;
      while ((n = g_dir_read_name (d)))
        {
          g_autofree char *p = g_build_filename (dir, n, NULL);
          if (g_file_test (p, G_FILE_TEST_IS_DIR))
            rmtree (p);
          else
            g_remove (p);
        }
    }
  g_rmdir (dir);
}

static char *
slurp (const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  char *data = NULL;
  g_file_get_contents (p, &data, NULL, NULL);
  return data;
}

START_TEST (test_expansion)
{
  g_autofree char *dir = g_dir_make_tmp ("msim-sweep-XXXXXX", NULL);
  g_autofree char *cfg
      = write_cfg (dir, "[sweep]\naxis.engine.scheme = baseline-ep;context-coherent\n"
                        "axis.workload.tokens = 32;64;96\nrepetitions = 2\n");
  GError *error = NULL;
  g_autoptr (MsimSweep) s = msim_sweep_load (cfg, &error);
  ck_assert_msg (s != NULL, "%s", error ? error->message : "");
  /* Cartesian, first axis slowest, seeds last: 2 x 3 x 2. */
  ck_assert_int_eq (msim_sweep_n_points (s), 12);
  ck_assert_int_eq (msim_sweep_n_axes (s), 3);
  ck_assert_str_eq (msim_sweep_axis_name (s, 2), "engine.seed");
  ck_assert_str_eq (msim_sweep_value (s, 0, 0), "baseline-ep");
  ck_assert_str_eq (msim_sweep_value (s, 5, 0), "baseline-ep");
  ck_assert_str_eq (msim_sweep_value (s, 6, 0), "context-coherent");
  ck_assert_str_eq (msim_sweep_value (s, 3, 1), "64");
  ck_assert_str_eq (msim_sweep_value (s, 3, 2), "2");
  ck_assert_str_eq (msim_sweep_value (s, 11, 1), "96");
  g_clear_pointer (&s, msim_sweep_free);

  g_autofree char *zip = write_cfg (dir, "[sweep]\nmode = zip\naxis.workload.tokens = 32;64\n"
                                         "seeds = 7;8\n");
  s = msim_sweep_load (zip, &error);
  ck_assert_msg (s != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq (msim_sweep_n_points (s), 2);
  ck_assert_str_eq (msim_sweep_value (s, 1, 0), "64");
  ck_assert_str_eq (msim_sweep_value (s, 1, 1), "8");
  g_clear_pointer (&s, msim_sweep_free);

  /* Invalid axes: unknown key, unknown group, bad zip lengths, bad name. */
  const struct
  {
    const char *group;
    const char *fragment;
  } bad[] = {
    { "[sweep]\naxis.engine.shceme = a;b\n", "shceme: unknown key" },
    { "[sweep]\naxis.nowhere.x = 1;2\n", "[nowhere]" },
    { "[sweep]\nmode = zip\naxis.workload.tokens = 32;64\nseeds = 1\n", "mode = zip needs" },
    { "[sweep]\naxis.tokens = 32\n", "axis.SECTION.KEY" },
    { "[sweep]\naxis.workload.tokens = 32;;64\n", "empty value" },
    { "[sweep]\nmode = zip\n", "nothing to sweep" },
    { "[sweep]\naxis.workload.tokens = 32\nmetrics = speed\n", "unknown metric 'speed'" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *b = write_cfg (dir, bad[i].group);
      ck_assert_ptr_null (msim_sweep_load (b, &error));
      ck_assert_msg (strstr (error->message, bad[i].fragment) != NULL, "case %zu: %s", i,
                     error->message);
      ck_assert_int_eq (msim_error_exit_status (error), 2);
      g_clear_error (&error);
    }
  rmtree (dir);
}
END_TEST

START_TEST (test_resume_failure_shards)
{
  g_autofree char *dir = g_dir_make_tmp ("msim-sweep-XXXXXX", NULL);
  /* tokens = 4 cannot give each of 8 GPUs a token: that point fails. */
  g_autofree char *cfg = write_cfg (dir, "[sweep]\naxis.workload.tokens = 32;4;64;96\n"
                                         "axis.engine.scheme = baseline-ep;context-coherent\n");
  GError *error = NULL;
  g_autoptr (MsimSweep) s = msim_sweep_load (cfg, &error);
  ck_assert_msg (s != NULL, "%s", error ? error->message : "");
  g_autofree char *whole = g_build_filename (dir, "whole", NULL);
  MsimSweepOptions o = { 2, 0, 1, FALSE, TRUE };
  MsimSweepReport rep;
  ck_assert (msim_sweep_run (s, whole, &o, &rep, &error));
  ck_assert_int_eq (rep.total, 8);
  ck_assert_int_eq (rep.ran, 8);
  ck_assert_int_eq (rep.failed, 2); /* failure isolated: the other points ran */
  ck_assert (rep.merged);
  g_autofree char *csv = slurp (whole, "points.csv");
  ck_assert (strstr (csv, "\n2,4,baseline-ep,0.1.0,failed,") != NULL);
  g_autofree char *jsonl = slurp (whole, "points.jsonl");

  /* Resume: a journal with two whole lines and a torn third, as a crash
   * leaves it; the re-run runs only the rest and ends identical. */
  g_autofree char *res = g_build_filename (dir, "resumed", NULL);
  g_mkdir (res, 0755);
  g_auto (GStrv) lines = g_strsplit (jsonl, "\n", -1);
  g_autofree char *partial = g_strdup_printf ("%s\n%s\n%.20s", lines[0], lines[5], lines[6]);
  g_autofree char *jp = g_build_filename (res, "journal.jsonl", NULL);
  ck_assert (g_file_set_contents (jp, partial, -1, NULL));
  ck_assert (msim_sweep_run (s, res, &o, &rep, &error));
  ck_assert_int_eq (rep.skipped, 2);
  ck_assert_int_eq (rep.ran, 6);
  g_autofree char *csv2 = slurp (res, "points.csv");
  ck_assert_str_eq (csv2, csv);

  /* Shards 0/3, 1/3, 2/3 cover every point once and merge to the same. */
  g_autofree char *sh = g_build_filename (dir, "shards", NULL);
  guint seen = 0;
  for (guint i = 0; i < 3; i++)
    {
      MsimSweepOptions so = { 1, i, 3, FALSE, TRUE };
      ck_assert (msim_sweep_run (s, sh, &so, &rep, &error));
      seen += rep.total;
      ck_assert (rep.merged == (i == 2)); /* complete only after the last shard */
    }
  ck_assert_int_eq (seen, 8);
  g_autofree char *csv3 = slurp (sh, "points.csv");
  ck_assert_str_eq (csv3, csv);

  /* A directory holding another sweep's results is refused. */
  g_autofree char *other = write_cfg (dir, "[sweep]\naxis.workload.tokens = 40;4;64;96\n"
                                           "axis.engine.scheme = baseline-ep;context-coherent\n");
  g_autoptr (MsimSweep) s2 = msim_sweep_load (other, &error);
  ck_assert (!msim_sweep_run (s2, whole, &o, &rep, &error));
  ck_assert (strstr (error->message, "another sweep") != NULL);
  g_clear_error (&error);
  rmtree (dir);
  msim_run_config_set_trace_cache (FALSE);
}
END_TEST

/* A config with an [offload] group sweeps moesim offload: its points carry
 * offload metrics equal to those of a direct run with the same keys, and
 * run-only metrics are refused. */
static const char *offload_cfg
    = "[topology]\npreset = dgx-h100\noverride.gpus = 2\n[model]\npreset = mixtral-8x7b\n"
      "[gpu]\npreset = h100-sxm5-80gb\n"
      "[workload]\ntrace = workloads/traces/mixtral-8x7b-mtbench/coding.json\n"
      "prompt_len = 512\ntokens = 4\n[engine]\nnetwork = maxmin\nseed = 1\n"
      "[offload]\npolicy = lru\ncache_experts_per_layer = 2\nbatch = 1\nsteps = 8\n";

START_TEST (test_offload)
{
  g_autofree char *dir = g_dir_make_tmp ("msim-sweep-XXXXXX", NULL);
  g_autofree char *cfg = g_build_filename (dir, "offload.ini", NULL);
  g_autofree char *text = g_strconcat (offload_cfg,
                                       "[sweep]\naxis.offload.policy = lru;lfu\n"
                                       "axis.offload.cache_experts_per_layer = 1;3\n"
                                       "metrics = hit_rate;misses;bytes_fetched\n",
                                       NULL);
  ck_assert (g_file_set_contents (cfg, text, -1, NULL));
  GError *error = NULL;
  g_autoptr (MsimSweep) s = msim_sweep_load (cfg, &error);
  ck_assert_msg (s != NULL, "%s", error ? error->message : "");
  g_autofree char *out = g_build_filename (dir, "out", NULL);
  MsimSweepOptions o = { 2, 0, 1, FALSE, TRUE };
  MsimSweepReport rep;
  ck_assert (msim_sweep_run (s, out, &o, &rep, &error));
  ck_assert_int_eq (rep.total, 4);
  ck_assert_int_eq (rep.failed, 0);
  g_autofree char *csv = slurp (out, "points.csv");
  g_auto (GStrv) lines = g_strsplit (csv, "\n", -1);
  ck_assert_str_eq (lines[0], "index,offload.policy,offload.cache_experts_per_layer,"
                              "moesim_version,status,hit_rate,misses,bytes_fetched,error");
  for (guint p = 0; p < 4; p++)
    {
      /* The same point, run directly. */
      g_autofree char *set_policy
          = g_strdup_printf ("offload.policy=%s", msim_sweep_value (s, p, 0));
      g_autofree char *set_cache
          = g_strdup_printf ("offload.cache_experts_per_layer=%s", msim_sweep_value (s, p, 1));
      const char *sets[] = { set_policy, set_cache, NULL };
      g_autoptr (MsimRunConfig) rc = msim_run_config_load (cfg, sets, &error);
      ck_assert_msg (rc != NULL, "%s", error ? error->message : "");
      MsimOffloadOptions opt;
      ck_assert (msim_offload_options_from_ini (rc->ini, &opt, &error));
      g_autoptr (MsimOffloadRun) run = msim_offload_run (rc, &opt, &error);
      msim_offload_options_clear (&opt);
      ck_assert_msg (run != NULL, "%s", error ? error->message : "");
      g_autoptr (JsonNode) j = msim_offload_run_to_json (run);
      JsonObject *sum = json_object_get_object_member (json_node_get_object (j), "summary");
      gint64 misses = json_object_get_int_member (sum, "misses");
      ck_assert_int_gt (misses, 0); /* a cache of 1-3 of 8 experts misses */
      g_auto (GStrv) f = g_strsplit (lines[p + 1], ",", -1);
      ck_assert_str_eq (f[4], "ok");
      ck_assert_int_eq (g_ascii_strtoll (f[6], NULL, 10), misses);
      ck_assert_double_eq_tol (g_ascii_strtod (f[5], NULL),
                               json_object_get_double_member (sum, "hit_rate"), 1e-12);
      /* Bytes fetched = misses x expert size (Mixtral bf16: 352,321,536 B). */
      ck_assert_double_eq_tol (g_ascii_strtod (f[7], NULL), misses * 352321536.0, 1.0);
    }

  /* A run metric is not an offload metric. */
  g_autofree char *bad = g_build_filename (dir, "bad.ini", NULL);
  g_autofree char *bad_text = g_strconcat (offload_cfg,
                                           "[sweep]\naxis.offload.policy = lru;lfu\n"
                                           "metrics = alltoall_time_s\n",
                                           NULL);
  ck_assert (g_file_set_contents (bad, bad_text, -1, NULL));
  ck_assert (msim_sweep_load (bad, &error) == NULL);
  ck_assert_msg (strstr (error->message, "unknown offload metric 'alltoall_time_s'") != NULL,
                 "%s", error->message);
  g_clear_error (&error);
  /* A bad [offload] key is a load error, not a failure per point. */
  g_autofree char *bad2_text = g_strconcat (offload_cfg, "[sweep]\naxis.offload.colour = a;b\n", NULL);
  ck_assert (g_file_set_contents (bad, bad2_text, -1, NULL));
  ck_assert (msim_sweep_load (bad, &error) == NULL);
  ck_assert_msg (strstr (error->message, "colour") != NULL, "%s", error->message);
  g_clear_error (&error);
  rmtree (dir);
  msim_run_config_set_trace_cache (FALSE);
}
END_TEST

static Suite *
sweep_suite (void)
{
  Suite *s = suite_create ("sweep");
  TCase *tc = tcase_create ("grid");
  tcase_add_test (tc, test_expansion);
  suite_add_tcase (s, tc);
  tc = tcase_create ("run");
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_resume_failure_shards);
  tcase_add_test (tc, test_offload);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (sweep_suite)
