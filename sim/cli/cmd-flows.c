/* moesim flows: simulate a list of flows on a topology and report when each
 * one finished.  This is the interface for comparing moesim's network model
 * with other network simulators, so its input and output are plain CSV and
 * its times are exact picoseconds printed in seconds. */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ini.h"
#include "msim-error.h"
#include "network.h"
#include "topology.h"

typedef struct
{
  char *id;
  guint line;     /* in the flows file, for messages */
  guint src, dst; /* vertices */
  double bytes;
  MsimTime start;
  MsimTime end;
  guint pending; /* sub-flows still running (split routing) */
} FlowRow;

static void
flow_row_free (gpointer p)
{
  FlowRow *r = p;
  g_free (r->id);
  g_free (r);
}

/* At most 60 characters of @text (valid UTF-8) for a message, cut on a
 * character boundary so the message stays valid UTF-8. (transfer full) */
static char *
excerpt60 (const char *text)
{
  if (g_utf8_strlen (text, -1) <= 60)
    return g_strdup (text);
  return g_utf8_substring (text, 0, 60);
}

/* A GPU index ("3") or a vertex name ("node0.nic1"). */
static gboolean
parse_endpoint (MsimTopology *topo, const char *text, guint *vertex)
{
  gint64 gpu;
  if (msim_parse_int64 (text, &gpu))
    {
      if (gpu < 0 || gpu >= msim_topology_n_gpus (topo))
        return FALSE;
      *vertex = msim_topology_gpu_vertex (topo, (guint)gpu);
      return TRUE;
    }
  gint64 v = msim_topology_find_vertex (topo, text);
  if (v < 0)
    return FALSE;
  *vertex = (guint)v;
  return TRUE;
}

/* Parses the CSV text @data (@len bytes, NUL-terminated) of the flows
 * file @path: `id,src,dst,bytes,start_s`.  Every problem is reported with
 * the file and line, and nothing is simulated unless the whole file is
 * valid.  Separate from reading so that tests/fuzz can drive it. */
static GPtrArray *
parse_flows (const char *data, gsize len, const char *path, MsimTopology *topo, GError **error)
{
  char *ex = NULL; /* message excerpts, freed right after use */
  const char *bad = NULL;
  if (!g_utf8_validate_len (data, len, &bad))
    {
      guint line = 1;
      for (const char *c = data; c < bad; c++)
        line += *c == '\n';
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s:%u: invalid UTF-8 (or a NUL byte) at byte offset %zu", path, line,
                   (size_t)(bad - data));
      return NULL;
    }
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func (flow_row_free);
  g_autoptr (GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_auto (GStrv) lines = g_strsplit (data, "\n", -1);
  gboolean header = FALSE;
  for (guint ln = 0; lines[ln]; ln++)
    {
      char *line = g_strstrip (lines[ln]);
      if (*line == '\0' || *line == '#')
        continue;
      g_auto (GStrv) cells = g_strsplit (line, ",", -1);
      guint ncells = g_strv_length (cells);
      for (guint c = 0; c < ncells; c++)
        g_strstrip (cells[c]);
      if (!header)
        {
          const char *expect[] = { "id", "src", "dst", "bytes", "start_s" };
          gboolean ok = ncells == 5;
          for (guint c = 0; ok && c < 5; c++)
            ok = strcmp (cells[c], expect[c]) == 0;
          if (!ok)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s:%u: expected the header 'id,src,dst,bytes,start_s', got '%s'",
                           path, ln + 1, ex = excerpt60 (line));
              g_free (ex);
              return NULL;
            }
          header = TRUE;
          continue;
        }
      if (ncells != 5)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%u: expected 5 comma-separated cells, got %u", path, ln + 1, ncells);
          return NULL;
        }
      if (*cells[0] == '\0')
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s:%u: empty flow id", path, ln + 1);
          return NULL;
        }
      /* Ids are copied into the output CSV and into messages; a control
       * character (a stray carriage return, an escape) would corrupt both. */
      for (const char *c = cells[0]; *c; c++)
        if (g_ascii_iscntrl (*c))
          {
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "%s:%u: flow id contains the control character 0x%02x", path, ln + 1,
                         (guint)(guchar)*c);
            return NULL;
          }
      FlowRow *r = g_new0 (FlowRow, 1);
      r->id = g_strdup (cells[0]);
      r->line = ln + 1;
      g_ptr_array_add (rows, r);
      if (!g_hash_table_add (ids, r->id))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s:%u: duplicate flow id '%s'",
                       path, ln + 1, ex = excerpt60 (r->id));
          g_free (ex);
          return NULL;
        }
      const char *names[] = { "src", "dst" };
      guint *ends[] = { &r->src, &r->dst };
      for (int k = 0; k < 2; k++)
        if (!parse_endpoint (topo, cells[1 + k], ends[k]))
          {
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "%s:%u: %s '%s' is neither a GPU index in 0..%u nor a vertex of the "
                         "topology",
                         path, ln + 1, names[k], ex = excerpt60 (cells[1 + k]),
                         msim_topology_n_gpus (topo) - 1);
            g_free (ex);
            return NULL;
          }
      double start_s;
      if (!msim_parse_double (cells[3], &r->bytes) || r->bytes < 0.0 || r->bytes > 1e18)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%u: bytes must be a finite number in [0, 1e18], got '%s'", path,
                       ln + 1, ex = excerpt60 (cells[3]));
          g_free (ex);
          return NULL;
        }
      if (!msim_parse_double (cells[4], &start_s) || start_s < 0.0
          || !msim_time_from_seconds (start_s, &r->start))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%u: start_s must be a finite number of seconds in [0, 9.2e6], got '%s'",
                       path, ln + 1, cells[4]);
          return NULL;
        }
    }
  if (!header)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: empty file (expected the header 'id,src,dst,bytes,start_s')", path);
      return NULL;
    }
  return g_steal_pointer (&rows);
}

