/* Check suite for the analysis subcommands, run in-process (the command
 * files are compiled into this test with cli-stubs.c): `moesim place`,
 * `place eval`, `place list`, `moesim lrc` and `moesim affinity`.  Exit
 * statuses, JSON outputs against the library, files written on success and
 * nothing written on failure, and heat maps skipped cleanly without
 * gnuplot. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "analysis-test-util.h"
#include "lrc.h"
#include "synthetic-trace.h"

int msim_cmd_place (int argc, char **argv);
int msim_cmd_lrc (int argc, char **argv);
int msim_cmd_affinity (int argc, char **argv);

typedef struct
{
  int status;
  char *out;
} CliRun;

/* Runs @fn with argv[0] = @name and the NULL-terminated arguments,
 * capturing stdout. */
static CliRun
run_cmd (int (*fn) (int, char **), const char *name, ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup (name));
  va_list ap;
  va_start (ap, name);
  for (const char *a = va_arg (ap, const char *); a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, g_strdup (a));
  va_end (ap);
  /* The commands rewrite argv entries and GOption reorders them: hand over
   * a copy of the pointer array and free the strings from the original. */
  g_autofree char **argv = g_new0 (char *, args->len + 1);
  memcpy (argv, args->pdata, args->len * sizeof (char *));
  char tmpl[] = "/tmp/msim-analysis-cli-XXXXXX";
  int fd = g_mkstemp (tmpl);
  ck_assert_int_ge (fd, 0);
  fflush (stdout);
  int saved = dup (STDOUT_FILENO);
  dup2 (fd, STDOUT_FILENO);
  close (fd);
  CliRun r;
  r.status = fn ((int)args->len, argv);
  fflush (stdout);
  dup2 (saved, STDOUT_FILENO);
  close (saved);
  ck_assert (g_file_get_contents (tmpl, &r.out, NULL, NULL));
  g_unlink (tmpl);
  return r;
}

static char *workdir;
static char *trace_path;
static MsimTrace *trace;

static void
setup (void)
{
  test_quiet_libraries ();
  workdir = g_dir_make_tmp ("msim-analysis-cli-XXXXXX", NULL);
  ck_assert (workdir != NULL);
  trace_path = g_build_filename (workdir, "trace.csv", NULL);
  trace = msim_synthetic_affinity_trace_new (300, 4, 8, 2, 0.7, 64, 5, NULL);
  ck_assert (trace != NULL);
  ck_assert (msim_trace_save (trace, trace_path, MSIM_TRACE_FORMAT_AUTO, NULL));
}

static void
remove_tree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d)
    {
      const char *n;
      while ((n = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *p = g_build_filename (dir, n, NULL);
          if (g_file_test (p, G_FILE_TEST_IS_DIR))
            remove_tree (p);
          else
            g_unlink (p);
        }
      g_dir_close (d);
    }
  g_rmdir (dir);
}

static void
teardown (void)
{
  remove_tree (workdir);
  g_clear_pointer (&workdir, g_free);
  g_clear_pointer (&trace_path, g_free);
  g_clear_pointer (&trace, msim_trace_free);
}

static JsonObject *
parse_object (JsonParser *parser, const char *text)
{
  g_autoptr (GError) error = NULL;
  ck_assert_msg (json_parser_load_from_data (parser, text, -1, &error), "%s: %s",
                 error ? error->message : "", text);
  JsonNode *root = json_parser_get_root (parser);
  ck_assert (JSON_NODE_HOLDS_OBJECT (root));
  return json_node_get_object (root);
}

