/*
 * The flow-level network model: max-min fair sharing, solved on links.
 *
 * ## Why links, not flows
 * In a max-min allocation every flow has a bottleneck: a saturated link on
 * which no flow is faster.  The flows bottlenecked on one link all share
 * that link's *level* (its fair share), so the whole allocation is given by
 * (a) which link each flow is bottlenecked on and (b) one level per link.
 * When a flow of a skewed all-to-all finishes, hundreds of flows change
 * rate, but almost none change bottleneck (measured with
 * `moesim bench network --gpus 64`: about 800 rate changes and 9 bottleneck
 * changes per completion).  So the solver works on links:
 *
 *  - c(k, m) counts the flows bottlenecked on k that cross m (one sparse
 *    row per bottleneck link, including c(k, k), the flows of k).
 *  - Progressive filling runs over links: the link with the smallest fair
 *    share residual/unfrozen saturates next; its level is that share, and
 *    its row says how much capacity its flows take from every other link.
 *    Only when a link saturates while flows bottlenecked elsewhere (or new
 *    flows) still cross it are individual flows touched: they move to it.
 *  - Bytes are tracked per link, not per flow: a link's *potential*
 *    phi(t) is the integral of its level, i.e. the bytes each of its flows
 *    has moved.  A flow bottlenecked on k finishes when phi_k reaches its
 *    target (phi_k at assignment + bytes left), so each link keeps a heap of
 *    its flows' targets and the network one event per link.  A level change
 *    reschedules one event, not one per flow.
 *
 * ## Doing less than a full solve
 * Removing a flow whose rate was r cannot change any flow slower than r
 * (below level r progressive filling runs exactly as before, because the
 * removed flow's links do not saturate below r).  So a batch of
 * completions restarts the filling at the smallest removed rate lambda:
 * the bottleneck links below it (the *fixed* part) keep their levels and
 * their flows are never visited; the links at or above it (the *restarted*
 * part) are filled again.  A batch that adds flows restarts from zero.
 * On the skewed all-to-all most restarted links really do change level
 * (57 of 67 per completion at N = 64), so the restart itself is the work,
 * and what follows is about doing each of its steps cheaply.
 *
 * 1. Residuals.  The filling needs, for every link its restarted flows
 *    cross, the capacity left to them (capacity minus the fixed flows'
 *    rates) and their count.  Each link's load is maintained, and res[]
 *    holds cap - load between solves, so this is either
 *      res + sum of the restarted rows at their old levels, or
 *      cap - sum of the fixed rows at their levels, over every link that
 *      carries flows (net->active);
 *    the same numbers (up to rounding) by a pass over the restarted rows or
 *    over the fixed rows plus the active links.  solve_pass takes the
 *    shorter: the two sides are about equal on average but one is usually
 *    much smaller (N = 64: 1,160 restarted row entries per batch on
 *    average, about 600 for the shorter pass).
 *
 * 2. Candidate order.  The next link to saturate is the one of smallest
 *    share res/unfrozen.  Shares only grow while the filling runs, so each
 *    candidate is keyed by a lower bound (its share when last looked at),
 *    and only the winner's key is refreshed: if its share grew, it is
 *    re-keyed and competes again (about 1.8 re-keys per saturation at
 *    N = 64).  Keys sit in a tournament tree (tt_*): a re-key or removal is
 *    a replay of one leaf-to-root path whose comparisons compile to
 *    conditional moves.  A binary heap needed the same number of steps but
 *    its sift comparisons were unpredictable branches: it took a quarter
 *    of the solve's instructions and of its mispredictions.
 *
 * 3. Saturation.  A link that saturates applies its row once (its flows
 *    take their share from every link they cross) and adopts the unfrozen
 *    flows of other links that cross it, stopping at the last one (their
 *    number is known: unfrozen minus its own).  Links that never fill
 *    (most PCIe, spine and lightly used links) are not candidates at all;
 *    solve_pass explains how an exclusion that was wrong is caught and
 *    repaired.
 *
 * Cost of a batch: O(nnz of the shorter residual pass + nnz of the
 * restarted rows + candidates x log candidates) plus O(hops) per flow that
 * starts, ends or changes bottleneck.  All changes at one simulated time
 * (first bytes, completions, flows started by callbacks) form one batch.
 * The hot loops read dense per-link arrays (res, unf, lmark) rather than
 * Link structs, and avoid branches whose outcome is data-dependent.
 *
 * Measured on the 2-core development VM (`moesim bench network --topology
 * switch --gpus 64`, skewed, 4,032 flows, median of alternating runs):
 * 66 ms with the binary heap and the restarted-rows pass only, 49 ms with
 * the tournament tree, 43 ms with the shorter residual pass; callgrind
 * 475 M -> 383 M instructions, simulated mispredictions 3.9 M -> 2.2 M.
 * What remains: tree replays ~22 %, saturation row passes ~17 %, the
 * residual pass ~10 %, completion rescheduling ~10 %.
 *
 * The result is the exact max-min allocation: tests compare it with a
 * from-scratch per-flow solve (msim_maxmin_reference) on random cases, and
 * --check does so at every batch.  Floating-point sums are not formed in
 * the same order as in a from-scratch solve, so a completion that falls
 * on an exact half picosecond can round either way (1 ps).
 */
#include "network.h"

#include <math.h>
#include <string.h>

#include "msim-float.h"

#define NIL      G_MAXUINT32
#define MAX_HOPS 32

enum
{
  FLOW_FREE,
  FLOW_WAITING, /* latency phase */
  FLOW_ACTIVE,
};

typedef struct
{
  guint32 link;
  guint32 pos; /* index of this flow's entry in the link's flow array */
} Hop;

typedef struct
{
  double bytes;
  double target; /* potential of its bottleneck link at which it completes */
  MsimTime start;
  MsimTime first_byte;
  MsimEventHandle ev; /* first-byte event */
  MsimFlowDoneFunc done;
  gpointer data;
  guint32 hop0; /* offset of its hops in the hop pool; free-list link when free */
  guint32 nhops;
  guint32 bn;       /* bottleneck link, NIL if unassigned */
  guint32 heap_pos; /* position in its bottleneck link's target heap */
  guint32 gen;
  guint8 state;
} Flow;

typedef struct
{
  guint32 flow;
  guint32 hop; /* index of the hop in the flow's route */
  guint32 bn;  /* the flow's bottleneck link (a copy of Flow.bn), so that a scan
                * of a link's flows reads one array instead of every Flow */
} Entry;

typedef struct
{
  guint32 m; /* link */
  guint32 c; /* flows bottlenecked on the row's link that cross m */
} RowEnt;

typedef struct
{
  double cap;
  double level; /* rate of the flows bottlenecked here */
  double load;  /* sum of the rates of the flows crossing it */
  double phi;   /* bytes moved by each of its bottlenecked flows, at phi_t */
  MsimTime phi_t;
  double bytes; /* carried, up to `since` */
  MsimTime since;

  Entry *e; /* flows crossing the link */
  guint32 n, e_cap;

  guint32 *heap; /* its bottlenecked flows, min-heap by target */
  guint32 heap_len, heap_cap;

  /* Row c(this, m): sparse counts with an open-addressing index. */
  RowEnt *row;
  guint32 rlen, rcap, rzero;
  guint32 *ridx;
  guint32 ridx_cap;

  MsimTime cend;      /* completion time of its earliest flow */
  guint32 ch_pos;     /* position in the completion heap, NIL if absent */
  guint32 active_pos; /* position in net->active while n > 0 (max-min mode) */
  gboolean resched;   /* its completion time must be recomputed */
  gboolean listed;    /* in net->bn_links */

  /* solve scratch (residuals and unfrozen counts live in MsimNetwork's
   * dense arrays, which the hot loops stream through) */
  guint32 frozen_mark, upper_mark, candidate_mark;
  gboolean sticky; /* once over capacity as a non-candidate: always a candidate */
} Link;

