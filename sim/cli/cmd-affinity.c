/* moesim affinity: inter-layer expert affinity of a trace (analysis/affinity.h).
 *
 *   moesim affinity TRACE --out DIR [--distance D] [--gpus 2,4,8] [--seed S]
 *                   [--experts E] [--no-figures]
 *
 * Writes into DIR:
 *   summary.json            per layer pair and mean: H(J|I), H(J), I(I;J),
 *                           I/H(J), top-successor share; affinity gain per G
 *   pairs.csv               every non-zero count, long form:
 *                           mode,layer,next_layer,i,j,count,probability
 *   matrices/MODE-LA-LB.csv E x E matrices of P(j at LB | i at LA), MODE =
 *                           top1 or allk
 *   affinity-top1.graphml   the igraph affinity graph (and -allk)
 *   heatmaps/top1-LA-LB.png one gnuplot heat map per layer pair (top-1)
 * All files are made in a temporary directory next to DIR and moved in only
 * when everything succeeded.  Without gnuplot the heat maps are skipped with
 * a message on stderr; everything else is still written. */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "affinity.h"
#include "analysis-util.h"
#include "cli.h"
#include "ini.h"
#include "msim-error.h"

/* Declared here until cli.h lists it with the other subcommands. */

static const char *const mode_names[] = { "top1", "allk" };

/* Share of tokens that go to their expert's most likely successor. */
static double
top_successor_share (const MsimAffinity *a, MsimAffinityMode mode, guint p)
{
  const guint E = msim_affinity_experts (a);
  const guint64 *c = msim_affinity_counts (a, mode, p);
  double best = 0, tot = 0;
  for (guint i = 0; i < E; i++)
    {
      guint64 mx = 0;
      for (guint j = 0; j < E; j++)
        {
          mx = MAX (mx, c[(gsize)i * E + j]);
          tot += (double)c[(gsize)i * E + j];
        }
      best += (double)mx;
    }
  return tot > 0 ? best / tot : 0.0;
}

static void
json_stats (JsonBuilder *b, const char *name, const MsimAffinityStats *s, double top)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "conditional_entropy_bits");
  json_builder_add_double_value (b, s->conditional_entropy);
  json_builder_set_member_name (b, "entropy_bits");
  json_builder_add_double_value (b, s->entropy);
  json_builder_set_member_name (b, "mutual_information_bits");
  json_builder_add_double_value (b, s->mutual_information);
  json_builder_set_member_name (b, "normalized_mutual_information");
  json_builder_add_double_value (b, s->normalized_mi);
  json_builder_set_member_name (b, "samples");
  json_builder_add_int_value (b, (gint64)s->samples);
  if (!isnan (top))
    {
      json_builder_set_member_name (b, "top_successor_share");
      json_builder_add_double_value (b, top);
    }
  json_builder_end_object (b);
}

static char *
pair_name (const MsimAffinity *a, const char *mode, guint p)
{
  guint L = msim_affinity_layers (a);
  int w = L > 1000 ? 4 : (L > 100 ? 3 : 2);
  return g_strdup_printf ("%s-L%0*u-L%0*u", mode, w, p, w, p + msim_affinity_distance (a));
}

static gboolean
write_text (const char *dir, const char *name, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents (path, text, -1, &local))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s", local->message);
      return FALSE;
    }
  return TRUE;
}

/* Removes @dir and everything under it (best effort; our own temp dir). */
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

