/* moesim trace: inspect and convert routing traces.
 *
 *   moesim trace convert IN OUT [--format F]   any format to any format
 *   moesim trace stats IN [--json]             per-layer expert load, top-1
 *                                              share, entropy
 *   moesim trace head IN [-n N]                the first tokens' routing
 *
 * Every subcommand loads the whole trace first and prints only after it
 * succeeded, so a bad input produces an error and exit status 2, never a
 * half-printed table or a partial output file. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "msim-error.h"
#include "trace.h"


/* Options every subcommand takes. */
typedef struct
{
  char *input_format;
  char *memory_limit;
  gint experts;
} CommonOpts;

static void
add_common (GOptionContext *ctx, CommonOpts *o)
{
  GOptionEntry entries[] = {
    { "input-format", 0, 0, G_OPTION_ARG_STRING, &o->input_format,
      "Format of IN: npy, csv, json, mtr (default: detect from content and extension)", "F" },
    { "experts", 0, 0, G_OPTION_ARG_INT, &o->experts,
      "Experts per layer E, for formats that do not store it (default: largest id + 1)", "E" },
    { "memory-limit", 0, 0, G_OPTION_ARG_STRING, &o->memory_limit,
      "Refuse traces needing more memory than SIZE (e.g. 512M, 16G; default 8G)", "SIZE" },
    { NULL },
  };
  /* GOption copies the entries, so a stack array is fine. */
  g_option_context_add_main_entries (ctx, entries, NULL);
}

static void
common_clear (CommonOpts *o)
{
  g_free (o->input_format);
  g_free (o->memory_limit);
}

/* "123", "64K", "512M", "16G", "1T" (binary multiples, optional "iB"/"B"). */
static gboolean
parse_size (const char *text, guint64 *out)
{
  char *end = NULL;
  if (!g_ascii_isdigit (text[0]))
    return FALSE;
  guint64 v = g_ascii_strtoull (text, &end, 10);
  guint shift = 0;
  switch (g_ascii_toupper (*end))
    {
      case '\0':
        break;
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        return FALSE;
    }
  if (*end)
    {
      end++;
      if (g_ascii_strcasecmp (end, "iB") != 0 && g_ascii_strcasecmp (end, "B") != 0 && *end)
        return FALSE;
    }
  if (v == 0 || v > (G_MAXUINT64 >> shift))
    return FALSE;
  *out = v << shift;
  return TRUE;
}

/* Loads IN according to the common options. */
static MsimTrace *
load_input (const char *path, const CommonOpts *o, GError **error)
{
  MsimTraceFormat fmt = MSIM_TRACE_FORMAT_AUTO;
  if (o->input_format && !msim_trace_format_parse (o->input_format, &fmt))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "--input-format '%s': expected npy, csv, json or mtr", o->input_format);
      return NULL;
    }
  if (o->memory_limit)
    {
      guint64 limit;
      if (!parse_size (o->memory_limit, &limit))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "--memory-limit '%s': expected a size such as 512M or 16G", o->memory_limit);
          return NULL;
        }
      msim_trace_set_memory_limit (limit);
    }
  if (o->experts < 0 || (guint)o->experts > MSIM_TRACE_MAX_EXPERTS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--experts %d: expected 1..%u", o->experts,
                   MSIM_TRACE_MAX_EXPERTS);
      return NULL;
    }
  g_autoptr (MsimTrace) t = msim_trace_load_format (path, fmt, error);
  if (t == NULL)
    return NULL;
  if (o->experts > 0)
    {
      g_autoptr (GError) local = NULL;
      if (!msim_trace_set_experts (t, (guint)o->experts, &local))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: --experts %d: %s", path,
                       o->experts, local->message);
          return NULL;
        }
    }
  return g_steal_pointer (&t);
}

/* Help for "moesim trace SUB" when the positional arguments are wrong. */
static int
usage_error (const char *message)
{
  g_printerr ("moesim: error: %s (try --help)\n", message);
  return 2;
}

/* ------------------------------------------------------------------ */