typedef struct
{
  MsimFlowInfo info;
  MsimFlowDoneFunc done;
  gpointer data;
} Done;

/* Completions of a batch, whose callbacks run after it. */
typedef struct
{
  Done *v;
  guint32 len, cap;
} DoneList;

/* Analytical mode: what a link needs, packed (a flow's start and end touch
 * every link of its route; Link is mostly the solver's state). */
typedef struct
{
  double cap;
  double load; /* sum of the rates of the moving flows */
  double bytes; /* carried, up to `since` */
  MsimTime since;
  guint32 n; /* moving flows */
} ALink;

/* Analytical events are ordered by (time, seq), seq being the order in
 * which they were scheduled: time << 64 | seq, one comparison orders both. */
typedef unsigned __int128 AKey;

static inline AKey
akey (MsimTime time, guint64 seq)
{
  return ((AKey)(guint64)time << 64) | seq;
}

static inline MsimTime
akey_time (AKey k)
{
  return (MsimTime)(guint64)(k >> 64);
}

#define AKEY_NEVER akey (MSIM_TIME_NEVER, G_MAXUINT64)

/* Analytical mode: a first-byte event. */
typedef struct
{
  AKey key;
  guint32 flow;
} AEnt;

typedef struct
{
  MsimTime latency;
  AEnt *v;
  guint32 head, len, cap; /* live entries are v[head .. len) */
} AFifo;

/* Analytical mode: the other events (ends, out-of-order first bytes), in a
 * binary min-heap by (time, seq).  It holds one event per moving flow, a
 * few thousand at most in an all-to-all: a small heap in cache costs a
 * third of a calendar queue's refills on these bursty, tied times
 * (measured with callgrind on bench step). */
typedef struct
{
  AKey key;
  guint32 tag; /* flow * 2 + A_FIRST_BYTE or A_END */
} AHeapEnt;

#define A_FIFOS 8

struct _MsimNetwork
{
  MsimEngine *engine;
  MsimNetworkModel model;
  Link *links;
  guint32 n_links;

  Flow *flows;
  guint32 n_flows, flows_cap;
  guint32 free_flow;

  Hop *hops;
  guint32 n_hops, hops_cap;
  guint32 hop_free[MAX_HOPS + 1];

  MsimEventQueue *first_bytes; /* data = flow index */
  /* Analytical mode: first bytes in FIFOs by route latency (see below). */
  AFifo afifo[A_FIFOS];
  guint32 n_afifo;
  AHeapEnt *ah;
  guint32 ah_len, ah_cap;
  ALink *al; /* per link, analytical mode only */
  guint64 a_seq; /* order of analytical events: FIFO entries and queue events alike */
  /* Completion times, one per link with bottlenecked flows: an indexed
   * binary heap over links (in-place key updates; levels change often). */
  guint32 *ch; /* heap of link ids */
  guint32 ch_len;

  GArray *bn_links; /* links with bottlenecked flows (may hold stale entries) */
  guint32 *active;  /* links that flows cross (n > 0), for solve_pass */
  guint32 n_active;
  guint32 *touched; /* solve scratch: links touched by this batch */
  guint32 n_touched;
  guint32 *upper; /* solve scratch: the restarted bottleneck links (<= n_links) */
  guint32 n_upper;
  GArray *new_flows; /* flows activated since the last solve */
  guint32 *resched;  /* links whose completion must be recomputed */
  guint32 n_resched;
  /* Dense per-link arrays for the row loops, which visit every entry of
   * the restarted rows: reading them from Link would pull a large struct
   * into the cache per entry. */
  double *res;    /* per link: cap - load between solves; during one, the
                   * capacity left for the unfrozen flows */
  guint32 *lmark; /* per link: epoch of its last touch() */
  guint32 *unf;   /* per link: unfrozen flows crossing it (0 between solves) */
  /* The solve's candidate links in a tournament tree (see solve_pass). */
  guint32 *tt;      /* nodes 1 .. 2 * tt_size - 1: the winning slot below */
  double *tt_key;   /* per slot: lower bound of its link's share */
  guint32 *tt_link; /* per slot: the link */
  guint32 tt_size;  /* leaves (slots) of the current tree, a power of two */
  DoneList *done;
  DoneList *done_spare; /* the previous batch's list, kept to reuse its storage */
  DoneList done_lists[2];

  double restart_level; /* smallest rate removed since the last solve */
  gboolean dirty;
  guint32 epoch;
  guint64 batches_since_exact;
  gboolean check, check_reference;
  MsimNetworkStats stats;
};

/* ---------- small helpers ---------- */

static inline MsimTime
now_of (const MsimNetwork *net)
{
  return msim_engine_now (net->engine);
}

static inline Hop *
flow_hops (MsimNetwork *net, const Flow *f)
{
  return &net->hops[f->hop0];
}

static inline double
flow_rate (const MsimNetwork *net, const Flow *f)
{
  if (net->model == MSIM_NETWORK_ANALYTICAL)
    return f->state == FLOW_ACTIVE ? f->target : 0.0; /* target holds its fixed rate */
  return f->bn == NIL ? 0.0 : net->links[f->bn].level;
}

/* Picoseconds to seconds for intervals: exact enough (1e-16 relative) and
 * much cheaper than the split conversion of msim_time_to_seconds. */
static inline double
dt_seconds (MsimTime dt)
{
  return (double)dt * 1e-12;
}

static void
settle_bytes (Link *l, MsimTime now)
{
  if (now > l->since)
    {
      l->bytes += l->load * dt_seconds (now - l->since);
      l->since = now;
    }
}

/* Brings the potential to @now at the current level.  An empty link has no
 * flows to measure, so its potential restarts from zero (which also keeps
 * the targets small and precise). */
static void
settle_phi (Link *l, MsimTime now)
{
  if (l->heap_len == 0)
    l->phi = 0.0;
  else if (now > l->phi_t)
    l->phi += l->level * dt_seconds (now - l->phi_t);
  l->phi_t = now;
}

static void
mark_resched (MsimNetwork *net, guint32 li)
{
  if (!net->links[li].resched)
    {
      net->links[li].resched = TRUE;
      net->resched[net->n_resched++] = li;
    }
}

/* ---------- flow and hop pools ---------- */

static guint32
alloc_hops (MsimNetwork *net, guint32 n)
{
  if (net->hop_free[n] != NIL)
    {
      guint32 off = net->hop_free[n];
      net->hop_free[n] = net->hops[off].link;
      return off;
    }
  if (net->n_hops + n > net->hops_cap)
    {
      net->hops_cap = MAX (net->n_hops + n, MAX (1024u, net->hops_cap * 2u));
      net->hops = g_renew (Hop, net->hops, net->hops_cap);
    }
  guint32 off = net->n_hops;
  net->n_hops += n;
  return off;
}

static void
free_hops (MsimNetwork *net, guint32 off, guint32 n)
{
  if (n == 0)
    return;
  net->hops[off].link = net->hop_free[n];
  net->hop_free[n] = off;
}

static guint32
alloc_flow (MsimNetwork *net)
{
  if (net->free_flow != NIL)
    {
      guint32 i = net->free_flow;
      net->free_flow = net->flows[i].hop0;
      return i;
    }
  if (net->n_flows == net->flows_cap)
    {
      net->flows_cap = MAX (1024u, net->flows_cap * 2u);
      net->flows = g_renew (Flow, net->flows, net->flows_cap);
    }
  guint32 i = net->n_flows++;
  net->flows[i].gen = 1;
  return i;
}

static void
free_flow (MsimNetwork *net, guint32 i)
{
  Flow *f = &net->flows[i];
  f->state = FLOW_FREE;
  if (++f->gen == 0)
    f->gen = 1;
  f->hop0 = net->free_flow;
  net->free_flow = i;
}

static inline MsimFlowId
flow_id (const MsimNetwork *net, guint32 i)
{
  return ((guint64)net->flows[i].gen << 32) | i;
}

