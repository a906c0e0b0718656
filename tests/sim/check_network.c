#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#include "msim-check.h"
#include "network.h"

#define S(x) ((MsimTime)((x)*1e12 + 0.5)) /* seconds to ps for exact literals */

typedef struct
{
  MsimTime end[4096];
  MsimTime first_byte[4096];
  int ndone;
  int order[4096];
} Record;

static void
record_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  Record *r = data;
  guint32 idx = (guint32)(info->id & 0xffffffffu);
  r->end[idx] = info->end;
  r->first_byte[idx] = info->first_byte;
  r->order[r->ndone++] = (int)idx;
}

/* Flow slot indices are assigned 0, 1, 2... in start order while nothing
 * has finished, which these tests rely on to index Record. */

START_TEST (test_one_flow)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 1e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 1, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 l0 = 0;
  msim_network_start_flow (net, 0, &l0, 1, S (1e-6), 1e9, record_done, &r);
  ck_assert_int_eq (msim_engine_run (e), MSIM_STEP_IDLE);
  ck_assert_int_eq (r.ndone, 1);
  ck_assert_int_eq (r.first_byte[0], S (1e-6));
  ck_assert_int_eq (r.end[0], S (1.0) + S (1e-6));
  msim_ck_assert_near (msim_network_link_bytes (net, 0), 1e9, 1e-12);
  MsimNetworkStats st;
  msim_network_get_stats (net, &st);
  ck_assert (st.bytes_delivered == st.bytes_started);
}
END_TEST

START_TEST (test_two_flows_share)
{
  /* Two flows on one link get half each; when the first finishes the
   * second takes the whole link: 1 GB and 2 GB on 1 GB/s end at 2 s and 3 s. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 1e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 1, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 l0 = 0;
  MsimFlowId a = msim_network_start_flow (net, 0, &l0, 1, 0, 1e9, record_done, &r);
  MsimFlowId b = msim_network_start_flow (net, 0, &l0, 1, 0, 2e9, record_done, &r);
  ck_assert_int_eq (msim_engine_step (e), MSIM_STEP_OK); /* t = 0: both start */
  ck_assert (msim_network_flow_rate (net, a) == 5e8);
  ck_assert (msim_network_flow_rate (net, b) == 5e8);
  msim_engine_run (e);
  ck_assert_int_eq (r.end[0], S (2.0));
  ck_assert_int_eq (r.end[1], S (3.0));
  ck_assert_int_eq (r.order[0], 0);
  ck_assert (msim_network_flow_rate (net, a) < 0); /* finished: unknown id */
}
END_TEST

START_TEST (test_slow_nic_residual)
{
  /* Link 0: NVLink 100 GB/s shared by A and B; link 1: a 10 GB/s NIC only A
   * crosses.  A is held to 10 GB/s by the NIC, and B gets the rest, 90. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 100e9, 10e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 2, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 ra[] = { 0, 1 }, rb[] = { 0 };
  MsimFlowId a = msim_network_start_flow (net, 0, ra, 2, 0, 10e9, record_done, &r);
  MsimFlowId b = msim_network_start_flow (net, 0, rb, 1, 0, 90e9, record_done, &r);
  msim_engine_step (e);
  msim_ck_assert_near (msim_network_flow_rate (net, a), 10e9, 1e-12);
  msim_ck_assert_near (msim_network_flow_rate (net, b), 90e9, 1e-12);
  msim_ck_assert_near (msim_network_link_load (net, 0), 100e9, 1e-12);
  msim_engine_run (e);
  /* Both finish after exactly one second. */
  ck_assert_int_eq (r.end[0], S (1.0));
  ck_assert_int_eq (r.end[1], S (1.0));
}
END_TEST