START_TEST (tc_place_fit_and_eval)
{
  g_autofree char *out = g_build_filename (workdir, "p.csv", NULL);
  CliRun r = run_cmd (msim_cmd_place, "moesim place", "--trace", trace_path, "--gpus", "4",
                      "--nodes", "2", "--json", "-o", out, NULL);
  ck_assert_int_eq (r.status, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = parse_object (parser, r.out);
  ck_assert_str_eq (json_object_get_string_member (o, "policy"), "affinity-local-search");
  JsonObject *fit = json_object_get_object_member (o, "fit");
  JsonObject *con = json_object_get_object_member (o, "contiguous");
  double x = json_object_get_double_member (fit, "cross_gpu");
  ck_assert (x >= 0 && x <= json_object_get_double_member (con, "cross_gpu"));
  ck_assert (g_file_test (out, G_FILE_TEST_EXISTS));
  g_free (r.out);

  /* The file evaluates to the same number. */
  r = run_cmd (msim_cmd_place, "moesim place", "eval", "--trace", trace_path, "--placement", out,
               "--nodes", "2", "--json", NULL);
  ck_assert_int_eq (r.status, 0);
  g_autoptr (JsonParser) p2 = json_parser_new ();
  JsonObject *e = parse_object (p2, r.out);
  JsonObject *ev = json_object_get_object_member (e, "placement_eval");
  msim_ck_assert_near (json_object_get_double_member (ev, "cross_gpu"), x, 1e-12);
  ck_assert_int_eq (json_object_get_int_member (e, "gpus"), 4);
  g_free (r.out);

  /* Text output and the ExFlow format. */
  g_autofree char *ex = g_build_filename (workdir, "ex.csv", NULL);
  r = run_cmd (msim_cmd_place, "moesim place", "-t", trace_path, "-g", "4", "--format", "exflow",
               "--policy", "graph-partition", "-o", ex, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "cross-GPU fraction") != NULL);
  g_free (r.out);
  g_autofree char *head = NULL;
  ck_assert (g_file_get_contents (ex, &head, NULL, NULL));
  ck_assert (g_str_has_prefix (head, "Expert,Node\n"));
  r = run_cmd (msim_cmd_place, "moesim place", "eval", "-t", trace_path, "--placement", ex, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "4 GPUs in 1 node") != NULL);
  g_free (r.out);

  r = run_cmd (msim_cmd_place, "moesim place", "list", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "exflow-ilp") != NULL && strstr (r.out, "eplb") != NULL);
  g_free (r.out);
}
END_TEST

START_TEST (tc_place_errors)
{
  g_autofree char *out = g_build_filename (workdir, "never.csv", NULL);
  static const char *const cases[][12] = {
    { "--trace", "TRACE", "--gpus", "4", "--policy", "no-such", "-o", "OUT", NULL },
    { "--trace", "TRACE", "--gpus", "0", "-o", "OUT", NULL },
    { "--trace", "TRACE", "--gpus", "4", "--nodes", "3", "-o", "OUT", NULL },
    { "--trace", "/nonexistent.csv", "--gpus", "4", "-o", "OUT", NULL },
    { "--trace", "TRACE", "--gpus", "4", NULL },
    { "--trace", "TRACE", "--gpus", "4", "-O", "restarts=-1", "-o", "OUT", NULL },
    { "--trace", "TRACE", "--gpus", "4", "--policy", "plugin:/nonexistent.so", "-o", "OUT", NULL },
    { "--trace", "TRACE", "--gpus", "4", "--bogus", "-o", "OUT", NULL },
  };
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GPtrArray) a = g_ptr_array_new ();
      g_ptr_array_add (a, (gpointer) "moesim place");
      for (gsize i = 0; cases[c][i]; i++)
        g_ptr_array_add (a, (gpointer)(strcmp (cases[c][i], "TRACE") == 0 ? trace_path
                                       : strcmp (cases[c][i], "OUT") == 0 ? out
                                                                          : cases[c][i]));
      g_ptr_array_add (a, NULL);
      g_auto (GStrv) argv = g_strdupv ((char **)a->pdata);
      g_autofree char **view = g_memdup2 (argv, sizeof (char *) * a->len);
      int st = msim_cmd_place ((int)a->len - 1, view);
      ck_assert_msg (st == 2, "case %zu: status %d", c, st);
      ck_assert_msg (!g_file_test (out, G_FILE_TEST_EXISTS), "case %zu wrote output", c);
    }
  /* A broken placement file is an input error naming its line. */
  g_autofree char *bad = g_build_filename (workdir, "bad.csv", NULL);
  ck_assert (g_file_set_contents (bad, "layer,expert,gpu\n0,0,zero\n", -1, NULL));
  CliRun r = run_cmd (msim_cmd_place, "moesim place", "eval", "-t", trace_path, "--placement", bad,
                      NULL);
  ck_assert_int_eq (r.status, 2);
  g_free (r.out);
}
END_TEST

