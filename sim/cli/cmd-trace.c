/* moesim trace: inspect, convert and synthesise routing traces.
 *
 *   moesim trace convert IN OUT [--format F]   any format to any format
 *   moesim trace stats IN [--json]             per-layer expert load, top-1
 *                                              share, entropy
 *   moesim trace head IN [-n N]                the first tokens' routing
 *   moesim trace gen -g|-r NAME -m MODEL -t T -o OUT
 *                                              a synthetic trace from a
 *                                              generator or a router
 *   moesim trace route-stats [-r R1,R2] -m MODEL -t T
 *                                              routing metrics (fluctuation,
 *                                              entropy, losses, pre-gate)
 *   moesim trace fit IN [--domains D]          generator parameters of a trace
 *
 * Every subcommand loads the whole trace first and prints only after it
 * succeeded, so a bad input produces an error and exit status 2, never a
 * half-printed table or a partial output file. */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "generators.h"
#include "msim-error.h"
#include "msim-json.h"
#include "router.h"
#include "trace.h"
#include "workload.h"

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
  guint64 dropped;          /* cells without an expert (MSIM_TRACE_DROPS) */
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
  /* Totals from the counts rather than T k: a trace with dropped or unused
   * cells (MSIM_TRACE_DROPS) has fewer assignments than cells. */
  guint64 total = 0, total_top1 = 0, max_load = 0, max_top1 = 0;
  for (guint e = 0; e < t->experts; e++)
    {
      total += load[e];
      total_top1 += top1[e];
      max_load = MAX (max_load, load[e]);
      max_top1 = MAX (max_top1, top1[e]);
    }
  s->dropped = (guint64)t->tokens * t->k - total;
  guint64 safe = MAX (total, (guint64)1), safe1 = MAX (total_top1, (guint64)1);
  s->entropy_bits = entropy_bits (load, t->experts, safe);
  s->top1_entropy_bits = entropy_bits (top1, t->experts, safe1);
  s->max_load_share = (double)max_load / (double)safe;
  s->imbalance = (double)max_load / ((double)safe / t->experts);
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
      if (t->flags & MSIM_TRACE_DROPS)
        {
          json_builder_set_member_name (b, "dropped");
          json_builder_add_int_value (b, (gint64)s.dropped);
        }
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
  g_autofree char *text = msim_json_to_data (root, TRUE);
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
  gboolean drops = (t->flags & MSIM_TRACE_DROPS) != 0;
  if (drops)
    g_string_append_printf (s, " %8s", "dropped");
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
      if (drops)
        g_string_append_printf (s, " %8" G_GUINT64_FORMAT, st.dropped);
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
  if (drops)
    g_string_append (s, ";\ndropped: cells without an expert (capacity drops, unused "
                        "expert-choice slots)");
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
/* gen, route-stats, fit: synthetic traces                              */
/* ------------------------------------------------------------------ */

/* A model preset name, or a model file (a path with a '/' or ending in .ini). */
static MsimModelSpec *
load_model (const char *arg, GError **error)
{
  if (strchr (arg, '/') || g_str_has_suffix (arg, ".ini"))
    return msim_model_spec_load_file (arg, error);
  return msim_model_spec_load_preset (arg, error);
}

/* Options shared by gen and route-stats. */
typedef struct
{
  char *generator;
  char *router;
  char **sets;
  char *config;
  char *group;
  char *model;
  gint64 tokens;
  gint64 seed;
} SynthOpts;

static void
synth_clear (SynthOpts *o)
{
  g_free (o->generator);
  g_free (o->router);
  g_strfreev (o->sets);
  g_free (o->config);
  g_free (o->group);
  g_free (o->model);
}

