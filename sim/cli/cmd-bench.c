/* moesim bench: the simulator's own speed, measured by commands anyone can
 * rerun.  Each benchmark runs several times and reports every run plus the
 * median, because this class of machine is noisy. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_statistics_double.h>
#include <gsl/gsl_sort.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "event-queue.h"
#include "msim-error.h"
#include "network.h"
#include "step.h"
#include "topology.h"
#include "trace.h"
#include <sys/resource.h>

static double
median (double *v, gsize n)
{
  gsl_sort (v, 1, n);
  return gsl_stats_median_from_sorted_data (v, 1, n);
}

/* The classic hold model: a queue of @prefill events, then @ops operations
 * each popping the earliest event and pushing a new one at its time plus an
 * exponential increment (mean 1 us).  With @cancel_every > 0, every
 * cancel_every-th operation also cancels a random pending event and pushes a
 * replacement, exercising handle lookups.  Increments and victims are drawn
 * before the clock starts into tables of 2^16 entries used cyclically, so
 * the figure measures the queue: neither the RNG nor a table as large as the
 * run (80 MB for 10^7 operations, streamed through the cache the queue
 * needs) is timed. */
#define HOLD_TABLE (1u << 16)
static double
hold_run (guint prefill, guint64 ops, guint cancel_every, guint64 seed, guint64 *checksum)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, seed);
  const double mean_ps = 1e6;
  MsimTime *inc = g_new (MsimTime, HOLD_TABLE);
  for (gsize i = 0; i < HOLD_TABLE; i++)
    inc[i] = (MsimTime)gsl_ran_exponential (rng, mean_ps);
  guint32 *victims = g_new (guint32, HOLD_TABLE);
  for (gsize i = 0; i < HOLD_TABLE; i++)
    victims[i] = (guint32)gsl_rng_uniform_int (rng, prefill);
  gsl_rng_free (rng);

  MsimEventQueue *q = msim_event_queue_new ();
  msim_event_queue_reserve (q, prefill + 1);
  MsimEventHandle *handles = g_new (MsimEventHandle, prefill);
  gsize k = 0, v = 0;
  for (guint i = 0; i < prefill; i++)
    handles[i]
        = msim_event_queue_push (q, inc[k++ % HOLD_TABLE], NULL, GUINT_TO_POINTER (i));

  guint64 sum = 0;
  gint64 t0 = g_get_monotonic_time ();
  for (guint64 op = 0; op < ops; op++)
    {
      MsimEvent ev;
      msim_event_queue_pop (q, &ev);
      guint idx = GPOINTER_TO_UINT (ev.data);
      sum += (guint64)ev.time;
      handles[idx]
          = msim_event_queue_push (q, ev.time + inc[k++ % HOLD_TABLE], NULL, ev.data);
      if (cancel_every && op % cancel_every == 0)
        {
          guint victim = victims[v++ % HOLD_TABLE];
          MsimTime now = ev.time;
          msim_event_queue_cancel (q, handles[victim]);
          handles[victim]
              = msim_event_queue_push (q, now + inc[k++ % HOLD_TABLE], NULL,
                                       GUINT_TO_POINTER (victim));
        }
    }
  gint64 t1 = g_get_monotonic_time ();
  *checksum = sum;
  msim_event_queue_free (q);
  g_free (handles);
  g_free (inc);
  g_free (victims);
  return (double)(t1 - t0) / 1e6;
}

