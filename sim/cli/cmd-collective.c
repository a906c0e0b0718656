/* moesim bench collective and moesim fidelity: one collective on a topology,
 * reported the way nccl-tests reports it (time, algbw, busbw), and the
 * fidelity table that compares such runs with published measurements.
 *
 * Both build the same rig: the topology (a preset or a file, with optional
 * key=value overrides), a max-min network whose link capacities are the
 * topology's effective capacities (line rate x link efficiency; --raw for
 * the line rates), GPU streams, and a communicator with NCCL's calibrated
 * constants.  One collective runs alone on an idle cluster, as in
 * nccl-tests.  Bandwidths are in GB/s = 1e9 bytes/s, as nccl-tests prints
 * them. */
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "collective.h"
#include "ini.h"
#include "msim-error.h"
#include "network.h"
#include "tasks.h"
#include "topology.h"

/* Entry points, called from main.c's command table (moesim fidelity) and
 * cmd-bench.c (moesim bench collective); declared here until cli.h does. */

typedef enum
{
  OP_ALLTOALL,
  OP_ALLGATHER,
  OP_REDUCESCATTER,
  OP_ALLREDUCE,
  OP_SENDRECV,
  OP_D2H, /* GPU to its host memory: one flow, no NCCL call (cudaMemcpy) */
} Op;

static const char *const op_names[]
    = { "alltoall", "allgather", "reducescatter", "allreduce", "sendrecv", "d2h", NULL };

typedef enum
{
  ALGO_DEFAULT,
  ALGO_DIRECT,
  ALGO_HIERARCHICAL,
  ALGO_RING,
  ALGO_NVLS,
} Algo;

static const char *const algo_names[]
    = { "default", "direct", "hierarchical", "ring", "nvls", NULL };

/* NCCL protocols, as NCCL_PROTO names them; PROTO_DEFAULT lets NCCL's model
 * choose among all three. */
typedef enum
{
  PROTO_DEFAULT,
  PROTO_LL,
  PROTO_LL128,
  PROTO_SIMPLE,
} Proto;

static const char *const proto_names[] = { "default", "ll", "ll128", "simple", NULL };

/* What to simulate. */
typedef struct
{
  Op op;
  guint *ranks; /* GPU indices; NULL = the first n_gpus GPUs */
  guint n_ranks;
  guint n_gpus; /* 0 = all */
  double bytes; /* nccl-tests "size" */
  Algo algo;
  guint window;   /* AllToAll peers in flight, 0 = all */
  guint channels; /* ring channels, 0 = automatic */
  Proto proto;
  gboolean raw;   /* line rates, ideal send/recv: no efficiency applied */
  double p2p_efficiency;
} CollSpec;

typedef struct
{
  double time_s, algbw_Bps, busbw_Bps, wall_s;
  guint n;
  char algorithm[32];  /* "Ring/LL128", "NVLS/Simple", "direct", "p2p", "-" */
  double predicted_s;  /* NCCL's model for that choice, -1 if none */
  char nccl_pick[32];  /* NCCL's unrestricted choice (may be Tree), "" if none */
  double nccl_pick_s;
  double drain_s;      /* the longest p2p drain a transfer paid (msim_coll_drain_s) */
} CollResult;

static int
find_choice (const char *const *choices, const char *text)
{
  for (int i = 0; choices[i]; i++)
    if (g_ascii_strcasecmp (choices[i], text) == 0)
      return i;
  return -1;
}

/* "524288000", "5.24e8", "500M", "64MiB", "8G", "1KB": suffixes are binary
 * multiples (K = 2^10 ...), as in nccl-tests' -b/-e arguments. */
static gboolean
parse_bytes (const char *text, double *out)
{
  g_autofree char *t = g_strstrip (g_strdup (text));
  gsize len = strlen (t);
  double mult = 1.0;
  static const struct
  {
    const char *suffix;
    double mult;
  } units[] = {
    { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 }, { "TiB", 1099511627776.0 },
    { "KB", 1024.0 },  { "MB", 1048576.0 },  { "GB", 1073741824.0 },  { "TB", 1099511627776.0 },
    { "K", 1024.0 },   { "M", 1048576.0 },   { "G", 1073741824.0 },   { "T", 1099511627776.0 },
    { "B", 1.0 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    if (g_str_has_suffix (t, units[i].suffix) && len > strlen (units[i].suffix))
      {
        mult = units[i].mult;
        t[len - strlen (units[i].suffix)] = '\0';
        g_strstrip (t);
        break;
      }
  double v;
  if (!msim_parse_double (t, &v) || !(v >= 0.0) || v * mult > 1e15)
    return FALSE;
  *out = v * mult;
  return TRUE;
}

/* "0,8,3" -> GPU indices. */
static gboolean
parse_ranks (const char *text, guint **out, guint *n, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  guint count = g_strv_length (parts);
  g_autofree guint *ranks = g_new (guint, MAX (count, 1));
  for (guint i = 0; i < count; i++)
    {
      gint64 v;
      g_strstrip (parts[i]);
      if (!msim_parse_int64 (parts[i], &v) || v < 0 || v >= MSIM_TOPOLOGY_MAX_GPUS)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "ranks: '%s' is not a GPU index (a comma-separated list such as 0,8)",
                       parts[i]);
          return FALSE;
        }
      ranks[i] = (guint)v;
    }
  *out = g_steal_pointer (&ranks);
  *n = count;
  return TRUE;
}