static int
trace_convert (int argc, char **argv)
{
  CommonOpts common = { 0 };
  g_autofree char *format = NULL;
  GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
      "Output format: npy, csv, json, mtr (default: from OUT's extension)", "F" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("IN OUT - convert a routing trace");
  g_option_context_set_description (
      ctx, "Formats: npy ([T, L, k] int32), csv (token,layer,rank,expert[,weight]...),\n"
           "json (layer-keyed, as the FastChat/HD-MoE traces), mtr (moesim native, mmap-able).\n"
           "OUT is written to a temporary file and renamed, so it is never left partial.\n"
           "npy and json keep expert ids only; csv and mtr also keep gate weights and\n"
           "sequence ids; only mtr stores the number of experts E.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_common (ctx, &common);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      common_clear (&common);
      return 2;
    }
  if (argc != 3)
    {
      common_clear (&common);
      return usage_error ("trace convert: expected IN and OUT");
    }
  const char *in = argv[1], *out = argv[2];
  MsimTraceFormat fmt = MSIM_TRACE_FORMAT_AUTO;
  if (format && !msim_trace_format_parse (format, &fmt))
    {
      common_clear (&common);
      return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                         "--format '%s': expected npy, csv, json or mtr", format));
    }
  if (fmt == MSIM_TRACE_FORMAT_AUTO)
    fmt = msim_trace_format_from_path (out);
  if (fmt == MSIM_TRACE_FORMAT_AUTO)
    {
      common_clear (&common);
      return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                         "%s: cannot tell the output format from the extension; "
                                         "use .npy, .csv, .json, .mtr or --format",
                                         out));
    }
  GError *error = NULL;
  g_autoptr (MsimTrace) t = load_input (in, &common, &error);
  common_clear (&common);
  if (t == NULL)
    return msim_cli_fail (error);

  /* Say what the output format cannot keep rather than dropping it
   * silently; a reload would otherwise differ without explanation. */
  MsimTraceFlags lost = t->flags & ~msim_trace_format_flags (fmt);
  if (lost & MSIM_TRACE_WEIGHTS)
    g_printerr ("moesim: warning: %s does not store gate weights; they are dropped\n",
                msim_trace_format_name (fmt));
  if (lost & MSIM_TRACE_SEQUENCES)
    g_printerr ("moesim: warning: %s does not store sequence ids and positions; they are "
                "dropped\n",
                msim_trace_format_name (fmt));
  if (fmt != MSIM_TRACE_FORMAT_NATIVE && msim_trace_max_expert (t) + 1 != (int)t->experts)
    g_printerr ("moesim: warning: %s does not store the number of experts (%u); reading %s "
                "back gives %d (largest id + 1) unless --experts is passed\n",
                msim_trace_format_name (fmt), t->experts, out, msim_trace_max_expert (t) + 1);

  if (!msim_trace_save (t, out, fmt, &error))
    return msim_cli_fail (error);
  printf ("%s: %" G_GSIZE_FORMAT " tokens x %u layers x k=%u, %u experts (%s)\n", out, t->tokens,
          t->layers, t->k, t->experts, msim_trace_format_name (fmt));
  return 0;
}

/* ------------------------------------------------------------------ */

typedef struct
{
  double entropy_bits;      /* of the load distribution over all ranks */
  double top1_entropy_bits; /* of the rank-0 distribution */
  double max_load_share;    /* busiest expert's share of all assignments */
  double imbalance;         /* max load / mean load */
  double top1_max_share;    /* most frequent top-1 expert's share of tokens */
  double top1_weight_mean;  /* mean rank-0 gate weight, NaN without weights */
} LayerStats;

static double
entropy_bits (const guint64 *counts, guint n, guint64 total)
{
  double h = 0;
  for (guint e = 0; e < n; e++)
    if (counts[e])
      {
        double p = (double)counts[e] / (double)total;
        h -= p * log2 (p);
      }
  return h + 0.0; /* no "-0" in the output */
}

static void
layer_stats (const MsimTrace *t, guint layer, const guint64 *load, const guint64 *top1,
             LayerStats *s)
{
  guint64 total = (guint64)t->tokens * t->k, max_load = 0, max_top1 = 0;
  for (guint e = 0; e < t->experts; e++)
    {
      max_load = MAX (max_load, load[e]);
      max_top1 = MAX (max_top1, top1[e]);
    }
  s->entropy_bits = entropy_bits (load, t->experts, total);
  s->top1_entropy_bits = entropy_bits (top1, t->experts, t->tokens);
  s->max_load_share = (double)max_load / (double)total;
  s->imbalance = (double)max_load / ((double)total / t->experts);
  s->top1_max_share = (double)max_top1 / (double)t->tokens;
  s->top1_weight_mean = NAN;
  if (t->weights)
    {
      double sum = 0;
      for (gsize tok = 0; tok < t->tokens; tok++)
        sum += msim_trace_weight_row (t, tok, layer)[0];
      s->top1_weight_mean = sum / (double)t->tokens;
    }
}

