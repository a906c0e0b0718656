/* `moesim trace convert|stats|head`, run in-process: this binary compiles
 * sim/cli/cmd-trace.c and calls msim_cmd_trace directly with stdout and
 * stderr redirected to files, so the subcommand is covered before it is
 * registered in the moesim binary's command table. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trace-test-util.h"

int msim_cmd_trace (int argc, char **argv);

/* The two helpers cmd-trace.c uses from sim/cli/main.c, which this binary
 * does not link (it has its own main).  Same behaviour as there. */
int
msim_cli_fail (GError *error)
{
  int status = msim_error_exit_status (error);
  if (status == 0)
    status = 1;
  g_printerr ("moesim: error: %s\n", error ? error->message : "unknown error");
  g_clear_error (&error);
  return status;
}

gboolean
msim_cli_parse (GOptionContext *context, int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("moesim: error: %s (try --help)\n", error->message);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  int status;
  char *out;
  char *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}

static char *
slurp_fd (int fd)
{
  GString *s = g_string_new (NULL);
  char buf[4096];
  lseek (fd, 0, SEEK_SET);
  ssize_t n;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (s, buf, n);
  return g_string_free (s, FALSE);
}

/* Runs `moesim trace ARGS...` with stdout/stderr captured. */
static Run
run (const char *first, ...)
{
  GPtrArray *args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup ("moesim trace"));
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, g_strdup (a));
  va_end (ap);
  int argc = (int)args->len;
  /* The command rewrites argv entries and GOption removes parsed ones, so
   * it gets a shallow copy; @args keeps ownership of the strings. */
  char **argv = g_new0 (char *, argc + 1);
  memcpy (argv, args->pdata, sizeof (char *) * (gsize)argc);

  FILE *out_tmp = tmpfile (), *err_tmp = tmpfile ();
  ck_assert (out_tmp && err_tmp);
  fflush (stdout);
  fflush (stderr);
  int saved_out = dup (STDOUT_FILENO), saved_err = dup (STDERR_FILENO);
  dup2 (fileno (out_tmp), STDOUT_FILENO);
  dup2 (fileno (err_tmp), STDERR_FILENO);
  Run r = { 0 };
  r.status = msim_cmd_trace (argc, argv);
  fflush (stdout);
  fflush (stderr);
  dup2 (saved_out, STDOUT_FILENO);
  dup2 (saved_err, STDERR_FILENO);
  close (saved_out);
  close (saved_err);
  r.out = slurp_fd (fileno (out_tmp));
  r.err = slurp_fd (fileno (err_tmp));
  fclose (out_tmp);
  fclose (err_tmp);
  g_free (argv);
  g_ptr_array_unref (args);
  msim_trace_set_memory_limit (MSIM_TRACE_DEFAULT_MEMORY_LIMIT);
  return r;
}

static char *
coding_path (void)
{
  return msim_test_path ("workloads/traces/mixtral-8x7b-mtbench/coding.json");
}