/* A topology file if one exists at @name, else the preset of that name;
 * @overrides ("key=value", NULL-terminated or NULL) replace [topology]
 * keys, as a file that includes it would. */
static MsimTopology *
load_topology (const char *name, const char *const *overrides, GError **error)
{
  g_autofree char *path = NULL;
  if (g_file_test (name, G_FILE_TEST_IS_REGULAR))
    path = g_canonicalize_filename (name, NULL);
  else
    path = msim_topology_preset_path (name);
  if (path == NULL)
    return msim_topology_load_preset (name, NULL, error); /* names the known presets */
  if (overrides == NULL || overrides[0] == NULL)
    return msim_topology_load (path, error);
  g_autoptr (GString) text = g_string_new ("[topology]\n");
  g_string_append_printf (text, "include = %s\n", path);
  for (const char *const *o = overrides; *o; o++)
    {
      const char *eq = strchr (*o, '=');
      if (eq == NULL || eq == *o || strpbrk (*o, "\n\r[") != NULL)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "topology override '%s' is not of the form key=value", *o);
          return NULL;
        }
      g_autofree char *key = g_strstrip (g_strndup (*o, (gsize)(eq - *o)));
      g_string_append_printf (text, "%s = %s\n", key, eq + 1);
    }
  g_autofree char *label = g_strdup_printf ("%s (with overrides)", path);
  return msim_topology_load_data (text->str, (gssize)text->len, label, error);
}

/* The GPUs taking part, validated against @topo. */
static guint *
spec_gpus (const CollSpec *spec, MsimTopology *topo, guint *n, GError **error)
{
  guint total = msim_topology_n_gpus (topo);
  if (spec->ranks != NULL)
    {
      g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
      for (guint i = 0; i < spec->n_ranks; i++)
        {
          if (spec->ranks[i] >= total)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "GPU %u does not exist (topology '%s' has %u GPUs)", spec->ranks[i],
                           msim_topology_name (topo), total);
              return NULL;
            }
          if (!g_hash_table_add (seen, GUINT_TO_POINTER (spec->ranks[i] + 1)))
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "GPU %u is listed twice",
                           spec->ranks[i]);
              return NULL;
            }
        }
      *n = spec->n_ranks;
      return g_memdup2 (spec->ranks, spec->n_ranks * sizeof (guint));
    }
  guint want = spec->n_gpus ? spec->n_gpus : total;
  if (want > total)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "--gpus %u: topology '%s' has only %u GPUs",
                   want, msim_topology_name (topo), total);
      return NULL;
    }
  guint *g = g_new (guint, MAX (want, 1));
  for (guint i = 0; i < want; i++)
    g[i] = i;
  *n = want;
  return g;
}

/* The algorithm must fit the operation. */
static gboolean
spec_check_algo (const CollSpec *spec, GError **error)
{
  gboolean a2a = spec->op == OP_ALLTOALL;
  gboolean ring
      = spec->op == OP_ALLGATHER || spec->op == OP_REDUCESCATTER || spec->op == OP_ALLREDUCE;
  if (((spec->algo == ALGO_RING || spec->algo == ALGO_NVLS) && !ring)
      || ((spec->algo == ALGO_DIRECT || spec->algo == ALGO_HIERARCHICAL) && !a2a))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "algorithm '%s' does not apply to %s (alltoall: direct, hierarchical; "
                   "allgather/reducescatter/allreduce: ring, nvls)",
                   algo_names[spec->algo], op_names[spec->op]);
      return FALSE;
    }
  if (spec->proto != PROTO_DEFAULT && !ring)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "protocol '%s' does not apply to %s (NCCL's protocols are chosen for "
                   "allgather, reducescatter and allreduce)",
                   proto_names[spec->proto], op_names[spec->op]);
      return FALSE;
    }
  if (spec->raw && (spec->algo == ALGO_NVLS || spec->proto != PROTO_DEFAULT))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "raw line rates run a plain ring without NCCL's models, so %s '%s' cannot "
                   "be honoured",
                   spec->algo == ALGO_NVLS ? "algorithm" : "protocol",
                   spec->algo == ALGO_NVLS ? algo_names[spec->algo] : proto_names[spec->proto]);
      return FALSE;
    }
  return TRUE;
}

/* @n GPUs take part: sendrecv needs a source and a destination (exactly
 * those two when listed), d2h one GPU, a collective at least one. */
static gboolean
spec_check_count (const CollSpec *spec, guint n, GError **error)
{
  gboolean listed = spec->ranks != NULL;
  gboolean ok = spec->op == OP_SENDRECV ? (listed ? n == 2 : n >= 2)
                : spec->op == OP_D2H    ? (listed ? n == 1 : n >= 1)
                                        : n >= 1;
  if (!ok)
    g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s needs %s GPUs (got %u)",
                 op_names[spec->op],
                 spec->op == OP_SENDRECV ? "two (source, destination)"
                 : spec->op == OP_D2H    ? "one"
                                         : "at least one",
                 n);
  return ok;
}

typedef struct
{
  MsimTime end;
} D2hDone;

static void
d2h_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  ((D2hDone *)data)->end = info->end;
}

/* One simulation of @spec on @topo; the wall time covers building the
 * network, planning and running, not loading the topology. */
