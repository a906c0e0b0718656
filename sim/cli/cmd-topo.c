/* moesim topo: look at a cluster topology before simulating on it.
 *
 *   moesim topo show TOPOLOGY [--route SRC,DST]...
 *   moesim topo export TOPOLOGY [--format graphml|dot] -o FILE
 *   moesim topo list
 *
 * TOPOLOGY is a topology file or the name of a preset in topology/presets.
 * Everything is computed before anything is printed or written, so a bad
 * input produces an error and exit status 2, never half a summary or a
 * truncated file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "msim-error.h"
#include "topology.h"

/* Also declared in cli.h once the command is registered there; declaring it
 * here keeps this file warning-free (-Wmissing-prototypes) either way. */

/* A file if one exists at @arg, otherwise a preset of that name. */
static MsimTopology *
load_topology (const char *arg, GError **error)
{
  if (g_file_test (arg, G_FILE_TEST_EXISTS))
    return msim_topology_load (arg, error);
  g_autofree char *preset = msim_topology_preset_path (arg);
  if (preset != NULL)
    return msim_topology_load (preset, error);
  g_auto (GStrv) names = msim_topology_list_presets ();
  g_autofree char *known = names[0] ? g_strjoinv (", ", names) : g_strdup ("none");
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
               "topology '%s': no such file, and no preset of that name (presets: %s)", arg, known);
  return NULL;
}

static void
append_bandwidth (GString *s, double Bps)
{
  g_string_append_printf (s, "%9.1f GB/s", Bps / 1e9);
}

/* Physical links grouped by what a reader compares: medium, the kinds of
 * the two ends, bandwidth and latency.  Groups are listed in order of first
 * appearance, which follows the builder's (or file's) structure. */
static void
append_link_table (GString *s, const MsimTopology *topo)
{
  g_autoptr (GHashTable) index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  g_autoptr (GArray) counts = g_array_new (FALSE, TRUE, sizeof (guint));
  g_autoptr (GArray) firsts = g_array_new (FALSE, TRUE, sizeof (guint));
  for (guint e = 0; e < msim_topology_n_links (topo); e += 2)
    {
      const char *ka = msim_vertex_kind_name (
          msim_topology_vertex_kind (topo, msim_topology_link_src (topo, e)));
      const char *kb = msim_vertex_kind_name (
          msim_topology_vertex_kind (topo, msim_topology_link_dst (topo, e)));
      if (strcmp (ka, kb) > 0)
        {
          const char *t = ka;
          ka = kb;
          kb = t;
        }
      char *key = g_strdup_printf ("%s|%s-%s|%.17g|%" G_GINT64_FORMAT,
                                   msim_link_type_name (msim_topology_link_type (topo, e)), ka, kb,
                                   msim_topology_link_capacity (topo, e),
                                   msim_topology_link_latency_ps (topo, e));
      gpointer found = NULL;
      if (g_hash_table_lookup_extended (index, key, NULL, &found))
        {
          g_array_index (counts, guint, GPOINTER_TO_UINT (found))++;
          g_free (key);
          continue;
        }
      guint one = 1;
      g_hash_table_insert (index, key, GUINT_TO_POINTER (counts->len));
      g_ptr_array_add (keys, key);
      g_array_append_val (counts, one);
      g_array_append_val (firsts, e);
    }
  g_string_append_printf (s, "  %6s  %-10s  %-12s  %14s  %10s\n", "count", "type", "between",
                          "bandwidth/dir", "latency");
  for (guint i = 0; i < counts->len; i++)
    {
      guint e = g_array_index (firsts, guint, i);
      const char *key = keys->pdata[i];
      const char *bar = strchr (key, '|');
      g_autofree char *between = g_strndup (bar + 1, strchr (bar + 1, '|') - (bar + 1));
      g_string_append_printf (s, "  %6u  %-10s  %-12s  ", g_array_index (counts, guint, i),
                              msim_link_type_name (msim_topology_link_type (topo, e)), between);
      append_bandwidth (s, msim_topology_link_capacity (topo, e));
      g_string_append_printf (s, "  %7.3f us\n",
                              (double)msim_topology_link_latency_ps (topo, e) / 1e6);
    }
}

static gboolean
append_route (GString *s, MsimTopology *topo, guint src, guint dst, GError **error)
{
  MsimRoute r;
  if (!msim_topology_route (topo, src, dst, 0, &r, error))
    return FALSE;
  double bottleneck = 0;
  for (guint i = 0; i < r.n_links; i++)
    {
      double c = msim_topology_link_capacity (topo, r.links[i]);
      bottleneck = i == 0 || c < bottleneck ? c : bottleneck;
    }
  guint n_paths = msim_topology_n_paths (topo, src, dst);
  g_string_append_printf (s, "  %s -> %s: %u hop%s, %.3f us, ",
                          msim_topology_vertex_name (topo, src),
                          msim_topology_vertex_name (topo, dst), r.n_links,
                          r.n_links == 1 ? "" : "s", (double)r.latency_ps / 1e6);
  if (r.n_links > 0)
    g_string_append_printf (s, "bottleneck %.1f GB/s, ", bottleneck / 1e9);
  g_string_append_printf (s, "%u%s equal-cost path%s\n    %s", n_paths,
                          n_paths >= MSIM_TOPOLOGY_MAX_PATHS ? "+" : "", n_paths == 1 ? "" : "s",
                          msim_topology_vertex_name (topo, src));
  for (guint i = 0; i < r.n_links; i++)
    g_string_append_printf (
        s, " > %s", msim_topology_vertex_name (topo, msim_topology_link_dst (topo, r.links[i])));
  g_string_append_c (s, '\n');
  return TRUE;
}

