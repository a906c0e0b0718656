/*
 * The flow-level network model: max-min fair sharing, solved incrementally.
 *
 * ## What is maintained
 * For every active flow: its rate, the bytes left at its last settle time,
 * and a *bottleneck* link: a saturated link on which no flow has a higher
 * rate.  For every link: its load (the sum of its flows' rates), its flows,
 * and the list of flows whose bottleneck it is; those flows all share one
 * rate, the link's *level*, which is the highest rate on the link.
 *
 * A feasible allocation in which every flow has such a bottleneck is the
 * max-min fair allocation (Bertsekas and Gallager, Data Networks, 6.5.2),
 * and it is unique.  So the solver does not need to recompute everything
 * after a change: it recomputes a region U of flows and then *proves* that
 * the rest is still fair, by checking the bottleneck condition only where
 * the region's new rates can have broken it.
 *
 * ## One re-solve (a batch: everything that changed at one simulated time)
 * 1. Seeds: flows that started, plus the flows bottlenecked on any link a
 *    started or finished flow crosses (only they can gain or lose: a flow
 *    bottlenecked elsewhere keeps its bottleneck).
 * 2. Round: progressive filling of U alone, every other flow keeping its
 *    rate (each link's capacity minus its fixed flows' load is what U may
 *    use).  The region's flows are listed per link in a CSR scratch array,
 *    and links sit in a heap keyed by fair share, so a round costs
 *    O(|U| hops log links) and never walks a link's other flows.
 * 3. Validation, on the links U crosses (the only links whose load or
 *    highest rate can have changed):
 *      - a link with fixed bottlenecked flows that is no longer saturated,
 *        or on which a region flow now exceeds their level, or on which a
 *        region flow was frozen below their level: those fixed flows join U;
 *      - a link on which region flows were frozen but no fixed flow is
 *        bottlenecked: any fixed flow there with a higher rate joins U (a
 *        scan of that link, counted in the statistics).
 *    If U grew, go back to 2; U only grows, so this terminates.
 * 4. Commit: new rates, bottlenecks and loads; settle remaining bytes of the
 *    flows whose rate changed and move their completion events.
 * Every flow then has a bottleneck, so the result equals a from-scratch
 * solve (tests check this against msim_maxmin_reference on random cases).
 *
 * Typical cost: when one flow of an all-to-all finishes, U is the flows
 * bottlenecked on its two or three links, not the whole all-to-all: SimGrid
 * re-solves every coupled flow on every completion, which is what makes it
 * grow faster than the square of the flow count.
 *
 * Remaining bytes are settled lazily (remaining -= rate * elapsed only when
 * a rate changes), and flows finishing at the same picosecond are removed
 * together before one re-solve.
 */
#include "network.h"

#include <math.h>
#include <string.h>

#include "msim-float.h"

#define NIL G_MAXUINT32
#define MAX_HOPS 32

/* Relative tolerance for "saturated" and "equal rate" decisions. */
#define EPS MSIM_REL_EPS

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
  double remaining; /* bytes left at time `updated` */
  double rate;
  double bytes;
  double new_rate; /* round scratch */
  MsimTime updated;
  MsimTime start;
  MsimTime first_byte;
  MsimTime end;
  MsimEventHandle ev; /* first-byte or completion event */
  MsimFlowDoneFunc done;
  gpointer data;
  guint32 hop0; /* offset of the flow's hops in the hop pool */
  guint32 nhops;
  guint32 bn; /* bottleneck link, NIL if none */
  guint32 bn_prev, bn_next;
  guint32 gen;
  guint32 in_region; /* == net->batch_epoch when in U */
  guint32 frozen;    /* == net->round_epoch once frozen in this round */
  guint32 seeded;    /* == net->seed_epoch when queued as a seed */
  guint32 sub_bn;    /* round scratch: link the flow froze on */
  guint8 state;
} Flow;

typedef struct
{
  guint32 flow;
  guint32 hop; /* index of the hop in the flow's route */
} Entry;