static int
bench_queue (int argc, char **argv)
{
  gint prefill = 100000;
  gint64 ops = 10000000;
  gint runs = 5;
  gint64 seed = 1;
  gint cancel_pct = 10;
  GOptionEntry entries[] = {
    { "prefill", 0, 0, G_OPTION_ARG_INT, &prefill, "Events in the queue (default 100000)", "N" },
    { "ops", 0, 0, G_OPTION_ARG_INT64, &ops, "Hold operations per run (default 1e7)", "N" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Repetitions; the median is reported (default 5)",
      "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "RNG seed (default 1)", "S" },
    { "cancel-percent", 0, 0, G_OPTION_ARG_INT, &cancel_pct,
      "Share of operations that also cancel a random event in the second variant (default 10)",
      "P" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- event queue hold-model benchmark");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (prefill < 1 || ops < 1 || runs < 1 || runs > 1000 || seed < 0 || cancel_pct < 1
      || cancel_pct > 100 || prefill > 10000000 || ops > G_GINT64_CONSTANT (10000000000))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench queue: --prefill must be in 1..1e7, --ops in "
                                       "1..1e10, --runs in 1..1000, --cancel-percent in 1..100, "
                                       "--seed >= 0"));

  printf ("bench queue: hold model, prefill %d events, %" G_GINT64_FORMAT
          " pop+push operations per run, exponential increments, seed %" G_GINT64_FORMAT
          ", %d runs\n",
          prefill, ops, seed, runs);
  printf ("%-14s %4s %10s %12s\n", "variant", "run", "seconds", "Mops/s");
  const struct
  {
    const char *name;
    guint cancel_every;
  } variants[] = { { "hold", 0 }, { "hold+cancel", (guint)(100 / cancel_pct) } };
  for (gsize vi = 0; vi < G_N_ELEMENTS (variants); vi++)
    {
      g_autofree double *rates = g_new (double, runs);
      guint64 check0 = 0;
      for (int r = 0; r < runs; r++)
        {
          guint64 check = 0;
          double s = hold_run ((guint)prefill, (guint64)ops, variants[vi].cancel_every,
                               (guint64)seed, &check);
          if (r == 0)
            check0 = check;
          else if (check != check0)
            return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_RUNTIME,
                                               "bench queue: runs with the same seed popped "
                                               "different events (determinism broken)"));
          rates[r] = (double)ops / s / 1e6;
          printf ("%-14s %4d %10.3f %12.2f\n", variants[vi].name, r + 1, s, rates[r]);
        }
      printf ("%-14s %4s %10s %12.2f  (median Mops/s)\n", variants[vi].name, "med", "",
              median (rates, runs));
      fflush (stdout);
    }
  return 0;
}

/* ---- bench network ---- */

typedef struct
{
  guint n;      /* GPUs */
  guint32 *src; /* per flow */
  guint32 *dst;
  double *bytes;
  guint n_flows;
} A2av;

/* Every ordered pair of distinct GPUs: equal bytes with skew 0, otherwise
 * lognormal(0, skew) multiples of the mean, as routing imbalance produces. */
static void
a2av_build (A2av *a, guint n, double skew, guint64 seed, double mean_bytes)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, seed);
  a->n = n;
  a->n_flows = n * (n - 1);
  a->src = g_new (guint32, a->n_flows);
  a->dst = g_new (guint32, a->n_flows);
  a->bytes = g_new (double, a->n_flows);
  guint k = 0;
  for (guint i = 0; i < n; i++)
    for (guint j = 0; j < n; j++)
      if (i != j)
        {
          a->src[k] = i;
          a->dst[k] = j;
          a->bytes[k] = skew > 0.0 ? mean_bytes * gsl_ran_lognormal (rng, -0.5 * skew * skew, skew)
                                   : mean_bytes;
          k++;
        }
  gsl_rng_free (rng);
}

static void
a2av_clear (A2av *a)
{
  g_free (a->src);
  g_free (a->dst);
  g_free (a->bytes);
}

typedef struct
{
  MsimTime last_end;
  guint done;
} BenchDone;

static void
bench_flow_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  BenchDone *d = data;
  d->last_end = MAX (d->last_end, info->end);
  d->done++;
}

/* A single non-blocking switch: GPU i has an uplink (link i) and a
 * downlink (link n + i), each at @bw.  Flow i->j crosses up(i), down(j). */
