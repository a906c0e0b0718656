/* moesim place: expert placement.
 *
 *   moesim place --trace T --gpus G [--nodes N | --topology F] [--policy P]
 *                [--option KEY=VALUE]... [--seed S] -o placement.csv
 *       fits a placement on one or more traces and writes it;
 *   moesim place eval --trace T --placement P.csv [--gpus G] [--nodes N]
 *       cross-GPU and cross-node fractions and load imbalance of a placement
 *       (moesim or ExFlow CSV) on a trace;
 *   moesim place list
 *       the built-in policies and their options.
 *
 * Also `moesim bench place` (msim_bench_place): the speed of the default
 * policy on Mixtral-8x7B and on a synthetic 48-layer, 64-expert trace, with
 * GLPK's time and gap beside it.
 *
 * Everything is computed before anything is written; the placement file is
 * written atomically, so a failure leaves no partial output (exit status 2
 * for bad input, 1 for a failed run). */
#include <glib/gstdio.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis-util.h"
#include "cli.h"
#include "msim-error.h"
#include "placement.h"
#include "synthetic-trace.h"
#include "topology.h"

/* Declared here until cli.h lists them with the other subcommands. */

/* ---- shared option handling ---- */

typedef struct
{
  char **traces;
  gint gpus;
  gint nodes;
  char *topology;
  gint experts;
  gboolean json;
} CommonOpts;

static void
common_clear (CommonOpts *o)
{
  g_strfreev (o->traces);
  g_free (o->topology);
}

static int
usage_error (const char *message)
{
  g_printerr ("moesim: error: %s (try --help)\n", message);
  return 2;
}

/* The cluster shape from --topology, or --gpus/--nodes (@gpus_default when
 * --gpus is absent, 0 = required). */
static MsimClusterShape *
make_shape (const CommonOpts *o, guint gpus_default, GError **error)
{
  if (o->topology && o->nodes > 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "--nodes and --topology both give the GPU-to-node map; use one");
      return NULL;
    }
  if (o->gpus < 0 || o->nodes < 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--gpus and --nodes must be positive");
      return NULL;
    }
  if (o->topology)
    {
      g_autoptr (MsimTopology) topo = msim_topology_load (o->topology, error);
      if (topo == NULL)
        return NULL;
      MsimClusterShape *s = msim_cluster_shape_new_from_topology (topo, error);
      if (s && o->gpus > 0 && (guint)o->gpus != s->gpus)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--gpus %d but topology %s has %u GPUs",
                       o->gpus, o->topology, s->gpus);
          msim_cluster_shape_free (s);
          return NULL;
        }
      return s;
    }
  guint gpus = o->gpus > 0 ? (guint)o->gpus : gpus_default;
  if (gpus == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--gpus (or --topology) is required");
      return NULL;
    }
  return msim_cluster_shape_new (gpus, o->nodes > 0 ? (guint)o->nodes : 1, error);
}

static void
add_common (GOptionContext *ctx, CommonOpts *o)
{
  GOptionEntry entries[] = {
    { "trace", 't', 0, G_OPTION_ARG_FILENAME_ARRAY, &o->traces,
      "Routing trace (npy, csv, json, mtr); repeat to use several (concatenated)", "T" },
    { "gpus", 'g', 0, G_OPTION_ARG_INT, &o->gpus, "GPUs", "G" },
    { "nodes", 'n', 0, G_OPTION_ARG_INT, &o->nodes,
      "Nodes of equal size, GPUs numbered node by node (default 1)", "N" },
    { "topology", 0, 0, G_OPTION_ARG_FILENAME, &o->topology,
      "Topology file: its GPUs and hosts give the GPU-to-node map", "FILE" },
    { "experts", 0, 0, G_OPTION_ARG_INT, &o->experts,
      "Experts per layer E, for trace formats that do not store it (default: largest id + 1)",
      "E" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o->json, "Print a JSON report instead of text", NULL },
    { NULL },
  };
  g_option_context_add_main_entries (ctx, entries, NULL);
}

static MsimTrace *
load_traces (const CommonOpts *o, GError **error)
{
  if (o->traces == NULL || o->traces[0] == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--trace is required");
      return NULL;
    }
  if (o->experts < 0 || o->experts > (gint)MSIM_TRACE_MAX_EXPERTS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--experts %d: expected 1..%u", o->experts,
                   MSIM_TRACE_MAX_EXPERTS);
      return NULL;
    }
  return msim_trace_load_files ((const char *const *)o->traces, (guint)o->experts, error);
}