static gboolean
parse_route_arg (MsimTopology *topo, const char *arg, guint *src, guint *dst, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (arg, ",", -1);
  if (g_strv_length (parts) != 2)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "--route '%s': expected SRC,DST (two vertex names)", arg);
      return FALSE;
    }
  guint *out[2] = { src, dst };
  for (int i = 0; i < 2; i++)
    {
      gint64 v = msim_topology_find_vertex (topo, g_strstrip (parts[i]));
      if (v < 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "--route '%s': no vertex named '%s' in topology '%s'", arg, parts[i],
                       msim_topology_name (topo));
          return FALSE;
        }
      *out[i] = (guint)v;
    }
  return TRUE;
}

static GString *
summary (MsimTopology *topo, char **routes, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  guint n_v = msim_topology_n_vertices (topo), n_g = msim_topology_n_gpus (topo);
  guint n_h = msim_topology_n_hosts (topo);
  guint by_kind[4] = { 0 };
  for (guint v = 0; v < n_v; v++)
    by_kind[msim_topology_vertex_kind (topo, v)]++;
  g_string_append_printf (s, "topology %s (%s)\n", msim_topology_name (topo),
                          msim_topology_origin (topo));
  if (*msim_topology_description (topo))
    g_string_append_printf (s, "  %s\n", msim_topology_description (topo));
  g_string_append_printf (s, "routing: %s\n",
                          msim_topology_routing_mode (topo) == MSIM_ROUTING_ECMP ? "ecmp"
                                                                                 : "split");
  g_string_append_printf (s, "vertices: %u (%u gpu, %u switch, %u nic, %u host)\n", n_v,
                          by_kind[MSIM_VERTEX_GPU], by_kind[MSIM_VERTEX_SWITCH],
                          by_kind[MSIM_VERTEX_NIC], by_kind[MSIM_VERTEX_HOST]);
  guint lo = G_MAXUINT, hi = 0;
  for (guint h = 0; h < n_h; h++)
    {
      guint c;
      msim_topology_host_gpus (topo, h, NULL, &c);
      lo = MIN (lo, c);
      hi = MAX (hi, c);
    }
  if (lo == hi)
    g_string_append_printf (s, "GPUs: %u on %u host%s (%u per host)\n", n_g, n_h,
                            n_h == 1 ? "" : "s", lo);
  else
    g_string_append_printf (s, "GPUs: %u on %u hosts (%u to %u per host)\n", n_g, n_h, lo, hi);
  g_string_append_printf (s, "links: %u full duplex (%u directed)\n",
                          msim_topology_n_links (topo) / 2, msim_topology_n_links (topo));
  append_link_table (s, topo);

  g_string_append (s, "routes (the ECMP choice for flow 0):\n");
  if (routes != NULL && routes[0] != NULL)
    for (char **r = routes; *r; r++)
      {
        guint src, dst;
        if (!parse_route_arg (topo, *r, &src, &dst, error)
            || !append_route (s, topo, src, dst, error))
          return NULL;
      }
  else
    {
      /* Examples that show each level of the hierarchy: a neighbour in the
       * host, a GPU on another host, the farthest GPU, host memory. */
      guint g0 = msim_topology_gpu_vertex (topo, 0);
      guint first = 0, count = 0;
      msim_topology_host_gpus (topo, msim_topology_gpu_host (topo, 0), &first, &count);
      g_autoptr (GArray) dsts = g_array_new (FALSE, FALSE, sizeof (guint));
      if (count > 1)
        {
          guint v = msim_topology_gpu_vertex (topo, 1);
          g_array_append_val (dsts, v);
        }
      if (n_h > 1)
        {
          guint first1 = 0, count1 = 0;
          msim_topology_host_gpus (topo, 1, &first1, &count1);
          if (count1 > 0)
            {
              guint v = msim_topology_gpu_vertex (topo, first1 + MIN (1, count1 - 1));
              g_array_append_val (dsts, v);
            }
        }
      if (n_g > 2)
        {
          guint v = msim_topology_gpu_vertex (topo, n_g - 1);
          g_array_append_val (dsts, v);
        }
      guint hv = msim_topology_host_vertex (topo, msim_topology_gpu_host (topo, 0));
      g_array_append_val (dsts, hv);
      for (guint i = 0; i < dsts->len; i++)
        {
          guint d = g_array_index (dsts, guint, i);
          gboolean seen = FALSE;
          for (guint j = 0; j < i; j++)
            seen |= g_array_index (dsts, guint, j) == d;
          if (!seen && !append_route (s, topo, g0, d, error))
            return NULL;
        }
    }
  return g_steal_pointer (&s);
}