static void
add_synth (GOptionContext *ctx, SynthOpts *o, gboolean with_generator)
{
  GOptionEntry entries[] = {
    { "router", 'r', 0, G_OPTION_ARG_STRING, &o->router,
      with_generator ? "Route synthetic hidden states with router NAME"
                     : "Router(s) to compare, comma-separated (default: all top-k routers)",
      "NAME" },
    { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &o->sets,
      "Set a generator/router parameter (repeatable; keys as in the [router] config group)",
      "KEY=VALUE" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config,
      "Read parameters (and [model], when --model is not given) from a config file", "FILE" },
    { "group", 0, 0, G_OPTION_ARG_STRING, &o->group, "Group of --config to read (default: router)",
      "G" },
    { "model", 'm', 0, G_OPTION_ARG_STRING, &o->model,
      "Model preset or model file: layers, experts, top-k, gating", "MODEL" },
    { "tokens", 't', 0, G_OPTION_ARG_INT64, &o->tokens, "Tokens to generate (required)", "T" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &o->seed, "Random seed (default 1)", "S" },
    { NULL },
  };
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (with_generator)
    {
      GOptionEntry gen[] = {
        { "generator", 'g', 0, G_OPTION_ARG_STRING, &o->generator,
          "Synthetic generator NAME (uniform, zipf, markov, segment, mixture)", "NAME" },
        { NULL },
      };
      g_option_context_add_main_entries (ctx, gen, NULL);
    }
}

/* The [GROUP] text for one generator/router: the config file included
 * (its keys apply unless overridden), then the name, then the --set pairs
 * (all of them, or with @only_applicable those @kind @name takes).
 * Errors in it read "command line:LINE: ...". */
static MsimIni *
synth_ini (const SynthOpts *o, const char *kind, const char *name, gboolean only_applicable,
           GError **error)
{
  const char *group = o->group ? o->group : "router";
  g_autoptr (GString) text = g_string_new (NULL);
  g_string_append_printf (text, "[%s]\n", group);
  if (o->config)
    {
      g_autofree char *abs = g_canonicalize_filename (o->config, NULL);
      if (!g_file_test (abs, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "--config %s: no such file", o->config);
          return NULL;
        }
      g_string_append_printf (text, "include = %s\n", abs);
    }
  if (name)
    g_string_append_printf (text, "%s = %s\n", kind, name);
  for (char **s = o->sets; s && *s; s++)
    {
      const char *eq = strchr (*s, '=');
      if (eq == NULL || eq == *s || strchr (*s, '\n'))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--set '%s': expected KEY=VALUE", *s);
          return NULL;
        }
      g_autofree char *key = g_strstrip (g_strndup (*s, (gsize)(eq - *s)));
      if (only_applicable && !msim_workload_key_applies (kind, name, key))
        continue;
      g_string_append_printf (text, "%s = %s\n", key, eq + 1);
    }
  g_autofree char *base = NULL;
  if (o->config)
    {
      /* Name the in-memory file beside the config so that relative paths
       * in the group (weights) resolve as they would in the config. */
      g_autofree char *dir = g_path_get_dirname (o->config);
      base = g_build_filename (dir, "command line", NULL);
    }
  return msim_ini_load_data (text->str, text->len, base ? base : "command line", error);
}

static MsimModelSpec *
synth_model (const SynthOpts *o, GError **error)
{
  if (o->model)
    return load_model (o->model, error);
  if (o->config)
    {
      g_autoptr (MsimIni) ini = msim_ini_load (o->config, error);
      if (ini == NULL)
        return NULL;
      if (msim_ini_has_group (ini, "model"))
        return msim_model_spec_new_from_ini (ini, "model", error);
    }
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
               "--model: name a model preset or file (or a --config with a [model] group)");
  return NULL;
}

static gboolean
synth_check (const SynthOpts *o, GError **error)
{
  if (o->tokens <= 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "--tokens: give the number of tokens to generate (at least 1)");
      return FALSE;
    }
  if (o->seed < 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "--seed %" G_GINT64_FORMAT ": expected >= 0", o->seed);
      return FALSE;
    }
  return TRUE;
}

/* Writes every output through a temporary file beside it and renames them
 * into place only when all were written: a failure leaves no output
 * created or changed. */
typedef struct
{
  const char *path;
  const MsimTrace *trace; /* or */
  MsimTraceFormat format;
  const char *text;
} Output;

/* The message of a save names the temporary file; users should see the
 * output they asked for. */