static void
json_eval (JsonBuilder *b, const char *name, const MsimPlacementEval *e)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "boundaries");
  json_builder_add_int_value (b, (gint64)e->boundaries);
  json_builder_set_member_name (b, "cross_gpu");
  json_builder_add_double_value (b, e->cross_gpu);
  json_builder_set_member_name (b, "cross_node");
  json_builder_add_double_value (b, e->cross_node);
  json_builder_set_member_name (b, "cross_gpu_local");
  json_builder_add_double_value (b, e->cross_gpu_local);
  json_builder_set_member_name (b, "cross_node_local");
  json_builder_add_double_value (b, e->cross_node_local);
  json_builder_set_member_name (b, "mean_cost");
  json_builder_add_double_value (b, e->mean_cost);
  json_builder_set_member_name (b, "load_imbalance");
  json_builder_add_double_value (b, e->load_imbalance);
  json_builder_set_member_name (b, "load_imbalance_max");
  json_builder_add_double_value (b, e->load_imbalance_max);
  json_builder_set_member_name (b, "load_imbalance_local");
  json_builder_add_double_value (b, e->load_imbalance_local);
  json_builder_set_member_name (b, "load_imbalance_local_max");
  json_builder_add_double_value (b, e->load_imbalance_local_max);
  json_builder_set_member_name (b, "worst_layer");
  json_builder_add_int_value (b, e->worst_layer);
  json_builder_end_object (b);
}