/* Moves every regular file of @from/@sub into @to/@sub (created). */
static gboolean
move_files (const char *from, const char *to, const char *sub, GError **error)
{
  g_autofree char *src = sub ? g_build_filename (from, sub, NULL) : g_strdup (from);
  g_autofree char *dst = sub ? g_build_filename (to, sub, NULL) : g_strdup (to);
  if (g_mkdir_with_parents (dst, 0755) != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot create directory: %s", dst,
                   g_strerror (errno));
      return FALSE;
    }
  GDir *d = g_dir_open (src, 0, NULL);
  if (d == NULL)
    return TRUE;
  const char *n;
  gboolean ok = TRUE;
  while (ok && (n = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *s = g_build_filename (src, n, NULL);
      if (g_file_test (s, G_FILE_TEST_IS_DIR))
        continue;
      g_autofree char *t = g_build_filename (dst, n, NULL);
      if (g_rename (s, t) != 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot move into place: %s", t,
                       g_strerror (errno));
          ok = FALSE;
        }
    }
  g_dir_close (d);
  return ok;
}

/* Heat maps with gnuplot, run in @dir.  Returns FALSE with *note set when
 * the figures could not be made (never an error: figures are optional). */
static gboolean
make_heatmaps (const MsimAffinity *a, const char *dir, char **note)
{
  g_autofree char *gnuplot = g_find_program_in_path ("gnuplot");
  if (gnuplot == NULL)
    {
      *note = g_strdup ("gnuplot not found in PATH: heat maps skipped (install gnuplot to get "
                        "them; matrices, graph and summary were written)");
      return FALSE;
    }
  const guint E = msim_affinity_experts (a), d = msim_affinity_distance (a);
  g_autofree char *data = g_build_filename (dir, "plotdata", NULL);
  g_autofree char *heat = g_build_filename (dir, "heatmaps", NULL);
  g_mkdir (data, 0755);
  g_mkdir (heat, 0755);
  GString *script = g_string_new (NULL);
  g_string_append (script, "set terminal pngcairo size 560,480 font ',10'\n"
                           "set palette defined (0 'white', 0.5 '#6baed6', 1 '#08306b')\n"
                           "set cbrange [0:1]\nset tics out\nunset key\n");
  g_string_append_printf (script, "set xrange [-0.5:%g]\nset yrange [%g:-0.5]\n", E - 0.5, E - 0.5);
  for (guint p = 0; p < msim_affinity_n_pairs (a); p++)
    {
      g_autofree char *name = pair_name (a, "top1", p);
      GString *m = g_string_new (NULL);
      for (guint i = 0; i < E; i++)
        {
          for (guint j = 0; j < E; j++)
            {
              double v = msim_affinity_probability (a, MSIM_AFFINITY_TOP1, p, i, j);
              g_string_append_printf (m, "%s%.6g", j ? " " : "", isnan (v) ? 0.0 : v);
            }
          g_string_append_c (m, '\n');
        }
      g_autofree char *dat = g_strdup_printf ("plotdata/%s.dat", name);
      g_autofree char *datp = g_build_filename (dir, dat, NULL);
      gboolean ok = g_file_set_contents (datp, m->str, -1, NULL);
      g_string_free (m, TRUE);
      if (!ok)
        {
          *note = g_strdup ("could not write the heat-map data: heat maps skipped");
          g_string_free (script, TRUE);
          return FALSE;
        }
      g_string_append_printf (script,
                              "set output 'heatmaps/%s.png'\n"
                              "set title 'P(expert j at layer %u | expert i at layer %u), top-1'\n"
                              "set xlabel 'expert j at layer %u'\n"
                              "set ylabel 'expert i at layer %u'\n"
                              "plot '%s' matrix with image\n",
                              name, p + d, p, p + d, p, dat);
    }
  g_autofree char *sp = g_build_filename (dir, "plotdata", "heatmaps.gp", NULL);
  gboolean wrote = g_file_set_contents (sp, script->str, -1, NULL);
  g_string_free (script, TRUE);
  if (!wrote)
    {
      *note = g_strdup ("could not write the gnuplot script: heat maps skipped");
      return FALSE;
    }
  char *args[] = { gnuplot, (char *)"plotdata/heatmaps.gp", NULL };
  g_autofree char *err = NULL;
  gint status = 0;
  g_autoptr (GError) local = NULL;
  gboolean ran = g_spawn_sync (dir, args, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                               &status, &local);
  remove_tree (data);
  if (!ran || !g_spawn_check_wait_status (status, NULL))
    {
      remove_tree (heat);
      *note = g_strdup_printf ("gnuplot failed (%s): heat maps skipped",
                               local ? local->message
                                     : (err && *err ? g_strstrip (err) : "no message"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_gpus (const char *text, guint experts, GArray *out, GError **error)
{
  if (text == NULL)
    {
      for (guint g = 2; g <= MIN (experts, 64u); g *= 2)
        if (experts % g == 0)
          g_array_append_val (out, g);
      return TRUE;
    }
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (guint i = 0; parts[i]; i++)
    {
      gint64 v;
      g_strstrip (parts[i]);
      if (!msim_parse_int64 (parts[i], &v) || v < 1 || v > 4096)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "--gpus '%s': '%s' is not a GPU count in 1..4096", text, parts[i]);
          return FALSE;
        }
      guint g = (guint)v;
      g_array_append_val (out, g);
    }
  return TRUE;
}

int
msim_cmd_affinity (int argc, char **argv)
{
  g_autofree char *out_dir = NULL;
  g_autofree char *gpus_text = NULL;
  gint distance = 1;
  gint64 seed = 1;
  gint experts = 0;
  gboolean no_figures = FALSE;
  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir, "Output directory (required)", "DIR" },
    { "distance", 'd', 0, G_OPTION_ARG_INT, &distance,
      "Layer distance d: pairs (l, l+d) (default 1)", "D" },
    { "gpus", 'g', 0, G_OPTION_ARG_STRING, &gpus_text,
      "GPU counts for the affinity gain (default: powers of 2 dividing E, up to 64)", "LIST" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Seed of the placement search (default 1)", "S" },
    { "experts", 0, 0, G_OPTION_ARG_INT, &experts,
      "Experts per layer E, for trace formats that do not store it (default: largest id + 1)",
      "E" },
    { "no-figures", 0, 0, G_OPTION_ARG_NONE, &no_figures, "Do not run gnuplot", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("TRACE - inter-layer expert affinity: matrices, graph, heat maps");
  g_option_context_set_description (
      ctx, "P(j at l+d | i at l) for the top-1 expert and for all k choices, conditional\n"
           "entropy and mutual information per layer pair, the igraph affinity graph\n"
           "(GraphML), and the affinity gain: the cross-GPU fraction of the best placement\n"
           "against contiguous placement on G GPUs.  See analysis/affinity.h.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    {
      g_printerr ("moesim: error: affinity: expected one trace file (try --help)\n");
      return 2;
    }
  GError *error = NULL;
  if (out_dir == NULL)
    return msim_cli_fail (
        g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "affinity: --out DIR is required"));
  if (seed < 0 || experts < 0 || distance < 1)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "affinity: --seed and --experts must be >= 0, "
                                       "--distance >= 1"));
  const char *paths[] = { argv[1], NULL };
  g_autoptr (MsimTrace) trace = msim_trace_load_files (paths, (guint)experts, &error);
  g_autoptr (MsimAffinity) a = trace ? msim_affinity_new (trace, (guint)distance, &error) : NULL;
  g_autoptr (GArray) gpus = g_array_new (FALSE, FALSE, sizeof (guint));
  if (a == NULL || !parse_gpus (gpus_text, trace->experts, gpus, &error))
    return msim_cli_fail (error);
  g_autoptr (GArray) gains = g_array_new (FALSE, FALSE, sizeof (MsimAffinityGain));
  for (guint i = 0; i < gpus->len; i++)
    {
      MsimAffinityGain gain;
      if (!msim_affinity_gain (trace, g_array_index (gpus, guint, i), (guint64)seed, &gain, &error))
        return msim_cli_fail (error);
      g_array_append_val (gains, gain);
    }

  /* Build everything in a temporary directory beside DIR. */
  g_autofree char *clean = g_strdup (out_dir);
  while (strlen (clean) > 1 && clean[strlen (clean) - 1] == '/')
    clean[strlen (clean) - 1] = '\0';
  g_autofree char *tmpl = g_strdup_printf ("%s.tmp-XXXXXX", clean);
  g_autofree char *parent = g_path_get_dirname (clean);
  if (g_mkdir_with_parents (parent, 0755) != 0 || g_mkdtemp (tmpl) == NULL)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_IO,
                                       "%s: cannot create a working directory: %s", out_dir,
                                       g_strerror (errno)));
  const char *tmp = tmpl;
  const guint E = trace->experts, P = msim_affinity_n_pairs (a);
  gboolean ok = TRUE;
  g_autofree char *mdir = g_build_filename (tmp, "matrices", NULL);
  g_mkdir (mdir, 0755);

  GString *pairs = g_string_new ("mode,layer,next_layer,i,j,count,probability\n");
  for (int m = 0; m < 2 && ok; m++)
    for (guint p = 0; p < P && ok; p++)
      {
        const guint64 *c = msim_affinity_counts (a, (MsimAffinityMode)m, p);
        GString *mat = g_string_new ("i\\j");
        for (guint j = 0; j < E; j++)
          g_string_append_printf (mat, ",%u", j);
        g_string_append_c (mat, '\n');
        for (guint i = 0; i < E; i++)
          {
            g_string_append_printf (mat, "%u", i);
            for (guint j = 0; j < E; j++)
              {
                double pr = msim_affinity_probability (a, (MsimAffinityMode)m, p, i, j);
                if (isnan (pr))
                  g_string_append (mat, ",");
                else
                  g_string_append_printf (mat, ",%.6g", pr);
                if (c[(gsize)i * E + j] > 0)
                  g_string_append_printf (pairs, "%s,%u,%u,%u,%u,%" G_GUINT64_FORMAT ",%.6g\n",
                                          mode_names[m], p, p + (guint)distance, i, j,
                                          c[(gsize)i * E + j], pr);
              }
            g_string_append_c (mat, '\n');
          }
        g_autofree char *name = pair_name (a, mode_names[m], p);
        g_autofree char *file = g_strdup_printf ("%s.csv", name);
        ok = write_text (mdir, file, mat->str, &error);
        g_string_free (mat, TRUE);
      }
  if (ok)
    ok = write_text (tmp, "pairs.csv", pairs->str, &error);
  g_string_free (pairs, TRUE);
  for (int m = 0; m < 2 && ok; m++)
    {
      g_autofree char *gname = g_strdup_printf ("affinity-%s.graphml", mode_names[m]);
      g_autofree char *gpath = g_build_filename (tmp, gname, NULL);
      ok = msim_affinity_save_graphml (a, (MsimAffinityMode)m, gpath, &error);
    }

  g_autofree char *fig_note = NULL;
  gboolean figures = FALSE;
  if (ok && !no_figures)
    figures = make_heatmaps (a, tmp, &fig_note);
  else if (no_figures)
    fig_note = g_strdup ("heat maps not requested (--no-figures)");

  /* Summary. */
  MsimAffinityStats mean[2];
  if (ok)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "trace");
      json_builder_add_string_value (b, argv[1]);
      json_builder_set_member_name (b, "tokens");
      json_builder_add_int_value (b, (gint64)trace->tokens);
      json_builder_set_member_name (b, "layers");
      json_builder_add_int_value (b, trace->layers);
      json_builder_set_member_name (b, "experts");
      json_builder_add_int_value (b, E);
      json_builder_set_member_name (b, "top_k");
      json_builder_add_int_value (b, trace->k);
      json_builder_set_member_name (b, "distance");
      json_builder_add_int_value (b, distance);
      json_builder_set_member_name (b, "mean");
      json_builder_begin_object (b);
      for (int m = 0; m < 2; m++)
        {
          msim_affinity_mean_stats (a, (MsimAffinityMode)m, &mean[m]);
          double top = 0;
          for (guint p = 0; p < P; p++)
            top += top_successor_share (a, (MsimAffinityMode)m, p) / P;
          json_stats (b, mode_names[m], &mean[m], m == 0 ? top : NAN);
        }
      json_builder_end_object (b);
      json_builder_set_member_name (b, "pairs");
      json_builder_begin_array (b);
      for (guint p = 0; p < P; p++)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "layer");
          json_builder_add_int_value (b, p);
          json_builder_set_member_name (b, "next_layer");
          json_builder_add_int_value (b, p + (guint)distance);
          for (int m = 0; m < 2; m++)
            {
              MsimAffinityStats s;
              msim_affinity_pair_stats (a, (MsimAffinityMode)m, p, &s);
              json_stats (b, mode_names[m], &s,
                          m == 0 ? top_successor_share (a, MSIM_AFFINITY_TOP1, p) : NAN);
            }
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "affinity_gain");
      json_builder_begin_array (b);
      for (guint i = 0; i < gains->len; i++)
        {
          const MsimAffinityGain *g = &g_array_index (gains, MsimAffinityGain, i);
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "gpus");
          json_builder_add_int_value (b, g->gpus);
          json_builder_set_member_name (b, "cross_gpu_contiguous");
          json_builder_add_double_value (b, g->contiguous);
          json_builder_set_member_name (b, "cross_gpu_best");
          json_builder_add_double_value (b, g->best);
          json_builder_set_member_name (b, "gain");
          json_builder_add_double_value (b, g->gain);
          json_builder_set_member_name (b, "relative_gain");
          json_builder_add_double_value (b, g->relative_gain);
          json_builder_set_member_name (b, "best_is_exact");
          json_builder_add_boolean_value (b, g->exact);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "figures");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "written");
      json_builder_add_boolean_value (b, figures);
      if (fig_note)
        {
          json_builder_set_member_name (b, "note");
          json_builder_add_string_value (b, fig_note);
        }
      json_builder_end_object (b);
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      json_generator_set_pretty (gen, TRUE);
      json_generator_set_root (gen, root);
      g_autofree char *text = json_generator_to_data (gen, NULL);
      ok = write_text (tmp, "summary.json", text, &error);
    }
  if (ok)
    ok = move_files (tmp, clean, NULL, &error) && move_files (tmp, clean, "matrices", &error)
         && (!figures || move_files (tmp, clean, "heatmaps", &error));
  remove_tree (tmp);
  if (!ok)
    return msim_cli_fail (error);

  if (fig_note && !no_figures)
    g_printerr ("moesim affinity: %s\n", fig_note);
  printf ("moesim affinity: %s: %" G_GSIZE_FORMAT " tokens, %u layers x %u experts, top-%u, "
          "distance %d\n",
          argv[1], trace->tokens, trace->layers, E, trace->k, distance);
  printf ("mean over %u layer pairs (bits):   H(J|I)    H(J)   I(I;J)  I/H(J)\n", P);
  for (int m = 0; m < 2; m++)
    printf ("  %-32s %7.3f %7.3f %8.3f %7.3f\n", m == 0 ? "top-1" : "all-k",
            mean[m].conditional_entropy, mean[m].entropy, mean[m].mutual_information,
            mean[m].normalized_mi);
  printf ("affinity gain (cross-GPU fraction of top-1 boundaries, fitted on this trace):\n");
  for (guint i = 0; i < gains->len; i++)
    {
      const MsimAffinityGain *g = &g_array_index (gains, MsimAffinityGain, i);
      printf ("  %3u GPUs: contiguous %.4f, best %.4f%s, gain %.4f (%.1f %% fewer crossings)\n",
              g->gpus, g->contiguous, g->best, g->exact ? " (exact)" : "", g->gain,
              100.0 * g->relative_gain);
    }
  printf ("wrote %s/{summary.json,pairs.csv,matrices/,affinity-top1.graphml,affinity-allk."
          "graphml%s}\n",
          clean, figures ? ",heatmaps/" : "");
  return 0;
}