static void
rename_in_message (GError *e, const char *from, const char *to)
{
  char *at = strstr (e->message, from);
  if (at == NULL)
    return;
  g_autofree char *head = g_strndup (e->message, (gsize)(at - e->message));
  char *fixed = g_strconcat (head, to, at + strlen (from), NULL);
  g_free (e->message);
  e->message = fixed;
}

static gboolean
write_outputs (const Output *outs, guint n, GError **error)
{
  g_autoptr (GPtrArray) tmps = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = TRUE;
  for (guint i = 0; i < n && ok; i++)
    {
      g_autofree char *dir = g_path_get_dirname (outs[i].path);
      g_autofree char *base = g_path_get_basename (outs[i].path);
      g_autofree char *name = g_strdup_printf (".%s.%u.gen-tmp", base, (guint)getpid ());
      char *tmp = g_build_filename (dir, name, NULL);
      g_ptr_array_add (tmps, tmp);
      if (outs[i].trace)
        ok = msim_trace_save (outs[i].trace, tmp, outs[i].format, error);
      else
        {
          g_autoptr (GError) local = NULL;
          ok = g_file_set_contents (tmp, outs[i].text, -1, &local);
          if (!ok)
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot write %s: %s", outs[i].path,
                         local->message);
        }
      if (!ok && error && *error)
        rename_in_message (*error, tmp, outs[i].path);
    }
  for (guint i = 0; ok && i < n; i++)
    if (g_rename (g_ptr_array_index (tmps, i), outs[i].path) != 0)
      {
        int saved = errno;
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot rename into %s: %s", outs[i].path,
                     g_strerror (saved));
        ok = FALSE;
      }
  if (!ok)
    for (guint j = 0; j < tmps->len; j++)
      g_unlink (g_ptr_array_index (tmps, j));
  return ok;
}

static char *
report_json (const MsimWorkload *w)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  msim_router_report_to_json (w->report, b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = msim_json_to_data (root, TRUE);
  return g_strconcat (text, "\n", NULL);
}

static void
list_synthetic (void)
{
  guint n;
  printf ("Generators (--generator NAME, or generator = NAME in [router]):\n");
  const MsimGeneratorType *const *g = msim_generator_types (&n);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *keys = g_strjoinv (", ", (char **)g[i]->keys);
      printf ("  %-14s %s\n  %-14s keys: sequence_len%s%s\n", g[i]->name, g[i]->summary, "",
              *keys ? ", " : "", keys);
    }
  printf ("\nRouters (--router NAME, or router = NAME in [router]); every router also takes\n"
          "sequence_len, batch_tokens, gating, gate_scale, jitter, aux_loss_coef, z_loss_coef,\n"
          "fluctuation_eps, hidden_dim, topics, topic_scale, token_scale, token_corr, drift:\n");
  const MsimRouterType *const *r = msim_router_types (&n);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *keys = g_strjoinv (", ", (char **)r[i]->keys);
      printf ("  %-14s %s\n  %-14s keys: %s\n", r[i]->name, r[i]->summary, "", keys);
    }
  printf ("\nEvery key is documented in workloads/README.md.\n");
}