static char *
builder_to_text (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static void
print_eval (const char *label, const MsimPlacementEval *e, const MsimPlacementEval *contig,
            guint nodes, gboolean replicas)
{
  printf ("%s\n", label);
  printf ("  cross-GPU fraction   %.4f", e->cross_gpu);
  if (contig)
    printf ("   (contiguous %.4f)", contig->cross_gpu);
  printf ("\n");
  if (nodes > 1)
    {
      printf ("  cross-node fraction  %.4f", e->cross_node);
      if (contig)
        printf ("   (contiguous %.4f)", contig->cross_node);
      printf ("\n");
    }
  if (replicas)
    printf ("  with locality-first replica choice: cross-GPU %.4f, cross-node %.4f, load "
            "imbalance %.3f (worst %.3f)\n",
            e->cross_gpu_local, e->cross_node_local, e->load_imbalance_local,
            e->load_imbalance_local_max);
  printf ("  load imbalance       %.3f mean max/mean GPU load over layers, worst %.3f (layer "
          "%u)\n",
          e->load_imbalance, e->load_imbalance_max, e->worst_layer);
}

/* ---- place ---- */

static int
place_fit (int argc, char **argv)
{
  CommonOpts common = { 0 };
  g_autofree char *policy_name = NULL;
  g_auto (GStrv) options = NULL;
  g_autofree char *output = NULL;
  g_autofree char *format = NULL;
  gint64 seed = 1;
  gint node_cost = 0;
  GOptionEntry entries[] = {
    { "policy", 'p', 0, G_OPTION_ARG_STRING, &policy_name,
      "Placement policy or plugin:PATH (default affinity-local-search; see 'moesim place list')",
      "P" },
    { "option", 'O', 0, G_OPTION_ARG_STRING_ARRAY, &options, "Policy option KEY=VALUE (repeatable)",
      "KEY=VALUE" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Seed of every random choice (default 1)", "S" },
    { "node-cost", 0, 0, G_OPTION_ARG_INT, &node_cost,
      "Cost of a cross-node boundary relative to a cross-GPU one (default 2, ExFlow)", "W" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Placement CSV to write (required)",
      "FILE" },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
      "Output CSV format: moesim (layer,expert,gpu[,replica]) or exflow (Expert,Node)", "F" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- fit an expert placement on routing traces");
  g_option_context_set_description (
      ctx, "The placement minimises, over tokens and layer boundaries, how often a token's\n"
           "top-1 expert moves to another GPU (cost 1) or node (cost --node-cost).\n"
           "Example:\n"
           "  moesim place --trace coding.json --gpus 8 -o placement.csv\n"
           "  moesim place --trace a.json --trace b.json --gpus 8 --nodes 2 \\\n"
           "      --policy exflow-ilp --option time-limit=30 -o placement.csv\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_common (ctx, &common);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      common_clear (&common);
      return 2;
    }
  if (argc != 1)
    {
      common_clear (&common);
      return usage_error ("place: unexpected argument; traces go with --trace");
    }
  GError *error = NULL;
  MsimPlacementCsvFormat fmt = MSIM_PLACEMENT_CSV_MOESIM;
  if (output == NULL)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "place: -o/--output is required");
  else if (format && strcmp (format, "exflow") == 0)
    fmt = MSIM_PLACEMENT_CSV_EXFLOW;
  else if (format && strcmp (format, "moesim") != 0)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "--format '%s': expected moesim or exflow",
                         format);
  else if (seed < 0)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "--seed must be >= 0");
  else if (node_cost < 0 || node_cost > 1000000)
    error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "--node-cost must be in 1..1000000");
  if (error)
    {
      common_clear (&common);
      return msim_cli_fail (error);
    }

  g_autoptr (MsimPlacementPlugin) plugin = NULL;
  const char *pname = policy_name ? policy_name : MSIM_PLACEMENT_DEFAULT_POLICY;
  const MsimPlacementPolicy *policy = msim_placement_policy_resolve (pname, &plugin, &error);
  g_autoptr (MsimTrace) trace = policy ? load_traces (&common, &error) : NULL;
  g_autoptr (MsimClusterShape) shape = trace ? make_shape (&common, 0, &error) : NULL;
  g_autoptr (MsimPlacementProblem) pb
      = shape ? msim_placement_problem_new (trace, shape, (guint64)seed, &error) : NULL;
  if (pb == NULL)
    {
      common_clear (&common);
      return msim_cli_fail (error);
    }
  if (node_cost > 0)
    {
      if ((guint)node_cost < pb->gpu_cost)
        {
          common_clear (&common);
          return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                             "--node-cost %d is below the cross-GPU cost 1",
                                             node_cost));
        }
      pb->node_cost = shape->nodes > 1 ? (guint32)node_cost : pb->gpu_cost;
    }
  g_autoptr (GArray) stats = NULL;
  g_autoptr (MsimPlacement) p
      = msim_placement_run (policy, (const char *const *)options, pb, &stats, &error);
  if (p == NULL)
    {
      common_clear (&common);
      return msim_cli_fail (error);
    }
  g_autoptr (MsimPlacement) contig
      = msim_placement_new_contiguous (trace->layers, trace->experts, shape->gpus);
  MsimPlacementEval ev, ec;
  if (!msim_placement_evaluate (p, trace, shape, &ev, &error)
      || !msim_placement_evaluate (contig, trace, shape, &ec, &error)
      || !msim_placement_save (p, output, fmt, &error))
    {
      common_clear (&common);
      return msim_cli_fail (error);
    }

  guint ntr = g_strv_length (common.traces);
  if (common.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "command");
      json_builder_add_string_value (b, "place");
      json_builder_set_member_name (b, "policy");
      json_builder_add_string_value (b, pname);
      json_builder_set_member_name (b, "seed");
      json_builder_add_int_value (b, seed);
      json_builder_set_member_name (b, "traces");
      json_builder_begin_array (b);
      for (guint i = 0; i < ntr; i++)
        json_builder_add_string_value (b, common.traces[i]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "tokens");
      json_builder_add_int_value (b, (gint64)trace->tokens);
      json_builder_set_member_name (b, "layers");
      json_builder_add_int_value (b, trace->layers);
      json_builder_set_member_name (b, "experts");
      json_builder_add_int_value (b, trace->experts);
      json_builder_set_member_name (b, "top_k");
      json_builder_add_int_value (b, trace->k);
      json_builder_set_member_name (b, "gpus");
      json_builder_add_int_value (b, shape->gpus);
      json_builder_set_member_name (b, "nodes");
      json_builder_add_int_value (b, shape->nodes);
      json_builder_set_member_name (b, "node_cost");
      json_builder_add_int_value (b, pb->node_cost);
      json_builder_set_member_name (b, "output");
      json_builder_add_string_value (b, output);
      json_eval (b, "fit", &ev);
      json_eval (b, "contiguous", &ec);
      json_builder_set_member_name (b, "stats");
      json_builder_begin_object (b);
      for (guint i = 0; i < stats->len; i++)
        {
          const MsimPlacementStat *s = &g_array_index (stats, MsimPlacementStat, i);
          json_builder_set_member_name (b, s->name);
          if (isfinite (s->value))
            json_builder_add_double_value (b, s->value);
          else
            json_builder_add_null_value (b);
        }
      json_builder_end_object (b);
      json_builder_end_object (b);
      g_autofree char *text = builder_to_text (b);
      printf ("%s\n", text);
    }
  else
    {
      printf ("moesim place: policy %s, seed %" G_GINT64_FORMAT
              ", %u trace file%s (%" G_GSIZE_FORMAT
              " tokens, %u layers x %u experts, top-%u), %u GPUs in %u node%s\n",
              pname, seed, ntr, ntr == 1 ? "" : "s", trace->tokens, trace->layers, trace->experts,
              trace->k, shape->gpus, shape->nodes, shape->nodes == 1 ? "" : "s");
      print_eval ("on the fitted trace(s):", &ev, &ec, shape->nodes,
                  msim_placement_n_extra (p) > 0);
      printf ("policy report:\n");
      for (guint i = 0; i < stats->len; i++)
        {
          const MsimPlacementStat *s = &g_array_index (stats, MsimPlacementStat, i);
          printf ("  %-28s %.6g\n", s->name, s->value);
        }
      printf ("wrote %s\n", output);
    }
  common_clear (&common);
  return 0;
}