START_TEST (test_staggered)
{
  /* A: 2 GB from t=0; B: 0.5 GB from t=1 s, on one 1 GB/s link.  A runs
   * alone for 1 s (1 GB), both share until B ends at 2 s, A ends at 2.5 s. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 1e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 1, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 l0 = 0;
  msim_network_start_flow (net, 0, &l0, 1, 0, 2e9, record_done, &r);
  msim_network_start_flow (net, S (1.0), &l0, 1, 0, 0.5e9, record_done, &r);
  msim_engine_run (e);
  ck_assert_int_eq (r.end[1], S (2.0));
  ck_assert_int_eq (r.end[0], S (2.5));
  msim_ck_assert_near (msim_network_link_bytes (net, 0), 2.5e9, 1e-12);
}
END_TEST

START_TEST (test_new_bottleneck_after_removal)
{
  /* A crosses link 0 (10 B/s, shared with C) and link 2 (7 B/s, alone).
   * While C runs both get 5 on link 0; when C ends at 2 s, A is held by
   * link 2, which was no bottleneck before: 90 bytes at 7 B/s. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 10.0, 100.0, 7.0 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 3, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 ra[] = { 0, 2 }, rc[] = { 0 };
  msim_network_start_flow (net, 0, ra, 2, 0, 100.0, record_done, &r);
  msim_network_start_flow (net, 0, rc, 1, 0, 10.0, record_done, &r);
  msim_engine_run (e);
  ck_assert_int_eq (r.end[1], S (2.0));
  msim_ck_assert_near (msim_time_to_seconds (r.end[0]), 2.0 + 90.0 / 7.0, 1e-12);
  MsimNetworkStats st;
  msim_network_get_stats (net, &st);
  ck_assert_int_ge (st.fallbacks, 1); /* link 2 was not a candidate at first */
}
END_TEST

START_TEST (test_latency_only_and_local)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 1e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 1, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 l0 = 0;
  /* Zero bytes: done after the latency.  No links: done after the latency. */
  msim_network_start_flow (net, S (1e-3), &l0, 1, S (2e-6), 0.0, record_done, &r);
  msim_network_start_flow (net, 0, NULL, 0, S (5e-6), 1e6, record_done, &r);
  /* A real flow alongside is not slowed by either. */
  msim_network_start_flow (net, 0, &l0, 1, 0, 1e6, record_done, &r);
  msim_engine_run (e);
  ck_assert_int_eq (r.end[0], S (1e-3) + S (2e-6));
  ck_assert_int_eq (r.end[1], S (5e-6));
  ck_assert_int_eq (r.end[2], S (1e-3));
}
END_TEST

START_TEST (test_extreme_capacities)
{
  /* 1 B/s and 10 TB/s links in one network. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 1.0, 1e13 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 2, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (net, TRUE, TRUE);
  Record r = { 0 };
  guint32 both[] = { 1, 0 }, fast[] = { 1 };
  msim_network_start_flow (net, 0, both, 2, 0, 10.0, record_done, &r);
  msim_network_start_flow (net, 0, fast, 1, 0, 1e13, record_done, &r);
  msim_engine_run (e);
  ck_assert_int_eq (r.end[0], S (10.0));
  /* The fast flow gets 1e13 - 1 B/s. */
  msim_ck_assert_near ((double)r.end[1], 1e13 / (1e13 - 1.0) * 1e12, 1e-12);
}
END_TEST

START_TEST (test_many_simultaneous)
{
  /* 3000 equal flows on one link all end at the same picosecond, in one
   * batch, and conserve bytes. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 3e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 1, cap, MSIM_NETWORK_MAXMIN);
  static Record r;
  memset (&r, 0, sizeof r);
  guint32 l0 = 0;
  for (int i = 0; i < 3000; i++)
    msim_network_start_flow (net, 0, &l0, 1, 0, 1e6, record_done, &r);
  msim_engine_run (e);
  ck_assert_int_eq (r.ndone, 3000);
  for (int i = 0; i < 3000; i++)
    ck_assert_int_eq (r.end[i], S (1.0));
  MsimNetworkStats st;
  msim_network_get_stats (net, &st);
  ck_assert_int_eq (msim_engine_steps (e), 2); /* t = 0 and t = 1 s: one batch each */
  ck_assert_int_eq (st.links_solved, 1);       /* one link saturation computed, for all */
  ck_assert (st.bytes_delivered == 3e9);
  msim_ck_assert_near (msim_network_link_bytes (net, 0), 3e9, 1e-9);
}
END_TEST

static guint n_criticals;