static gint64
flow_index (const MsimNetwork *net, MsimFlowId id)
{
  guint32 i = (guint32)(id & 0xffffffffu);
  if (i >= net->n_flows || net->flows[i].gen != (guint32)(id >> 32)
      || net->flows[i].state == FLOW_FREE)
    return -1;
  return i;
}

/* ---------- per-link rows c(k, .) ---------- */

static inline guint32
row_hash (guint32 m)
{
  return m * 2654435761u;
}

static void
row_reindex (Link *k)
{
  guint32 need = 16;
  while (need < 2 * k->rlen + 2)
    need <<= 1;
  if (need != k->ridx_cap)
    {
      g_free (k->ridx);
      k->ridx = g_new (guint32, need);
      k->ridx_cap = need;
    }
  memset (k->ridx, 0, need * sizeof (guint32));
  for (guint32 i = 0; i < k->rlen; i++)
    {
      guint32 s = row_hash (k->row[i].m) & (need - 1);
      while (k->ridx[s])
        s = (s + 1) & (need - 1);
      k->ridx[s] = i + 1;
    }
}

/* Drops zero counts once they are half the row. */
static void
row_compact (Link *k)
{
  guint32 j = 0;
  for (guint32 i = 0; i < k->rlen; i++)
    if (k->row[i].c > 0)
      k->row[j++] = k->row[i];
  k->rlen = j;
  k->rzero = 0;
  row_reindex (k);
}

static void
row_add (Link *k, guint32 m, gint delta)
{
  if (k->ridx_cap < 2 * k->rlen + 2)
    row_reindex (k);
  guint32 mask = k->ridx_cap - 1;
  guint32 s = row_hash (m) & mask;
  while (k->ridx[s])
    {
      guint32 i = k->ridx[s] - 1;
      if (k->row[i].m == m)
        {
          if (k->row[i].c == 0)
            k->rzero--;
          k->row[i].c = (guint32)((gint64)k->row[i].c + delta);
          if (k->row[i].c == 0 && ++k->rzero > 4 && k->rzero * 4 > k->rlen)
            row_compact (k);
          return;
        }
      s = (s + 1) & mask;
    }
  g_assert (delta > 0);
  if (k->rlen == k->rcap)
    {
      k->rcap = MAX (8u, k->rcap * 2u);
      k->row = g_renew (RowEnt, k->row, k->rcap);
    }
  k->row[k->rlen] = (RowEnt){ m, (guint32)delta };
  k->rlen++;
  k->ridx[s] = k->rlen;
}

/* ---------- per-link target heaps ---------- */

static inline gboolean
target_less (const MsimNetwork *net, guint32 a, guint32 b)
{
  const Flow *fa = &net->flows[a], *fb = &net->flows[b];
  return fa->target < fb->target || (fa->target == fb->target && a < b);
}

static void
th_place (MsimNetwork *net, Link *l, guint32 pos, guint32 fi)
{
  l->heap[pos] = fi;
  net->flows[fi].heap_pos = pos;
}

static void
th_up (MsimNetwork *net, Link *l, guint32 pos, guint32 fi)
{
  while (pos > 0)
    {
      guint32 p = (pos - 1) / 2;
      if (!target_less (net, fi, l->heap[p]))
        break;
      th_place (net, l, pos, l->heap[p]);
      pos = p;
    }
  th_place (net, l, pos, fi);
}

static void
th_down (MsimNetwork *net, Link *l, guint32 pos, guint32 fi)
{
  for (;;)
    {
      guint32 c = 2 * pos + 1;
      if (c >= l->heap_len)
        break;
      if (c + 1 < l->heap_len && target_less (net, l->heap[c + 1], l->heap[c]))
        c++;
      if (!target_less (net, l->heap[c], fi))
        break;
      th_place (net, l, pos, l->heap[c]);
      pos = c;
    }
  th_place (net, l, pos, fi);
}

static void
th_insert (MsimNetwork *net, Link *l, guint32 fi)
{
  if (l->heap_len == l->heap_cap)
    {
      l->heap_cap = MAX (8u, l->heap_cap * 2u);
      l->heap = g_renew (guint32, l->heap, l->heap_cap);
    }
  l->heap_len++;
  th_up (net, l, l->heap_len - 1, fi);
}

static void
th_remove (MsimNetwork *net, Link *l, guint32 pos)
{
  guint32 last = l->heap[--l->heap_len];
  if (pos == l->heap_len)
    return;
  if (pos > 0 && target_less (net, last, l->heap[(pos - 1) / 2]))
    th_up (net, l, pos, last);
  else
    th_down (net, l, pos, last);
}

/* ---------- bottleneck assignment ---------- */

/* Makes @li the bottleneck of flow @fi (which has none).  @li's potential
 * must be settled. */
static void
assign (MsimNetwork *net, guint32 fi, guint32 li, double bytes_left)
{
  Flow *f = &net->flows[fi];
  Link *l = &net->links[li];
  if (!l->listed)
    {
      guint32 k = li;
      l->listed = TRUE;
      g_array_append_val (net->bn_links, k);
    }
  f->bn = li;
  f->target = l->phi + bytes_left;
  th_insert (net, l, fi);
  if (net->model == MSIM_NETWORK_MAXMIN) /* rows serve the solve only */
    {
      Hop *h = flow_hops (net, f);
      for (guint32 j = 0; j < f->nhops; j++)
        {
          row_add (l, h[j].link, +1);
          net->links[h[j].link].e[h[j].pos].bn = li;
        }
    }
  mark_resched (net, li);
}

/* Takes flow @fi off its bottleneck; returns its bytes left.  The link's
 * potential must be settled. */
static double
unassign (MsimNetwork *net, guint32 fi)
{
  Flow *f = &net->flows[fi];
  Link *l = &net->links[f->bn];
  double left = MAX (f->target - l->phi, 0.0);
  th_remove (net, l, f->heap_pos);
  if (net->model == MSIM_NETWORK_MAXMIN)
    {
      Hop *h = flow_hops (net, f);
      for (guint32 j = 0; j < f->nhops; j++)
        {
          row_add (l, h[j].link, -1);
          net->links[h[j].link].e[h[j].pos].bn = NIL;
        }
    }
  mark_resched (net, f->bn);
  f->bn = NIL;
  return left;
}

/* ---------- completion scheduling ---------- */

static inline gboolean
ch_less (const MsimNetwork *net, guint32 a, guint32 b)
{
  MsimTime ta = net->links[a].cend, tb = net->links[b].cend;
  return ta < tb || (ta == tb && a < b); /* link order breaks ties: deterministic */
}

static void
ch_sift (MsimNetwork *net, guint32 pos, guint32 li)
{
  guint32 *h = net->ch;
  while (pos > 0)
    {
      guint32 p = (pos - 1) / 2;
      if (!ch_less (net, li, h[p]))
        break;
      h[pos] = h[p];
      net->links[h[pos]].ch_pos = pos;
      pos = p;
    }
  for (;;)
    {
      guint32 c = 2 * pos + 1;
      if (c >= net->ch_len)
        break;
      if (c + 1 < net->ch_len && ch_less (net, h[c + 1], h[c]))
        c++;
      if (!ch_less (net, h[c], li))
        break;
      h[pos] = h[c];
      net->links[h[pos]].ch_pos = pos;
      pos = c;
    }
  h[pos] = li;
  net->links[li].ch_pos = pos;
}

static void
ch_remove (MsimNetwork *net, guint32 li)
{
  guint32 pos = net->links[li].ch_pos;
  net->links[li].ch_pos = NIL;
  guint32 last = net->ch[--net->ch_len];
  if (last != li)
    ch_sift (net, pos, last);
}

