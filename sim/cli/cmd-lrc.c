/* moesim lrc: local routing consistency of a trace (analysis/lrc.h).
 *
 *   moesim lrc TRACE [--segments 4,16,64,256] [--experts E] [--json]
 *
 * SRP(m) per layer and for the model, SCH(m, C) for C = 1..E for the model
 * and per layer.  Without sequence ids in the trace the whole trace is one
 * sequence, and the output says so. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis-util.h"
#include "cli.h"
#include "ini.h"
#include "lrc.h"
#include "msim-error.h"

/* Declared here until cli.h lists it with the other subcommands. */

static gboolean
parse_segments (const char *text, GArray *out, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (guint i = 0; parts[i]; i++)
    {
      gint64 v;
      g_strstrip (parts[i]);
      if (!msim_parse_int64 (parts[i], &v) || v < 1 || v > 1000000)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "--segments '%s': '%s' is not a length in 1..1000000", text, parts[i]);
          return FALSE;
        }
      guint m = (guint)v;
      g_array_append_val (out, m);
    }
  if (out->len == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--segments: no lengths");
      return FALSE;
    }
  return TRUE;
}

static void
add_double_or_null (JsonBuilder *b, double v)
{
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

static char *
sequence_note (const MsimLrc *lrc)
{
  if (msim_lrc_has_sequence_ids (lrc))
    return g_strdup_printf ("%u sequences from the trace's sequence ids",
                            msim_lrc_n_sequences (lrc));
  return g_strdup_printf (
      "the trace has no sequence ids; treated as one sequence of %" G_GUINT64_FORMAT
      " tokens in file order",
      msim_lrc_tokens (lrc));
}

static char *
lrc_json (const MsimLrc *lrc, const char *path)
{
  const guint L = msim_lrc_layers (lrc), E = msim_lrc_experts (lrc);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "trace");
  json_builder_add_string_value (b, path);
  json_builder_set_member_name (b, "tokens");
  json_builder_add_int_value (b, (gint64)msim_lrc_tokens (lrc));
  json_builder_set_member_name (b, "layers");
  json_builder_add_int_value (b, L);
  json_builder_set_member_name (b, "experts");
  json_builder_add_int_value (b, E);
  json_builder_set_member_name (b, "top_k");
  json_builder_add_int_value (b, msim_lrc_k (lrc));
  json_builder_set_member_name (b, "sequences");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "count");
  json_builder_add_int_value (b, msim_lrc_n_sequences (lrc));
  json_builder_set_member_name (b, "from_trace");
  json_builder_add_boolean_value (b, msim_lrc_has_sequence_ids (lrc));
  g_autofree char *note = sequence_note (lrc);
  json_builder_set_member_name (b, "note");
  json_builder_add_string_value (b, note);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "segments");
  json_builder_begin_array (b);
  for (guint s = 0; s < msim_lrc_n_segments (lrc); s++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "m");
      json_builder_add_int_value (b, msim_lrc_segment (lrc, s));
      json_builder_set_member_name (b, "windows");
      json_builder_add_int_value (b, (gint64)msim_lrc_windows (lrc, s));
      json_builder_set_member_name (b, "srp");
      add_double_or_null (b, msim_lrc_srp (lrc, s, MSIM_LRC_MODEL));
      json_builder_set_member_name (b, "srp_layers");
      json_builder_begin_array (b);
      for (guint l = 0; l < L; l++)
        add_double_or_null (b, msim_lrc_srp (lrc, s, l));
      json_builder_end_array (b);
      json_builder_set_member_name (b, "srp_thresholds");
      json_builder_begin_array (b);
      for (guint l = 0; l < L; l++)
        json_builder_add_int_value (b, msim_lrc_srp_threshold (lrc, s, l));
      json_builder_end_array (b);
      json_builder_set_member_name (b, "sch");
      json_builder_begin_array (b);
      for (guint c = 1; c <= E; c++)
        json_builder_add_double_value (b, msim_lrc_sch (lrc, s, MSIM_LRC_MODEL, c));
      json_builder_end_array (b);
      json_builder_set_member_name (b, "sch_layers");
      json_builder_begin_array (b);
      for (guint l = 0; l < L; l++)
        {
          json_builder_begin_array (b);
          for (guint c = 1; c <= E; c++)
            json_builder_add_double_value (b, msim_lrc_sch (lrc, s, l, c));
          json_builder_end_array (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static char *
lrc_text (const MsimLrc *lrc, const char *path)
{
  const guint L = msim_lrc_layers (lrc), E = msim_lrc_experts (lrc), k = msim_lrc_k (lrc);
  const guint S = msim_lrc_n_segments (lrc);
  GString *o = g_string_new (NULL);
  g_autofree char *note = sequence_note (lrc);
  g_string_append_printf (o,
                          "moesim lrc: %s: %" G_GUINT64_FORMAT " tokens, %u layers x %u "
                          "experts, top-%u\n",
                          path, msim_lrc_tokens (lrc), L, E, k);
  g_string_append_printf (o, "sequences: %s\n\n", note);
  g_string_append (o, "SRP(m), segment routing best performance (model = mean over layers)\n");
  g_string_append (o, "      m      windows      SRP\n");
  for (guint s = 0; s < S; s++)
    {
      double v = msim_lrc_srp (lrc, s, MSIM_LRC_MODEL);
      g_string_append_printf (o, "  %5u %12" G_GUINT64_FORMAT "   ", msim_lrc_segment (lrc, s),
                              msim_lrc_windows (lrc, s));
      if (isfinite (v))
        g_string_append_printf (o, "%.4f\n", v);
      else
        g_string_append (o, "n/a (no sequence has m tokens)\n");
    }
  g_string_append (o, "\nSCH(m, C), segment cache best hit rate (model), cache size C = 1..E\n");
  g_string_append (o, "      m");
  for (guint c = 1; c <= E; c++)
    g_string_append_printf (o, "  C=%-4u", c);
  g_string_append_c (o, '\n');
  for (guint s = 0; s < S; s++)
    {
      g_string_append_printf (o, "  %5u", msim_lrc_segment (lrc, s));
      for (guint c = 1; c <= E; c++)
        g_string_append_printf (o, "  %.4f", msim_lrc_sch (lrc, s, MSIM_LRC_MODEL, c));
      g_string_append_c (o, '\n');
    }
  guint c2 = MIN (2 * k, E);
  g_string_append_printf (o, "\nper layer: SRP(m) and SCH(m, C=%u) (twice the active experts)\n",
                          c2);
  g_string_append (o, "  layer");
  g_autofree int *width = g_new (int, 2 * S);
  for (guint h = 0; h < 2 * S; h++)
    {
      g_autofree char *head
          = g_strdup_printf ("%s(%u)", h < S ? "SRP" : "SCH", msim_lrc_segment (lrc, h % S));
      width[h] = MAX ((int)strlen (head), 6);
      g_string_append_printf (o, "  %*s", width[h], head);
    }
  g_string_append_c (o, '\n');
  for (guint l = 0; l < L; l++)
    {
      g_string_append_printf (o, "  %5u", l);
      for (guint h = 0; h < 2 * S; h++)
        {
          double v = h < S ? msim_lrc_srp (lrc, h, l) : msim_lrc_sch (lrc, h - S, l, c2);
          if (isfinite (v))
            g_string_append_printf (o, "  %*.4f", width[h], v);
          else
            g_string_append_printf (o, "  %*s", width[h], "n/a");
        }
      g_string_append_c (o, '\n');
    }
  return g_string_free (o, FALSE);
}

int
msim_cmd_lrc (int argc, char **argv)
{
  g_autofree char *segments = NULL;
  gint experts = 0;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "segments", 'm', 0, G_OPTION_ARG_STRING, &segments,
      "Comma-separated segment lengths m (default 4,16,64,256)", "LIST" },
    { "experts", 0, 0, G_OPTION_ARG_INT, &experts,
      "Experts per layer E, for trace formats that do not store it (default: largest id + 1)",
      "E" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON instead of tables", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("TRACE - local routing consistency (SRP, SCH)");
  g_option_context_set_description (
      ctx, "SRP(m): best F1, over a threshold tau, of predicting every m-token window's\n"
           "routing by the experts used >= tau times in it.  SCH(m, C): hit rate of an\n"
           "oracle cache of C experts ranked by their uses in the next m tokens.\n"
           "Definitions: Not All Models Suit Expert Offloading (moe-lrc); details in\n"
           "analysis/lrc.h.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    {
      g_printerr ("moesim: error: lrc: expected one trace file (try --help)\n");
      return 2;
    }
  GError *error = NULL;
  g_autoptr (GArray) segs = g_array_new (FALSE, FALSE, sizeof (guint));
  if (segments)
    {
      if (!parse_segments (segments, segs, &error))
        return msim_cli_fail (error);
    }
  else
    g_array_append_vals (segs, msim_lrc_default_segments, MSIM_LRC_N_DEFAULT_SEGMENTS);
  if (experts < 0 || experts > (gint)MSIM_TRACE_MAX_EXPERTS)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "--experts %d: expected 1..%u",
                                       experts, MSIM_TRACE_MAX_EXPERTS));
  const char *paths[] = { argv[1], NULL };
  g_autoptr (MsimTrace) trace = msim_trace_load_files (paths, (guint)experts, &error);
  if (trace == NULL)
    return msim_cli_fail (error);
  g_autoptr (MsimLrc) lrc = msim_lrc_compute (trace, (const guint *)segs->data, segs->len, &error);
  if (lrc == NULL)
    return msim_cli_fail (error);
  g_autofree char *text = json ? lrc_json (lrc, argv[1]) : lrc_text (lrc, argv[1]);
  fputs (text, stdout);
  if (json)
    fputc ('\n', stdout);
  return 0;
}