static void
count_criticals (const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
  (void)domain;
  (void)level;
  (void)message;
  (void)data;
  n_criticals++;
}

/* A route must be a simple path: a repeated link is refused (a critical,
 * id 0), while distinct links whose ids agree modulo 64 (the fast filter
 * collides) are accepted. */
START_TEST (test_route_simple_path)
{
  double cap[130];
  for (guint l = 0; l < 130; l++)
    cap[l] = 1e9;
  for (int model = 0; model < 2; model++)
    {
      g_autoptr (MsimEngine) e = msim_engine_new ();
      g_autoptr (MsimNetwork) net = msim_network_new (
          e, 130, cap, model ? MSIM_NETWORK_ANALYTICAL : MSIM_NETWORK_MAXMIN);
      guint handler = g_log_set_handler ("moesim", G_LOG_LEVEL_CRITICAL, count_criticals, NULL);
      GLogFunc old = g_log_set_default_handler ((GLogFunc)count_criticals, NULL);
      n_criticals = 0;
      const guint32 ok[] = { 5, 69, 133 - 4 };
      const guint32 dup[] = { 5, 69, 5 };
      ck_assert_uint_ne (msim_network_start_flow (net, 0, ok, 3, 0, 1e6, NULL, NULL), 0);
      ck_assert_uint_eq (n_criticals, 0);
      ck_assert_uint_eq (msim_network_start_flow (net, 0, dup, 3, 0, 1e6, NULL, NULL), 0);
      ck_assert_uint_eq (n_criticals, 1);
      g_log_set_default_handler (old, NULL);
      g_log_remove_handler ("moesim", handler);
      msim_engine_run (e);
      /* Only the accepted flow moved: 1 MB on each of its links. */
      msim_ck_assert_near (msim_network_link_bytes (net, 5), 1e6, 1e-12);
      msim_ck_assert_near (msim_network_link_bytes (net, 69), 1e6, 1e-12);
      msim_ck_assert_near (msim_network_link_bytes (net, 129), 1e6, 1e-12);
    }
}
END_TEST

START_TEST (test_analytical)
{
  /* Analytical mode: no sharing, bottleneck capacity per flow. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  double cap[] = { 1e9, 4e9 };
  g_autoptr (MsimNetwork) net = msim_network_new (e, 2, cap, MSIM_NETWORK_ANALYTICAL);
  Record r = { 0 };
  guint32 both[] = { 0, 1 }, one[] = { 1 };
  msim_network_start_flow (net, 0, both, 2, S (1e-6), 1e9, record_done, &r);
  msim_network_start_flow (net, 0, one, 1, 0, 4e9, record_done, &r);
  msim_engine_run (e);
  ck_assert_int_eq (r.end[0], S (1.0) + S (1e-6));
  ck_assert_int_eq (r.end[1], S (1.0));
}
END_TEST


/* Analytical mode on random flows: every end time is exactly start +
 * latency + bytes at the slowest link's capacity (the same rounding as
 * msim_time_for_bytes), link loads at every completion equal the rates of
 * the flows then moving, and each link carries the bytes of its flows. */
#define AN_FLOWS 300
#define AN_LINKS 12

typedef struct
{
  MsimNetwork *net;
  double cap[AN_LINKS];
  guint32 route[AN_FLOWS][4];
  guint nhops[AN_FLOWS];
  double bytes[AN_FLOWS];
  MsimTime first[AN_FLOWS], end[AN_FLOWS];
  double rate[AN_FLOWS];
  int done;
  int load_checks;
  guint32 order[AN_FLOWS]; /* flows in completion-callback order */
} AnCase;

static void
an_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  AnCase *c = data;
  guint32 i = (guint32)(info->id & 0xffffffffu);
  ck_assert_int_eq (info->end, c->end[i]);
  ck_assert_int_eq (info->first_byte, c->first[i]);
  c->order[c->done++] = i;
  /* Loads now: the flows past their first byte and before their end. */
  MsimTime now = info->end;
  for (guint l = 0; l < AN_LINKS; l++)
    {
      double want = 0.0;
      guint moving = 0;
      for (guint f = 0; f < AN_FLOWS; f++)
        if (c->bytes[f] > 0.0 && c->nhops[f] > 0 && c->first[f] <= now && now < c->end[f])
          for (guint j = 0; j < c->nhops[f]; j++)
            if (c->route[f][j] == l)
              {
                want += c->rate[f];
                moving++;
              }
      msim_ck_assert_near (msim_network_link_load (net, l), want, 1e-9);
      ck_assert_uint_eq (msim_network_link_flows (net, l), moving);
      c->load_checks++;
    }
}