typedef struct
{
  double cap;
  double load;
  double level; /* rate of the flows bottlenecked here */
  Entry *e;
  guint32 n, e_cap;
  guint32 bn_head, bn_count;
  double bytes; /* carried up to `since` */
  MsimTime since;
  /* round scratch */
  guint32 mark;
  guint32 u_count, u_bn_count, u_off, u_fill, unfrozen;
  guint32 heap_pos;
  gboolean is_sub_bn;
  double u_old_sum, u_new_sum, u_new_max, bn_rate, residual;
} Link;

typedef struct
{
  MsimFlowInfo info;
  MsimFlowDoneFunc done;
  gpointer data;
} Done;

struct _MsimNetwork
{
  MsimEngine *engine;
  MsimNetworkModel model;
  Link *links;
  guint32 n_links;

  Flow *flows;
  guint32 n_flows, flows_cap;
  guint32 free_flow;

  Hop *hops; /* pool; blocks of equal size recycled through free lists */
  guint32 n_hops, hops_cap;
  guint32 hop_free[MAX_HOPS + 1];

  MsimEventQueue *first_bytes; /* data = flow index */
  MsimEventQueue *completions;

  GArray *seeds;  /* guint32 flow indices */
  GArray *region; /* U */
  GArray *touched;
  GArray *ulist;
  guint32 *heap;
  guint32 heap_len, heap_cap;
  GArray *done;

  guint32 batch_epoch, round_epoch, seed_epoch;
  gboolean dirty;
  gboolean check, check_reference;
  MsimNetworkStats stats;
};

static const MsimModelClass network_class;

/* ---------- helpers ---------- */

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

static void
settle_link (Link *l, MsimTime now)
{
  if (now > l->since)
    {
      l->bytes += l->load * msim_time_to_seconds (now - l->since);
      l->since = now;
    }
}

static void
settle_flow (Flow *f, MsimTime now)
{
  if (now > f->updated)
    {
      f->remaining -= f->rate * msim_time_to_seconds (now - f->updated);
      if (f->remaining < 0.0)
        f->remaining = 0.0;
      f->updated = now;
    }
}

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
      net->free_flow = net->flows[i].bn_next;
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
  f->bn_next = net->free_flow;
  net->free_flow = i;
}

static inline MsimFlowId
flow_id (const MsimNetwork *net, guint32 i)
{
  return ((guint64) net->flows[i].gen << 32) | i;
}

static gint64
flow_index (const MsimNetwork *net, MsimFlowId id)
{
  guint32 i = (guint32) (id & 0xffffffffu);
  if (i >= net->n_flows || net->flows[i].gen != (guint32) (id >> 32)
      || net->flows[i].state == FLOW_FREE)
    return -1;
  return i;
}

static void
bn_unlink (MsimNetwork *net, guint32 fi)
{
  Flow *f = &net->flows[fi];
  if (f->bn == NIL)
    return;
  Link *l = &net->links[f->bn];
  if (f->bn_prev != NIL)
    net->flows[f->bn_prev].bn_next = f->bn_next;
  else
    l->bn_head = f->bn_next;
  if (f->bn_next != NIL)
    net->flows[f->bn_next].bn_prev = f->bn_prev;
  l->bn_count--;
  f->bn = NIL;
}

static void
bn_link (MsimNetwork *net, guint32 fi, guint32 li)
{
  Flow *f = &net->flows[fi];
  Link *l = &net->links[li];
  f->bn = li;
  f->bn_prev = NIL;
  f->bn_next = l->bn_head;
  if (l->bn_head != NIL)
    net->flows[l->bn_head].bn_prev = fi;
  l->bn_head = fi;
  l->bn_count++;
}

static void
add_seed (MsimNetwork *net, guint32 fi)
{
  Flow *f = &net->flows[fi];
  if (f->seeded == net->seed_epoch)
    return;
  f->seeded = net->seed_epoch;
  g_array_append_val (net->seeds, fi);
}

/* The flows bottlenecked on @li may gain or lose when @li's flows change. */
static void
seed_link (MsimNetwork *net, guint32 li)
{
  for (guint32 g = net->links[li].bn_head; g != NIL; g = net->flows[g].bn_next)
    add_seed (net, g);
}