static gboolean
simulate (const CollSpec *spec, MsimTopology *topo, CollResult *res, GError **error)
{
  guint n = 0;
  g_autofree guint *gpus = spec_gpus (spec, topo, &n, error);
  if (gpus == NULL || !spec_check_algo (spec, error) || !spec_check_count (spec, n, error))
    return FALSE;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (MsimEngine) engine = msim_engine_new ();
  g_autoptr (MsimTasks) tasks = msim_tasks_new (engine, 2 * msim_topology_n_gpus (topo));
  MsimCommParams p;
  msim_comm_params_init (&p);
  p.p2p_nvlink_efficiency = spec->raw ? 1.0 : spec->p2p_efficiency;
  p.a2a_hierarchical = spec->algo == ALGO_HIERARCHICAL;
  p.a2a_window = spec->window;
  p.ring_channels = spec->channels;
  /* NCCL's algorithm and protocol choice, restricted as NCCL_ALGO and
   * NCCL_PROTO would restrict it. */
  p.nccl_tuning = !spec->raw; /* line rates: an ideal transfer, no NCCL costs */
  if (spec->algo == ALGO_RING)
    p.nccl_algos = 1u << MSIM_NCCL_ALGO_RING;
  else if (spec->algo == ALGO_NVLS)
    p.nccl_algos = 1u << MSIM_NCCL_ALGO_NVLS;
  if (spec->proto != PROTO_DEFAULT)
    p.nccl_protos = 1u << (spec->proto == PROTO_LL      ? MSIM_NCCL_PROTO_LL
                           : spec->proto == PROTO_LL128 ? MSIM_NCCL_PROTO_LL128
                                                        : MSIM_NCCL_PROTO_SIMPLE);
  guint nl = msim_comm_network_links (topo, &p, !spec->raw, NULL);
  g_autofree double *cap = g_new (double, MAX (nl, 1));
  msim_comm_network_links (topo, &p, !spec->raw, cap);
  g_autoptr (MsimNetwork) net = msim_network_new (engine, nl, cap, MSIM_NETWORK_MAXMIN);
  g_autoptr (MsimComm) comm = msim_comm_new (topo, net, tasks, &p);

  MsimColl *coll = NULL;
  D2hDone d2h = { -1 };
  gboolean sendrecv_ring = FALSE;
  switch (spec->op)
    {
      case OP_ALLTOALL:
        {
          /* nccl-tests: every rank sends S/n to every rank, itself included. */
          g_autofree double *m = g_new (double, (gsize)n *n);
          for (gsize i = 0; i < (gsize)n * n; i++)
            m[i] = spec->bytes / n;
          coll = msim_coll_alltoallv (comm, gpus, n, m, "alltoall", 0, -1);
          break;
        }
      case OP_ALLGATHER:
        coll = msim_coll_ring (comm, MSIM_COLL_ALLGATHER, gpus, n, spec->bytes, "allgather", 0, -1);
        break;
      case OP_REDUCESCATTER:
        coll = msim_coll_ring (comm, MSIM_COLL_REDUCESCATTER, gpus, n, spec->bytes, "reducescatter",
                               0, -1);
        break;
      case OP_ALLREDUCE:
        coll = msim_coll_ring (comm, MSIM_COLL_ALLREDUCE, gpus, n, spec->bytes, "allreduce", 0, -1);
        break;
      case OP_SENDRECV:
        if (spec->ranks != NULL)
          coll = msim_coll_sendrecv (comm, gpus[0], gpus[1], spec->bytes, "sendrecv", 0, -1);
        else
          {
            /* nccl-tests sendrecv_perf: on a communicator of n ranks, every
             * rank sends S to the next and receives S from the previous. */
            g_autofree double *m = g_new0 (double, (gsize)n * n);
            for (guint r = 0; r < n; r++)
              m[(gsize)r * n + (r + 1) % n] = spec->bytes;
            coll = msim_coll_alltoallv (comm, gpus, n, m, "sendrecv", 0, -1);
            sendrecv_ring = TRUE;
          }
        break;
      case OP_D2H:
        {
          guint src = msim_topology_gpu_vertex (topo, gpus[0]);
          guint dst = msim_topology_host_vertex (topo, msim_topology_gpu_host (topo, gpus[0]));
          MsimRoute route;
          if (!msim_topology_route (topo, src, dst, 0, &route, error))
            return FALSE;
          msim_network_start_flow (net, 0, route.links, route.n_links, route.latency_ps,
                                   spec->bytes, d2h_done, &d2h);
          break;
        }
    }
  if (coll != NULL)
    for (guint r = 0; r < msim_coll_n_ranks (coll); r++)
      msim_task_submit (msim_coll_task (coll, r));
  msim_engine_run (engine);
  res->wall_s = (double)(g_get_monotonic_time () - t0) / 1e6;
  res->n = n;
  if (coll != NULL)
    {
      if (!msim_coll_done (coll))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME, "the collective did not finish");
          return FALSE;
        }
      res->time_s = msim_time_to_seconds (msim_coll_end (coll) - msim_coll_start (coll));
      res->algbw_Bps = msim_coll_algbw (coll);
      res->busbw_Bps = msim_coll_busbw (coll);
      res->drain_s = msim_coll_drain_s (coll);
      g_strlcpy (res->algorithm, msim_coll_algorithm_label (coll), sizeof res->algorithm);
      if (sendrecv_ring)
        {
          /* nccl-tests: algbw = S / t, busbw = algbw for send/recv. */
          res->algbw_Bps = res->busbw_Bps = res->time_s > 0 ? spec->bytes / res->time_s : 0.0;
          g_strlcpy (res->algorithm, "p2p ring", sizeof res->algorithm);
        }
      MsimNcclAlgo ba;
      MsimNcclProto bp;
      res->predicted_s = res->nccl_pick_s = -1.0;
      res->nccl_pick[0] = '\0';
      if (msim_coll_nccl_prediction (coll, &res->predicted_s)
          && msim_coll_nccl_choice (coll, &ba, &bp, &res->nccl_pick_s))
        g_snprintf (res->nccl_pick, sizeof res->nccl_pick, "%s/%s", msim_nccl_algo_name (ba),
                    msim_nccl_proto_name (bp));
    }
  else
    {
      res->time_s = msim_time_to_seconds (d2h.end);
      g_strlcpy (res->algorithm, "-", sizeof res->algorithm);
      res->drain_s = 0.0;
      res->predicted_s = res->nccl_pick_s = -1.0;
      res->nccl_pick[0] = '\0';
      res->algbw_Bps = res->time_s > 0 ? spec->bytes / res->time_s : 0.0;
      res->busbw_Bps = res->algbw_Bps;
    }
  return TRUE;
}