static void
reschedule_link (MsimNetwork *net, guint32 li, MsimTime now)
{
  Link *l = &net->links[li];
  l->resched = FALSE;
  if (l->heap_len == 0)
    {
      if (l->ch_pos != NIL)
        ch_remove (net, li);
      return;
    }
  settle_phi (l, now);
  double left = net->flows[l->heap[0]].target - l->phi;
  MsimTime dt = 0;
  if (left > 0.0 && !msim_time_for_bytes (left, l->level, &dt))
    dt = MSIM_TIME_NEVER - now;
  l->cend = msim_time_add_sat (now, dt);
  if (l->ch_pos == NIL)
    {
      l->ch_pos = net->ch_len++;
      net->ch[l->ch_pos] = li;
    }
  ch_sift (net, l->ch_pos, li);
}

/* ---------- the solve ---------- */

/* The candidate queue of the filling is a tournament (winner) tree over
 * slots: leaf tt[tt_size + i] is slot i and every inner node holds the slot
 * of smaller key below it.  Only one key changes at a time (raised to the
 * link's current share, or to infinity when the link freezes), and the
 * replay from that leaf compares the carried winner with the sibling
 * winners on the way up: the comparisons select with conditional moves
 * and the siblings' loads do not wait for the previous level.  A binary
 * heap did the same work with a sift per change whose branches could not
 * be predicted (a quarter of the solver's mispredictions).  Equal keys keep
 * the carried slot, and the build prefers the lower slot; the tree is a
 * fixed function of its inputs, so ties are deterministic (see solve_pass
 * for the slot order). */
static inline void
tt_replay (MsimNetwork *net, guint32 slot)
{
  guint32 *t = net->tt;
  const double *key = net->tt_key;
  guint32 w = slot;
  double kw = key[slot];
  for (guint32 pos = net->tt_size + slot; pos > 1; pos >>= 1)
    {
      guint32 s = t[pos ^ 1u];
      double ks = key[s];
      gboolean take = ks < kw;
      w = take ? s : w;
      kw = take ? ks : kw;
      t[pos >> 1] = w;
    }
}

/* Builds the tree over slots 0 .. @n - 1, whose keys are set. */
static void
tt_build (MsimNetwork *net, guint32 n)
{
  guint32 size = 1;
  while (size < n)
    size <<= 1;
  net->tt_size = size;
  guint32 *t = net->tt;
  double *key = net->tt_key;
  for (guint32 i = n; i < size; i++)
    key[i] = INFINITY;
  for (guint32 i = 0; i < size; i++)
    t[size + i] = i;
  for (guint32 pos = size; pos-- > 1;)
    {
      guint32 a = t[2 * pos], b = t[2 * pos + 1];
      t[pos] = key[b] < key[a] ? b : a;
    }
}

/* Moves the flows crossing @li that are still unfrozen but bottlenecked
 * elsewhere (or nowhere yet) to @li, which is saturating first.  There are
 * @count of them (the link's unfrozen flows minus its own), so the scan
 * stops at the last one. */
static void
adopt_foreign (MsimNetwork *net, guint32 li, guint32 count)
{
  Link *l = &net->links[li];
  guint32 j = 0;
  for (; count > 0 && j < l->n; j++)
    {
      guint32 bn = l->e[j].bn;
      if (bn == li)
        continue;
      if (bn != NIL)
        {
          Link *k = &net->links[bn];
          if (k->upper_mark != net->epoch || k->frozen_mark == net->epoch)
            continue; /* fixed, or already frozen elsewhere */
        }
      guint32 fi = l->e[j].flow;
      Flow *f = &net->flows[fi];
      double left = bn == NIL ? f->bytes : unassign (net, fi);
      assign (net, fi, li, left);
      net->stats.bn_changes++;
      count--;
    }
  g_assert (count == 0);
  net->stats.links_scanned += j;
}

static void run_checks (MsimNetwork *net);

/* One pass of the filling.  With @all_candidates FALSE, only links that are
 * or were bottlenecks, links new flows cross, and links that once needed it
 * ("sticky") may saturate; any other link is only checked afterwards.  If
 * such a link ends over its capacity, the pass is wrong there: it is made
 * sticky and FALSE is returned, and the caller re-solves from scratch
 * (every bottleneck restarted, every touched link a candidate), which is
 * valid from any state whose loads match its levels.  Excluding a link that
 * the filling leaves within capacity does not change the result: the
 * allocation is then feasible with it, and every flow keeps a saturated
 * bottleneck on which it is maximal.  This keeps the dozens of never-full
 * links an all-to-all crosses (PCIe, spine, lightly used NVLink) out of the
 * candidates.  On the N = 64 switch about 17 of the 84 candidates per batch
 * are sticky links, nearly all of which end with no unfrozen flow rather
 * than saturating; dropping stickiness costs ten times the fallbacks and
 * more than it saves (measured: 389 fallbacks instead of 38, +5 %
 * instructions). */
