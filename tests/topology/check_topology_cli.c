/* Check suite for `moesim topo` (sim/cli/cmd-topo.c), run in-process:
 * exit statuses, what show prints, that export writes a file igraph can
 * read back, and that bad input writes nothing and exits with status 2. */
#include <glib/gstdio.h>
#include <igraph.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "msim-check.h"
#include "topology.h"

int msim_cmd_topo (int argc, char **argv);

typedef struct
{
  int status;
  char *out; /* captured stdout */
} CliRun;

/* Runs `moesim topo ARGS...` with stdout redirected to a temporary file. */
static CliRun
run_topo (const char *first, ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup ("moesim topo"));
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, g_strdup (a));
  va_end (ap);
  /* The command rewrites argv entries and GOption reorders them: hand it a
   * copy of the pointer array and free the strings from the original. */
  g_autofree char **argv = g_new0 (char *, args->len + 1);
  memcpy (argv, args->pdata, args->len * sizeof (char *));

  char tmpl[] = "/tmp/msim-topo-cli-XXXXXX";
  int fd = g_mkstemp (tmpl);
  ck_assert_int_ge (fd, 0);
  fflush (stdout);
  int saved = dup (STDOUT_FILENO);
  dup2 (fd, STDOUT_FILENO);
  close (fd);
  CliRun r;
  r.status = msim_cmd_topo ((int)args->len, argv);
  fflush (stdout);
  dup2 (saved, STDOUT_FILENO);
  close (saved);
  ck_assert (g_file_get_contents (tmpl, &r.out, NULL, NULL));
  g_unlink (tmpl);
  return r;
}

static void
cli_run_clear (CliRun *r)
{
  g_clear_pointer (&r->out, g_free);
}

static int
count_entries (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  int n = 0;
  while (d && g_dir_read_name (d))
    n++;
  return n;
}

START_TEST (test_show_preset)
{
  CliRun r = run_topo ("show", "dgx-h100", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert_ptr_nonnull (strstr (r.out, "topology dgx-h100"));
  ck_assert_ptr_nonnull (strstr (r.out, "GPUs: 8 on 1 host (8 per host)"));
  ck_assert_ptr_nonnull (strstr (r.out, "links: 16 full duplex (32 directed)"));
  ck_assert_ptr_nonnull (strstr (r.out, "nvlink      gpu-switch        450.0 GB/s"));
  ck_assert_ptr_nonnull (strstr (r.out, "node0.gpu0 > nvswitch > node0.gpu1"));
  cli_run_clear (&r);

  r = run_topo ("show", "wilkes3", "--route", "node0.gpu0,node79.gpu3", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert_ptr_nonnull (strstr (r.out, "node0.gpu0 -> node79.gpu3: 6 hops, 2.700 us, "
                                        "bottleneck 25.0 GB/s, 4 equal-cost paths"));
  cli_run_clear (&r);

  r = run_topo ("list", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert_ptr_nonnull (strstr (r.out, "dgx-h100-cluster"));
  ck_assert_ptr_nonnull (strstr (r.out, "wilkes3"));
  cli_run_clear (&r);
}
END_TEST

START_TEST (test_show_errors)
{
  CliRun r = run_topo ("show", "no-such-topology", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_str_eq (r.out, "");
  cli_run_clear (&r);

  r = run_topo ("show", "dgx-a100", "--route", "node0.gpu0,gpu99", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_str_eq (r.out, ""); /* no half summary before the error */
  cli_run_clear (&r);

  g_autofree char *dir = g_dir_make_tmp ("msim-topo-cli-XXXXXX", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad.ini", NULL);
  ck_assert (g_file_set_contents (bad, "[topology]\nbuilder = nvswitch\ngpus = 0\n", -1, NULL));
  r = run_topo ("show", bad, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_str_eq (r.out, "");
  cli_run_clear (&r);

  r = run_topo ("show", NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  r = run_topo ("frobnicate", NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  r = run_topo (NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  g_unlink (bad);
  g_rmdir (dir);
}
END_TEST

START_TEST (test_export)
{
  g_autofree char *dir = g_dir_make_tmp ("msim-topo-cli-XXXXXX", NULL);
  g_autofree char *gml = g_build_filename (dir, "c.graphml", NULL);
  CliRun r = run_topo ("export", "dgx-h100-cluster", "--format", "graphml", "-o", gml, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert_ptr_nonnull (strstr (r.out, "588 vertices, 2624 directed links"));
  cli_run_clear (&r);
  igraph_set_error_handler (igraph_error_handler_printignore);
  FILE *f = fopen (gml, "r");
  ck_assert_ptr_nonnull (f);
  igraph_t g;
  ck_assert_int_eq (igraph_read_graph_graphml (&g, f, 0), IGRAPH_SUCCESS);
  fclose (f);
  ck_assert_int_eq (igraph_vcount (&g), 588);
  ck_assert_int_eq (igraph_ecount (&g), 2624);
  igraph_destroy (&g);

  /* The format follows the extension when --format is absent. */
  g_autofree char *dot = g_build_filename (dir, "c.dot", NULL);
  r = run_topo ("export", "dgx-a100", "-o", dot, NULL);
  ck_assert_int_eq (r.status, 0);
  cli_run_clear (&r);
  g_autofree char *text = NULL;
  ck_assert (g_file_get_contents (dot, &text, NULL, NULL));
  ck_assert_ptr_nonnull (strstr (text, "digraph"));
  ck_assert_int_eq (count_entries (dir), 2);

  /* Bad input: status 2 and no file. */
  g_autofree char *out = g_build_filename (dir, "x.out", NULL);
  r = run_topo ("export", "dgx-a100", "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  r = run_topo ("export", "dgx-a100", "--format", "gexf", "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  r = run_topo ("export", "nonexistent.ini", "--format", "dot", "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  r = run_topo ("export", "dgx-a100", NULL);
  ck_assert_int_eq (r.status, 2);
  cli_run_clear (&r);
  ck_assert (!g_file_test (out, G_FILE_TEST_EXISTS));
  ck_assert_int_eq (count_entries (dir), 2);

  g_unlink (gml);
  g_unlink (dot);
  g_rmdir (dir);
}
END_TEST

static Suite *
topology_cli_suite (void)
{
  Suite *s = suite_create ("topology-cli");
  TCase *tc = tcase_create ("show");
  tcase_add_test (tc, test_show_preset);
  tcase_add_test (tc, test_show_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("export");
  tcase_add_test (tc, test_export);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (topology_cli_suite)