static double
median (double *v, gsize n)
{
  gsl_sort (v, 1, n);
  return gsl_stats_median_from_sorted_data (v, 1, n);
}

/* Runs @spec @runs times; the simulated figures must agree exactly (the
 * simulator is deterministic) and the wall time is their median. */
static gboolean
simulate_runs (const CollSpec *spec, MsimTopology *topo, guint runs, CollResult *res,
               GError **error)
{
  g_autofree double *walls = g_new (double, runs);
  for (guint r = 0; r < runs; r++)
    {
      CollResult one;
      if (!simulate (spec, topo, &one, error))
        return FALSE;
      if (r > 0 && one.time_s != res->time_s)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "two runs of the same collective took different simulated times "
                       "(%.17g s, %.17g s): determinism broken",
                       res->time_s, one.time_s);
          return FALSE;
        }
      *res = one;
      walls[r] = one.wall_s;
    }
  res->wall_s = median (walls, runs);
  return TRUE;
}

/* ---- moesim bench collective ---- */

int
msim_bench_collective (int argc, char **argv)
{
  g_autofree char *op_s = NULL, *topo_s = NULL, *bytes_s = NULL, *algo_s = NULL, *ranks_s = NULL,
                  *proto_s = NULL;
  g_auto (GStrv) sets = NULL;
  gint gpus = 0, runs = 3, window = 0, channels = 0;
  gboolean raw = FALSE;
  gdouble p2p = MSIM_NCCL_P2P_NVLINK_EFFICIENCY;
  GOptionEntry entries[] = {
    { "op", 0, 0, G_OPTION_ARG_STRING, &op_s,
      "alltoall, allgather, reducescatter, allreduce, sendrecv or d2h (GPU to host memory)", "OP" },
    { "topology", 0, 0, G_OPTION_ARG_FILENAME, &topo_s, "Topology file or preset name", "T" },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets,
      "Override a [topology] key, e.g. --set nodes=2 (repeatable)", "KEY=VALUE" },
    { "gpus", 0, 0, G_OPTION_ARG_INT, &gpus,
      "Use the first N GPUs (default: all; sendrecv: each sends to the next, as sendrecv_perf)",
      "N" },
    { "ranks", 0, 0, G_OPTION_ARG_STRING, &ranks_s,
      "Use these GPUs, e.g. 0,8 (sendrecv: source,destination, a 2-rank communicator)", "LIST" },
    { "bytes", 0, 0, G_OPTION_ARG_STRING, &bytes_s,
      "Size as nccl-tests counts it: 524288000, 500M, 64MiB, 8G (K/M/G = 2^10/2^20/2^30)", "B" },
    { "algo", 0, 0, G_OPTION_ARG_STRING, &algo_s,
      "direct or hierarchical (alltoall); ring or nvls (allgather/reducescatter/allreduce; "
      "default: what NCCL's tuning model picks)",
      "A" },
    { "proto", 0, 0, G_OPTION_ARG_STRING, &proto_s,
      "ll, ll128 or simple: restrict NCCL's protocol as NCCL_PROTO does (default: NCCL's "
      "choice)",
      "P" },
    { "window", 0, 0, G_OPTION_ARG_INT, &window,
      "AllToAll direct: at most W peers in flight per sender (default 0: all)", "W" },
    { "channels", 0, 0, G_OPTION_ARG_INT, &channels,
      "Ring channels (default 0: one per GPU of a host across hosts, else 1)", "C" },
    { "p2p-efficiency", 0, 0, G_OPTION_ARG_DOUBLE, &p2p,
      "Send/recv share of NVLink relative to rings (default: NCCL calibration 0.94)", "E" },
    { "raw", 0, 0, G_OPTION_ARG_NONE, &raw,
      "Line rates: ignore link efficiencies, the send/recv efficiency and NCCL's models", NULL },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs,
      "Repetitions; the median wall time is reported (default 3)", "R" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- simulate one collective");
  g_option_context_set_description (
      ctx, "Prints the simulated time, algbw and busbw as nccl-tests defines them\n"
           "(doc/PERFORMANCE.md), and the simulator's wall time.  Link capacities are\n"
           "the topology's line rates times their efficiencies unless --raw is given.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc > 1)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench collective: unexpected argument '%s'", argv[1]));
  CollSpec spec = { 0 };
  int op = op_s ? find_choice (op_names, op_s) : -1;
  int algo = algo_s ? find_choice (algo_names, algo_s) : ALGO_DEFAULT;
  if (op < 0 || topo_s == NULL || bytes_s == NULL)
    return msim_cli_fail (g_error_new (
        MSIM_ERROR, MSIM_ERROR_INPUT,
        "bench collective: --op (alltoall, allgather, reducescatter, allreduce, sendrecv, d2h), "
        "--topology and --bytes are required"));
  if (algo < 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench collective: unknown --algo '%s' (direct, "
                                       "hierarchical, ring, nvls)",
                                       algo_s));
  int proto = proto_s ? find_choice (proto_names, proto_s) : PROTO_DEFAULT;
  if (proto < 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench collective: unknown --proto '%s' (ll, ll128, "
                                       "simple)",
                                       proto_s));
  if (!parse_bytes (bytes_s, &spec.bytes))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench collective: --bytes '%s' is not a size (e.g. "
                                       "524288000, 500M, 8G; at most 1e15)",
                                       bytes_s));
  if (gpus < 0 || runs < 1 || runs > 1000 || window < 0 || channels < 0
      || channels > MSIM_COMM_MAX_CHANNELS || !(p2p > 0.0 && p2p <= 1.0))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench collective: --gpus must be >= 0, --runs in 1..1000, "
                                       "--window >= 0, --channels in 0..%d, --p2p-efficiency in "
                                       "(0, 1]",
                                       MSIM_COMM_MAX_CHANNELS));
  if (ranks_s != NULL && gpus > 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench collective: give either --gpus or --ranks, not both"));
  GError *error = NULL;
  g_autofree guint *ranks = NULL;
  if (ranks_s != NULL && !parse_ranks (ranks_s, &ranks, &spec.n_ranks, &error))
    return msim_cli_fail (error);
  spec.op = (Op)op;
  spec.algo = (Algo)algo;
  spec.proto = (Proto)proto;
  spec.ranks = ranks;
  spec.n_gpus = (guint)gpus;
  spec.window = (guint)window;
  spec.channels = (guint)channels;
  spec.raw = raw;
  spec.p2p_efficiency = p2p;

  g_autoptr (MsimTopology) topo = load_topology (topo_s, (const char *const *)sets, &error);
  if (topo == NULL)
    return msim_cli_fail (error);
  CollResult res = { 0 };
  if (!simulate_runs (&spec, topo, (guint)runs, &res, &error))
    return msim_cli_fail (error);

  printf ("bench collective: %s on %u of %u GPUs of %s, %.0f bytes, %s, %s, p2p NVLink "
          "efficiency %g, %d runs\n",
          op_names[spec.op], res.n, msim_topology_n_gpus (topo), msim_topology_name (topo),
          spec.bytes, res.algorithm, raw ? "line rates" : "effective link rates",
          raw ? 1.0 : spec.p2p_efficiency, runs);
  if (res.predicted_s >= 0.0)
    printf ("NCCL tuning model: %s predicted %.3f us; NCCL's own pick %s (%.3f us)%s\n",
            res.algorithm, res.predicted_s * 1e6, res.nccl_pick, res.nccl_pick_s * 1e6,
            strcmp (res.nccl_pick, res.algorithm) == 0 ? ""
                                                       : ", not simulated or excluded");
  printf ("%-14s %5s %15s %-12s %12s %12s %12s %12s\n", "op", "gpus", "bytes", "algorithm",
          "time_us", "algbw_GB/s", "busbw_GB/s", "wall_s");
  printf ("%-14s %5u %15.0f %-12s %12.3f %12.2f %12.2f %12.6f\n", op_names[spec.op], res.n,
          spec.bytes, res.algorithm, res.time_s * 1e6, res.algbw_Bps / 1e9, res.busbw_Bps / 1e9,
          res.wall_s);
  return 0;
}