static int
trace_gen (int argc, char **argv)
{
  SynthOpts o = { 0 };
  o.seed = 1;
  g_autofree char *out = NULL, *format = NULL, *report = NULL, *predicted = NULL;
  gboolean list = FALSE;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output trace (.mtr, .csv, .npy, .json)",
      "OUT" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
      "Output format: npy, csv, json, mtr (default: from OUT's extension)", "F" },
    { "report", 0, 0, G_OPTION_ARG_FILENAME, &report, "Routers: write the metrics as JSON",
      "FILE" },
    { "predicted", 0, 0, G_OPTION_ARG_FILENAME, &predicted,
      "Pre-gated router: write the pre-gate's predictions as a trace", "FILE" },
    { "list", 0, 0, G_OPTION_ARG_NONE, &list, "List generators, routers and their keys", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- generate a synthetic routing trace");
  g_option_context_set_description (
      ctx, "Either a generator draws expert ids directly (popularity, affinity, segment\n"
           "reuse, domains), or a router routes synthetic hidden states (Gaussian topics\n"
           "with drift over layers) through its gate.  The model gives the shape: MoE\n"
           "layers, experts, top-k, gating.  Parameters are the keys of the [router] config\n"
           "group, given with --set KEY=VALUE or read from --config; 'moesim trace gen\n"
           "--list' shows them.  Same seed and parameters give the same trace.\n"
           "Examples:\n"
           "  moesim trace gen -g zipf -s zipf_s=1.2 -m mixtral-8x7b -t 100000 -o z.mtr\n"
           "  moesim trace gen -r pregated -m gpt-moe-16e -t 8192 -o r.mtr --predicted p.mtr\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_synth (ctx, &o, TRUE);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      synth_clear (&o);
      return 2;
    }
  if (list)
    {
      synth_clear (&o);
      list_synthetic ();
      return 0;
    }
  GError *error = NULL;
  if (argc != 1)
    {
      synth_clear (&o);
      return usage_error ("trace gen: unexpected argument (the output is -o OUT)");
    }
  if (out == NULL)
    {
      synth_clear (&o);
      return usage_error ("trace gen: name the output with -o OUT");
    }
  if ((o.generator != NULL) + (o.router != NULL) > 1)
    {
      synth_clear (&o);
      return usage_error ("trace gen: give --generator or --router, not both");
    }
  if (o.generator == NULL && o.router == NULL && o.config == NULL)
    {
      synth_clear (&o);
      return usage_error ("trace gen: give --generator NAME, --router NAME or --config FILE");
    }
  MsimTraceFormat fmt = MSIM_TRACE_FORMAT_AUTO;
  if (format && !msim_trace_format_parse (format, &fmt))
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                         "--format '%s': expected npy, csv, json or mtr", format);
  if (error == NULL && fmt == MSIM_TRACE_FORMAT_AUTO
      && (fmt = msim_trace_format_from_path (out)) == MSIM_TRACE_FORMAT_AUTO)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                         "%s: cannot tell the output format from the extension; use .npy, "
                         ".csv, .json, .mtr or --format",
                         out);
  MsimTraceFormat pred_fmt = MSIM_TRACE_FORMAT_NATIVE;
  if (error == NULL && predicted
      && (pred_fmt = msim_trace_format_from_path (predicted)) == MSIM_TRACE_FORMAT_AUTO)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                         "--predicted %s: cannot tell the format from the extension", predicted);
  if (error == NULL)
    synth_check (&o, &error);
  g_autoptr (MsimModelSpec) model = error ? NULL : synth_model (&o, &error);
  const char *kind = o.generator ? "generator" : o.router ? "router" : NULL;
  const char *name = o.generator ? o.generator : o.router;
  g_autoptr (MsimIni) ini
      = error ? NULL : synth_ini (&o, kind ? kind : "router", name, FALSE, &error);
  g_autoptr (MsimWorkload) w = NULL;
  if (error == NULL)
    w = msim_workload_new_from_ini (ini, o.group ? o.group : "router", model, (guint64)o.tokens,
                                    (guint64)o.seed, &error);
  synth_clear (&o);
  if (error == NULL && report && w->report == NULL)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                         "--report: generator %s has no routing metrics (routers do)", w->name);
  if (error == NULL && predicted && w->predicted == NULL)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                         "--predicted: %s %s makes no predictions (the pregated router does)",
                         w->kind, w->name);
  if (error)
    return msim_cli_fail (error);

  g_autofree char *json = report ? report_json (w) : NULL;
  Output outs[3];
  guint n = 0;
  outs[n++] = (Output){ out, w->trace, fmt, NULL };
  if (predicted)
    outs[n++] = (Output){ predicted, w->predicted, pred_fmt, NULL };
  if (report)
    outs[n++] = (Output){ report, NULL, MSIM_TRACE_FORMAT_AUTO, json };
  MsimTraceFlags lost = w->trace->flags & ~msim_trace_format_flags (fmt);
  if (lost & (MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES))
    g_printerr ("moesim: warning: %s does not store %s; use .mtr or .csv to keep them\n",
                msim_trace_format_name (fmt),
                (lost & MSIM_TRACE_WEIGHTS) ? "gate weights and sequence ids" : "sequence ids");
  if (!write_outputs (outs, n, &error))
    return msim_cli_fail (error);
  const MsimTrace *t = w->trace;
  printf ("%s: %" G_GSIZE_FORMAT
          " tokens x %u layers x k=%u, %u experts (%s %s, seed %" G_GUINT64_FORMAT ", %s)\n",
          out, t->tokens, t->layers, t->k, t->experts, w->kind, w->name, w->seed,
          msim_trace_format_name (fmt));
  if (w->report)
    {
      const MsimRouterStats *s = &w->report->total;
      double drop = s->assignments + s->dropped
                        ? (double)s->dropped / (double)(s->assignments + s->dropped)
                        : 0.0;
      printf ("routing: dropped %.4f, balance %.4f, z %.4f, entropy %.4f bits", drop, s->balance,
              s->z, s->routing_entropy_bits);
      if (isfinite (s->fluctuation))
        printf (", fluctuation %.4f", s->fluctuation);
      if (isfinite (s->pregate_top1))
        printf (", pre-gate top-1 %.4f, recall %.4f", s->pregate_top1, s->pregate_recall);
      printf ("\n");
    }
  return 0;
}