static gboolean
solve_pass (MsimNetwork *net, MsimTime now, double lambda, gboolean all_candidates)
{
  net->epoch++;
  /* The restarted part: bottleneck links at or above lambda.  Their flows
   * are unfrozen; everything slower keeps its rate.  (Selected without a
   * branch: which side of lambda a link's level falls on is random.) */
  net->n_upper = 0;
  net->n_touched = 0;
  guint32 keep = 0, n_lower = 0;
  guint64 upper_nnz = 0, lower_nnz = 0;
  guint32 *part = net->upper; /* upper links from the front, lower from the back */
  guint32 last = net->n_links - 1;
  double lo = lambda * (1.0 - MSIM_REL_EPS);
  for (guint32 i = 0; i < net->bn_links->len; i++)
    {
      guint32 li = g_array_index (net->bn_links, guint32, i);
      Link *l = &net->links[li];
      if (l->heap_len == 0)
        {
          l->listed = FALSE; /* no longer a bottleneck */
          continue;
        }
      g_array_index (net->bn_links, guint32, keep++) = li;
      gboolean up = l->level >= lo;
      part[net->n_upper] = li;
      part[last - n_lower] = li;
      net->n_upper += up;
      n_lower += !up;
      upper_nnz += up ? l->rlen : 0;
      lower_nnz += up ? 0 : l->rlen;
    }
  g_array_set_size (net->bn_links, keep);

  /* Residuals: capacity minus the load of the fixed flows, and the counts
   * of unfrozen flows.  Two ways to the same numbers: add what the
   * restarted flows take to what is left now (one pass over the restarted
   * rows), or subtract what the fixed flows take from the capacity of every
   * link that carries flows (a pass over the fixed rows plus one over those
   * links).  The cheaper one is taken; a restart low in the levels leaves
   * few fixed rows. */
  double *res = net->res;
  guint32 *unf = net->unf;
  guint32 *lmark = net->lmark, *touched = net->touched;
  guint32 epoch = net->epoch, nt = 0;
  for (guint32 i = 0; i < net->n_upper; i++)
    {
      Link *k = &net->links[part[i]];
      k->upper_mark = epoch;
      k->candidate_mark = epoch;
      settle_phi (k, now);
    }
  gboolean from_fixed = lower_nnz + 2 * (guint64)net->n_active < upper_nnz;
  if (!from_fixed)
    for (guint32 i = 0; i < net->n_upper; i++)
      {
        const Link *k = &net->links[part[i]];
        const RowEnt *row = k->row;
        guint32 n = k->rlen;
        double x = k->level;
        for (guint32 r = 0; r < n; r++)
          {
            guint32 m = row[r].m, c = row[r].c;
            guint32 fresh = lmark[m] != epoch;
            lmark[m] = epoch;
            touched[nt] = m;
            nt += fresh;
            res[m] += c * x;
            unf[m] += c;
          }
      }
  else
    {
      for (guint32 i = 0; i < net->n_active; i++)
        {
          guint32 m = net->active[i];
          res[m] = net->links[m].cap;
          unf[m] = net->links[m].n; /* new flows included */
        }
      for (guint32 i = 0; i < n_lower; i++)
        {
          const Link *k = &net->links[part[last - i]];
          const RowEnt *row = k->row;
          guint32 n = k->rlen;
          double x = k->level;
          for (guint32 r = 0; r < n; r++)
            {
              guint32 m = row[r].m, c = row[r].c;
              res[m] -= c * x;
              unf[m] -= c;
            }
        }
      /* The links that carry no restarted flow keep their residual. */
      for (guint32 i = 0; i < net->n_active; i++)
        {
          guint32 m = net->active[i];
          gboolean moved = unf[m] > 0;
          lmark[m] = moved ? epoch : lmark[m];
          touched[nt] = m;
          nt += moved;
          if (!moved)
            res[m] = net->links[m].cap - net->links[m].load;
        }
    }
  for (guint32 i = 0; i < net->new_flows->len; i++)
    {
      Flow *f = &net->flows[g_array_index (net->new_flows, guint32, i)];
      if (f->state != FLOW_ACTIVE || f->bn != NIL)
        continue;
      Hop *h = flow_hops (net, f);
      for (guint32 j = 0; j < f->nhops; j++)
        {
          guint32 m = h[j].link;
          guint32 fresh = lmark[m] != epoch;
          lmark[m] = epoch;
          touched[nt] = m;
          nt += fresh;
          unf[m] += !from_fixed;
          net->links[m].candidate_mark = epoch;
        }
    }
  g_array_set_size (net->new_flows, 0);
  net->n_touched = nt;

  /* The candidates, keyed by their shares now.  Shares only grow as links
   * freeze, so keys are lower bounds, raised lazily: a link whose share
   * has grown by the time it wins is replayed with its share, not updated
   * on every change.
   *
   * Slots are in reverse touch order.  With equal shares the slot order
   * decides which link saturates first and adopts the flows they share,
   * which does not change any rate but does change memory locality: on
   * the equal-bytes all-to-alls (skew 0, N = 1024) touch order made the
   * switch run 20 % slower than the binary heap, which popped equal keys
   * roughly in reverse array order, and link-id order made the rail run
   * 25 % slower; reverse touch order matches the heap on both and moves
   * the fewest flows on the skewed N = 64 switch. */
  guint32 n_cand = 0;
  for (guint32 i = net->n_touched; i-- > 0;)
    {
      guint32 li = net->touched[i];
      Link *l = &net->links[li];
      if (unf[li] > 0 && (all_candidates || l->sticky || l->candidate_mark == net->epoch))
        {
          net->tt_key[n_cand] = MAX (res[li], 0.0) / unf[li];
          net->tt_link[n_cand++] = li;
        }
    }
  tt_build (net, n_cand);

  /* Progressive filling over links. */
  for (;;)
    {
      guint32 slot = net->tt[1];
      double key = net->tt_key[slot];
      if (key == INFINITY)
        break; /* every candidate frozen */
      guint32 li = net->tt_link[slot];
      Link *l = &net->links[li];
      if (l->frozen_mark == net->epoch || unf[li] == 0)
        {
          net->tt_key[slot] = INFINITY;
          tt_replay (net, slot);
          continue;
        }
      double share = MAX (res[li], 0.0) / unf[li];
      net->tt_key[slot] = share;
      if (share > key)
        {
          /* Its share grew: replay it, and freeze it only if it still wins
           * (the others' keys are lower bounds of their shares). */
          tt_replay (net, slot);
          if (net->tt[1] != slot)
            continue;
        }
      net->tt_key[slot] = INFINITY;
      tt_replay (net, slot);
      net->stats.links_solved++;
      guint32 own = l->upper_mark == net->epoch ? l->heap_len : 0;
      if (unf[li] > own)
        {
          if (l->upper_mark != net->epoch)
            {
              /* A link becomes a bottleneck: it joins the restarted part. */
              l->upper_mark = net->epoch;
              settle_phi (l, now);
            }
          adopt_foreign (net, li, unf[li] - own);
        }
      l->frozen_mark = net->epoch;
      if (l->level != share)
        {
          settle_phi (l, now);
          l->level = share;
          mark_resched (net, li);
        }
      net->stats.flows_rated += l->heap_len;
      /* Its flows take their share from every link they cross, itself
       * included (which leaves it saturated). */
      const RowEnt *row = l->row;
      guint32 n = l->rlen; /* a local: the stores below may alias it */
      for (guint32 r = 0; r < n; r++)
        {
          guint32 m = row[r].m, c = row[r].c;
          res[m] -= c * share;
          unf[m] -= c;
        }
      g_assert (unf[li] == 0);
    }

  /* Links kept out of the candidates must have stayed within capacity. */
  gboolean ok = TRUE;
  if (!all_candidates)
    for (guint32 i = 0; i < net->n_touched; i++)
      {
        guint32 li = net->touched[i];
        Link *l = &net->links[li];
        if (l->frozen_mark != net->epoch && res[li] < -MSIM_REL_EPS * l->cap)
          {
            l->sticky = TRUE;
            ok = FALSE;
          }
      }

  /* Loads of the touched links: capacity minus what is left.  Every flow
   * is frozen now, so the unfrozen counts are back to zero. */
  for (guint32 i = 0; i < net->n_touched; i++)
    {
      guint32 li = net->touched[i];
      Link *l = &net->links[li];
      settle_bytes (l, now);
      l->load = l->n == 0 ? 0.0 : MAX (l->cap - res[li], 0.0);
      res[li] = l->cap - l->load;
      unf[li] = 0;
    }
  return ok;
}

static void
solve (MsimNetwork *net, MsimTime now)
{
  net->dirty = FALSE;
  net->stats.batches++;
  if (net->model == MSIM_NETWORK_MAXMIN)
    {
      double lambda = net->new_flows->len > 0 ? 0.0 : net->restart_level;
      if (!solve_pass (net, now, lambda, FALSE))
        {
          net->stats.fallbacks++;
          /* Loads are those of the (wrong) pass, consistent with its levels,
           * which is all a full restart needs. */
          gboolean again = solve_pass (net, now, 0.0, TRUE);
          g_assert (again);
        }
    }
  net->restart_level = G_MAXDOUBLE;
  for (guint32 i = 0; i < net->n_resched; i++)
    reschedule_link (net, net->resched[i], now);
  net->n_resched = 0;
  if (net->check)
    run_checks (net);
}

/* ---------- flow lifecycle ---------- */

static void
finish_flow (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  Done d = { { flow_id (net, fi), f->start, f->first_byte, now, f->bytes }, f->done, f->data };
  DoneList *dl = net->done;
  if (G_UNLIKELY (dl->len == dl->cap))
    {
      dl->cap = MAX (64u, 2u * dl->cap);
      dl->v = g_renew (Done, dl->v, dl->cap);
    }
  dl->v[dl->len++] = d;
  net->stats.flows_completed++;
  net->stats.bytes_delivered += f->bytes;
  free_hops (net, f->hop0, f->nhops);
  free_flow (net, fi);
}

static void
activate (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  f->ev = MSIM_EVENT_HANDLE_NONE;
  if (f->nhops == 0 || f->bytes == 0.0)
    {
      finish_flow (net, fi, now);
      return;
    }
  f->state = FLOW_ACTIVE;
  f->bn = NIL;
  Hop *h = flow_hops (net, f);
  for (guint32 j = 0; j < f->nhops; j++)
    {
      Link *l = &net->links[h[j].link];
      if (l->n == l->e_cap)
        {
          l->e_cap = MAX (8u, l->e_cap * 2u);
          l->e = g_renew (Entry, l->e, l->e_cap);
        }
      if (l->n == 0)
        {
          l->active_pos = net->n_active;
          net->active[net->n_active++] = h[j].link;
        }
      h[j].pos = l->n;
      l->e[l->n++] = (Entry){ fi, j, NIL };
    }
  g_array_append_val (net->new_flows, fi);
  net->dirty = TRUE;
}

/* ---------- analytical mode ----------
 * No sharing: a flow runs at its slowest link's capacity from its first
 * byte to its end, both known when it starts moving.  So it needs neither
 * the solver nor the per-link heaps: one queue event at its first byte and
 * one at its end (the first-bytes queue holds both, tagged in the low bit
 * of the event data), and the links' loads change at exactly those times,
 * which keeps link bytes exact at any instant. */