/* ---- moesim fidelity ---- */

typedef enum
{
  METRIC_BUSBW,
  METRIC_ALGBW,
  METRIC_TIME,
} Metric;

static const char *const metric_names[] = { "busbw", "algbw", "time", NULL };
static const char *const unit_names[] = { "GB/s", "ms", "us", NULL };
/* validation: checks the model; calibration: a parameter was derived from
 * it; spec: a line rate from a datasheet; unmodelled: a regime the model
 * knowingly does not capture (reported, not counted in the validation
 * geometric mean). */
static const char *const role_names[] = { "validation", "calibration", "spec", "unmodelled", NULL };
#define ROLE_VALIDATION 0
#define ROLE_UNMODELLED 3

typedef struct
{
  char *name, *source, *topology;
  char **overrides;
  CollSpec spec;
  guint *ranks;
  int metric, unit, role;
  double published, low, high; /* in the case's unit */
  double simulated;            /* in the case's unit */
  double error;                /* (simulated - published) / published */
  char algorithm[32];          /* what ran, e.g. "Ring/LL128" */
  int timed;                   /* TIMED_TRANSFER or TIMED_SENDER */
} FidCase;

/* What a published time covers: the whole transfer (nccl-tests: both
 * ranks' kernels), or only the sender's kernel (a profiler timing rank 0 of
 * a send/recv), which ends before the receiver has copied out the last
 * chunk (msim_nccl_p2p_drain_s). */
static const char *const timed_names[] = { "transfer", "sender", NULL };
#define TIMED_TRANSFER 0
#define TIMED_SENDER   1