static void
schedule_completion (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  MsimTime dt = 0;
  if (f->remaining > 0.0 && !msim_time_for_bytes (f->remaining, f->rate, &dt))
    dt = MSIM_TIME_NEVER - now; /* a rate so low the flow never ends in range */
  MsimTime end = msim_time_add_sat (now, dt);
  if (f->ev != MSIM_EVENT_HANDLE_NONE && msim_event_queue_is_pending (net->completions, f->ev))
    f->ev = msim_event_queue_reschedule (net->completions, f->ev, end);
  else
    f->ev = msim_event_queue_push (net->completions, end, NULL, GUINT_TO_POINTER (fi));
  f->end = end;
}

/* ---------- the region solve ---------- */

static inline double
share_of (const Link *l)
{
  return MAX (l->residual, 0.0) / l->unfrozen;
}

static inline gboolean
heap_less (const MsimNetwork *net, guint32 a, guint32 b)
{
  double sa = share_of (&net->links[a]), sb = share_of (&net->links[b]);
  return sa < sb || (sa == sb && a < b);
}

static void
heap_place (MsimNetwork *net, guint32 pos, guint32 li)
{
  net->heap[pos] = li;
  net->links[li].heap_pos = pos;
}

static void
heap_up (MsimNetwork *net, guint32 pos, guint32 li)
{
  while (pos > 0)
    {
      guint32 parent = (pos - 1) / 2;
      if (!heap_less (net, li, net->heap[parent]))
        break;
      heap_place (net, pos, net->heap[parent]);
      pos = parent;
    }
  heap_place (net, pos, li);
}

static void
heap_down (MsimNetwork *net, guint32 pos, guint32 li)
{
  for (;;)
    {
      guint32 c = 2 * pos + 1;
      if (c >= net->heap_len)
        break;
      if (c + 1 < net->heap_len && heap_less (net, net->heap[c + 1], net->heap[c]))
        c++;
      if (!heap_less (net, net->heap[c], li))
        break;
      heap_place (net, pos, net->heap[c]);
      pos = c;
    }
  heap_place (net, pos, li);
}

static void
heap_remove (MsimNetwork *net, guint32 li)
{
  guint32 pos = net->links[li].heap_pos;
  net->links[li].heap_pos = NIL;
  guint32 last = net->heap[--net->heap_len];
  if (last == li)
    return;
  if (pos > 0 && heap_less (net, last, net->heap[(pos - 1) / 2]))
    heap_up (net, pos, last);
  else
    heap_down (net, pos, last);
}

static void
region_add (MsimNetwork *net, guint32 fi)
{
  Flow *f = &net->flows[fi];
  if (f->in_region == net->batch_epoch || f->state != FLOW_ACTIVE)
    return;
  f->in_region = net->batch_epoch;
  g_array_append_val (net->region, fi);
}

/* Adds the fixed flows bottlenecked on @li to the region. Returns how many. */
static guint
grow_from_bottleneck (MsimNetwork *net, guint32 li)
{
  guint added = 0;
  for (guint32 g = net->links[li].bn_head; g != NIL; g = net->flows[g].bn_next)
    if (net->flows[g].in_region != net->batch_epoch)
      {
        region_add (net, g);
        added++;
      }
  return added;
}

/* One round: progressive filling of the region with everything else fixed.
 * Leaves new_rate/sub_bn in the region's flows and per-link sums in the
 * touched links. */