static double
run_star (const A2av *a, double bw, MsimNetworkStats *st, double *makespan_s, guint64 *steps)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  guint nl = 2 * a->n;
  g_autofree double *cap = g_new (double, nl);
  for (guint l = 0; l < nl; l++)
    cap[l] = bw;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (MsimNetwork) net = msim_network_new (e, nl, cap, MSIM_NETWORK_MAXMIN);
  BenchDone d = { 0, 0 };
  for (guint k = 0; k < a->n_flows; k++)
    {
      guint32 route[2] = { a->src[k], a->n + a->dst[k] };
      msim_network_start_flow (net, 0, route, 2, 0, a->bytes[k], bench_flow_done, &d);
    }
  msim_engine_run (e);
  gint64 t1 = g_get_monotonic_time ();
  g_assert (d.done == a->n_flows);
  msim_network_get_stats (net, st);
  *makespan_s = msim_time_to_seconds (d.last_end);
  *steps = msim_engine_steps (e);
  return (double)(t1 - t0) / 1e6;
}

/* The same AllToAllv on a topology: routes from the topology (ECMP by flow
 * index), the route latency paid before the first byte. */
static double
run_topology (const A2av *a, MsimTopology *topo, MsimNetworkStats *st, double *makespan_s,
              guint64 *steps)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  guint nl = msim_topology_n_links (topo);
  g_autofree double *cap = g_new (double, nl);
  for (guint l = 0; l < nl; l++)
    cap[l] = msim_topology_link_capacity (topo, l);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (MsimNetwork) net = msim_network_new (e, nl, cap, MSIM_NETWORK_MAXMIN);
  BenchDone d = { 0, 0 };
  for (guint k = 0; k < a->n_flows; k++)
    {
      MsimRoute route;
      guint sv = msim_topology_gpu_vertex (topo, a->src[k]);
      guint dv = msim_topology_gpu_vertex (topo, a->dst[k]);
      if (!msim_topology_route (topo, sv, dv, k, &route, NULL))
        g_error ("bench network: no route from GPU %u to GPU %u", a->src[k], a->dst[k]);
      msim_network_start_flow (net, 0, route.links, route.n_links, route.latency_ps, a->bytes[k],
                               bench_flow_done, &d);
    }
  msim_engine_run (e);
  gint64 t1 = g_get_monotonic_time ();
  g_assert (d.done == a->n_flows);
  msim_network_get_stats (net, st);
  *makespan_s = msim_time_to_seconds (d.last_end);
  *steps = msim_engine_steps (e);
  return (double)(t1 - t0) / 1e6;
}