static void
fid_case_free (gpointer p)
{
  FidCase *c = p;
  g_free (c->name);
  g_free (c->source);
  g_free (c->topology);
  g_strfreev (c->overrides);
  g_free (c->ranks);
  g_free (c);
}

static const char *const case_keys[]
    = { "name",      "description",   "topology",       "overrides", "op",   "gpus",
        "ranks",     "bytes",         "algo",           "proto",     "channels", "raw", "metric",
        "published", "published_low", "published_high", "unit",      "role", "source",
        "timed",     NULL };
static const char *const case_groups[] = { "case", NULL };

/* Reads one case file (see experiments/fidelity/README.md for the keys). */
static FidCase *
read_case (const char *path, GError **error)
{
  g_autoptr (MsimIni) ini = msim_ini_load (path, error);
  if (ini == NULL || !msim_ini_check_groups (ini, case_groups, error)
      || !msim_ini_check_keys (ini, "case", case_keys, error))
    return NULL;
  if (!msim_ini_has_group (ini, "case"))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no [case] group", path);
      return NULL;
    }
  g_autoptr (GPtrArray) holder = g_ptr_array_new_with_free_func (fid_case_free);
  FidCase *c = g_new0 (FidCase, 1);
  g_ptr_array_add (holder, c);
  g_autofree char *stem = g_path_get_basename (path);
  if (g_str_has_suffix (stem, ".ini"))
    stem[strlen (stem) - 4] = '\0';
  g_autofree char *overrides = NULL, *ranks = NULL, *bytes = NULL, *algo = NULL;
  int op = 0, algo_i = ALGO_DEFAULT, proto_i = PROTO_DEFAULT;
  gint64 gpus = 0, channels = 0;
  if (!msim_ini_get_string (ini, "case", "name", FALSE, stem, &c->name, error)
      || !msim_ini_get_string (ini, "case", "topology", TRUE, NULL, &c->topology, error)
      || !msim_ini_get_string (ini, "case", "overrides", FALSE, NULL, &overrides, error)
      || !msim_ini_get_choice (ini, "case", "op", TRUE, 0, op_names, &op, error)
      || !msim_ini_get_int64 (ini, "case", "gpus", FALSE, 0, 0, MSIM_TOPOLOGY_MAX_GPUS, &gpus,
                              error)
      || !msim_ini_get_string (ini, "case", "ranks", FALSE, NULL, &ranks, error)
      || !msim_ini_get_string (ini, "case", "bytes", TRUE, NULL, &bytes, error)
      || !msim_ini_get_choice (ini, "case", "algo", FALSE, ALGO_DEFAULT, algo_names, &algo_i, error)
      || !msim_ini_get_choice (ini, "case", "proto", FALSE, PROTO_DEFAULT, proto_names, &proto_i,
                               error)
      || !msim_ini_get_int64 (ini, "case", "channels", FALSE, 0, 0, MSIM_COMM_MAX_CHANNELS,
                              &channels, error)
      || !msim_ini_get_bool (ini, "case", "raw", FALSE, FALSE, &c->spec.raw, error)
      || !msim_ini_get_choice (ini, "case", "metric", TRUE, 0, metric_names, &c->metric, error)
      || !msim_ini_get_double (ini, "case", "published", TRUE, 0, 1e-300, 1e300, &c->published,
                               error)
      || !msim_ini_get_double (ini, "case", "published_low", FALSE, c->published, 1e-300, 1e300,
                               &c->low, error)
      || !msim_ini_get_double (ini, "case", "published_high", FALSE, c->published, 1e-300, 1e300,
                               &c->high, error)
      || !msim_ini_get_choice (ini, "case", "unit", TRUE, 0, unit_names, &c->unit, error)
      || !msim_ini_get_choice (ini, "case", "role", FALSE, 0, role_names, &c->role, error)
      || !msim_ini_get_string (ini, "case", "source", TRUE, NULL, &c->source, error)
      || !msim_ini_get_choice (ini, "case", "timed", FALSE, TIMED_TRANSFER, timed_names,
                               &c->timed, error))
    return NULL;
  if (!parse_bytes (bytes, &c->spec.bytes))
    {
      msim_ini_set_error (ini, error, "case", "bytes", "'%s' is not a size (e.g. 500M, 8G)", bytes);
      return NULL;
    }
  if (c->timed == TIMED_SENDER && (op != OP_SENDRECV || c->metric != METRIC_TIME))
    {
      msim_ini_set_error (ini, error, "case", "timed",
                          "'sender' is for the time of a sendrecv case");
      return NULL;
    }
  gboolean time_metric = c->metric == METRIC_TIME;
  if (time_metric != (c->unit != 0))
    {
      msim_ini_set_error (ini, error, "case", "unit", "metric %s is measured in %s",
                          metric_names[c->metric], time_metric ? "ms or us" : "GB/s");
      return NULL;
    }
  if (!(c->low <= c->published && c->published <= c->high))
    {
      msim_ini_set_error (ini, error, "case", "published",
                          "published value %g is outside [published_low, published_high] = "
                          "[%g, %g]",
                          c->published, c->low, c->high);
      return NULL;
    }
  if (ranks != NULL)
    {
      if (gpus != 0)
        {
          msim_ini_set_error (ini, error, "case", "ranks", "give either gpus or ranks, not both");
          return NULL;
        }
      GError *local = NULL;
      if (!parse_ranks (ranks, &c->ranks, &c->spec.n_ranks, &local))
        {
          msim_ini_set_error (ini, error, "case", "ranks", "%s", local->message);
          g_error_free (local);
          return NULL;
        }
    }
  if (overrides != NULL)
    {
      c->overrides = g_strsplit (overrides, ";", -1);
      for (char **o = c->overrides; *o; o++)
        g_strstrip (*o);
    }
  c->spec.op = (Op)op;
  c->spec.algo = (Algo)algo_i;
  c->spec.proto = (Proto)proto_i;
  c->spec.ranks = c->ranks;
  c->spec.n_gpus = (guint)gpus;
  c->spec.channels = (guint)channels;
  c->spec.p2p_efficiency = MSIM_NCCL_P2P_NVLINK_EFFICIENCY;
  GError *local = NULL;
  if (!spec_check_algo (&c->spec, &local))
    {
      msim_ini_set_error (ini, error, "case", "algo", "%s", local->message);
      g_error_free (local);
      return NULL;
    }
  return g_ptr_array_steal_index (holder, 0);
}