#define A_FIRST_BYTE 0u
#define A_END        1u

/*
 * Two events per flow, and an all-to-all starts a rank's flows at one
 * instant with a few distinct route latencies: long runs of equal times.
 * But flows start at non-decreasing times (the engine's clock), so the
 * first bytes of flows with equal latency come in time order: each
 * distinct latency gets a FIFO, and only the end events (and first bytes
 * that would break a FIFO's order, or of a ninth latency) go through a
 * small binary heap.  Every event carries a sequence number, and events
 * are taken in (time, sequence) order across the FIFOs and the heap:
 * exactly the order of a single queue.
 */

/* Appends a first-byte event to the FIFO of @latency; FALSE when it must
 * go through the queue instead. */
static gboolean
a_fifo_push (MsimNetwork *net, MsimTime latency, MsimTime time, guint32 fi, guint64 seq)
{
  AFifo *q = NULL;
  for (guint32 i = 0; i < net->n_afifo; i++)
    if (net->afifo[i].latency == latency)
      {
        q = &net->afifo[i];
        break;
      }
  if (q == NULL)
    {
      if (net->n_afifo == A_FIFOS)
        return FALSE;
      q = &net->afifo[net->n_afifo++];
      *q = (AFifo){ latency, NULL, 0, 0, 0 };
    }
  if (q->len > q->head && akey_time (q->v[q->len - 1].key) > time)
    return FALSE; /* a flow started in the future: out of order */
  if (q->head == q->len)
    q->head = q->len = 0;
  if (q->len == q->cap)
    {
      if (q->head > 0 && q->head >= q->cap / 2)
        {
          memmove (q->v, q->v + q->head, sizeof (AEnt) * (q->len - q->head));
          q->len -= q->head;
          q->head = 0;
        }
      else
        {
          q->cap = MAX (64u, 2u * q->cap);
          q->v = g_renew (AEnt, q->v, q->cap);
        }
    }
  q->v[q->len++] = (AEnt){ akey (time, seq), fi };
  return TRUE;
}

/* The FIFO whose head comes first, or NULL. */
static AFifo *
a_fifo_first (MsimNetwork *net)
{
  AFifo *best = NULL;
  AKey bk = AKEY_NEVER;
  for (guint32 i = 0; i < net->n_afifo; i++)
    {
      AFifo *q = &net->afifo[i];
      if (q->head < q->len && q->v[q->head].key < bk)
        {
          best = q;
          bk = q->v[q->head].key;
        }
    }
  return best;
}

static void
a_heap_push (MsimNetwork *net, MsimTime time, guint64 seq, guint32 tag)
{
  if (net->ah_len == net->ah_cap)
    {
      net->ah_cap = MAX (256u, 2u * net->ah_cap);
      net->ah = g_renew (AHeapEnt, net->ah, net->ah_cap);
    }
  AHeapEnt x = { akey (time, seq), tag };
  guint32 i = net->ah_len++;
  while (i > 0)
    {
      guint32 p = (i - 1) / 2;
      if (!(x.key < net->ah[p].key))
        break;
      net->ah[i] = net->ah[p];
      i = p;
    }
  net->ah[i] = x;
}

/* Removes the minimum.  Bottom-up: the hole goes down to a leaf along the
 * smaller children (a branch-free choice; no comparison with the last
 * entry, whose place is usually near the bottom), then the last entry
 * rises from there.  Keys are distinct, so the order is the heap's. */
static void
a_heap_pop (MsimNetwork *net)
{
  guint32 n = --net->ah_len;
  if (n == 0)
    return;
  AHeapEnt *h = net->ah;
  AHeapEnt x = h[n];
  guint32 i = 0, c;
  while ((c = 2 * i + 1) + 1 < n)
    {
      c += h[c + 1].key < h[c].key;
      h[i] = h[c];
      i = c;
    }
  if (c < n)
    {
      h[i] = h[c];
      i = c;
    }
  while (i > 0)
    {
      guint32 p = (i - 1) / 2;
      if (!(x.key < h[p].key))
        break;
      h[i] = h[p];
      i = p;
    }
  h[i] = x;
}

static MsimTime
a_next_time (MsimNetwork *net)
{
  MsimTime t = net->ah_len ? akey_time (net->ah[0].key) : MSIM_TIME_NEVER;
  for (guint32 i = 0; i < net->n_afifo; i++)
    {
      const AFifo *q = &net->afifo[i];
      if (q->head < q->len)
        t = MIN (t, akey_time (q->v[q->head].key));
    }
  return t;
}

/* Puts flow @f's rate on its links (@on) or takes it off. */
static void
a_set_load (MsimNetwork *net, Flow *f, gboolean on, MsimTime now)
{
  Hop *h = flow_hops (net, f);
  for (guint32 j = 0; j < f->nhops; j++)
    {
      ALink *l = &net->al[h[j].link];
      if (now > l->since)
        {
          l->bytes += l->load * dt_seconds (now - l->since);
          l->since = now;
        }
      if (on)
        {
          l->load += f->target;
          l->n++;
        }
      else
        {
          l->load -= f->target;
          if (--l->n == 0 || l->load < 0.0)
            l->load = 0.0; /* no drift survives an empty link */
        }
    }
}

static void
a_first_byte (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  f->ev = MSIM_EVENT_HANDLE_NONE;
  if (f->nhops == 0 || f->bytes == 0.0)
    {
      finish_flow (net, fi, now);
      return;
    }
  Hop *h = flow_hops (net, f);
  double rate = net->al[h[0].link].cap;
  for (guint32 j = 1; j < f->nhops; j++)
    rate = MIN (rate, net->al[h[j].link].cap);
  f->state = FLOW_ACTIVE;
  f->target = rate;
  a_set_load (net, f, TRUE, now);
  MsimTime dt = 0;
  if (!msim_time_for_bytes (f->bytes, rate, &dt))
    dt = MSIM_TIME_NEVER - now;
  a_heap_push (net, msim_time_add_sat (now, dt), net->a_seq++, fi * 2u + A_END);
}

static void
a_end (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  f->ev = MSIM_EVENT_HANDLE_NONE;
  a_set_load (net, f, FALSE, now);
  finish_flow (net, fi, now);
}

static void
deactivate (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  double rate = flow_rate (net, f);
  if (f->bn != NIL)
    {
      settle_phi (&net->links[f->bn], now);
      unassign (net, fi);
    }
  Hop *h = flow_hops (net, f);
  for (guint32 j = 0; j < f->nhops; j++)
    {
      Link *l = &net->links[h[j].link];
      settle_bytes (l, now);
      l->load -= rate;
      guint32 pos = h[j].pos;
      Entry last = l->e[--l->n];
      if (pos != l->n)
        {
          l->e[pos] = last;
          net->hops[net->flows[last.flow].hop0 + last.hop].pos = pos;
        }
      if (l->n == 0 || l->load < 0.0)
        l->load = 0.0; /* no drift survives an empty link */
      net->res[h[j].link] = l->cap - l->load;
      if (l->n == 0)
        {
          guint32 moved = net->active[--net->n_active];
          net->active[l->active_pos] = moved;
          net->links[moved].active_pos = l->active_pos;
        }
    }
  net->restart_level = MIN (net->restart_level, rate);
  net->dirty = TRUE;
}

/* Completes every flow of link @li whose completion falls at @now. */
static void
complete_link (MsimNetwork *net, guint32 li, MsimTime now)
{
  Link *l = &net->links[li];
  ch_remove (net, li);
  MsimTime t0 = l->phi_t;
  double phi0 = l->phi;
  gboolean first = TRUE;
  while (l->heap_len > 0)
    {
      guint32 fi = l->heap[0];
      /* The event is for the earliest flow; the others that end at the
       * same picosecond (the same rounding as reschedule_link) go with it. */
      if (!first)
        {
          double left = net->flows[fi].target - phi0;
          MsimTime dt = 0;
          if (left > 0.0 && !msim_time_for_bytes (left, l->level, &dt))
            break;
          if (msim_time_add_sat (t0, dt) > now)
            break;
        }
      first = FALSE;
      deactivate (net, fi, now);
      finish_flow (net, fi, now);
    }
  mark_resched (net, li);
}