START_TEST (tc_lrc)
{
  CliRun r = run_cmd (msim_cmd_lrc, "moesim lrc", trace_path, "--json", "--segments", "4,16", NULL);
  ck_assert_int_eq (r.status, 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = parse_object (parser, r.out);
  ck_assert_int_eq (json_object_get_int_member (o, "tokens"), 300);
  JsonObject *sq = json_object_get_object_member (o, "sequences");
  /* CSV traces keep sequence ids: the generator makes sequences of 64. */
  ck_assert (json_object_get_boolean_member (sq, "from_trace"));
  ck_assert_int_eq (json_object_get_int_member (sq, "count"), 5);
  JsonArray *segs = json_object_get_array_member (o, "segments");
  ck_assert_uint_eq (json_array_get_length (segs), 2);
  guint ms[] = { 4, 16 };
  g_autoptr (MsimLrc) lrc = msim_lrc_compute (trace, ms, 2, NULL);
  JsonObject *s1 = json_array_get_object_element (segs, 1);
  msim_ck_assert_near (json_object_get_double_member (s1, "srp"),
                       msim_lrc_srp (lrc, 1, MSIM_LRC_MODEL), 1e-9);
  JsonArray *sch = json_object_get_array_member (s1, "sch");
  msim_ck_assert_near (json_array_get_double_element (sch, 3),
                       msim_lrc_sch (lrc, 1, MSIM_LRC_MODEL, 4), 1e-9);
  g_free (r.out);
  r = run_cmd (msim_cmd_lrc, "moesim lrc", trace_path, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "SRP(m)") != NULL);
  g_free (r.out);
  r = run_cmd (msim_cmd_lrc, "moesim lrc", trace_path, "--segments", "4,x", NULL);
  ck_assert_int_eq (r.status, 2);
  g_free (r.out);
  r = run_cmd (msim_cmd_lrc, "moesim lrc", NULL);
  ck_assert_int_eq (r.status, 2);
  g_free (r.out);
}
END_TEST

START_TEST (tc_affinity)
{
  g_autofree char *dir = g_build_filename (workdir, "aff", NULL);
  CliRun r = run_cmd (msim_cmd_affinity, "moesim affinity", trace_path, "--out", dir,
                      "--no-figures", NULL);
  ck_assert_int_eq (r.status, 0);
  g_free (r.out);
  static const char *const files[] = { "summary.json",
                                       "pairs.csv",
                                       "affinity-top1.graphml",
                                       "affinity-allk.graphml",
                                       "matrices/top1-L00-L01.csv",
                                       "matrices/allk-L02-L03.csv" };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *p = g_build_filename (dir, files[i], NULL);
      ck_assert_msg (g_file_test (p, G_FILE_TEST_EXISTS), "missing %s", files[i]);
    }
  g_autofree char *summary = g_build_filename (dir, "summary.json", NULL);
  g_autofree char *text = NULL;
  ck_assert (g_file_get_contents (summary, &text, NULL, NULL));
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o = parse_object (parser, text);
  ck_assert_uint_eq (json_array_get_length (json_object_get_array_member (o, "pairs")), 3);
  JsonArray *gains = json_object_get_array_member (o, "affinity_gain");
  ck_assert_uint_eq (json_array_get_length (gains), 3); /* 2, 4, 8 GPUs */
  JsonObject *fig = json_object_get_object_member (o, "figures");
  ck_assert (!json_object_get_boolean_member (fig, "written"));
  /* No leftover working directories beside DIR. */
  GDir *d = g_dir_open (workdir, 0, NULL);
  const char *n;
  while ((n = g_dir_read_name (d)) != NULL)
    ck_assert_msg (strstr (n, ".tmp-") == NULL, "leftover %s", n);
  g_dir_close (d);
}
END_TEST