static int
bench_network (int argc, char **argv)
{
  gint gpus = 64;
  gdouble skew = 1.0;
  gint64 seed = 1;
  gint runs = 3;
  gdouble mean_mib = 1.0;
  gdouble bw_gbps = 450.0;
  g_autofree char *which = NULL;
  GOptionEntry entries[] = {
    { "topology", 0, 0, G_OPTION_ARG_STRING, &which,
      "switch (one non-blocking switch), rail (the dgx-h100-cluster preset scaled to N/8 nodes; N "
      "a multiple of 8) or both (default)",
      "T" },
    { "gpus", 0, 0, G_OPTION_ARG_INT, &gpus,
      "GPUs (all-to-all over every ordered pair; default 64)", "N" },
    { "skew", 0, 0, G_OPTION_ARG_DOUBLE, &skew,
      "0 = equal bytes per pair; S > 0 = lognormal per-pair bytes with sigma S (default 1)", "S" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "RNG seed for the per-pair bytes (default 1)", "K" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Repetitions; the median is reported (default 3)",
      "R" },
    { "mean-mib", 0, 0, G_OPTION_ARG_DOUBLE, &mean_mib, "Mean bytes per pair in MiB (default 1)",
      "M" },
    { "bandwidth", 0, 0, G_OPTION_ARG_DOUBLE, &bw_gbps,
      "Per-GPU link bandwidth of the single switch in GB/s (default 450, NVLink4)", "GBPS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("- max-min network benchmark: one AllToAllv");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (gpus < 2 || gpus > 2048 || !(skew >= 0.0 && skew <= 10.0) || runs < 1 || runs > 100
      || seed < 0 || !(mean_mib > 0.0 && mean_mib <= 1e6) || !(bw_gbps > 0.0 && bw_gbps < 1e6))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench network: --gpus must be in 2..2048, --skew in "
                                       "0..10, --runs in 1..100, --seed >= 0, --mean-mib in "
                                       "(0, 1e6], --bandwidth in (0, 1e6)"));
  gboolean do_switch
      = which == NULL || strcmp (which, "both") == 0 || strcmp (which, "switch") == 0;
  gboolean do_rail = which == NULL || strcmp (which, "both") == 0 || strcmp (which, "rail") == 0;
  if (!do_switch && !do_rail)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench network: --topology must be switch, rail or both"));
  g_autoptr (MsimTopology) rail = NULL;
  if (do_rail)
    {
      if (gpus % 8 != 0)
        {
          if (which != NULL && strcmp (which, "rail") == 0)
            return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                               "bench network: the rail topology needs --gpus a "
                                               "multiple of 8"));
          do_rail = FALSE;
        }
      else
        {
          g_autofree char *ov = g_strdup_printf ("nodes=%d", gpus / 8);
          const char *ovs[] = { ov, NULL };
          GError *error = NULL;
          rail = msim_topology_load_preset ("dgx-h100-cluster", ovs, &error);
          if (rail == NULL)
            return msim_cli_fail (error);
        }
    }
  A2av a;
  a2av_build (&a, (guint)gpus, skew, (guint64)seed, mean_mib * 1048576.0);
  printf ("bench network: AllToAllv on %d GPUs, %u flows, skew %g, seed %" G_GINT64_FORMAT
          ", max-min, %d runs\n",
          gpus, a.n_flows, skew, seed, runs);
  printf ("%-10s %4s %9s %9s %11s %10s %9s %10s %12s %12s\n", "topology", "run", "steps", "batches",
          "link-steps", "bn-moves", "refills", "wall_s", "flows/s", "makespan_s");
  g_autofree double *walls = g_new (double, runs);
  for (int topo = 0; topo < 2; topo++)
    {
      if ((topo == 0 && !do_switch) || (topo == 1 && !do_rail))
        continue;
      const char *tname = topo == 0 ? "switch" : "rail";
      for (int r = 0; r < runs; r++)
        {
          MsimNetworkStats st;
          double makespan;
          guint64 steps;
          walls[r] = topo == 0 ? run_star (&a, bw_gbps * 1e9, &st, &makespan, &steps)
                               : run_topology (&a, rail, &st, &makespan, &steps);
          printf ("%-10s %4d %9" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT " %11" G_GUINT64_FORMAT
                  " %10" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT " %10.4f %12.0f %12.6g\n",
                  tname, r + 1, steps, st.batches, st.links_solved, st.bn_changes, st.fallbacks,
                  walls[r], a.n_flows / walls[r], makespan);
          fflush (stdout);
        }
      double med = median (walls, runs);
      printf ("%-10s %4s %9s %9s %11s %10s %9s %10.4f %12.0f  (median)\n", tname, "med", "", "", "",
              "", "", med, a.n_flows / med);
    }
  a2av_clear (&a);
  return 0;
}

/* ---- bench step ---- */