static void
fill_region (MsimNetwork *net)
{
  guint32 *U = (guint32 *) net->region->data;
  guint32 nU = net->region->len;
  net->round_epoch++;
  g_array_set_size (net->touched, 0);

  for (guint32 k = 0; k < nU; k++)
    {
      Flow *f = &net->flows[U[k]];
      Hop *h = flow_hops (net, f);
      for (guint32 j = 0; j < f->nhops; j++)
        {
          guint32 li = h[j].link;
          Link *l = &net->links[li];
          if (l->mark != net->round_epoch)
            {
              l->mark = net->round_epoch;
              l->u_count = l->u_bn_count = 0;
              l->u_old_sum = l->u_new_sum = l->u_new_max = 0.0;
              l->is_sub_bn = FALSE;
              l->bn_rate = G_MAXDOUBLE;
              g_array_append_val (net->touched, li);
            }
          l->u_count++;
          l->u_old_sum += f->rate;
        }
      if (f->bn != NIL)
        net->links[f->bn].u_bn_count++;
    }

  guint32 *T = (guint32 *) net->touched->data;
  guint32 nT = net->touched->len;
  guint32 off = 0;
  for (guint32 k = 0; k < nT; k++)
    {
      Link *l = &net->links[T[k]];
      l->u_off = l->u_fill = off;
      off += l->u_count;
    }
  g_array_set_size (net->ulist, off);
  guint32 *ul = (guint32 *) net->ulist->data;
  for (guint32 k = 0; k < nU; k++)
    {
      Flow *f = &net->flows[U[k]];
      Hop *h = flow_hops (net, f);
      for (guint32 j = 0; j < f->nhops; j++)
        ul[net->links[h[j].link].u_fill++] = U[k];
    }

  if (nT > net->heap_cap)
    {
      net->heap_cap = MAX (nT, net->heap_cap * 2u);
      net->heap = g_renew (guint32, net->heap, net->heap_cap);
    }
  net->heap_len = 0;
  for (guint32 k = 0; k < nT; k++)
    {
      Link *l = &net->links[T[k]];
      double fixed = l->load - l->u_old_sum;
      if (fixed < 0.0 || l->u_count == l->n)
        fixed = 0.0; /* all of the link's flows are in the region: exactly 0 */
      l->residual = l->cap - fixed;
      l->unfrozen = l->u_count;
      net->heap_len++;
      heap_up (net, net->heap_len - 1, T[k]);
    }

  while (net->heap_len > 0)
    {
      guint32 li = net->heap[0];
      Link *l = &net->links[li];
      double s = share_of (l);
      heap_remove (net, li);
      for (guint32 k = l->u_off; k < l->u_off + l->u_count; k++)
        {
          Flow *f = &net->flows[ul[k]];
          if (f->frozen == net->round_epoch)
            continue;
          f->frozen = net->round_epoch;
          f->new_rate = s;
          f->sub_bn = li;
          Hop *h = flow_hops (net, f);
          for (guint32 j = 0; j < f->nhops; j++)
            {
              guint32 mi = h[j].link;
              Link *m = &net->links[mi];
              m->u_new_sum += s;
              if (s > m->u_new_max)
                m->u_new_max = s;
              if (mi == li)
                continue;
              m->residual -= s;
              m->unfrozen--;
              if (m->heap_pos != NIL)
                {
                  if (m->unfrozen == 0)
                    heap_remove (net, mi);
                  else
                    heap_down (net, m->heap_pos, mi); /* shares only grow */
                }
            }
        }
      l->unfrozen = 0;
      l->is_sub_bn = TRUE;
      l->bn_rate = s;
    }
}

/* Step 3: grows the region where the fixed flows' bottlenecks may have
 * broken.  Returns the number of flows added. */
static guint
validate_region (MsimNetwork *net)
{
  guint added = 0;
  guint32 nT = net->touched->len;
  for (guint32 k = 0; k < nT; k++)
    {
      guint32 li = g_array_index (net->touched, guint32, k);
      Link *l = &net->links[li];
      guint32 fixed_bn = l->bn_count - l->u_bn_count;
      if (fixed_bn > 0)
        {
          double fixed = l->u_count == l->n ? 0.0 : MAX (l->load - l->u_old_sum, 0.0);
          double new_load = fixed + l->u_new_sum;
          if (new_load < l->cap * (1.0 - EPS) || l->u_new_max > l->level * (1.0 + EPS)
              || (l->is_sub_bn && l->bn_rate < l->level * (1.0 - EPS)))
            added += grow_from_bottleneck (net, li);
        }
      else if (l->is_sub_bn && l->u_count < l->n)
        {
          /* Region flows froze here but no fixed flow has this link as its
           * bottleneck: any fixed flow with a higher rate must give way. */
          double limit = l->bn_rate * (1.0 + EPS);
          net->stats.links_scanned += l->n;
          for (guint32 j = 0; j < l->n; j++)
            {
              Flow *g = &net->flows[l->e[j].flow];
              if (g->in_region != net->batch_epoch && g->rate > limit)
                {
                  region_add (net, l->e[j].flow);
                  added++;
                }
            }
        }
    }
  return added;
}