/* Reads and parses the flows file @path (see parse_flows). */
static GPtrArray *
read_flows (const char *path, MsimTopology *topo, GError **error)
{
  GStatBuf st;
  if (g_stat (path, &st) == 0 && !S_ISREG (st.st_mode))
    {
      /* A FIFO would block and /dev/zero would never end. */
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: %s, expected a CSV file", path,
                   S_ISDIR (st.st_mode) ? "is a directory" : "not a regular file");
      return NULL;
    }
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &data, &len, &local))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s", local->message);
      return NULL;
    }
  return parse_flows (data, len, path, topo, error);
}

static void
subflow_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  FlowRow *r = data;
  r->end = MAX (r->end, info->end);
  r->pending--;
}

/* The routes of @r (the @index-th flow): its ECMP route, or in split mode
 * every equal-cost path.  Returns how many were written to @routes (at
 * least 1), or 0 with @error naming the flow's line. */
static guint
flow_routes (MsimTopology *topo, const FlowRow *r, guint index, const char *path, MsimRoute *routes,
             GError **error)
{
  guint n = 1;
  if (msim_topology_routing_mode (topo) == MSIM_ROUTING_SPLIT)
    n = MAX (msim_topology_n_paths (topo, r->src, r->dst), 1u);
  for (guint k = 0; k < n; k++)
    {
      gboolean ok = n == 1 ? msim_topology_route (topo, r->src, r->dst, index, &routes[k], error)
                           : msim_topology_path (topo, r->src, r->dst, k, &routes[k]);
      if (!ok)
        {
          if (error && *error)
            g_prefix_error (error, "%s:%u: flow '%s': ", path, r->line, r->id);
          else
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "%s:%u: flow '%s': no usable path %u of %u", path, r->line, r->id, k, n);
          return 0;
        }
    }
  return n;
}

/* Simulates every flow of @rows on @topo; fills their end times.  Routes
 * are checked before anything starts, and so is the simulated-time range:
 * a flow whose route cannot carry its bytes within MsimTime's ~106 days
 * (1e18 bytes at 1 B/s) would otherwise never complete.  Returns the
 * network (for its statistics) or NULL with @error. */