/* The order in which the analytical model calls back at equal times: the
 * events of one time run in the order they were queued, first bytes (all
 * queued at start, in start order) before ends (queued at first bytes), so
 * a flow that ends at its first byte comes first, then the others by
 * (first byte, start order). */
static AnCase *an_sort_case;

static int
an_cmp_completion (const void *pa, const void *pb)
{
  const AnCase *c = an_sort_case;
  guint32 a = *(const guint32 *)pa, b = *(const guint32 *)pb;
  gboolean ea = c->end[a] > c->first[a], eb = c->end[b] > c->first[b];
  if (c->end[a] != c->end[b])
    return c->end[a] < c->end[b] ? -1 : 1;
  if (ea != eb)
    return ea ? 1 : -1;
  if (c->first[a] != c->first[b])
    return c->first[a] < c->first[b] ? -1 : 1;
  return a < b ? -1 : a > b;
}

/* @n_lat distinct route latencies: more than the model's FIFOs (8) sends
 * first bytes through its queue too, and starts in the future out of order
 * do in any case; results and callback order must not depend on that. */
static void
analytical_random (guint seed, guint n_lat)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, seed);
  g_autoptr (MsimEngine) e = msim_engine_new ();
  static AnCase c;
  memset (&c, 0, sizeof c);
  for (guint l = 0; l < AN_LINKS; l++)
    c.cap[l] = 1e9 * (1 + gsl_rng_uniform_int (rng, 50));
  g_autoptr (MsimNetwork) net = msim_network_new (e, AN_LINKS, c.cap, MSIM_NETWORK_ANALYTICAL);
  c.net = net;
  for (guint f = 0; f < AN_FLOWS; f++)
    {
      /* 0-4 distinct links; some zero-byte flows; starts and latencies on a
       * coarse grid so that many events coincide. */
      guint n = (guint)gsl_rng_uniform_int (rng, 5);
      guint used = 0;
      while (c.nhops[f] < n)
        {
          guint l = (guint)gsl_rng_uniform_int (rng, AN_LINKS);
          if (used & (1u << l))
            continue;
          used |= 1u << l;
          c.route[f][c.nhops[f]++] = l;
        }
      c.bytes[f] = f % 17 == 0 ? 0.0 : (double)(1 + gsl_rng_uniform_int (rng, 1u << 24));
      MsimTime start = (MsimTime)gsl_rng_uniform_int (rng, 50) * 1000000;
      MsimTime latency = (MsimTime)gsl_rng_uniform_int (rng, n_lat) * 500000;
      c.first[f] = start + latency;
      c.end[f] = c.first[f];
      if (c.nhops[f] > 0 && c.bytes[f] > 0.0)
        {
          double r = c.cap[c.route[f][0]];
          for (guint j = 1; j < c.nhops[f]; j++)
            r = MIN (r, c.cap[c.route[f][j]]);
          c.rate[f] = r;
          MsimTime dt = 0;
          ck_assert (msim_time_for_bytes (c.bytes[f], r, &dt));
          c.end[f] = c.first[f] + dt;
        }
      msim_network_start_flow (net, start, c.route[f], c.nhops[f], latency, c.bytes[f], an_done,
                               &c);
    }
  msim_engine_run (e);
  ck_assert_int_eq (c.done, AN_FLOWS);
  ck_assert_int_gt (c.load_checks, 0);
  for (guint l = 0; l < AN_LINKS; l++)
    {
      double want = 0.0;
      for (guint f = 0; f < AN_FLOWS; f++)
        for (guint j = 0; j < c.nhops[f]; j++)
          if (c.route[f][j] == l)
            want += c.bytes[f];
      msim_ck_assert_near (msim_network_link_bytes (net, l), want, 1e-9);
      ck_assert (msim_network_link_load (net, l) == 0.0);
      ck_assert_uint_eq (msim_network_link_flows (net, l), 0);
    }
  static guint32 want_order[AN_FLOWS];
  for (guint32 f = 0; f < AN_FLOWS; f++)
    want_order[f] = f;
  an_sort_case = &c;
  qsort (want_order, AN_FLOWS, sizeof want_order[0], an_cmp_completion);
  for (guint32 f = 0; f < AN_FLOWS; f++)
    ck_assert_uint_eq (c.order[f], want_order[f]);
  gsl_rng_free (rng);
}