START_TEST (tc_affinity_without_gnuplot)
{
  g_autofree char *dir = g_build_filename (workdir, "aff2", NULL);
  g_autofree char *saved = g_strdup (g_getenv ("PATH"));
  g_setenv ("PATH", "/nonexistent-bin", TRUE);
  CliRun r = run_cmd (msim_cmd_affinity, "moesim affinity", trace_path, "--out", dir, "--gpus", "2",
                      NULL);
  if (saved)
    g_setenv ("PATH", saved, TRUE);
  else
    g_unsetenv ("PATH");
  ck_assert_int_eq (r.status, 0);
  g_free (r.out);
  g_autofree char *summary = g_build_filename (dir, "summary.json", NULL);
  g_autofree char *text = NULL;
  ck_assert (g_file_get_contents (summary, &text, NULL, NULL));
  ck_assert (strstr (text, "gnuplot not found") != NULL);
  g_autofree char *heat = g_build_filename (dir, "heatmaps", NULL);
  ck_assert (!g_file_test (heat, G_FILE_TEST_EXISTS));
}
END_TEST

START_TEST (tc_affinity_figures)
{
  g_autofree char *gp = g_find_program_in_path ("gnuplot");
  if (gp == NULL)
    return; /* covered by tc_affinity_without_gnuplot */
  g_autofree char *dir = g_build_filename (workdir, "aff3", NULL);
  CliRun r = run_cmd (msim_cmd_affinity, "moesim affinity", trace_path, "--out", dir, "--gpus", "4",
                      NULL);
  ck_assert_int_eq (r.status, 0);
  g_free (r.out);
  g_autofree char *png = g_build_filename (dir, "heatmaps", "top1-L01-L02.png", NULL);
  ck_assert (g_file_test (png, G_FILE_TEST_EXISTS));
}
END_TEST

START_TEST (tc_affinity_errors)
{
  g_autofree char *dir = g_build_filename (workdir, "never", NULL);
  CliRun r
      = run_cmd (msim_cmd_affinity, "moesim affinity", "/nonexistent.json", "--out", dir, NULL);
  ck_assert_int_eq (r.status, 2);
  g_free (r.out);
  r = run_cmd (msim_cmd_affinity, "moesim affinity", trace_path, "--out", dir, "--distance", "9",
               NULL);
  ck_assert_int_eq (r.status, 2);
  g_free (r.out);
  r = run_cmd (msim_cmd_affinity, "moesim affinity", trace_path, NULL);
  ck_assert_int_eq (r.status, 2);
  g_free (r.out);
  ck_assert (!g_file_test (dir, G_FILE_TEST_EXISTS));
}
END_TEST

static Suite *
cli_suite (void)
{
  Suite *s = suite_create ("analysis_cli");
  TCase *tc = tcase_create ("place");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, tc_place_fit_and_eval);
  tcase_add_test (tc, tc_place_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("lrc");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, tc_lrc);
  suite_add_tcase (s, tc);
  tc = tcase_create ("affinity");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, tc_affinity);
  tcase_add_test (tc, tc_affinity_without_gnuplot);
  tcase_add_test (tc, tc_affinity_figures);
  tcase_add_test (tc, tc_affinity_errors);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (cli_suite)