/* The first @tokens tokens of the shipped Mixtral traces, concatenated. */
static MsimTrace *
mixtral_tokens (guint64 tokens, GError **error)
{
  static const char *const cats[] = { "coding", "math", "humanities", "writing" };
  g_autoptr (MsimTrace) out = msim_trace_new (tokens, 32, 2, 8, 0, error);
  if (!out)
    return NULL;
  guint64 t = 0;
  for (guint c = 0; c < G_N_ELEMENTS (cats) && t < tokens; c++)
    {
      g_autofree char *rel
          = g_strdup_printf ("workloads/traces/mixtral-8x7b-mtbench/%s.json", cats[c]);
      g_autofree char *path = g_build_filename (msim_data_dir (), rel, NULL);
      g_autoptr (MsimTrace) tr = msim_trace_load (path, error);
      if (!tr)
        return NULL;
      for (gsize i = 0; i < tr->tokens && t < tokens; i++, t++)
        for (guint l = 0; l < 32; l++)
          for (guint r = 0; r < 2; r++)
            msim_trace_set_expert (out, t, l, r, msim_trace_expert (tr, i, l, r));
    }
  if (t < tokens)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "bench step: the shipped traces hold only %" G_GUINT64_FORMAT " tokens", t);
      return NULL;
    }
  return g_steal_pointer (&out);
}

static int
bench_step (int argc, char **argv)
{
  gint nodes = 16;
  gint64 tokens = 16384;
  gint runs = 3;
  g_autofree char *which = NULL;
  g_autofree char *route_thread = NULL;
  GOptionEntry entries[] = {
    { "nodes", 0, 0, G_OPTION_ARG_INT, &nodes, "Wilkes3-like nodes of 4 A100 (default 16)", "N" },
    { "route-thread", 0, 0, G_OPTION_ARG_STRING, &route_thread,
      "Route tokens on a second thread: auto (default; when there are several cores), on or off",
      "WHEN" },
    { "network", 0, 0, G_OPTION_ARG_STRING, &which, "maxmin, analytical or both (default)",
      "MODEL" },
    { "tokens", 0, 0, G_OPTION_ARG_INT64, &tokens, "Prefill tokens (default 16384)", "T" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Repetitions; the median is reported (default 3)",
      "R" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (
      "- one Mixtral-8x7B prefill step with trace replay, max-min and analytical");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (nodes < 1 || nodes > 1024 || tokens < 4 * nodes || tokens > 47481 || runs < 1 || runs > 100)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench step: --nodes in 1..1024, --tokens in 4*nodes..47481 "
                                       "(the shipped traces), --runs in 1..100"));
  if (which && strcmp (which, "both") != 0 && strcmp (which, "maxmin") != 0
      && strcmp (which, "analytical") != 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench step: --network is maxmin, analytical or both, "
                                       "not '%s'",
                                       which));
  int rt = MSIM_ROUTE_THREAD_AUTO;
  if (route_thread && strcmp (route_thread, "on") == 0)
    rt = MSIM_ROUTE_THREAD_ON;
  else if (route_thread && strcmp (route_thread, "off") == 0)
    rt = MSIM_ROUTE_THREAD_OFF;
  else if (route_thread && strcmp (route_thread, "auto") != 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "bench step: --route-thread is auto, on or off, not '%s'",
                                       route_thread));
  GError *error = NULL;
  g_autofree char *ov = g_strdup_printf ("nodes=%d", nodes);
  const char *ovs[] = { ov, NULL };
  g_autoptr (MsimTopology) topo = msim_topology_load_preset ("wilkes3", ovs, &error);
  g_autoptr (MsimModelSpec) model
      = topo ? msim_model_spec_load_preset ("mixtral-8x7b", &error) : NULL;
  g_autoptr (MsimGpuSpec) gpu = model ? msim_gpu_spec_load_preset ("a100-sxm4-80gb", &error) : NULL;
  g_autoptr (MsimTrace) trace = gpu ? mixtral_tokens ((guint64)tokens, &error) : NULL;
  if (!trace)
    return msim_cli_fail (error);
  guint G = msim_topology_n_gpus (topo);
  /* Contiguous expert parallelism in groups of 8 GPUs (E = 8). */
  g_autofree guint *gpu_of = g_new (guint, 32 * 8);
  g_autoptr (GPtrArray) lists = g_ptr_array_new_with_free_func ((GDestroyNotify)g_array_unref);
  for (guint i = 0; i < 32 * 8; i++)
    {
      GArray *l = g_array_new (FALSE, FALSE, sizeof (guint));
      for (guint g = i % 8; g < G; g += 8)
        g_array_append_val (l, g);
      g_ptr_array_add (lists, l);
    }
  g_autoptr (MsimExpertMap) map = msim_expert_map_new (32, 8, (GArray *const *)lists->pdata);
  printf ("bench step: Mixtral-8x7B prefill, %" G_GINT64_FORMAT " tokens, %u GPUs (%d nodes x 4 "
          "A100, wilkes3), baseline-ep, trace replay, %d runs\n",
          tokens, G, nodes, runs);
  printf ("%-11s %4s %12s %14s %10s\n", "network", "run", "wall_s", "simulated_ms", "tokens/s");
  g_autofree double *walls = g_new (double, runs);
  for (int mode = 0; mode < 2; mode++)
    {
      const char *name = mode == 0 ? "maxmin" : "analytical";
      if (which && strcmp (which, "both") != 0 && strcmp (which, name) != 0)
        continue;
      for (int r = 0; r < runs; r++)
        {
          MsimStepOptions o;
          msim_step_options_init (&o);
          o.tokens = (guint64)tokens;
          o.network = mode == 0 ? MSIM_NETWORK_MAXMIN : MSIM_NETWORK_ANALYTICAL;
          o.route_thread = rt;
          gint64 t0 = g_get_monotonic_time ();
          g_autoptr (MsimStepRun) run = msim_step_run (topo, model, gpu, trace, map, &o, &error);
          gint64 t1 = g_get_monotonic_time ();
          if (!run)
            return msim_cli_fail (error);
          walls[r] = (double)(t1 - t0) / 1e6;
          printf ("%-11s %4d %12.4f %14.6f %10.0f\n", name, r + 1, walls[r],
                  1e3 * msim_step_run_time_s (run), msim_step_run_tokens_per_s (run));
          fflush (stdout);
        }
      printf ("%-11s %4s %12.4f  (median)\n", name, "med", median (walls, runs));
    }
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  printf ("peak memory (max RSS): %.1f MiB\n", ru.ru_maxrss / 1024.0);
  return 0;
}