static int
topo_show (int argc, char **argv)
{
  g_auto (GStrv) routes = NULL;
  GOptionEntry entries[] = {
    { "route", 0, 0, G_OPTION_ARG_STRING_ARRAY, &routes,
      "Show the route between two vertices (repeatable; default: examples)", "SRC,DST" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("TOPOLOGY - summarise a topology");
  g_option_context_set_description (ctx, "TOPOLOGY is a topology file or a preset name "
                                         "(moesim topo list).\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    {
      g_printerr ("moesim: error: topo show: expected one TOPOLOGY argument (try --help)\n");
      return 2;
    }
  GError *error = NULL;
  g_autoptr (MsimTopology) topo = load_topology (argv[1], &error);
  if (topo == NULL)
    return msim_cli_fail (error);
  GString *s = summary (topo, routes, &error);
  if (s == NULL)
    return msim_cli_fail (error);
  fputs (s->str, stdout);
  g_string_free (s, TRUE);
  return fflush (stdout) == 0 ? 0 : 1;
}

/* The format from an output file's extension, or NULL. */
static const char *
format_from_path (const char *path)
{
  if (g_str_has_suffix (path, ".graphml") || g_str_has_suffix (path, ".xml"))
    return "graphml";
  if (g_str_has_suffix (path, ".dot") || g_str_has_suffix (path, ".gv"))
    return "dot";
  return NULL;
}

static int
topo_export (int argc, char **argv)
{
  g_autofree char *format = NULL;
  g_autofree char *output = NULL;
  GOptionEntry entries[] = {
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
      "graphml or dot (default: from the output file's extension)", "FORMAT" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "File to write (required)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("TOPOLOGY - write a topology as GraphML or DOT");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2 || output == NULL)
    {
      g_printerr ("moesim: error: topo export: expected one TOPOLOGY argument and -o FILE "
                  "(try --help)\n");
      return 2;
    }
  const char *fmt = format ? format : format_from_path (output);
  if (fmt == NULL || (strcmp (fmt, "graphml") != 0 && strcmp (fmt, "dot") != 0))
    {
      g_printerr ("moesim: error: topo export: %s%s%s (use --format graphml or --format dot)\n",
                  format ? "unknown format '" : "cannot tell the format from '",
                  format ? format : output, "'");
      return 2;
    }
  GError *error = NULL;
  g_autoptr (MsimTopology) topo = load_topology (argv[1], &error);
  if (topo == NULL || !msim_topology_export (topo, fmt, output, &error))
    return msim_cli_fail (error);
  printf ("wrote %s (%s: %u vertices, %u directed links)\n", output, fmt,
          msim_topology_n_vertices (topo), msim_topology_n_links (topo));
  return 0;
}

static int
topo_list (int argc, char **argv)
{
  if (argc != 1)
    {
      g_printerr ("moesim: error: topo list takes no arguments\n");
      return 2;
    }
  g_auto (GStrv) names = msim_topology_list_presets ();
  g_autoptr (GString) s = g_string_new (NULL);
  for (char **n = names; *n; n++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *path = msim_topology_preset_path (*n);
      g_autoptr (MsimTopology) topo = msim_topology_load (path, &error);
      if (topo == NULL)
        g_string_append_printf (s, "%-20s (does not load: %s)\n", *n, error->message);
      else
        g_string_append_printf (s, "%-20s %5u GPUs  %s\n", *n, msim_topology_n_gpus (topo),
                                msim_topology_description (topo));
    }
  fputs (s->str, stdout);
  return 0;
}

int
msim_cmd_topo (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      FILE *out = argc < 2 ? stderr : stdout;
      fprintf (out, "Usage: moesim topo WHAT [OPTION...]\n\n"
                    "  show TOPOLOGY      summary: GPUs, hosts, links by type, example routes\n"
                    "  export TOPOLOGY    write GraphML or DOT (-o FILE, --format)\n"
                    "  list               the presets in topology/presets\n"
                    "\nTOPOLOGY is a topology file or a preset name.\n"
                    "Run 'moesim topo WHAT --help' for options.\n");
      return argc < 2 ? 2 : 0;
    }
  const char *what = argv[1];
  g_autofree char *prg = g_strdup_printf ("%s %s", argv[0], what);
  argv[1] = prg;
  if (strcmp (what, "show") == 0)
    return topo_show (argc - 1, argv + 1);
  if (strcmp (what, "export") == 0)
    return topo_export (argc - 1, argv + 1);
  if (strcmp (what, "list") == 0)
    return topo_list (argc - 1, argv + 1);
  g_printerr ("moesim: error: topo: unknown subcommand '%s' (known: show, export, list)\n", what);
  return 2;
}