static void run_checks (MsimNetwork *net);

static void
solve (MsimNetwork *net, MsimTime now)
{
  net->dirty = FALSE;
  net->batch_epoch++;
  g_array_set_size (net->region, 0);
  for (guint32 k = 0; k < net->seeds->len; k++)
    region_add (net, g_array_index (net->seeds, guint32, k));
  g_array_set_size (net->seeds, 0);
  net->seed_epoch++;
  if (net->region->len == 0)
    return;
  net->stats.batches++;

  for (;;)
    {
      net->stats.rounds++;
      net->stats.flows_resolved += net->region->len;
      fill_region (net);
      if (validate_region (net) == 0)
        break;
    }

  /* Commit. */
  guint32 nT = net->touched->len;
  for (guint32 k = 0; k < nT; k++)
    {
      Link *l = &net->links[g_array_index (net->touched, guint32, k)];
      settle_link (l, now);
      double fixed = l->u_count == l->n ? 0.0 : MAX (l->load - l->u_old_sum, 0.0);
      l->load = fixed + l->u_new_sum;
    }
  guint32 nU = net->region->len;
  for (guint32 k = 0; k < nU; k++)
    {
      guint32 fi = g_array_index (net->region, guint32, k);
      Flow *f = &net->flows[fi];
      if (f->bn != f->sub_bn)
        {
          bn_unlink (net, fi);
          bn_link (net, fi, f->sub_bn);
        }
      net->links[f->sub_bn].level = f->new_rate;
      if (f->new_rate != f->rate)
        {
          settle_flow (f, now);
          f->rate = f->new_rate;
          net->stats.rate_changes++;
          schedule_completion (net, fi, now);
        }
    }
  if (net->check)
    run_checks (net);
}

/* ---------- flow lifecycle ---------- */

static void
finish_flow (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  Done d = { { flow_id (net, fi), f->start, f->first_byte, now, f->bytes }, f->done, f->data };
  g_array_append_val (net->done, d);
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
  f->remaining = f->bytes;
  f->updated = now;
  f->rate = 0.0;
  f->bn = NIL;
  Hop *h = flow_hops (net, f);
  double min_cap = G_MAXDOUBLE;
  for (guint32 j = 0; j < f->nhops; j++)
    {
      Link *l = &net->links[h[j].link];
      if (l->n == l->e_cap)
        {
          l->e_cap = MAX (8u, l->e_cap * 2u);
          l->e = g_renew (Entry, l->e, l->e_cap);
        }
      h[j].pos = l->n;
      l->e[l->n++] = (Entry) { fi, j };
      min_cap = MIN (min_cap, l->cap);
    }
  if (net->model == MSIM_NETWORK_ANALYTICAL)
    {
      for (guint32 j = 0; j < f->nhops; j++)
        {
          Link *l = &net->links[h[j].link];
          settle_link (l, now);
          l->load += min_cap;
        }
      f->rate = min_cap;
      schedule_completion (net, fi, now);
      return;
    }
  add_seed (net, fi);
  for (guint32 j = 0; j < f->nhops; j++)
    seed_link (net, h[j].link);
  net->dirty = TRUE;
}

static void
deactivate (MsimNetwork *net, guint32 fi, MsimTime now)
{
  Flow *f = &net->flows[fi];
  bn_unlink (net, fi);
  Hop *h = flow_hops (net, f);
  for (guint32 j = 0; j < f->nhops; j++)
    {
      guint32 li = h[j].link;
      Link *l = &net->links[li];
      settle_link (l, now);
      l->load -= f->rate;
      guint32 pos = h[j].pos;
      Entry last = l->e[--l->n];
      if (pos != l->n)
        {
          l->e[pos] = last;
          net->hops[net->flows[last.flow].hop0 + last.hop].pos = pos;
        }
      if (l->n == 0 || l->load < 0.0)
        l->load = 0.0; /* no drift survives an empty link */
      if (net->model == MSIM_NETWORK_MAXMIN)
        seed_link (net, li);
    }
  f->rate = 0.0;
  net->dirty = TRUE;
}