static char *
stats_json (const MsimTrace *t, const char *path)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "trace");
  json_builder_add_string_value (b, path);
  json_builder_set_member_name (b, "tokens");
  json_builder_add_int_value (b, (gint64)t->tokens);
  json_builder_set_member_name (b, "layers");
  json_builder_add_int_value (b, t->layers);
  json_builder_set_member_name (b, "k");
  json_builder_add_int_value (b, t->k);
  json_builder_set_member_name (b, "experts");
  json_builder_add_int_value (b, t->experts);
  json_builder_set_member_name (b, "weights");
  json_builder_add_boolean_value (b, t->weights != NULL);
  json_builder_set_member_name (b, "sequences");
  json_builder_add_boolean_value (b, t->sequences != NULL);
  json_builder_set_member_name (b, "per_layer");
  json_builder_begin_array (b);
  g_autofree guint64 *load = g_new (guint64, t->experts);
  g_autofree guint64 *top1 = g_new (guint64, t->experts);
  for (guint l = 0; l < t->layers; l++)
    {
      LayerStats s;
      msim_trace_count_layer (t, l, load, top1);
      layer_stats (t, l, load, top1, &s);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "layer");
      json_builder_add_int_value (b, l);
      json_builder_set_member_name (b, "load");
      json_builder_begin_array (b);
      for (guint e = 0; e < t->experts; e++)
        json_builder_add_int_value (b, (gint64)load[e]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "top1");
      json_builder_begin_array (b);
      for (guint e = 0; e < t->experts; e++)
        json_builder_add_int_value (b, (gint64)top1[e]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "entropy_bits");
      json_builder_add_double_value (b, s.entropy_bits);
      json_builder_set_member_name (b, "top1_entropy_bits");
      json_builder_add_double_value (b, s.top1_entropy_bits);
      json_builder_set_member_name (b, "max_load_share");
      json_builder_add_double_value (b, s.max_load_share);
      json_builder_set_member_name (b, "imbalance");
      json_builder_add_double_value (b, s.imbalance);
      json_builder_set_member_name (b, "top1_max_share");
      json_builder_add_double_value (b, s.top1_max_share);
      if (t->weights)
        {
          json_builder_set_member_name (b, "top1_weight_mean");
          json_builder_add_double_value (b, s.top1_weight_mean);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, root);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  return g_strconcat (text, "\n", NULL);
}

static char *
stats_text (const MsimTrace *t, const char *path)
{
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%s: %" G_GSIZE_FORMAT " tokens x %u layers x k=%u, %u experts%s%s\n",
                          path, t->tokens, t->layers, t->k, t->experts,
                          t->weights ? ", gate weights" : "", t->sequences ? ", sequences" : "");
  /* Per-expert columns only while they fit a terminal; --json has them all. */
  gboolean per_expert = t->experts <= 16;
  g_string_append_printf (s, "%5s %8s %8s %8s %9s %8s", "layer", "H_bits", "H1_bits", "max_shr",
                          "imbalance", "top1_shr");
  if (t->weights)
    g_string_append_printf (s, " %8s", "w1_mean");
  if (per_expert)
    {
      g_string_append (s, "  load per expert");
      if (t->k > 1)
        g_string_append (s, " (all ranks)");
    }
  g_string_append_c (s, '\n');
  g_autofree guint64 *load = g_new (guint64, t->experts);
  g_autofree guint64 *top1 = g_new (guint64, t->experts);
  double h_sum = 0;
  for (guint l = 0; l < t->layers; l++)
    {
      LayerStats st;
      msim_trace_count_layer (t, l, load, top1);
      layer_stats (t, l, load, top1, &st);
      h_sum += st.entropy_bits;
      g_string_append_printf (s, "%5u %8.4f %8.4f %8.4f %9.4f %8.4f", l, st.entropy_bits,
                              st.top1_entropy_bits, st.max_load_share, st.imbalance,
                              st.top1_max_share);
      if (t->weights)
        g_string_append_printf (s, " %8.4f", st.top1_weight_mean);
      if (per_expert)
        {
          g_string_append (s, " ");
          for (guint e = 0; e < t->experts; e++)
            g_string_append_printf (s, " %" G_GUINT64_FORMAT, load[e]);
        }
      g_string_append_c (s, '\n');
    }
  g_string_append_printf (s, "mean entropy %.4f bits of %.4f possible (log2 E)\n",
                          h_sum / t->layers, log2 ((double)t->experts));
  g_string_append (s, "H_bits: entropy of the load over all k ranks; H1_bits: of the top-1 "
                      "choices;\nmax_shr: busiest expert's share of assignments; imbalance: "
                      "max/mean load;\ntop1_shr: share of tokens whose top-1 is the layer's "
                      "most popular expert");
  if (t->weights)
    g_string_append (s, ";\nw1_mean: mean top-1 gate weight");
  g_string_append_c (s, '\n');
  return g_string_free (s, FALSE);
}