static double
unit_scale (int unit)
{
  return unit == 1 ? 1e3 : unit == 2 ? 1e6 : 1e-9; /* ms, us, GB/s */
}

static gboolean
run_case (FidCase *c, GError **error)
{
  GError *local = NULL;
  g_autoptr (MsimTopology) topo
      = load_topology (c->topology, (const char *const *)c->overrides, &local);
  CollResult res = { 0 };
  if (topo == NULL || !simulate_runs (&c->spec, topo, 1, &res, &local))
    {
      g_set_error (error, MSIM_ERROR,
                   local->domain == MSIM_ERROR ? (MsimErrorCode)local->code : MSIM_ERROR_INPUT,
                   "case %s: %s", c->name, local->message);
      g_error_free (local);
      return FALSE;
    }
  double v = c->metric == METRIC_TIME    ? res.time_s
             : c->metric == METRIC_ALGBW ? res.algbw_Bps
                                         : res.busbw_Bps;
  if (c->timed == TIMED_SENDER)
    v -= res.drain_s; /* what the simulation charged after the sender finished */
  c->simulated = v * unit_scale (c->unit);
  g_strlcpy (c->algorithm, res.algorithm, sizeof c->algorithm);
  c->error = (c->simulated - c->published) / c->published;
  if (fabs (c->error) < 5e-5)
    c->error = 0.0; /* print +0.0 %, not -0.0 %, for a line rate matched to 4 digits */
  return TRUE;
}

/* Geometric mean of (1 + |error|), minus 1: 0 for a perfect simulator, and
 * unlike a geometric mean of the errors themselves it is defined when one
 * error is 0 and is not pulled to 0 by it.  NaN when no case has @role
 * (role < 0: every case). */
static double
geomean_error (GPtrArray *cases, int role, guint *count)
{
  double sum = 0.0;
  guint n = 0;
  for (guint i = 0; i < cases->len; i++)
    {
      FidCase *c = g_ptr_array_index (cases, i);
      if (role >= 0 && c->role != role)
        continue;
      sum += log1p (fabs (c->error));
      n++;
    }
  *count = n;
  return n ? expm1 (sum / n) : NAN;
}

/* Largest |error|, over every case or (@modelled_only) without the
 * unmodelled ones. */
static double
max_error (GPtrArray *cases, gboolean modelled_only)
{
  double m = 0.0;
  for (guint i = 0; i < cases->len; i++)
    {
      const FidCase *c = g_ptr_array_index (cases, i);
      if (!modelled_only || c->role != ROLE_UNMODELLED)
        m = MAX (m, fabs (c->error));
    }
  return m;
}

static void
format_published (GString *s, const FidCase *c)
{
  if (c->low < c->high)
    g_string_append_printf (s, "%.4g (%.4g-%.4g)", c->published, c->low, c->high);
  else
    g_string_append_printf (s, "%.4g", c->published);
}

static char *
table_markdown (GPtrArray *cases)
{
  GString *s = g_string_new (
      "| case | metric | published | simulated | error | role | simulated as | source |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (guint i = 0; i < cases->len; i++)
    {
      FidCase *c = g_ptr_array_index (cases, i);
      g_string_append_printf (s, "| %s | %s (%s) | ", c->name, metric_names[c->metric],
                              unit_names[c->unit]);
      format_published (s, c);
      g_string_append_printf (s, " | %.4g | %+.1f %% | %s | %s | %s |\n", c->simulated,
                              100 * c->error, role_names[c->role], c->algorithm, c->source);
    }
  guint n_all, n_val;
  double g_all = geomean_error (cases, -1, &n_all),
         g_val = geomean_error (cases, ROLE_VALIDATION, &n_val);
  g_string_append_printf (s,
                          "\nGeometric-mean error: %.2f %% over the %u validation cases, %.2f %% "
                          "over all %u cases.  Largest error %.2f %% (%.2f %% with the "
                          "unmodelled cases).\n",
                          100 * g_val, n_val, 100 * g_all, n_all, 100 * max_error (cases, TRUE),
                          100 * max_error (cases, FALSE));
  return g_string_free (s, FALSE);
}

/* CSV with a header; text fields quoted. */
static char *
table_csv (GPtrArray *cases)
{
  GString *s = g_string_new (
      "case,metric,unit,published,published_low,published_high,simulated,rel_error,role,source,"
      "algorithm\n");
  for (guint i = 0; i < cases->len; i++)
    {
      FidCase *c = g_ptr_array_index (cases, i);
      g_autofree char *src = NULL;
      {
        g_auto (GStrv) parts = g_strsplit (c->source, "\"", -1);
        src = g_strjoinv ("\"\"", parts);
      }
      g_string_append_printf (s, "%s,%s,%s,%.10g,%.10g,%.10g,%.10g,%.6f,%s,\"%s\",%s\n", c->name,
                              metric_names[c->metric], unit_names[c->unit], c->published, c->low,
                              c->high, c->simulated, c->error, role_names[c->role], src,
                              c->algorithm);
    }
  return g_string_free (s, FALSE);
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *)a, *(char *const *)b);
}