START_TEST (test_usage)
{
  Run r = run (NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "Usage: moesim trace WHAT") != NULL);
  run_clear (&r);
  r = run ("--help", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "convert") && strstr (r.out, "stats") && strstr (r.out, "head"));
  run_clear (&r);
  r = run ("frobnicate", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "unknown subcommand 'frobnicate'") != NULL);
  run_clear (&r);
  r = run ("stats", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "expected one trace file") != NULL);
  run_clear (&r);
  r = run ("convert", "only-one.json", NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  r = run ("head", "--no-such-flag", "x.json", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert_str_eq (r.out, "");
  run_clear (&r);
}
END_TEST

START_TEST (test_convert_chain)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *in = coding_path ();
  g_autofree char *mtr = g_build_filename (dir, "coding.mtr", NULL);
  g_autofree char *npy = g_build_filename (dir, "coding.bin", NULL);
  Run r = run ("convert", in, mtr, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "12138 tokens x 32 layers x k=2, 8 experts (mtr)") != NULL);
  ck_assert_str_eq (r.err, "");
  run_clear (&r);
  r = run ("convert", "--format", "npy", mtr, npy, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "(npy)") != NULL);
  run_clear (&r);
  g_autoptr (MsimTrace) a = msim_trace_load (in, NULL);
  g_autoptr (MsimTrace) b = msim_trace_load (npy, NULL);
  ck_assert (a && b && msim_trace_equal (a, b));

  /* Lossy conversions say what they drop. */
  g_autoptr (MsimTrace) w = tt_random_trace (5, 2, 2, 4, MSIM_TRACE_WEIGHTS, 3);
  ck_assert (msim_trace_set_experts (w, 10, NULL));
  g_autofree char *wpath = g_build_filename (dir, "w.mtr", NULL);
  g_autofree char *jpath = g_build_filename (dir, "w.json", NULL);
  ck_assert (msim_trace_save (w, wpath, MSIM_TRACE_FORMAT_AUTO, NULL));
  r = run ("convert", wpath, jpath, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.err, "warning: json does not store gate weights") != NULL);
  ck_assert (strstr (r.err, "does not store the number of experts (10)") != NULL);
  run_clear (&r);
  /* --experts restores E on the way back. */
  g_autofree char *back = g_build_filename (dir, "back.mtr", NULL);
  r = run ("convert", "--experts", "10", jpath, back, NULL);
  ck_assert_int_eq (r.status, 0);
  run_clear (&r);
  g_autoptr (MsimTrace) wb = msim_trace_load (back, NULL);
  ck_assert_uint_eq (wb->experts, 10);
  tt_assert_same_ids (w, wb);
  /* CSV keeps the weights (only E is lost). */
  g_autofree char *cpath = g_build_filename (dir, "w.csv", NULL);
  r = run ("convert", wpath, cpath, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.err, "gate weights") == NULL);
  ck_assert (strstr (r.err, "number of experts (10)") != NULL);
  run_clear (&r);
  g_autoptr (MsimTrace) wc = msim_trace_load (cpath, NULL);
  ck_assert (msim_trace_set_experts (wc, 10, NULL));
  ck_assert (msim_trace_equal (w, wc));
  r = run ("convert", "--experts", "3", jpath, back, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "--experts 3") != NULL);
  run_clear (&r);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_convert_failures_leave_nothing)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *bad = tt_write_str (dir, "bad.json", "{\"0\": [[1, 2]], \"1\": [[1]]}");
  g_autofree char *out = g_build_filename (dir, "out.mtr", NULL);
  Run r = run ("convert", bad, out, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "moesim: error: ") && strstr (r.err, "bad.json")
             && strstr (r.err, "layer 1, token 0"));
  ck_assert_str_eq (r.out, "");
  ck_assert (!g_file_test (out, G_FILE_TEST_EXISTS));
  run_clear (&r);
  ck_assert_int_eq (tt_count_entries (dir), 1);

  g_autofree char *in = coding_path ();
  g_autofree char *noext = g_build_filename (dir, "out.parquet", NULL);
  r = run ("convert", in, noext, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "cannot tell the output format") != NULL);
  run_clear (&r);
  r = run ("convert", "--format", "xml", in, out, NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  g_autofree char *missing = g_build_filename (dir, "missing.npy", NULL);
  r = run ("convert", missing, out, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "cannot open") != NULL);
  run_clear (&r);
  r = run ("stats", "--memory-limit", "1K", in, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "memory limit of 1.0 KiB") != NULL);
  ck_assert_str_eq (r.out, "");
  run_clear (&r);
  r = run ("stats", "--memory-limit", "lots", in, NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  ck_assert_int_eq (tt_count_entries (dir), 1);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_stats_values)
{
  /* A hand-made trace with known statistics: 4 tokens, k=2, E=4.
   * Layer 0 uses every expert twice (entropy 2 bits), top-1 choices
   * 0,0,1,2 (entropy 1.5 bits, top-1 share 0.5).  Layer 1 sends everything
   * to experts 0 and 1 (entropy 1 bit, imbalance 2). */
  g_autoptr (MsimTrace) t = msim_trace_new (4, 2, 2, 4, MSIM_TRACE_WEIGHTS, NULL);
  const int l0[4][2] = { { 0, 1 }, { 0, 2 }, { 1, 3 }, { 2, 3 } };
  for (int tok = 0; tok < 4; tok++)
    for (int r = 0; r < 2; r++)
      {
        msim_trace_set_expert (t, tok, 0, r, l0[tok][r]);
        msim_trace_set_expert (t, tok, 1, r, r);
        msim_trace_set_weight (t, tok, 0, r, r == 0 ? 0.75f : 0.25f);
        msim_trace_set_weight (t, tok, 1, r, 0.5f);
      }
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "known.mtr", NULL);
  ck_assert (msim_trace_save (t, path, MSIM_TRACE_FORMAT_AUTO, NULL));

  Run r = run ("stats", "--json", path, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  g_autoptr (JsonParser) parser = json_parser_new ();
  ck_assert (json_parser_load_from_data (parser, r.out, -1, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  ck_assert_int_eq (json_object_get_int_member (o, "tokens"), 4);
  ck_assert_int_eq (json_object_get_int_member (o, "experts"), 4);
  ck_assert (json_object_get_boolean_member (o, "weights"));
  JsonArray *layers = json_object_get_array_member (o, "per_layer");
  ck_assert_uint_eq (json_array_get_length (layers), 2);
  JsonObject *a = json_array_get_object_element (layers, 0);
  JsonObject *b = json_array_get_object_element (layers, 1);
  msim_ck_assert_near (json_object_get_double_member (a, "entropy_bits"), 2.0, 1e-12);
  msim_ck_assert_near (json_object_get_double_member (a, "top1_entropy_bits"), 1.5, 1e-12);
  msim_ck_assert_near (json_object_get_double_member (a, "top1_max_share"), 0.5, 1e-12);
  msim_ck_assert_near (json_object_get_double_member (a, "imbalance"), 1.0, 1e-12);
  msim_ck_assert_near (json_object_get_double_member (a, "top1_weight_mean"), 0.75, 1e-12);
  JsonArray *top1 = json_object_get_array_member (a, "top1");
  ck_assert_int_eq (json_array_get_int_element (top1, 0), 2);
  ck_assert_int_eq (json_array_get_int_element (top1, 3), 0);
  msim_ck_assert_near (json_object_get_double_member (b, "entropy_bits"), 1.0, 1e-12);
  msim_ck_assert_near (json_object_get_double_member (b, "imbalance"), 2.0, 1e-12);
  msim_ck_assert_near (json_object_get_double_member (b, "max_load_share"), 0.5, 1e-12);
  JsonArray *load = json_object_get_array_member (b, "load");
  ck_assert_int_eq (json_array_get_int_element (load, 0), 4);
  ck_assert_int_eq (json_array_get_int_element (load, 2), 0);
  run_clear (&r);

  r = run ("stats", path, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "4 tokens x 2 layers x k=2, 4 experts, gate weights") != NULL);
  ck_assert (
      strstr (r.out, "    0   2.0000   1.5000   0.2500    1.0000   0.5000   0.7500  2 2 2 2\n")
      != NULL);
  ck_assert (
      strstr (r.out, "    1   1.0000   0.0000   0.5000    2.0000   1.0000   0.5000  4 4 0 0\n")
      != NULL);
  run_clear (&r);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_stats_shipped)
{
  g_autofree char *in = coding_path ();
  Run r = run ("stats", "--json", in, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  g_autoptr (JsonParser) parser = json_parser_new ();
  ck_assert (json_parser_load_from_data (parser, r.out, -1, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  ck_assert_int_eq (json_object_get_int_member (o, "tokens"), 12138);
  ck_assert_int_eq (json_object_get_int_member (o, "layers"), 32);
  ck_assert_int_eq (json_object_get_int_member (o, "k"), 2);
  JsonArray *layers = json_object_get_array_member (o, "per_layer");
  ck_assert_uint_eq (json_array_get_length (layers), 32);
  for (guint l = 0; l < 32; l++)
    {
      JsonObject *lo = json_array_get_object_element (layers, l);
      JsonArray *load = json_object_get_array_member (lo, "load");
      JsonArray *top1 = json_object_get_array_member (lo, "top1");
      gint64 sum = 0, sum1 = 0;
      for (guint e = 0; e < 8; e++)
        {
          sum += json_array_get_int_element (load, e);
          sum1 += json_array_get_int_element (top1, e);
        }
      ck_assert_int_eq (sum, 2 * 12138);
      ck_assert_int_eq (sum1, 12138);
      double h = json_object_get_double_member (lo, "entropy_bits");
      ck_assert (h > 2.0 && h <= 3.0);
    }
  run_clear (&r);
}
END_TEST

START_TEST (test_head)
{
  g_autofree char *in = coding_path ();
  Run r = run ("head", "-n", "2", in, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  g_auto (GStrv) lines = g_strsplit (r.out, "\n", -1);
  ck_assert_uint_eq (g_strv_length (lines), 5); /* comment, header, 2 rows, "" */
  ck_assert (g_str_has_suffix (lines[0], "12138 tokens x 32 layers x k=2, 8 experts"));
  ck_assert (g_str_has_prefix (lines[1], "token\tL0\tL1\tL2\t"));
  ck_assert (g_str_has_prefix (lines[2], "0\t5,1\t"));
  ck_assert (g_str_has_prefix (lines[3], "1\t3,6\t"));
  run_clear (&r);

  g_autoptr (MsimTrace) t
      = msim_trace_new (2, 1, 2, 4, MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES, NULL);
  for (int tok = 0; tok < 2; tok++)
    for (int k = 0; k < 2; k++)
      {
        msim_trace_set_expert (t, tok, 0, k, tok + 2 * k);
        msim_trace_set_weight (t, tok, 0, k, k ? 0.25f : 0.75f);
      }
  msim_trace_set_sequence (t, 1, 4, 0);
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "w.csv", NULL);
  ck_assert (msim_trace_save (t, path, MSIM_TRACE_FORMAT_AUTO, NULL));
  r = run ("head", path, NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (
      strstr (r.out, "token\tseq\tpos\tL0\n0\t0\t0\t0(0.75),2(0.25)\n1\t4\t0\t1(0.75),3(0.25)\n")
      != NULL);
  run_clear (&r);
  r = run ("head", "-n", "-1", path, NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  tt_rmtree (dir);
}
END_TEST

/* A model file for the synthetic-trace subcommands: 2 MoE layers, 8
 * experts, top-2, so the runs stay tiny. */
static char *
tiny_model (const char *dir)
{
  return tt_write_str (dir, "tiny.ini",
                       "[model]\nname = tiny\nlayers = 2\nexperts = 8\ntop_k = 2\n"
                       "hidden_size = 64\nexpert_ffn_size = 128\nheads = 4\ndtype = bf16\n");
}

START_TEST (test_gen)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *model = tiny_model (dir);
  g_autofree char *out = g_build_filename (dir, "z.mtr", NULL);
  Run r = run ("gen", "--generator", "zipf", "--set", "zipf_s=1.5", "--set", "sequence_len=50",
               "-m", model, "-t", "1000", "--seed", "4", "-o", out, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "1000 tokens x 2 layers x k=2, 8 experts (generator zipf, seed 4")
             != NULL);
  run_clear (&r);
  g_autoptr (MsimTrace) t = msim_trace_load (out, NULL);
  ck_assert (t && t->sequences && msim_trace_sequence (t, 50) == 1);
  /* Same seed, same trace (through another format). */
  g_autofree char *csv = g_build_filename (dir, "z.csv", NULL);
  r = run ("gen", "-g", "zipf", "-s", "zipf_s=1.5", "-s", "sequence_len=50", "-m", model, "-t",
           "1000", "--seed", "4", "-o", csv, NULL);
  ck_assert_int_eq (r.status, 0);
  run_clear (&r);
  g_autoptr (MsimTrace) c = msim_trace_load (csv, NULL);
  ck_assert (msim_trace_set_experts (c, 8, NULL));
  ck_assert (msim_trace_equal (t, c));

  /* fit reads the parameters back. */
  r = run ("fit", "--json", out, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  g_autoptr (JsonParser) parser = json_parser_new ();
  ck_assert (json_parser_load_from_data (parser, r.out, -1, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  double s = json_object_get_double_member (o, "zipf_s");
  ck_assert_msg (fabs (s - 1.5) < 0.15, "zipf_s %g", s);
  run_clear (&r);
  r = run ("fit", "--domains", "2", out, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "zipf_s") && strstr (r.out, "mixture weights"));
  run_clear (&r);

  /* A router with every output: trace, predictions, report. */
  g_autofree char *rt = g_build_filename (dir, "r.mtr", NULL);
  g_autofree char *pred = g_build_filename (dir, "p.mtr", NULL);
  g_autofree char *rep = g_build_filename (dir, "r.json", NULL);
  r = run ("gen", "--router", "pregated", "-s", "hidden_dim=8", "-s", "sequence_len=16", "-m",
           model, "-t", "64", "-o", rt, "--predicted", pred, "--report", rep, NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "pre-gate top-1") != NULL);
  run_clear (&r);
  g_autoptr (MsimTrace) rtt = msim_trace_load (rt, NULL);
  g_autoptr (MsimTrace) pt = msim_trace_load (pred, NULL);
  ck_assert (rtt && pt && rtt->weights != NULL);
  g_autoptr (JsonParser) rp = json_parser_new ();
  ck_assert (json_parser_load_from_file (rp, rep, NULL));
  JsonObject *ro = json_node_get_object (json_parser_get_root (rp));
  ck_assert_str_eq (json_object_get_string_member (ro, "router"), "pregated");
  ck_assert_uint_eq (tt_count_entries (dir), 6);

  r = run ("gen", "--list", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "mixture") && strstr (r.out, "recurrent"));
  run_clear (&r);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_gen_errors_leave_nothing)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *model = tiny_model (dir);
  g_autofree char *out = g_build_filename (dir, "x.mtr", NULL);
  g_autofree char *rep = g_build_filename (dir, "x.json", NULL);
  struct
  {
    const char *a, *b, *c, *d;
    const char *want;
  } cases[] = {
    { "-g", "zipf", "-s", "zipf_z=1", "[router] zipf_z: unknown key" },
    { "-g", "zipf", "-s", "affinity=0.5", "does not apply to generator zipf" },
    { "-g", "zipf", "-s", "zipf_s=-2", "zipf_s" },
    { "-g", "zipf", "-s", "novalue", "--set 'novalue': expected KEY=VALUE" },
    { "-g", "nope", "-s", "a=b", "unknown generator 'nope'" },
    { "-r", "topk", "-s", "tau=1", "does not apply to router topk" },
    { "-g", "zipf", "--report", rep, "no routing metrics" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Run r = run ("gen", cases[i].a, cases[i].b, cases[i].c, cases[i].d, "-m", model, "-t", "100",
                   "-o", out, NULL);
      ck_assert_msg (r.status == 2, "case %u: status %d", i, r.status);
      ck_assert_msg (strstr (r.err, cases[i].want) != NULL, "case %u: %s", i, r.err);
      ck_assert_str_eq (r.out, "");
      run_clear (&r);
    }
  Run r = run ("gen", "-g", "zipf", "-m", model, "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "--tokens") != NULL);
  run_clear (&r);
  r = run ("gen", "-g", "zipf", "-m", "no-such-model", "-t", "10", "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  r = run ("gen", "-g", "zipf", "-r", "topk", "-m", model, "-t", "10", "-o", out, NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  r = run ("gen", "-g", "zipf", "-m", model, "-t", "10", NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  /* Expert choice writes -1 slots, which only .mtr stores: nothing is
   * written at all. */
  g_autofree char *npy = g_build_filename (dir, "ec.npy", NULL);
  r = run ("gen", "-r", "expert-choice", "-s", "hidden_dim=8", "-s", "sequence_len=8", "-m", model,
           "-t", "32", "-o", npy, "--report", rep, NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "ec.npy") && strstr (r.err, ".mtr"));
  run_clear (&r);
  ck_assert_int_eq (tt_count_entries (dir), 1); /* the model file only */
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_route_stats)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *model = tiny_model (dir);
  Run r = run ("route-stats", "-r", "topk,similarity", "-s", "hidden_dim=8", "-s",
               "sequence_len=16", "-s", "tau=3", "-m", model, "-t", "64", NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  ck_assert (strstr (r.out, "topk") && strstr (r.out, "similarity") && strstr (r.out, "fluct"));
  run_clear (&r);
  r = run ("route-stats", "-r", "recurrent", "-s", "hidden_dim=8", "-s", "recurrent_dim=8", "-s",
           "sequence_len=16", "-m", model, "-t", "32", "--json", NULL);
  ck_assert_msg (r.status == 0, "%s", r.err);
  g_autoptr (JsonParser) parser = json_parser_new ();
  ck_assert (json_parser_load_from_data (parser, r.out, -1, NULL));
  JsonArray *a = json_node_get_array (json_parser_get_root (parser));
  ck_assert_uint_eq (json_array_get_length (a), 1);
  JsonObject *total = json_object_get_object_member (json_array_get_object_element (a, 0), "total");
  double f = json_object_get_double_member (total, "fluctuation");
  ck_assert (f >= 0 && f <= 1);
  run_clear (&r);
  r = run ("route-stats", "-r", "topk", "-s", "reuse=1", "-m", model, "-t", "32", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "no router compared takes this key") != NULL);
  run_clear (&r);
  r = run ("route-stats", "-r", "zap", "-m", model, "-t", "32", NULL);
  ck_assert_int_eq (r.status, 2);
  run_clear (&r);
  tt_rmtree (dir);
}
END_TEST

static Suite *
cli_suite (void)
{
  Suite *s = suite_create ("trace_cli");
  struct
  {
    const char *name;
    const TTest *fn;
  } cases[] = {
    { "usage", test_usage },
    { "convert_chain", test_convert_chain },
    { "convert_failures", test_convert_failures_leave_nothing },
    { "stats_values", test_stats_values },
    { "stats_shipped", test_stats_shipped },
    { "head", test_head },
    { "gen", test_gen },
    { "gen_errors", test_gen_errors_leave_nothing },
    { "route_stats", test_route_stats },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TCase *tc = tcase_create (cases[i].name);
      tcase_add_test (tc, cases[i].fn);
      suite_add_tcase (s, tc);
    }
  return s;
}

MSIM_CHECK_MAIN (cli_suite)