/* ---------- engine model ---------- */

static MsimTime
network_next_event (gpointer state, MsimTime now)
{
  MsimNetwork *net = state;
  if (net->model == MSIM_NETWORK_ANALYTICAL)
    return a_next_time (net); /* first bytes and ends alike */
  MsimTime ta = msim_event_queue_peek_time (net->first_bytes);
  if (ta == now)
    return now; /* first bytes due now join this time's batch before solving */
  if (net->dirty)
    solve (net, now);
  return MIN (ta, net->ch_len ? net->links[net->ch[0]].cend : MSIM_TIME_NEVER);
}

static void
network_advance (gpointer state, MsimTime now)
{
  MsimNetwork *net = state;
  MsimEvent ev;
  if (net->model == MSIM_NETWORK_ANALYTICAL)
    for (;;)
      {
        AFifo *q = a_fifo_first (net);
        AKey fk = q ? q->v[q->head].key : AKEY_NEVER;
        AKey hk = net->ah_len ? net->ah[0].key : AKEY_NEVER;
        if (akey_time (MIN (fk, hk)) != now)
          break;
        if (fk < hk)
          {
            a_first_byte (net, q->v[q->head++].flow, now);
            continue;
          }
        guint tag = net->ah[0].tag;
        a_heap_pop (net);
        if ((tag & 1u) == A_END)
          a_end (net, tag >> 1, now);
        else
          a_first_byte (net, tag >> 1, now);
      }
  else
    {
      while (msim_event_queue_peek_time (net->first_bytes) == now)
        {
          msim_event_queue_pop (net->first_bytes, &ev);
          activate (net, GPOINTER_TO_UINT (ev.data), now);
        }
      while (net->ch_len > 0 && net->links[net->ch[0]].cend == now)
        complete_link (net, net->ch[0], now);
    }
  /* Callbacks run after the whole batch is out of the network, so a flow
   * they start cannot see a half-updated state. */
  if (net->done->len > 0)
    {
      DoneList *batch = net->done;
      net->done = net->done_spare;
      net->done_spare = NULL;
      for (guint k = 0; k < batch->len; k++)
        {
          Done *d = &batch->v[k];
          if (d->done)
            d->done (net, &d->info, d->data);
        }
      batch->len = 0;
      net->done_spare = batch;
    }
}

static const MsimModelClass network_class = {
  "network",
  network_next_event,
  network_advance,
};

/* ---------- public API ---------- */

MsimNetwork *
msim_network_new (MsimEngine *engine, guint n_links, const double *capacity_Bps,
                  MsimNetworkModel model)
{
  g_return_val_if_fail (engine != NULL, NULL);
  for (guint i = 0; i < n_links; i++)
    g_return_val_if_fail (isfinite (capacity_Bps[i]) && capacity_Bps[i] > 0.0, NULL);
  MsimNetwork *net = g_new0 (MsimNetwork, 1);
  net->engine = engine;
  net->model = model;
  net->n_links = n_links;
  net->links = g_new0 (Link, n_links);
  net->res = g_new (double, n_links);
  net->unf = g_new0 (guint32, n_links);
  net->lmark = g_new0 (guint32, n_links);
  for (guint i = 0; i < n_links; i++)
    {
      net->links[i].cap = capacity_Bps[i];
      net->res[i] = capacity_Bps[i];
    }
  guint32 slots = 1;
  while (slots < n_links)
    slots <<= 1;
  net->tt = g_new (guint32, 2 * slots);
  net->tt_key = g_new (double, slots);
  net->tt_link = g_new (guint32, slots);
  net->free_flow = NIL;
  for (guint i = 0; i <= MAX_HOPS; i++)
    net->hop_free[i] = NIL;
  if (model == MSIM_NETWORK_ANALYTICAL)
    {
      net->al = g_new0 (ALink, n_links);
      for (guint i = 0; i < n_links; i++)
        net->al[i].cap = capacity_Bps[i];
    }
  net->first_bytes = msim_event_queue_new ();
  net->ch = g_new (guint32, n_links);
  for (guint i = 0; i < n_links; i++)
    net->links[i].ch_pos = NIL;
  net->bn_links = g_array_new (FALSE, FALSE, sizeof (guint32));
  net->touched = g_new (guint32, n_links + 1); /* solve_pass writes one past */
  net->active = g_new (guint32, n_links);
  net->upper = g_new (guint32, n_links);
  net->new_flows = g_array_new (FALSE, FALSE, sizeof (guint32));
  net->resched = g_new (guint32, n_links);
  net->done = &net->done_lists[0];
  net->done_spare = &net->done_lists[1];
  net->restart_level = G_MAXDOUBLE;
  msim_engine_add_model (engine, &network_class, net);
  return net;
}

void
msim_network_free (MsimNetwork *net)
{
  if (net == NULL)
    return;
  for (guint i = 0; i < net->n_links; i++)
    {
      Link *l = &net->links[i];
      g_free (l->e);
      g_free (l->heap);
      g_free (l->row);
      g_free (l->ridx);
    }
  g_free (net->links);
  g_free (net->res);
  g_free (net->unf);
  g_free (net->lmark);
  g_free (net->flows);
  g_free (net->hops);
  g_free (net->tt);
  g_free (net->tt_key);
  g_free (net->tt_link);
  msim_event_queue_free (net->first_bytes);
  for (guint32 i = 0; i < net->n_afifo; i++)
    g_free (net->afifo[i].v);
  g_free (net->ah);
  g_free (net->al);
  g_free (net->ch);
  g_array_free (net->bn_links, TRUE);
  g_free (net->touched);
  g_free (net->active);
  g_free (net->upper);
  g_array_free (net->new_flows, TRUE);
  g_free (net->resched);
  g_free (net->done_lists[0].v);
  g_free (net->done_lists[1].v);
  g_free (net);
}

MsimFlowId
msim_network_start_flow (MsimNetwork *net, MsimTime start, const guint32 *links, guint n_links,
                         MsimTime latency, double bytes, MsimFlowDoneFunc done, gpointer data)
{
  g_return_val_if_fail (n_links <= MAX_HOPS, 0);
  g_return_val_if_fail (isfinite (bytes) && bytes >= 0.0, 0);
  g_return_val_if_fail (latency >= 0 && start >= now_of (net), 0);
  /* Routes are simple paths: a 64-bit filter of the link ids finds most
   * routes free of repeats in O(hops); only a collision checks pairs. */
  guint64 seen = 0;
  gboolean collide = FALSE;
  for (guint j = 0; j < n_links; j++)
    {
      g_return_val_if_fail (links[j] < net->n_links, 0);
      guint64 bit = G_GUINT64_CONSTANT (1) << (links[j] & 63u);
      collide |= (seen & bit) != 0;
      seen |= bit;
    }
  if (G_UNLIKELY (collide))
    for (guint j = 0; j < n_links; j++)
      for (guint i = 0; i < j; i++)
        g_return_val_if_fail (links[i] != links[j], 0);
  guint32 fi = alloc_flow (net);
  guint32 hop0 = n_links ? alloc_hops (net, n_links) : 0;
  Flow *f = &net->flows[fi];
  guint32 gen = f->gen;
  memset (f, 0, sizeof *f);
  f->gen = gen;
  f->state = FLOW_WAITING;
  f->bytes = bytes;
  f->start = start;
  f->first_byte = msim_time_add_sat (start, latency);
  f->done = done;
  f->data = data;
  f->bn = NIL;
  f->nhops = n_links;
  f->hop0 = hop0;
  for (guint j = 0; j < n_links; j++)
    net->hops[hop0 + j] = (Hop){ links[j], 0 };
  if (net->model == MSIM_NETWORK_ANALYTICAL)
    {
      guint64 seq = net->a_seq++;
      if (!a_fifo_push (net, latency, f->first_byte, fi, seq))
        a_heap_push (net, f->first_byte, seq, fi * 2u + A_FIRST_BYTE);
    }
  else
    f->ev = msim_event_queue_push (net->first_bytes, f->first_byte, NULL, GUINT_TO_POINTER (fi));
  net->stats.flows_started++;
  net->stats.bytes_started += bytes;
  return flow_id (net, fi);
}