/* ---- place eval ---- */

static int
place_eval (int argc, char **argv)
{
  CommonOpts common = { 0 };
  g_autofree char *placement_path = NULL;
  GOptionEntry entries[] = {
    { "placement", 'P', 0, G_OPTION_ARG_FILENAME, &placement_path,
      "Placement CSV: layer,expert,gpu[,replica] or ExFlow's Expert,Node (required)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- evaluate a placement on routing traces");
  g_option_context_set_description (
      ctx, "Prints the cross-GPU and cross-node fractions of top-1 layer boundaries and the\n"
           "per-layer GPU load imbalance (max/mean), next to the contiguous placement.\n"
           "--gpus defaults to the largest GPU id in the file + 1.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  add_common (ctx, &common);
  if (!msim_cli_parse (ctx, &argc, &argv))
    {
      common_clear (&common);
      return 2;
    }
  if (argc != 1)
    {
      common_clear (&common);
      return usage_error ("place eval: unexpected argument");
    }
  GError *error = NULL;
  if (placement_path == NULL)
    {
      common_clear (&common);
      return msim_cli_fail (
          g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "place eval: --placement is required"));
    }
  g_autoptr (MsimTrace) trace = load_traces (&common, &error);
  guint gpus_hint = common.gpus > 0 ? (guint)common.gpus : 0;
  g_autoptr (MsimPlacement) p
      = trace ? msim_placement_load (placement_path, trace->layers,
                                     MAX (trace->experts, (guint)MAX (common.experts, 0)),
                                     gpus_hint, &error)
              : NULL;
  if (p && trace->experts < msim_placement_experts (p))
    {
      g_autoptr (GError) local = NULL;
      if (!msim_trace_set_experts (trace, msim_placement_experts (p), &local))
        error = g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "%s", local->message);
    }
  g_autoptr (MsimClusterShape) shape
      = p && !error ? make_shape (&common, msim_placement_gpus (p), &error) : NULL;
  if (shape && shape->gpus != msim_placement_gpus (p))
    {
      /* The file uses fewer GPUs than the cluster has: widen it. */
      if (shape->gpus > msim_placement_gpus (p))
        {
          g_autofree char *csv = msim_placement_to_csv (p, MSIM_PLACEMENT_CSV_MOESIM, NULL);
          g_clear_pointer (&p, msim_placement_free);
          p = msim_placement_load_data (csv, strlen (csv), placement_path, trace->layers,
                                        trace->experts, shape->gpus, &error);
        }
    }
  MsimPlacementEval ev, ec;
  g_autoptr (MsimPlacement) contig
      = shape && p ? msim_placement_new_contiguous (trace->layers, trace->experts, shape->gpus)
                   : NULL;
  if (contig == NULL || !msim_placement_evaluate (p, trace, shape, &ev, &error)
      || !msim_placement_evaluate (contig, trace, shape, &ec, &error))
    {
      common_clear (&common);
      return msim_cli_fail (error);
    }
  g_autofree double *loads = g_new0 (double, shape->gpus);
  g_autofree double *tmp = g_new (double, shape->gpus);
  for (guint l = 0; l < trace->layers; l++)
    {
      msim_placement_layer_loads (p, trace, l, tmp);
      for (guint g = 0; g < shape->gpus; g++)
        loads[g] += tmp[g];
    }
  if (common.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "command");
      json_builder_add_string_value (b, "place eval");
      json_builder_set_member_name (b, "placement");
      json_builder_add_string_value (b, placement_path);
      json_builder_set_member_name (b, "traces");
      json_builder_begin_array (b);
      for (guint i = 0; common.traces[i]; i++)
        json_builder_add_string_value (b, common.traces[i]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "tokens");
      json_builder_add_int_value (b, (gint64)trace->tokens);
      json_builder_set_member_name (b, "layers");
      json_builder_add_int_value (b, trace->layers);
      json_builder_set_member_name (b, "experts");
      json_builder_add_int_value (b, trace->experts);
      json_builder_set_member_name (b, "gpus");
      json_builder_add_int_value (b, shape->gpus);
      json_builder_set_member_name (b, "nodes");
      json_builder_add_int_value (b, shape->nodes);
      json_builder_set_member_name (b, "replicas");
      json_builder_add_int_value (b, msim_placement_n_extra (p));
      json_eval (b, "placement_eval", &ev);
      json_eval (b, "contiguous", &ec);
      json_builder_set_member_name (b, "gpu_load");
      json_builder_begin_array (b);
      for (guint g = 0; g < shape->gpus; g++)
        json_builder_add_double_value (b, loads[g]);
      json_builder_end_array (b);
      json_builder_end_object (b);
      g_autofree char *text = builder_to_text (b);
      printf ("%s\n", text);
    }
  else
    {
      printf ("moesim place eval: %s on %" G_GSIZE_FORMAT " tokens (%u layers x %u experts, "
              "top-%u), %u GPUs in %u node%s, %u extra copies\n",
              placement_path, trace->tokens, trace->layers, trace->experts, trace->k, shape->gpus,
              shape->nodes, shape->nodes == 1 ? "" : "s", msim_placement_n_extra (p));
      print_eval ("evaluation:", &ev, &ec, shape->nodes, msim_placement_n_extra (p) > 0);
      printf ("  GPU load (assignments of all ranks, all layers):");
      for (guint g = 0; g < shape->gpus; g++)
        printf ("%s%.0f", g % 8 == 0 ? "\n   " : " ", loads[g]);
      printf ("\n");
    }
  common_clear (&common);
  return 0;
}