/* ---------- engine model ---------- */

static MsimTime
network_next_event (gpointer state, MsimTime now)
{
  MsimNetwork *net = state;
  MsimTime ta = msim_event_queue_peek_time (net->first_bytes);
  if (ta == now)
    return now; /* first bytes due now join this time's batch before solving */
  if (net->dirty)
    solve (net, now);
  return MIN (ta, msim_event_queue_peek_time (net->completions));
}

static void
network_advance (gpointer state, MsimTime now)
{
  MsimNetwork *net = state;
  MsimEvent ev;
  while (msim_event_queue_peek_time (net->first_bytes) == now)
    {
      msim_event_queue_pop (net->first_bytes, &ev);
      activate (net, GPOINTER_TO_UINT (ev.data), now);
    }
  while (msim_event_queue_peek_time (net->completions) == now)
    {
      msim_event_queue_pop (net->completions, &ev);
      guint32 fi = GPOINTER_TO_UINT (ev.data);
      net->flows[fi].ev = MSIM_EVENT_HANDLE_NONE;
      deactivate (net, fi, now);
      finish_flow (net, fi, now);
    }
  /* Callbacks run after the whole batch is out of the network, so a flow
   * they start cannot see a half-updated state. */
  if (net->done->len > 0)
    {
      g_autoptr (GArray) batch = net->done;
      net->done = g_array_new (FALSE, FALSE, sizeof (Done));
      for (guint k = 0; k < batch->len; k++)
        {
          Done *d = &g_array_index (batch, Done, k);
          if (d->done)
            d->done (net, &d->info, d->data);
        }
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
  MsimNetwork *net = g_new0 (MsimNetwork, 1);
  net->engine = engine;
  net->model = model;
  net->n_links = n_links;
  net->links = g_new0 (Link, n_links);
  for (guint i = 0; i < n_links; i++)
    {
      g_return_val_if_fail (isfinite (capacity_Bps[i]) && capacity_Bps[i] > 0.0, NULL);
      net->links[i].cap = capacity_Bps[i];
      net->links[i].bn_head = NIL;
      net->links[i].heap_pos = NIL;
    }
  net->free_flow = NIL;
  for (guint i = 0; i <= MAX_HOPS; i++)
    net->hop_free[i] = NIL;
  net->first_bytes = msim_event_queue_new ();
  net->completions = msim_event_queue_new ();
  net->seeds = g_array_new (FALSE, FALSE, sizeof (guint32));
  net->region = g_array_new (FALSE, FALSE, sizeof (guint32));
  net->touched = g_array_new (FALSE, FALSE, sizeof (guint32));
  net->ulist = g_array_new (FALSE, FALSE, sizeof (guint32));
  net->done = g_array_new (FALSE, FALSE, sizeof (Done));
  net->seed_epoch = 1;
  msim_engine_add_model (engine, &network_class, net);
  return net;
}

void
msim_network_free (MsimNetwork *net)
{
  if (net == NULL)
    return;
  for (guint i = 0; i < net->n_links; i++)
    g_free (net->links[i].e);
  g_free (net->links);
  g_free (net->flows);
  g_free (net->hops);
  g_free (net->heap);
  msim_event_queue_free (net->first_bytes);
  msim_event_queue_free (net->completions);
  g_array_free (net->seeds, TRUE);
  g_array_free (net->region, TRUE);
  g_array_free (net->touched, TRUE);
  g_array_free (net->ulist, TRUE);
  g_array_free (net->done, TRUE);
  g_free (net);
}

MsimFlowId
msim_network_start_flow (MsimNetwork *net, MsimTime start, const guint32 *links, guint n_links,
                         MsimTime latency, double bytes, MsimFlowDoneFunc done, gpointer data)
{
  g_return_val_if_fail (n_links <= MAX_HOPS, 0);
  g_return_val_if_fail (isfinite (bytes) && bytes >= 0.0, 0);
  g_return_val_if_fail (latency >= 0 && start >= now_of (net), 0);
  for (guint j = 0; j < n_links; j++)
    {
      g_return_val_if_fail (links[j] < net->n_links, 0);
      for (guint i = 0; i < j; i++)
        g_return_val_if_fail (links[i] != links[j], 0); /* routes are simple paths */
    }
  guint32 fi = alloc_flow (net);
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
  f->hop0 = n_links ? alloc_hops (net, n_links) : 0;
  f = &net->flows[fi];
  for (guint j = 0; j < n_links; j++)
    net->hops[f->hop0 + j] = (Hop) { links[j], 0 };
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
  return net->flows[i].state == FLOW_ACTIVE ? net->flows[i].rate : 0.0;
}

double
msim_network_link_bytes (MsimNetwork *net, guint link)
{
  g_return_val_if_fail (link < net->n_links, 0.0);
  if (net->dirty)
    solve (net, now_of (net));
  settle_link (&net->links[link], now_of (net));
  return net->links[link].bytes;
}

double
msim_network_link_load (MsimNetwork *net, guint link)
{
  g_return_val_if_fail (link < net->n_links, 0.0);
  if (net->dirty)
    solve (net, now_of (net));
  return net->links[link].load;
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
  return net->links[link].n;
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
  double *sum = g_new0 (double, net->n_links);
  double *maxr = g_new0 (double, net->n_links);
  guint32 nactive = 0;
  for (guint32 i = 0; i < net->n_flows; i++)
    {
      Flow *f = &net->flows[i];
      if (f->state != FLOW_ACTIVE)
        continue;
      nactive++;
      if (!(f->rate > 0.0))
        g_error ("network check: active flow %u has rate %g", i, f->rate);
      Hop *h = flow_hops (net, f);
      gboolean on_bn = FALSE;
      for (guint32 j = 0; j < f->nhops; j++)
        {
          sum[h[j].link] += f->rate;
          maxr[h[j].link] = MAX (maxr[h[j].link], f->rate);
          on_bn |= h[j].link == f->bn;
          if (net->links[h[j].link].e[h[j].pos].flow != i)
            g_error ("network check: flow %u hop %u position is stale", i, j);
        }
      if (!on_bn)
        g_error ("network check: flow %u has no bottleneck on its route", i);
    }
  for (guint32 li = 0; li < net->n_links; li++)
    {
      Link *l = &net->links[li];
      if (sum[li] > l->cap * (1.0 + 1e-9))
        g_error ("network check: link %u over capacity (%.17g > %.17g)", li, sum[li], l->cap);
      if (!msim_float_near (sum[li], l->load, 1e-9) && fabs (sum[li] - l->load) > 1e-6)
        g_error ("network check: link %u load %.17g != sum of rates %.17g", li, l->load, sum[li]);
    }
  for (guint32 i = 0; i < net->n_flows; i++)
    {
      Flow *f = &net->flows[i];
      if (f->state != FLOW_ACTIVE)
        continue;
      Link *b = &net->links[f->bn];
      if (sum[f->bn] < b->cap * (1.0 - 1e-8))
        g_error ("network check: flow %u bottleneck link %u is not saturated", i, f->bn);
      if (f->rate < maxr[f->bn] * (1.0 - 1e-8))
        g_error ("network check: flow %u (rate %.17g) is not maximal on its bottleneck %u "
                 "(max %.17g)",
                 i, f->rate, f->bn, maxr[f->bn]);
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
      msim_maxmin_reference (net->n_links, cap, nactive, offsets, (guint32 *) ls->data, ref);
      for (k = 0; k < nactive; k++)
        if (!msim_float_near (ref[k], net->flows[map[k]].rate, 1e-7))
          g_error ("network check: flow %u rate %.17g differs from reference %.17g", map[k],
                   net->flows[map[k]].rate, ref[k]);
      g_free (cap);
      g_free (ref);
      g_free (offsets);
      g_free (map);
      g_array_free (ls, TRUE);
    }
  g_free (sum);
  g_free (maxr);
}