/* The routers route-stats compares when none is named: those that write a
 * top-k trace (expert choice has no fluctuation-comparable top-k). */
static const char *const default_compare[]
    = { "topk", "similarity", "attention", "recurrent", "pregated", NULL };

static int
trace_route_stats (int argc, char **argv)
{
  SynthOpts o = { 0 };
  o.seed = 1;
  gboolean json = FALSE;
  double eps = 0.05;
  GOptionEntry entries[] = {
    { "fluctuation", 'e', 0, G_OPTION_ARG_DOUBLE, &eps,
      "Perturbation for routing fluctuation, relative to the state's RMS (default 0.05; "
      "0 = off)",
      "EPS" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON (per-layer metrics of every router)",
      NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- routing metrics of routers on synthetic hidden states");
  g_option_context_set_description (
      ctx, "Runs each router on the same synthetic hidden states (same seed) and reports\n"
           "capacity drops, the load-balancing loss (balance = E sum f_e P_e), z-loss,\n"
           "routing entropy, routing fluctuation (share of tokens whose top-1 expert\n"
           "changes when the states are perturbed by EPS x RMS Gaussian noise) and, for the\n"
           "pregated router, next-layer prediction accuracy.  No trace is written.\n"
           "--set keys that a router does not take are passed only to those that do.\n"
           "Example:\n"
           "  moesim trace route-stats -m mixtral-8x7b -t 4096 -r topk,similarity,attention\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_synth (ctx, &o, FALSE);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      synth_clear (&o);
      return 2;
    }
  if (argc != 1)
    {
      synth_clear (&o);
      return usage_error ("trace route-stats: unexpected argument");
    }
  GError *error = NULL;
  if (!(eps >= 0 && eps <= 1000))
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "--fluctuation %g: expected 0..1000", eps);
  g_auto (GStrv) names = g_strsplit (o.router ? o.router : "", ",", -1);
  if (o.router == NULL)
    {
      g_strfreev (names);
      names = g_strdupv ((char **)default_compare);
    }
  for (char **nm = names; error == NULL && *nm; nm++)
    {
      g_strstrip (*nm);
      if (msim_router_lookup (*nm) == NULL)
        error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "--router: unknown router '%s'", *nm);
    }
  /* Every --set key must apply to at least one router compared. */
  for (char **s = o.sets; error == NULL && s && *s; s++)
    {
      const char *eq = strchr (*s, '=');
      if (eq == NULL)
        continue; /* synth_ini reports it */
      g_autofree char *key = g_strstrip (g_strndup (*s, (gsize)(eq - *s)));
      gboolean any = FALSE;
      for (char **nm = names; *nm && !any; nm++)
        any = msim_workload_key_applies ("router", *nm, key);
      if (!any && g_strv_contains (msim_workload_keys (), key))
        error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                             "--set %s: no router compared takes this key", key);
    }
  if (error == NULL)
    synth_check (&o, &error);
  g_autoptr (MsimModelSpec) model = error ? NULL : synth_model (&o, &error);
  g_autoptr (GPtrArray) reports
      = g_ptr_array_new_with_free_func ((GDestroyNotify)msim_workload_free);
  gboolean multi = g_strv_length (names) > 1;
  for (char **nm = names; error == NULL && *nm; nm++)
    {
      /* The perturbation size is a --fluctuation option here; a --set
       * fluctuation_eps still wins. */
      g_autofree char *fl = g_strdup_printf ("fluctuation_eps=%.17g", eps);
      SynthOpts oo = o;
      g_autoptr (GPtrArray) sets = g_ptr_array_new ();
      g_ptr_array_add (sets, fl);
      for (char **s = o.sets; s && *s; s++)
        g_ptr_array_add (sets, *s);
      g_ptr_array_add (sets, NULL);
      gboolean has_fl = FALSE;
      for (char **s = o.sets; s && *s; s++)
        has_fl |= g_str_has_prefix (*s, "fluctuation_eps");
      oo.sets = has_fl ? o.sets : (char **)sets->pdata;
      g_autoptr (MsimIni) ini = synth_ini (&oo, "router", *nm, multi, &error);
      if (ini == NULL)
        break;
      MsimWorkload *w = msim_workload_new_from_ini (ini, o.group ? o.group : "router", model,
                                                    (guint64)o.tokens, (guint64)o.seed, &error);
      if (w == NULL)
        break;
      g_ptr_array_add (reports, w);
    }
  synth_clear (&o);
  if (error)
    return msim_cli_fail (error);

  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_array (b);
      for (guint i = 0; i < reports->len; i++)
        msim_router_report_to_json (((MsimWorkload *)g_ptr_array_index (reports, i))->report, b);
      json_builder_end_array (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *text = msim_json_to_data (root, TRUE);
      printf ("%s\n", text);
      return 0;
    }
  if (reports->len == 1)
    {
      g_autofree char *text
          = msim_router_report_to_text (((MsimWorkload *)g_ptr_array_index (reports, 0))->report);
      fputs (text, stdout);
      return 0;
    }
  GString *s = g_string_new (NULL);
  const MsimWorkload *w0 = g_ptr_array_index (reports, 0);
  g_string_append_printf (
      s, "%s x %u layers, %u experts, top-%u, seed %" G_GUINT64_FORMAT ", fluctuation eps %g\n",
      model->name, w0->trace->layers, w0->trace->experts, (guint)model->top_k, w0->seed, eps);
  g_string_append_printf (s, "%-14s %8s %8s %8s %8s %8s %8s %8s\n", "router", "fluct", "H_route",
                          "H_load", "balance", "z", "drop", "pre_top1");
  for (guint i = 0; i < reports->len; i++)
    {
      const MsimWorkload *w = g_ptr_array_index (reports, i);
      const MsimRouterStats *t = &w->report->total;
      guint64 tot = t->assignments + t->dropped;
      g_string_append_printf (s, "%-14s", w->name);
      double cells[] = { t->fluctuation,
                         t->routing_entropy_bits,
                         t->load_entropy_bits,
                         t->balance,
                         t->z,
                         tot ? (double)t->dropped / (double)tot : 0.0,
                         t->pregate_top1 };
      for (guint c = 0; c < G_N_ELEMENTS (cells); c++)
        if (isfinite (cells[c]))
          g_string_append_printf (s, " %8.4f", cells[c]);
        else
          g_string_append_printf (s, " %8s", "-");
      g_string_append_c (s, '\n');
    }
  g_string_append (s, "fluct: share of (token, layer) top-1 choices that change under the "
                      "perturbation;\nH_route: mean per-token routing entropy (bits); H_load: "
                      "entropy of the expert\nload (bits); balance: E sum f_e P_e (1 = "
                      "balanced); z: mean logsumexp^2;\ndrop: dropped share (capacity); "
                      "pre_top1: pre-gate top-1 accuracy\n");
  fputs (s->str, stdout);
  g_string_free (s, TRUE);
  return 0;
}