static int
place_list (int argc, char **argv)
{
  guint n;
  const MsimPlacementPolicy *const *list = msim_placement_policy_list (&n);
  printf ("Placement policies (--policy NAME; default %s):\n", MSIM_PLACEMENT_DEFAULT_POLICY);
  for (guint i = 0; i < n; i++)
    {
      printf ("\n  %-24s %s\n", list[i]->name, list[i]->summary);
      if (list[i]->options_help && *list[i]->options_help)
        {
          g_auto (GStrv) lines = g_strsplit (list[i]->options_help, "\n", -1);
          for (guint k = 0; lines[k]; k++)
            if (*lines[k])
              printf ("      --option %s\n", lines[k]);
        }
    }
  printf ("\n  plugin:PATH              a shared object exporting a placement policy "
          "(experiments/plugins/README.md)\n");
  return 0;
}

int
msim_cmd_place (int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "eval") == 0)
    {
      g_autofree char *prg = g_strdup_printf ("%s eval", argv[0]);
      argv[1] = prg;
      return place_eval (argc - 1, argv + 1);
    }
  if (argc >= 2 && strcmp (argv[1], "list") == 0)
    return place_list (argc - 1, argv + 1);
  return place_fit (argc, argv);
}

/* ======================================================================
 * moesim bench place
 * ====================================================================== */

typedef struct
{
  const char *id;
  const char *label;
  const MsimTrace *trace;
  guint gpus, nodes;
  double target_s; /* 0 = none */
} BenchCase;