int
msim_cmd_bench (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      FILE *out = argc < 2 ? stderr : stdout;
      fprintf (out, "Usage: moesim bench WHAT [OPTION...]\n\n"
                    "  queue     event-queue hold model (events/s)\n"
                    "  network   max-min network solver on an AllToAllv (flows/s)\n"
                    "  step      one Mixtral-8x7B prefill step on 64 GPUs (wall time)\n"
                    "  collective  one collective: simulated time, algbw, busbw (nccl-tests)\n"
                    "  place     placement policies: default heuristic vs GLPK ILP\n"
                    "\nRun 'moesim bench WHAT --help' for options.\n");
      return argc < 2 ? 2 : 0;
    }
  const char *what = argv[1];
  g_autofree char *prg = g_strdup_printf ("%s %s", argv[0], what);
  argv[1] = prg;
  if (strcmp (what, "queue") == 0)
    return bench_queue (argc - 1, argv + 1);
  if (strcmp (what, "network") == 0)
    return bench_network (argc - 1, argv + 1);
  if (strcmp (what, "step") == 0)
    return bench_step (argc - 1, argv + 1);
  if (strcmp (what, "collective") == 0)
    return msim_bench_collective (argc - 1, argv + 1);
  if (strcmp (what, "place") == 0)
    return msim_bench_place (argc - 1, argv + 1);
  g_printerr ("moesim: error: bench: unknown benchmark '%s' (known: queue, network, step, "
              "collective, place)\n",
              what);
  return 2;
}