static MsimNetwork *
simulate_flows (MsimTopology *topo, GPtrArray *rows, const char *path, MsimEngine *engine,
                MsimNetworkModel model, gboolean check, GError **error)
{
  MsimRoute routes[MSIM_TOPOLOGY_MAX_PATHS];
  for (guint i = 0; i < rows->len; i++)
    {
      FlowRow *r = g_ptr_array_index (rows, i);
      guint n = flow_routes (topo, r, i, path, routes, error);
      if (n == 0)
        return NULL;
      for (guint k = 0; k < n; k++)
        {
          double bottleneck = G_MAXDOUBLE;
          for (guint h = 0; h < routes[k].n_links; h++)
            bottleneck = MIN (bottleneck, msim_topology_link_capacity (topo, routes[k].links[h]));
          MsimTime busy, end;
          if (!msim_time_for_bytes (r->bytes / n, bottleneck, &busy)
              || !msim_time_add (r->start, busy, &end)
              || !msim_time_add (end, routes[k].latency_ps, &end))
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                           "%s:%u: flow '%s': %g bytes at its route's bottleneck of %g bytes/s "
                           "cannot end within the simulated-time range (%.3g s)",
                           path, r->line, r->id, r->bytes, bottleneck,
                           msim_time_to_seconds (MSIM_TIME_NEVER));
              return NULL;
            }
        }
    }

  guint nl = msim_topology_n_links (topo);
  g_autofree double *cap = g_new (double, MAX (nl, 1u));
  for (guint l = 0; l < nl; l++)
    cap[l] = msim_topology_link_capacity (topo, l);
  g_autoptr (MsimNetwork) net = msim_network_new (engine, nl, cap, model);
  msim_network_set_check (net, check, FALSE);
  for (guint i = 0; i < rows->len; i++)
    {
      FlowRow *r = g_ptr_array_index (rows, i);
      guint n = flow_routes (topo, r, i, path, routes, NULL);
      r->end = r->start;
      r->pending = n;
      for (guint k = 0; k < n; k++)
        msim_network_start_flow (net, r->start, routes[k].links, routes[k].n_links,
                                 routes[k].latency_ps, r->bytes / n, subflow_done, r);
    }
  MsimStepResult res = msim_engine_run (engine);
  if (res != MSIM_STEP_IDLE)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "flows: the simulation stopped early (%d)", res);
      return NULL;
    }
  /* Sharing can still push a flow past the end of simulated time, where
   * the network leaves it unfinished. */
  for (guint i = 0; i < rows->len; i++)
    {
      FlowRow *r = g_ptr_array_index (rows, i);
      if (r->pending != 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                       "%s:%u: flow '%s' does not end within the simulated-time range (%.3g s) "
                       "with the bandwidth it gets",
                       path, r->line, r->id, msim_time_to_seconds (MSIM_TIME_NEVER));
          return NULL;
        }
    }
  return g_steal_pointer (&net);
}

/* Seconds with exactly 12 decimals: the picosecond clock, printed exactly. */
static void
append_time (GString *out, MsimTime t)
{
  g_string_append_printf (out, "%" G_GINT64_FORMAT ".%012" G_GINT64_FORMAT, t / MSIM_PS_PER_SECOND,
                          t % MSIM_PS_PER_SECOND);
}