static double
median (double *v, gsize n)
{
  gsl_sort (v, 1, n);
  return gsl_stats_median_from_sorted_data (v, 1, n);
}

static gboolean
bench_case (const BenchCase *bc, guint runs, guint64 seed, double ilp_limit, gboolean *met,
            GError **error)
{
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (bc->gpus, bc->nodes, error);
  if (shape == NULL)
    return FALSE;
  g_autoptr (MsimPlacementProblem) pb = msim_placement_problem_new (bc->trace, shape, seed, error);
  if (pb == NULL)
    return FALSE;
  const MsimPlacementPolicy *def = msim_placement_policy_find (MSIM_PLACEMENT_DEFAULT_POLICY);
  g_autofree double *secs = g_new (double, runs);
  double cross = 0, crossn = 0, exact = 0;
  guint64 check = 0;
  for (guint r = 0; r < runs; r++)
    {
      g_autoptr (GArray) stats = NULL;
      gint64 t0 = g_get_monotonic_time ();
      g_autoptr (MsimPlacement) p = msim_placement_run (def, NULL, pb, &stats, error);
      gint64 t1 = g_get_monotonic_time ();
      if (p == NULL)
        return FALSE;
      secs[r] = (double)(t1 - t0) / 1e6;
      guint64 c = msim_placement_problem_cost (pb, msim_placement_gpu_array (p));
      if (r > 0 && c != check)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "bench place: runs with the same seed gave different placements "
                       "(determinism broken)");
          return FALSE;
        }
      check = c;
      cross = msim_placement_stats_get (stats, "cross_gpu_fraction");
      crossn = msim_placement_stats_get (stats, "cross_node_fraction");
      exact = msim_placement_stats_get (stats, "exact");
    }
  double med = median (secs, runs);
  *met = bc->target_s <= 0 || med < bc->target_s;
  printf ("%-34s %-22s %9.4f %10.4f %10.4f %9s %s\n", bc->label, MSIM_PLACEMENT_DEFAULT_POLICY, med,
          cross, crossn, exact == 1 ? "exact" : "-",
          bc->target_s > 0 ? (*met ? "target met" : "TARGET MISSED") : "");
  fflush (stdout);
  if (ilp_limit > 0)
    {
      const MsimPlacementPolicy *ilp = msim_placement_policy_find ("exflow-ilp");
      g_autofree char *lim = g_strdup_printf ("time-limit=%g", ilp_limit);
      const char *opts[] = { lim, NULL };
      g_autoptr (GArray) stats = NULL;
      g_autoptr (MsimPlacement) p = msim_placement_run (ilp, opts, pb, &stats, error);
      if (p == NULL)
        return FALSE;
      double gap = msim_placement_stats_get (stats, "mip_gap");
      double solved = msim_placement_stats_get (stats, "all_solved");
      double too_large = msim_placement_stats_get (stats, "subproblems_too_large");
      char gapbuf[32];
      if (isnan (gap))
        g_snprintf (gapbuf, sizeof gapbuf, "n/a");
      else
        g_snprintf (gapbuf, sizeof gapbuf, "%.3f", gap);
      printf ("%-34s %-22s %9.4f %10.4f %10.4f %9s %s\n", "", "exflow-ilp (staged)",
              msim_placement_stats_get (stats, "seconds"),
              msim_placement_stats_get (stats, "cross_gpu_fraction"),
              msim_placement_stats_get (stats, "cross_node_fraction"), gapbuf,
              too_large > 0 ? "model beyond max-rows: warm start kept"
              : solved == 1 ? (gap == 0 ? "proven optimal" : "time limit")
                            : "no LP/MIP in time");
      fflush (stdout);
    }
  return TRUE;
}