double
msim_network_flow_rate (MsimNetwork *net, MsimFlowId id)
{
  gint64 i = flow_index (net, id);
  if (i < 0)
    return -1.0;
  if (net->dirty)
    solve (net, now_of (net));
  return flow_rate (net, &net->flows[i]);
}

double
msim_network_link_bytes (MsimNetwork *net, guint link)
{
  g_return_val_if_fail (link < net->n_links, 0.0);
  if (net->dirty)
    solve (net, now_of (net));
  /* Read without settling: the running sum is only split at load changes,
   * so asking (e.g. for a timeline) never changes later results. */
  MsimTime now = now_of (net);
  if (net->al)
    {
      const ALink *a = &net->al[link];
      return a->bytes + (now > a->since ? a->load * dt_seconds (now - a->since) : 0.0);
    }
  const Link *l = &net->links[link];
  return l->bytes + (now > l->since ? l->load * dt_seconds (now - l->since) : 0.0);
}

double
msim_network_link_load (MsimNetwork *net, guint link)
{
  g_return_val_if_fail (link < net->n_links, 0.0);
  if (net->dirty)
    solve (net, now_of (net));
  return net->al ? net->al[link].load : net->links[link].load;
}

MsimNetworkModel
msim_network_model (const MsimNetwork *net)
{
  return net->model;
}

guint
msim_network_n_links (const MsimNetwork *net)
{
  return net->n_links;
}

guint
msim_network_link_flows (const MsimNetwork *net, guint link)
{
  g_return_val_if_fail (link < net->n_links, 0);
  return net->al ? net->al[link].n : net->links[link].n;
}

void
msim_network_set_check (MsimNetwork *net, gboolean check, gboolean compare_reference)
{
  net->check = check;
  net->check_reference = compare_reference;
}

void
msim_network_get_stats (const MsimNetwork *net, MsimNetworkStats *stats)
{
  *stats = net->stats;
}

/* ---------- invariant checks ---------- */

static void
run_checks (MsimNetwork *net)
{
  if (net->model != MSIM_NETWORK_MAXMIN)
    return;
  double *sum = g_new0 (double, net->n_links);
  double *maxr = g_new0 (double, net->n_links);
  guint32 *bncount = g_new0 (guint32, net->n_links);
  guint32 nactive = 0, nlinks_active = 0;
  for (guint32 i = 0; i < net->n_flows; i++)
    {
      Flow *f = &net->flows[i];
      if (f->state != FLOW_ACTIVE)
        continue;
      nactive++;
      double rate = flow_rate (net, f);
      if (f->bn == NIL || !(rate > 0.0))
        g_error ("network check: active flow %u has no bottleneck or rate %g", i, rate);
      Hop *h = flow_hops (net, f);
      gboolean on_bn = FALSE;
      for (guint32 j = 0; j < f->nhops; j++)
        {
          sum[h[j].link] += rate;
          maxr[h[j].link] = MAX (maxr[h[j].link], rate);
          on_bn |= h[j].link == f->bn;
          if (net->links[h[j].link].e[h[j].pos].flow != i)
            g_error ("network check: flow %u hop %u position is stale", i, j);
          if (net->links[h[j].link].e[h[j].pos].bn != f->bn)
            g_error ("network check: flow %u hop %u bottleneck copy is stale", i, j);
        }
      if (!on_bn)
        g_error ("network check: flow %u has a bottleneck off its route", i);
      bncount[f->bn]++;
      if (net->links[f->bn].heap[f->heap_pos] != i)
        g_error ("network check: flow %u heap position is stale", i);
    }
  for (guint32 li = 0; li < net->n_links; li++)
    {
      Link *l = &net->links[li];
      if (sum[li] > l->cap * (1.0 + 1e-9))
        g_error ("network check: link %u over capacity (%.17g > %.17g)", li, sum[li], l->cap);
      /* Loads are kept incrementally; allow their rounding drift (about
       * 1e-16 per update) but nothing a bug would leave. */
      if (fabs (sum[li] - l->load) > 1e-7 * MAX (l->cap, sum[li]))
        g_error ("network check: link %u load %.17g != sum of rates %.17g", li, l->load, sum[li]);
      if (l->n > 0 && (l->active_pos >= net->n_active || net->active[l->active_pos] != li))
        g_error ("network check: link %u carries flows but is not listed as active", li);
      nlinks_active += l->n > 0;
      if (net->unf[li] != 0 || net->res[li] != l->cap - l->load)
        g_error ("network check: link %u solve scratch not reset (unf %u, res %.17g, cap - load "
                 "%.17g)",
                 li, net->unf[li], net->res[li], l->cap - l->load);
      if (bncount[li] != l->heap_len)
        g_error ("network check: link %u heap holds %u flows, %u point at it", li, l->heap_len,
                 bncount[li]);
      guint32 rowself = 0;
      for (guint32 r = 0; r < l->rlen; r++)
        if (l->row[r].m == li)
          rowself = l->row[r].c;
      if (rowself != l->heap_len)
        g_error ("network check: link %u row self count %u != %u", li, rowself, l->heap_len);
    }
  if (nlinks_active != net->n_active)
    g_error ("network check: %u links carry flows, %u listed", nlinks_active, net->n_active);
  for (guint32 i = 0; i < net->n_flows; i++)
    {
      Flow *f = &net->flows[i];
      if (f->state != FLOW_ACTIVE)
        continue;
      Link *b = &net->links[f->bn];
      if (sum[f->bn] < b->cap * (1.0 - 1e-8))
        g_error ("network check: flow %u bottleneck link %u is not saturated", i, f->bn);
      if (flow_rate (net, f) < maxr[f->bn] * (1.0 - 1e-8))
        g_error ("network check: flow %u is not maximal on its bottleneck %u", i, f->bn);
    }
  if (net->check_reference && nactive > 0)
    {
      guint32 *offsets = g_new (guint32, nactive + 1);
      guint32 *map = g_new (guint32, nactive);
      GArray *ls = g_array_new (FALSE, FALSE, sizeof (guint32));
      guint32 k = 0;
      offsets[0] = 0;
      for (guint32 i = 0; i < net->n_flows; i++)
        {
          Flow *f = &net->flows[i];
          if (f->state != FLOW_ACTIVE)
            continue;
          for (guint32 j = 0; j < f->nhops; j++)
            g_array_append_val (ls, net->hops[f->hop0 + j].link);
          map[k] = i;
          offsets[++k] = ls->len;
        }
      double *cap = g_new (double, net->n_links);
      for (guint32 li = 0; li < net->n_links; li++)
        cap[li] = net->links[li].cap;
      double *ref = g_new (double, nactive);
      msim_maxmin_reference (net->n_links, cap, nactive, offsets, (guint32 *)ls->data, ref);
      for (k = 0; k < nactive; k++)
        if (!msim_float_near (ref[k], flow_rate (net, &net->flows[map[k]]), 1e-7))
          g_error ("network check: flow %u rate %.17g differs from reference %.17g", map[k],
                   flow_rate (net, &net->flows[map[k]]), ref[k]);
      g_free (cap);
      g_free (ref);
      g_free (offsets);
      g_free (map);
      g_array_free (ls, TRUE);
    }
  g_free (sum);
  g_free (maxr);
  g_free (bncount);
}