START_TEST (test_analytical_random)
{
  analytical_random (4242, 4);
  analytical_random (777, 12);
}
END_TEST

/* ---- randomized comparison against a from-scratch simulation ---- */

typedef struct
{
  guint n_links;
  double cap[64];
  guint n_flows;
  MsimTime start[400];
  MsimTime latency[400];
  double bytes[400];
  guint32 off[401];
  guint32 links[400 * 8];
} Scenario;

static void
make_scenario (Scenario *sc, gsl_rng *rng, int variant)
{
  sc->n_links = 4 + (guint)gsl_rng_uniform_int (rng, 40);
  for (guint l = 0; l < sc->n_links; l++)
    {
      /* Few distinct capacities make ties (equal shares) common. */
      static const double caps[] = { 1e9, 2e9, 4e9, 25e9, 50e9, 450e9 };
      sc->cap[l] = variant == 0 ? caps[gsl_rng_uniform_int (rng, 6)]
                                : 1e9 * (0.5 + 10.0 * gsl_rng_uniform (rng));
    }
  sc->n_flows = 50 + (guint)gsl_rng_uniform_int (rng, 250);
  sc->off[0] = 0;
  for (guint f = 0; f < sc->n_flows; f++)
    {
      guint hops = 1 + (guint)gsl_rng_uniform_int (rng, MIN (6u, sc->n_links));
      guint32 *ls = &sc->links[sc->off[f]];
      for (guint h = 0; h < hops; h++)
        {
          guint32 l;
          gboolean dup;
          do
            {
              l = (guint32)gsl_rng_uniform_int (rng, sc->n_links);
              dup = FALSE;
              for (guint k = 0; k < h; k++)
                dup |= ls[k] == l;
            }
          while (dup);
          ls[h] = l;
        }
      sc->off[f + 1] = sc->off[f] + hops;
      /* Many flows start together (batches); sizes equal or heavy-tailed. */
      sc->start[f] = variant == 0 ? S (1e-3) * (MsimTime)gsl_rng_uniform_int (rng, 4)
                                  : (MsimTime)(gsl_rng_uniform (rng) * 5e9);
      sc->latency[f] = gsl_rng_uniform (rng) < 0.5 ? 0 : S (1e-6);
      sc->bytes[f] = variant == 0 ? 1e6 * (double)(1 + gsl_rng_uniform_int (rng, 3))
                                  : 1e5 * gsl_ran_pareto (rng, 1.2, 1.0);
    }
}