static int
trace_stats (int argc, char **argv)
{
  CommonOpts common = { 0 };
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON (all per-expert counts)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("IN - per-layer expert load, top-1 share and routing entropy");
  g_option_context_set_description (
      ctx, "Per layer: load of each expert over all k ranks and over rank 0 (top-1), the\n"
           "entropy of both distributions in bits (log2 E = perfectly balanced), the busiest\n"
           "expert's share, max/mean imbalance, and the share of tokens whose top-1 is the\n"
           "layer's most popular expert.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_common (ctx, &common);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      common_clear (&common);
      return 2;
    }
  if (argc != 2)
    {
      common_clear (&common);
      return usage_error ("trace stats: expected one trace file");
    }
  GError *error = NULL;
  g_autoptr (MsimTrace) t = load_input (argv[1], &common, &error);
  common_clear (&common);
  if (t == NULL)
    return msim_cli_fail (error);
  g_autofree char *text = json ? stats_json (t, argv[1]) : stats_text (t, argv[1]);
  fputs (text, stdout);
  return 0;
}

/* ------------------------------------------------------------------ */

static int
trace_head (int argc, char **argv)
{
  CommonOpts common = { 0 };
  gint64 n = 10;
  GOptionEntry entries[] = {
    { "lines", 'n', 0, G_OPTION_ARG_INT64, &n, "Number of tokens to print (default 10)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("IN - print the routing of the first tokens");
  g_option_context_set_description (
      ctx, "One line per token: its experts at every layer in rank order (e.g. 5,1 = top-1\n"
           "expert 5, top-2 expert 1), with gate weights in parentheses when the trace has\n"
           "them, and the sequence id and position when it has those.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_common (ctx, &common);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      common_clear (&common);
      return 2;
    }
  if (argc != 2)
    {
      common_clear (&common);
      return usage_error ("trace head: expected one trace file");
    }
  if (n < 0)
    {
      common_clear (&common);
      return msim_cli_fail (
          g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "-n %" G_GINT64_FORMAT ": expected >= 0", n));
    }
  GError *error = NULL;
  g_autoptr (MsimTrace) t = load_input (argv[1], &common, &error);
  common_clear (&common);
  if (t == NULL)
    return msim_cli_fail (error);
  gsize rows = (gsize)MIN ((guint64)n, (guint64)t->tokens);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "# %s: %" G_GSIZE_FORMAT " tokens x %u layers x k=%u, %u experts\n",
                          argv[1], t->tokens, t->layers, t->k, t->experts);
  g_string_append (s, "token");
  if (t->sequences)
    g_string_append (s, "\tseq\tpos");
  for (guint l = 0; l < t->layers; l++)
    g_string_append_printf (s, "\tL%u", l);
  g_string_append_c (s, '\n');
  for (gsize tok = 0; tok < rows; tok++)
    {
      g_string_append_printf (s, "%" G_GSIZE_FORMAT, tok);
      if (t->sequences)
        g_string_append_printf (s, "\t%u\t%u", msim_trace_sequence (t, tok),
                                msim_trace_position (t, tok));
      for (guint l = 0; l < t->layers; l++)
        {
          const MsimExpertId *row = msim_trace_row (t, tok, l);
          const float *w = msim_trace_weight_row (t, tok, l);
          g_string_append_c (s, '\t');
          for (guint r = 0; r < t->k; r++)
            {
              if (r)
                g_string_append_c (s, ',');
              g_string_append_printf (s, "%d", row[r]);
              if (w)
                {
                  char buf[G_ASCII_DTOSTR_BUF_SIZE];
                  g_string_append_printf (s, "(%s)",
                                          g_ascii_formatd (buf, sizeof buf, "%.4g", w[r]));
                }
            }
        }
      g_string_append_c (s, '\n');
    }
  fputs (s->str, stdout);
  g_string_free (s, TRUE);
  return 0;
}

/* ------------------------------------------------------------------ */

static const MsimCommand subcommands[] = {
  { "convert", "convert a trace between npy, csv, json and mtr", trace_convert },
  { "stats", "per-layer expert load, top-1 share and entropy", trace_stats },
  { "head", "print the routing of the first tokens", trace_head },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: moesim trace WHAT [OPTION...]\n\n");
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    fprintf (out, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
  fprintf (out, "\nTrace formats are detected from the file's content and extension:\n"
                "  .npy   NumPy [T, L] or [T, L, k] integer array\n"
                "  .csv   token,layer,rank,expert[,weight][,sequence,position]\n"
                "  .json  layer-keyed {\"0\": [[e1, e2], ...], ...}\n"
                "  .mtr   moesim native binary (checksummed, memory-mapped)\n"
                "\nRun 'moesim trace WHAT --help' for options.\n");
}

int
msim_cmd_trace (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  const char *what = argv[1];
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    if (strcmp (what, subcommands[i].name) == 0)
      {
        g_autofree char *prg = g_strdup_printf ("%s %s", argv[0], what);
        argv[1] = prg;
        return subcommands[i].main (argc - 1, argv + 1);
      }
  g_printerr ("moesim: error: trace: unknown subcommand '%s' (known: convert, stats, head)\n",
              what);
  return 2;
}