int
msim_bench_place (int argc, char **argv)
{
  gint runs = 3;
  gint64 seed = 1;
  gdouble ilp_limit = 20.0;
  gint synth_tokens = 20000;
  g_autofree char *trace_path = NULL;
  g_autofree char *cases_text = NULL;
  GOptionEntry entries[] = {
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs,
      "Repetitions of the default policy (median; default 3)", "R" },
    { "cases", 0, 0, G_OPTION_ARG_STRING, &cases_text,
      "Comma-separated subset of mixtral8, mixtral4, mixtral2x4, synthetic (default all)", "LIST" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Placement and generator seed (default 1)", "S" },
    { "ilp-time-limit", 0, 0, G_OPTION_ARG_DOUBLE, &ilp_limit,
      "GLPK time limit per case in seconds, 0 = skip the ILP (default 20)", "S" },
    { "synthetic-tokens", 0, 0, G_OPTION_ARG_INT, &synth_tokens,
      "Tokens of the synthetic 48 x 64 trace (default 20000)", "N" },
    { "trace", 0, 0, G_OPTION_ARG_FILENAME, &trace_path,
      "Mixtral trace (default workloads/traces/mixtral-8x7b-mtbench/coding.json in the data "
      "directory)",
      "T" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- placement speed: default policy and GLPK ILP");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (runs < 1 || runs > 100 || seed < 0 || !(ilp_limit >= 0 && ilp_limit <= 1e5)
      || synth_tokens < 100 || synth_tokens > 10000000 || argc != 1)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench place: --runs must be in 1..100, --seed >= 0, "
                                       "--ilp-time-limit in 0..1e5, --synthetic-tokens in "
                                       "100..1e7"));
  GError *error = NULL;
  g_auto (GStrv) only = cases_text ? g_strsplit (cases_text, ",", -1) : NULL;
  for (guint i = 0; only && only[i]; i++)
    {
      static const char *const known[]
          = { "mixtral8", "mixtral4", "mixtral2x4", "synthetic", NULL };
      g_strstrip (only[i]);
      if (!g_strv_contains (known, only[i]))
        return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                           "--cases: unknown case '%s' (known: mixtral8, "
                                           "mixtral4, mixtral2x4, synthetic)",
                                           only[i]));
    }
  g_autofree char *path = trace_path
                              ? g_strdup (trace_path)
                              : g_build_filename (msim_data_dir (), "workloads", "traces",
                                                  "mixtral-8x7b-mtbench", "coding.json", NULL);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (MsimTrace) mix = msim_trace_load (path, &error);
  if (mix == NULL)
    return msim_cli_fail (error);
  double load_s = (double)(g_get_monotonic_time () - t0) / 1e6;
  t0 = g_get_monotonic_time ();
  g_autoptr (MsimTrace) syn = msim_synthetic_affinity_trace_new ((gsize)synth_tokens, 48, 64, 2,
                                                                 0.6, 512, (guint64)seed, &error);
  if (syn == NULL)
    return msim_cli_fail (error);
  double gen_s = (double)(g_get_monotonic_time () - t0) / 1e6;

  printf ("bench place: seed %" G_GINT64_FORMAT ", %d runs of the default policy (median "
          "seconds; trace loading excluded), ILP time limit %g s\n",
          seed, runs, ilp_limit);
  printf ("  mixtral: %s, %" G_GSIZE_FORMAT " tokens, %u x %u, top-%u (loaded in %.2f s)\n", path,
          mix->tokens, mix->layers, mix->experts, mix->k, load_s);
  printf ("  synthetic: 48 layers x 64 experts, top-2, %d tokens, affinity 0.6 (generated in "
          "%.2f s)\n",
          synth_tokens, gen_s);
  printf ("%-34s %-22s %9s %10s %10s %9s\n", "case", "policy", "seconds", "cross_gpu", "cross_node",
          "exact/gap");
  BenchCase cases[] = {
    { "mixtral8", "mixtral 32x8 on 8 GPUs", mix, 8, 1, 1.0 },
    { "mixtral4", "mixtral 32x8 on 4 GPUs", mix, 4, 1, 1.0 },
    { "mixtral2x4", "mixtral 32x8 on 2 nodes x 4 GPUs", mix, 8, 2, 1.0 },
    { "synthetic", "synthetic 48x64 on 64 GPUs/8 nodes", syn, 64, 8, 60.0 },
  };
  gboolean all_met = TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gboolean met = TRUE;
      if (only && !g_strv_contains ((const char *const *)only, cases[i].id))
        continue;
      if (!bench_case (&cases[i], (guint)runs, (guint64)seed, ilp_limit, &met, &error))
        return msim_cli_fail (error);
      all_met = all_met && met;
    }
  printf ("%s\n", all_met ? "all speed targets met" : "some speed targets missed");
  return 0;
}