static int
trace_fit (int argc, char **argv)
{
  CommonOpts common = { 0 };
  gboolean json = FALSE;
  gint domains = 0;
  gint64 seed = 1;
  GOptionEntry entries[] = {
    { "domains", 'd', 0, G_OPTION_ARG_INT, &domains,
      "Also fit a mixture of D domains over the sequences (EM)", "D" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the EM starts (default 1)", "S" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("IN - estimate the synthetic-generator parameters of a trace");
  g_option_context_set_description (
      ctx, "Fits the parameters of moesim's synthetic generators to any trace, from rank-0\n"
           "choices: the Zipf exponent of expert popularity (pooled over layers), the\n"
           "inter-layer affinity (share of tokens following their expert's most frequent\n"
           "successor, beyond what popularity explains), the segment reuse probability\n"
           "(consecutive tokens of a sequence with identical experts, beyond chance), and\n"
           "with --domains the weights of a mixture of domains.\n");
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
      return usage_error ("trace fit: expected one trace file");
    }
  GError *error = NULL;
  if (domains < 0 || domains > 1024 || seed < 0)
    {
      common_clear (&common);
      return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                         "--domains %d / --seed: expected 1..1024 and >= 0",
                                         domains));
    }
  g_autoptr (MsimTrace) t = load_input (argv[1], &common, &error);
  common_clear (&common);
  if (t == NULL)
    return msim_cli_fail (error);
  MsimGenFit fit;
  msim_gen_fit (t, &fit);
  g_autofree double *weights = domains ? g_new (double, domains) : NULL;
  if (domains
      && !msim_gen_fit_domains (t, (guint)domains, 5, (guint64)seed, weights, NULL, NULL, &error))
    return msim_cli_fail (error);
  GString *s = g_string_new (NULL);
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "trace");
      json_builder_add_string_value (b, argv[1]);
      const char *names[] = { "zipf_s", "follow_rate", "affinity", "reuse_rate", "reuse" };
      double vals[] = { fit.zipf_s, fit.follow_rate, fit.affinity, fit.reuse_rate, fit.reuse };
      for (guint i = 0; i < G_N_ELEMENTS (vals); i++)
        {
          json_builder_set_member_name (b, names[i]);
          if (isfinite (vals[i]))
            json_builder_add_double_value (b, vals[i]);
          else
            json_builder_add_null_value (b);
        }
      if (domains)
        {
          json_builder_set_member_name (b, "domain_weights");
          json_builder_begin_array (b);
          for (gint d = 0; d < domains; d++)
            json_builder_add_double_value (b, weights[d]);
          json_builder_end_array (b);
        }
      json_builder_end_object (b);
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      g_autofree char *text = msim_json_to_data (root, TRUE);
      g_string_append_printf (s, "%s\n", text);
    }
  else
    {
      g_string_append_printf (s, "%s: %" G_GSIZE_FORMAT " tokens x %u layers x k=%u, %u experts\n",
                              argv[1], t->tokens, t->layers, t->k, t->experts);
      g_string_append_printf (
          s, "zipf_s      %8.4f  popularity exponent (rank-0, pooled over layers)\n", fit.zipf_s);
      g_string_append_printf (s,
                              "affinity    %8.4f  (follow rate %.4f: next expert is the modal "
                              "successor)\n",
                              fit.affinity, fit.follow_rate);
      g_string_append_printf (s,
                              "reuse       %8.4f  (reuse rate %.4f: consecutive tokens with the "
                              "same experts)\n",
                              fit.reuse, fit.reuse_rate);
      if (domains)
        {
          g_string_append (s, "domains    ");
          for (gint d = 0; d < domains; d++)
            g_string_append_printf (s, " %.4f", weights[d]);
          g_string_append (s, "  mixture weights (EM over sequences)\n");
        }
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
  { "gen", "generate a synthetic trace (generator or router)", trace_gen },
  { "route-stats", "routing metrics of routers: fluctuation, entropy, losses", trace_route_stats },
  { "fit", "estimate generator parameters (Zipf, affinity, reuse) of a trace", trace_fit },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: moesim trace WHAT [OPTION...]\n\n");
  for (gsize i = 0; i < G_N_ELEMENTS (subcommands); i++)
    fprintf (out, "  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
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
  g_printerr ("moesim: error: trace: unknown subcommand '%s' (known: convert, stats, head, gen, "
              "route-stats, fit)\n",
              what);
  return 2;
}