/* Event-driven reference: at every event, recompute all rates from scratch. */
static void
reference_sim (const Scenario *sc, double *end_s)
{
  guint n = sc->n_flows;
  double *remaining = g_new (double, n);
  double *rates = g_new (double, n);
  gboolean *active = g_new0 (gboolean, n), *done = g_new0 (gboolean, n);
  guint32 *offs = g_new (guint32, n + 1);
  guint32 *ls = g_new (guint32, sc->off[n]);
  guint32 *map = g_new (guint32, n);
  double t = 0.0;
  guint ndone = 0;
  while (ndone < n)
    {
      /* Activate flows whose first byte is due; zero-byte flows finish. */
      for (guint f = 0; f < n; f++)
        if (!active[f] && !done[f] && msim_time_to_seconds (sc->start[f] + sc->latency[f]) <= t)
          {
            active[f] = TRUE;
            remaining[f] = sc->bytes[f];
          }
      guint32 pos = 0;
      guint k = 0;
      offs[0] = 0;
      for (guint f = 0; f < n; f++)
        if (active[f])
          {
            for (guint32 h = sc->off[f]; h < sc->off[f + 1]; h++)
              ls[pos++] = sc->links[h];
            map[k++] = f;
            offs[k] = pos;
          }
      msim_maxmin_reference (sc->n_links, sc->cap, k, offs, ls, rates);
      double next = INFINITY;
      for (guint i = 0; i < k; i++)
        next = MIN (next, t + remaining[map[i]] / rates[i]);
      for (guint f = 0; f < n; f++)
        if (!active[f] && !done[f])
          next = MIN (next, msim_time_to_seconds (sc->start[f] + sc->latency[f]));
      double dt = next - t;
      for (guint i = 0; i < k; i++)
        {
          guint f = map[i];
          remaining[f] -= rates[i] * dt;
          if (remaining[f] <= sc->bytes[f] * 1e-12 + 1e-9)
            {
              active[f] = FALSE;
              done[f] = TRUE;
              end_s[f] = next;
              ndone++;
            }
        }
      t = next;
    }
  g_free (remaining);
  g_free (rates);
  g_free (active);
  g_free (done);
  g_free (offs);
  g_free (ls);
  g_free (map);
}

START_TEST (test_random_vs_reference)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  for (int rep = 0; rep < 12; rep++)
    {
      gsl_rng_set (rng, 1000 * (unsigned long)_i + (unsigned long)rep);
      static Scenario sc;
      make_scenario (&sc, rng, _i);
      g_autoptr (MsimEngine) e = msim_engine_new ();
      g_autoptr (MsimNetwork) net = msim_network_new (e, sc.n_links, sc.cap, MSIM_NETWORK_MAXMIN);
      /* Every batch is checked against a from-scratch solve. */
      msim_network_set_check (net, TRUE, TRUE);
      static Record r;
      memset (&r, 0, sizeof r);
      for (guint f = 0; f < sc.n_flows; f++)
        msim_network_start_flow (net, sc.start[f], &sc.links[sc.off[f]], sc.off[f + 1] - sc.off[f],
                                 sc.latency[f], sc.bytes[f], record_done, &r);
      msim_engine_run (e);
      ck_assert_int_eq (r.ndone, (int)sc.n_flows);
      double *ref_end = g_new (double, sc.n_flows);
      reference_sim (&sc, ref_end);
      for (guint f = 0; f < sc.n_flows; f++)
        {
          double got = msim_time_to_seconds (r.end[f]);
          ck_assert_msg (fabs (got - ref_end[f]) <= 1e-6 * ref_end[f] + 2e-12,
                         "variant %d rep %d flow %u: end %.15g s, reference %.15g s", _i, rep, f,
                         got, ref_end[f]);
        }
      MsimNetworkStats st;
      msim_network_get_stats (net, &st);
      msim_ck_assert_near (st.bytes_delivered, st.bytes_started, 1e-12);
      g_free (ref_end);
    }
  gsl_rng_free (rng);
}
END_TEST

static Suite *
network_suite (void)
{
  Suite *s = suite_create ("network");
  TCase *tc = tcase_create ("closed-form");
  tcase_add_test (tc, test_one_flow);
  tcase_add_test (tc, test_two_flows_share);
  tcase_add_test (tc, test_slow_nic_residual);
  tcase_add_test (tc, test_staggered);
  tcase_add_test (tc, test_new_bottleneck_after_removal);
  tcase_add_test (tc, test_latency_only_and_local);
  tcase_add_test (tc, test_route_simple_path);
  tcase_add_test (tc, test_analytical);
  tcase_add_test (tc, test_analytical_random);
  suite_add_tcase (s, tc);
  tc = tcase_create ("robustness");
  tcase_add_test (tc, test_extreme_capacities);
  tcase_add_test (tc, test_many_simultaneous);
  suite_add_tcase (s, tc);
  tc = tcase_create ("randomized");
  tcase_set_timeout (tc, 600);
  tcase_add_loop_test (tc, test_random_vs_reference, 0, 2);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (network_suite)