int
msim_cmd_flows (int argc, char **argv)
{
  g_autofree char *topo_path = NULL;
  g_autofree char *flows_path = NULL;
  g_autofree char *out_path = NULL;
  g_autofree char *model_name = NULL;
  gboolean check = FALSE;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "topology", 't', 0, G_OPTION_ARG_FILENAME, &topo_path, "Topology file (required)", "T.ini" },
    { "flows", 'f', 0, G_OPTION_ARG_FILENAME, &flows_path,
      "Flows CSV with header id,src,dst,bytes,start_s (required); src/dst are GPU indices or "
      "vertex names",
      "F.csv" },
    { "model", 'm', 0, G_OPTION_ARG_STRING, &model_name,
      "maxmin (default: max-min fair sharing) or analytical (latency + bytes / bottleneck, no "
      "sharing)",
      "MODEL" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path,
      "Output CSV id,start_s,end_s,bytes,avg_rate_Bps (required; written only on success)",
      "OUT.csv" },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      "Verify the network invariants at every re-solve (slow; for debugging)", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Do not print the summary", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- simulate flows on a topology");
  g_option_context_set_description (
      ctx, "Each flow spends its route's latency, then shares link bandwidth max-min fairly.\n"
           "end_s is when its last byte arrives; avg_rate_Bps = bytes / (end_s - start_s).\n"
           "With `routing = split` in the topology, a flow is divided evenly over its\n"
           "equal-cost paths and ends when its last part does.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc > 1)
    return msim_cli_fail (
        g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "flows: unexpected argument '%s'", argv[1]));
  if (!topo_path || !flows_path || !out_path)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "flows: --topology, --flows and -o are required"));
  MsimNetworkModel model = MSIM_NETWORK_MAXMIN;
  if (model_name && strcmp (model_name, "analytical") == 0)
    model = MSIM_NETWORK_ANALYTICAL;
  else if (model_name && strcmp (model_name, "maxmin") != 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "flows: --model must be maxmin or analytical, got '%s'",
                                       model_name));

  GError *error = NULL;
  g_autoptr (MsimTopology) topo = msim_topology_load (topo_path, &error);
  if (!topo)
    return msim_cli_fail (error);
  g_autoptr (GPtrArray) rows = read_flows (flows_path, topo, &error);
  if (!rows)
    return msim_cli_fail (error);

  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (MsimEngine) engine = msim_engine_new ();
  g_autoptr (MsimNetwork) net
      = simulate_flows (topo, rows, flows_path, engine, model, check, &error);
  gint64 t1 = g_get_monotonic_time ();
  if (!net)
    return msim_cli_fail (error);

  GString *out = g_string_new ("id,start_s,end_s,bytes,avg_rate_Bps\n");
  MsimTime makespan = 0;
  for (guint i = 0; i < rows->len; i++)
    {
      FlowRow *r = g_ptr_array_index (rows, i);
      makespan = MAX (makespan, r->end);
      double dur = msim_time_to_seconds (r->end - r->start);
      g_string_append_printf (out, "%s,", r->id);
      append_time (out, r->start);
      g_string_append_c (out, ',');
      append_time (out, r->end);
      char rate[G_ASCII_DTOSTR_BUF_SIZE], bytes[G_ASCII_DTOSTR_BUF_SIZE];
      g_ascii_formatd (bytes, sizeof bytes, "%.17g", r->bytes);
      if (dur > 0.0)
        g_ascii_formatd (rate, sizeof rate, "%.17g", r->bytes / dur);
      else
        g_strlcpy (rate, "inf", sizeof rate);
      g_string_append_printf (out, ",%s,%s\n", bytes, rate);
    }
  if (!g_file_set_contents (out_path, out->str, (gssize)out->len, &error))
    {
      g_string_free (out, TRUE);
      g_prefix_error (&error, "flows: ");
      return msim_cli_fail (error);
    }
  g_string_free (out, TRUE);
  if (!quiet)
    {
      MsimNetworkStats st;
      msim_network_get_stats (net, &st);
      printf ("flows: %u flows on %s (%u GPUs, %u directed links), model %s\n", rows->len,
              msim_topology_name (topo), msim_topology_n_gpus (topo), msim_topology_n_links (topo),
              model == MSIM_NETWORK_MAXMIN ? "maxmin" : "analytical");
      printf ("flows: makespan %.9f s, %" G_GUINT64_FORMAT " re-solves, %.3f s wall\n",
              msim_time_to_seconds (makespan), st.batches, (double)(t1 - t0) / 1e6);
      printf ("flows: wrote %s\n", out_path);
    }
  return 0;
}