int
msim_cmd_fidelity (int argc, char **argv)
{
  g_autofree char *out = NULL;
  gboolean check = FALSE;
  gdouble max_row = 0.10, max_geo = 0.05;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      "Also write the table to FILE (CSV if it ends in .csv, else Markdown)", "FILE" },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      "Exit with status 1 if a case other than an unmodelled one misses by more than "
      "--max-error, or the validation "
      "geometric mean exceeds --max-geomean",
      NULL },
    { "max-error", 0, 0, G_OPTION_ARG_DOUBLE, &max_row, "Per-case limit for --check (default 0.10)",
      "F" },
    { "max-geomean", 0, 0, G_OPTION_ARG_DOUBLE, &max_geo,
      "Geometric-mean limit for --check (default 0.05)", "F" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("[DIR] - simulate the published measurements in DIR");
  g_option_context_set_description (
      ctx, "DIR (default: experiments/fidelity in the data directory) holds one case file per\n"
           "published measurement (see its README.md).  Every case is simulated with the\n"
           "calibrated presets and NCCL constants, and the table of published value,\n"
           "simulated value and relative error is printed, with the geometric-mean error.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc > 2)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "fidelity: one directory at most (got '%s' too)", argv[2]));
  if (!(max_row > 0.0) || !(max_geo > 0.0))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "fidelity: --max-error and --max-geomean must be > 0"));
  g_autofree char *dir = argc == 2
                             ? g_strdup (argv[1])
                             : g_build_filename (msim_data_dir (), "experiments", "fidelity", NULL);
  GError *error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  if (d == NULL)
    {
      GError *e = g_error_new (MSIM_ERROR, MSIM_ERROR_IO, "fidelity: %s", error->message);
      g_error_free (error);
      return msim_cli_fail (e);
    }
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, ".ini"))
      g_ptr_array_add (paths, g_build_filename (dir, entry, NULL));
  g_ptr_array_sort (paths, compare_paths);
  if (paths->len == 0)
    return msim_cli_fail (
        g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "fidelity: no case files (*.ini) in %s", dir));
  g_autoptr (GPtrArray) cases = g_ptr_array_new_with_free_func (fid_case_free);
  for (guint i = 0; i < paths->len; i++)
    {
      FidCase *c = read_case (g_ptr_array_index (paths, i), &error);
      if (c == NULL)
        return msim_cli_fail (error);
      g_ptr_array_add (cases, c);
    }
  for (guint i = 0; i < cases->len; i++)
    if (!run_case (g_ptr_array_index (cases, i), &error))
      return msim_cli_fail (error);

  int w = 4; /* the case column fits the longest name */
  for (guint i = 0; i < cases->len; i++)
    w = MAX (w, (int)strlen (((FidCase *)g_ptr_array_index (cases, i))->name));
  printf ("%-*s %-6s %-22s %10s %8s  %-11s %s\n", w, "case", "metric", "published", "simulated",
          "error", "role", "simulated as");
  for (guint i = 0; i < cases->len; i++)
    {
      FidCase *c = g_ptr_array_index (cases, i);
      g_autoptr (GString) pub = g_string_new (NULL);
      format_published (pub, c);
      g_string_append_printf (pub, " %s", unit_names[c->unit]);
      printf ("%-*s %-6s %-22s %10.4g %+7.1f%%  %-11s %s\n", w, c->name, metric_names[c->metric],
              pub->str, c->simulated, 100 * c->error, role_names[c->role], c->algorithm);
    }
  guint n_all, n_val;
  double g_all = geomean_error (cases, -1, &n_all),
         g_val = geomean_error (cases, ROLE_VALIDATION, &n_val);
  printf ("geometric-mean error: %.2f%% (%u validation cases), %.2f%% (all %u cases); largest "
          "%.2f%% (%.2f%% with the unmodelled cases)\n",
          100 * g_val, n_val, 100 * g_all, n_all, 100 * max_error (cases, TRUE),
          100 * max_error (cases, FALSE));
  if (out != NULL)
    {
      g_autofree char *text
          = g_str_has_suffix (out, ".csv") ? table_csv (cases) : table_markdown (cases);
      const char *paths_out[] = { out };
      const char *data[] = { text };
      if (!msim_write_files_atomically (paths_out, data, 1, &error))
        return msim_cli_fail (error);
    }
  if (check && (max_error (cases, TRUE) > max_row || (n_val > 0 && g_val > max_geo)))
    {
      g_printerr ("moesim: fidelity: outside the limits (largest error %.2f%%, limit %.2f%%; "
                  "validation geometric mean %.2f%%, limit %.2f%%)\n",
                  100 * max_error (cases, TRUE), 100 * max_row, 100 * g_val, 100 * max_geo);
      return 1;
    }
  return 0;
}
