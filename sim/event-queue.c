#include "event-queue.h"

#include <string.h>

/*
 * A calendar queue with a heap for the current bucket (a two-tier ladder
 * queue, after Tang, Goh and Thng 2005), keyed by (time, insertion seq).
 *
 * Why not a binary heap: an indexed heap of 10^5 events pays a cache miss and
 * one or two mispredicted branches per level on every pop (measured: about
 * 5 M hold operations/s on this class of machine).  Event times in a
 * simulation are spread over a window that moves forward, which a calendar
 * exploits: the window [wstart, wend) is cut into NB buckets of width W;
 *  - a push into a future bucket is a list prepend, O(1);
 *  - a push beyond the window goes to an unsorted "far" list, O(1);
 *  - the bucket being served is turned into a small heap (the "run") when
 *    the clock reaches it; pops come from the run, O(log k) for k events in
 *    that bucket, k being about 2 when W fits the event density;
 *  - when every bucket is spent, the far list is redistributed over a new
 *    window whose W is fitted to its spread and count (O(1) amortised:
 *    each event is moved once per window it outlives).
 * If the width fits badly (one bucket holds many events) the run heap keeps
 * the cost at O(log n), never worse than a plain heap.
 *
 * A handle names the event's node and the node's generation, so a pop
 * touches only the node.  Cancelling an event in the run removes it from
 * the heap (O(log k)); one in a bucket or the far list is marked and its
 * node freed when the list is next walked (O(1)), so lists can be singly
 * linked and a push never touches another event's memory.  Rescheduling a
 * listed event moves it to a fresh node, which is why reschedule returns a
 * new handle.  (A separate handle table would keep handles stable but costs
 * a cache miss per pop: measured, about a third of the throughput.)  The queue is monotone: a push
 * must not go earlier than the last popped time, which a simulation never does.
 */

#define WHERE_FREE   G_MAXUINT32
#define WHERE_RUN    (G_MAXUINT32 - 1)
#define WHERE_FAR    (G_MAXUINT32 - 2)
#define WHERE_ZOMBIE (G_MAXUINT32 - 3) /* cancelled, still linked in a list */
#define NIL          G_MAXUINT32

#define MIN_BUCKETS 16u
#define MAX_BUCKETS (1u << 24)
#define LARGE_QUEUE (1u << 14) /* events; see rebuild() */

typedef struct
{
  guint64 time;
  guint64 seq;
  gpointer func;
  gpointer data;
  guint32 gen;   /* handle generation; bumped when the event fires or is cancelled */
  guint32 where; /* bucket index, or one of the WHERE_ values */
  guint32 next;  /* list link (bucket/far/free); heap position in the run */
  guint32 pad;
} Node;

struct _MsimEventQueue
{
  Node *nodes;
  guint32 nnodes;
  guint32 node_cap;
  guint32 free_head;
  guint32 live;

  guint32 *heads; /* NB bucket list heads */
  guint32 nb;
  guint32 heads_cap;
  gint64 cur;      /* bucket whose events are in the run; -1 before the first */
  guint64 wstart;  /* window start */
  guint64 width;   /* bucket width W = 2^shift: a bucket index is a shift, not a division */
  guint shift;
  guint64 run_end; /* events with time < run_end belong in the run */
  guint64 wend;    /* events with time >= wend go to the far list */

  guint32 far_head;
  guint32 far_len; /* includes zombies */

  guint32 *run; /* heap of node indices */
  guint32 run_len;
  guint32 run_cap;

  guint64 next_seq;
  guint64 last_time;
};

static inline gboolean
node_less (const Node *a, const Node *b)
{
  return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

MsimEventQueue *
msim_event_queue_new (void)
{
  MsimEventQueue *q = g_new0 (MsimEventQueue, 1);
  q->free_head = NIL;
  q->far_head = NIL;
  q->cur = -1;
  q->width = 1;
  return q;
}

void
msim_event_queue_free (MsimEventQueue *queue)
{
  if (queue == NULL)
    return;
  g_free (queue->nodes);
  g_free (queue->heads);
  g_free (queue->run);
  g_free (queue);
}

static void
grow_nodes (MsimEventQueue *q, guint32 need)
{
  if (need <= q->node_cap)
    return;
  guint32 cap = MAX (need, MAX (64u, q->node_cap * 2u));
  q->nodes = g_renew (Node, q->nodes, cap);
  q->node_cap = cap;
}

void
msim_event_queue_reserve (MsimEventQueue *queue, guint n)
{
  grow_nodes (queue, n);
}

guint
msim_event_queue_size (const MsimEventQueue *queue)
{
  return queue->live;
}

static guint32
alloc_node (MsimEventQueue *q)
{
  if (q->free_head != NIL)
    {
      guint32 s = q->free_head;
      q->free_head = q->nodes[s].next;
      return s;
    }
  g_assert (q->nnodes < WHERE_ZOMBIE);
  grow_nodes (q, q->nnodes + 1);
  q->nodes[q->nnodes].gen = 1;
  return q->nnodes++;
}

/* Returns a node to the free list (also used for zombies found in lists). */
static void
release_node (MsimEventQueue *q, guint32 s)
{
  Node *n = &q->nodes[s];
  n->where = WHERE_FREE;
  n->next = q->free_head;
  q->free_head = s;
}

/* Invalidates the handles of node @s (the event fired or was cancelled). */
static inline void
bump_gen (Node *n)
{
  if (++n->gen == 0)
    n->gen = 1;
}

/* ---- the run: a binary heap of node indices, positions kept in next ---- */

static inline void
run_place (MsimEventQueue *q, guint32 pos, guint32 s)
{
  q->run[pos] = s;
  q->nodes[s].next = pos;
}

static void
run_sift_up (MsimEventQueue *q, guint32 pos, guint32 s)
{
  const Node *n = &q->nodes[s];
  while (pos > 0)
    {
      guint32 parent = (pos - 1) / 2;
      if (!node_less (n, &q->nodes[q->run[parent]]))
        break;
      run_place (q, pos, q->run[parent]);
      pos = parent;
    }
  run_place (q, pos, s);
}

static void
run_sift_down (MsimEventQueue *q, guint32 pos, guint32 s)
{
  const Node *n = &q->nodes[s];
  for (;;)
    {
      guint32 c = 2 * pos + 1;
      if (c >= q->run_len)
        break;
      if (c + 1 < q->run_len && node_less (&q->nodes[q->run[c + 1]], &q->nodes[q->run[c]]))
        c++;
      if (!node_less (&q->nodes[q->run[c]], n))
        break;
      run_place (q, pos, q->run[c]);
      pos = c;
    }
  run_place (q, pos, s);
}

static void
run_insert (MsimEventQueue *q, guint32 s)
{
  if (q->run_len == q->run_cap)
    {
      q->run_cap = MAX (16u, q->run_cap * 2u);
      q->run = g_renew (guint32, q->run, q->run_cap);
    }
  q->nodes[s].where = WHERE_RUN;
  q->run_len++;
  run_sift_up (q, q->run_len - 1, s);
}

static void
run_remove_at (MsimEventQueue *q, guint32 pos)
{
  guint32 last = q->run[--q->run_len];
  if (pos == q->run_len)
    return;
  if (pos > 0 && node_less (&q->nodes[last], &q->nodes[q->run[(pos - 1) / 2]]))
    run_sift_up (q, pos, last);
  else
    run_sift_down (q, pos, last);
}

/* ---- placement ---- */

static void
place (MsimEventQueue *q, guint32 s)
{
  Node *n = &q->nodes[s];
  if (n->time < q->run_end)
    run_insert (q, s);
  else if (n->time < q->wend)
    {
      guint32 b = (guint32)((n->time - q->wstart) >> q->shift);
      n->where = b;
      n->next = q->heads[b];
      q->heads[b] = s;
    }
  else
    {
      n->where = WHERE_FAR;
      n->next = q->far_head;
      q->far_head = s;
      q->far_len++;
    }
}

static guint32
next_pow2 (guint32 v)
{
  guint32 p = 1;
  while (p < v && p < MAX_BUCKETS)
    p <<= 1;
  return p;
}

/* The @k-th smallest of @v[0 .. n) (Hoare's selection, median-of-three
 * pivots); reorders @v.  What a sort would put at v[k], in O(n). */
static guint64
select_kth (guint64 *v, guint32 n, guint32 k)
{
  guint32 lo = 0, hi = n - 1;
  while (lo < hi)
    {
      guint32 mid = lo + (hi - lo) / 2;
      guint64 a = v[lo], b = v[mid], c = v[hi];
      guint64 pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
      guint32 i = lo, j = hi;
      while (i <= j)
        {
          while (v[i] < pivot)
            i++;
          while (v[j] > pivot)
            j--;
          if (i <= j)
            {
              guint64 t = v[i];
              v[i] = v[j];
              v[j] = t;
              i++;
              if (j == 0)
                break;
              j--;
            }
        }
      /* v[lo .. j] <= pivot <= v[i .. hi], and v[j+1 .. i-1] == pivot. */
      if (k <= j && j != G_MAXUINT32)
        hi = j;
      else if (k >= i)
        lo = i;
      else
        return v[k];
    }
  return v[k];
}

/* Bucket width for a new window over the @count events of @list in
 * [lo, hi].  What matters is the density at the front of the window, where
 * the clock is: a width fitted to the whole span lets a few far-off events
 * crowd the front buckets.  So the width is fitted to the lower quartile of
 * a stride sample of the times, aiming at about two events per bucket; the
 * events past the window simply wait in the far list for the next one. */
static guint64
fit_width (MsimEventQueue *q, guint32 list, guint32 count, guint64 lo, guint64 hi, guint32 nb)
{
  guint64 span_width = (hi - lo) / nb + 1;
  if (count < 64)
    return span_width;
  guint64 sample[256];
  guint32 n = 0, stride = count / 256 + 1, i = 0;
  for (guint32 s = list; s != NIL && n < 256; s = q->nodes[s].next, i++)
    if (i % stride == 0)
      sample[n++] = q->nodes[s].time;
  guint64 q1 = select_kth (sample, n, n / 4);
  /* count/4 events lie in [lo, q1]: two per bucket there. */
  guint64 w = (q1 - lo) / (count / 8) + 1;
  return MIN (w, span_width);
}

/* Spreads the far list over a new window fitted to it.  Called when every
 * bucket of the current window has been served and the run is empty. */
static void
rebuild (MsimEventQueue *q)
{
  guint64 lo = G_MAXUINT64, hi = 0;
  guint32 count = 0;
  guint32 list = NIL; /* the live far nodes, relinked; zombies are freed */
  guint32 s = q->far_head;
  while (s != NIL)
    {
      guint32 nx = q->nodes[s].next;
      if (q->nodes[s].where == WHERE_ZOMBIE)
        release_node (q, s);
      else
        {
          lo = MIN (lo, q->nodes[s].time);
          hi = MAX (hi, q->nodes[s].time);
          count++;
          q->nodes[s].next = list;
          list = s;
        }
      s = nx;
    }
  q->far_head = NIL;
  q->far_len = 0;
  if (count == 0)
    return;

  /* The width is fitted to the density at the front (about two events per
   * bucket there), so the bucket count sets how far the window reaches.
   * With one bucket per event a hold model's window covers about three mean
   * increments, and a third of all pushes overflow into the far list, to be
   * moved again at the next rebuild; with four buckets per event under a
   * tenth do.  Moving an event costs a cache miss once the nodes outgrow the
   * cache (about 2^14 events of 48 bytes), so large queues get four buckets
   * per event (measured: about 1.3x the hold throughput at 10^5 events, for
   * 16 bytes of bucket heads per event); small ones keep one, since there
   * the walk over empty buckets costs more than the moves (measured: 4 %
   * slower bench step otherwise). */
  guint32 nb = MAX (MIN_BUCKETS, next_pow2 (count));
  if (count >= LARGE_QUEUE)
    nb = MIN (MAX_BUCKETS, 4u * nb);
  if (nb > q->heads_cap)
    {
      q->heads = g_renew (guint32, q->heads, nb);
      q->heads_cap = nb;
    }
  q->nb = nb;
  for (guint32 i = 0; i < nb; i++)
    q->heads[i] = NIL;
  /* The nearest power of two to the fitted width (a 64-bit division per
   * push costs more than the fit gains). */
  guint64 w = fit_width (q, list, count, lo, hi, nb);
  guint shift = 63u - (guint)__builtin_clzll (w);
  if (shift < 63 && w - ((guint64)1 << shift) > ((guint64)1 << shift) / 2)
    shift++;
  q->shift = shift;
  q->width = (guint64)1 << shift;
  q->wstart = lo;
  q->cur = -1;
  q->run_end = lo;
  /* wend = lo + nb * width > hi; saturate rather than wrap. */
  guint64 span;
  if (__builtin_mul_overflow ((guint64)nb, q->width, &span)
      || __builtin_add_overflow (lo, span, &q->wend))
    q->wend = G_MAXUINT64;

  for (s = list; s != NIL;)
    {
      guint32 nx = q->nodes[s].next;
      place (q, s);
      s = nx;
    }
}

/* Makes the run hold the earliest events, advancing through buckets and
 * rebuilding as needed.  FALSE when the queue is empty. */
static gboolean
fill_run (MsimEventQueue *q)
{
  while (q->run_len == 0)
    {
      if (q->live == 0)
        return FALSE;
      if (q->cur + 1 >= (gint64)q->nb)
        {
          rebuild (q);
          continue;
        }
      q->cur++;
      guint32 b = (guint32)q->cur;
      guint64 off = (guint64)(b + 1);
      q->run_end = off > (G_MAXUINT64 >> q->shift) ? q->wend : q->wstart + (off << q->shift);
      if (q->run_end > q->wend || q->run_end < q->wstart)
        q->run_end = q->wend;
      guint32 s = q->heads[b];
      q->heads[b] = NIL;
      /* The clock will reach the next buckets soon: start loading their
       * first nodes now, which hides most of the cache misses of the walk. */
      for (guint32 a = b + 1; a < MIN (b + 4, q->nb); a++)
        if (q->heads[a] != NIL)
          __builtin_prefetch (&q->nodes[q->heads[a]]);
      while (s != NIL)
        {
          guint32 nx = q->nodes[s].next;
          if (q->nodes[s].where == WHERE_ZOMBIE)
            release_node (q, s);
          else
            run_insert (q, s);
          s = nx;
        }
    }
  return TRUE;
}

static inline MsimEventHandle
make_handle (guint32 s, guint32 gen)
{
  return ((guint64)gen << 32) | (guint64)(s + 1u);
}

/* Node of a live handle, or -1 when stale. */
static gint64
handle_node (const MsimEventQueue *q, MsimEventHandle handle)
{
  guint32 lo = (guint32)(handle & 0xffffffffu);
  guint32 gen = (guint32)(handle >> 32);
  if (lo == 0 || lo > q->nnodes)
    return -1;
  guint32 s = lo - 1u;
  const Node *n = &q->nodes[s];
  if (n->gen != gen || n->where == WHERE_FREE || n->where == WHERE_ZOMBIE)
    return -1;
  return s;
}

static guint32
new_event (MsimEventQueue *q, guint64 time, gpointer func, gpointer data)
{
  guint32 s = alloc_node (q);
  Node *n = &q->nodes[s];
  n->time = time;
  n->seq = q->next_seq++;
  n->func = func;
  n->data = data;
  place (q, s);
  return s;
}

MsimEventHandle
msim_event_queue_push (MsimEventQueue *queue, MsimTime time, gpointer func, gpointer data)
{
  MsimEventQueue *q = queue;
  g_return_val_if_fail (time >= 0 && (guint64)time >= q->last_time, MSIM_EVENT_HANDLE_NONE);
  guint32 s = new_event (q, (guint64)time, func, data);
  q->live++;
  return make_handle (s, q->nodes[s].gen);
}

MsimTime
msim_event_queue_peek_time (MsimEventQueue *queue)
{
  if (!fill_run (queue))
    return MSIM_TIME_NEVER;
  return (MsimTime)queue->nodes[queue->run[0]].time;
}

gboolean
msim_event_queue_pop (MsimEventQueue *queue, MsimEvent *out)
{
  MsimEventQueue *q = queue;
  if (!fill_run (q))
    return FALSE;
  guint32 s = q->run[0];
  Node *n = &q->nodes[s];
  out->time = (MsimTime)n->time;
  out->func = n->func;
  out->data = n->data;
  q->last_time = n->time;
  run_remove_at (q, 0);
  q->live--;
  bump_gen (n);
  release_node (q, s);
  return TRUE;
}

/* Takes the event of node @s out: a run node leaves the heap and is freed;
 * a listed node becomes a zombie, freed when its list is next walked. */
static void
detach (MsimEventQueue *q, guint32 s)
{
  Node *n = &q->nodes[s];
  bump_gen (n);
  if (n->where == WHERE_RUN)
    {
      run_remove_at (q, n->next);
      release_node (q, s);
    }
  else
    n->where = WHERE_ZOMBIE;
}

gboolean
msim_event_queue_cancel (MsimEventQueue *queue, MsimEventHandle handle)
{
  gint64 s = handle_node (queue, handle);
  if (s < 0)
    return FALSE;
  detach (queue, (guint32)s);
  queue->live--;
  return TRUE;
}

MsimEventHandle
msim_event_queue_reschedule (MsimEventQueue *queue, MsimEventHandle handle, MsimTime time)
{
  MsimEventQueue *q = queue;
  g_return_val_if_fail (time >= 0 && (guint64)time >= q->last_time, MSIM_EVENT_HANDLE_NONE);
  gint64 old = handle_node (q, handle);
  if (old < 0)
    return MSIM_EVENT_HANDLE_NONE;
  gpointer func = q->nodes[old].func, data = q->nodes[old].data;
  detach (q, (guint32)old);
  guint32 s = new_event (q, (guint64)time, func, data);
  return make_handle (s, q->nodes[s].gen);
}

gboolean
msim_event_queue_is_pending (const MsimEventQueue *queue, MsimEventHandle handle)
{
  return handle_node (queue, handle) >= 0;
}

gboolean
msim_event_queue_validate (const MsimEventQueue *queue)
{
  const MsimEventQueue *q = queue;
  guint32 live = 0;
  /* Run: heap order and back links. */
  for (guint32 i = 0; i < q->run_len; i++)
    {
      const Node *n = &q->nodes[q->run[i]];
      if (n->where != WHERE_RUN || n->next != i || n->time >= q->run_end)
        return FALSE;
      if (i > 0 && node_less (n, &q->nodes[q->run[(i - 1) / 2]]))
        return FALSE;
      live++;
    }
  /* Buckets after the current one: every node's time falls in its bucket. */
  guint32 zombies = 0;
  for (guint32 b = 0; b < q->nb; b++)
    for (guint32 s = q->heads[b]; s != NIL; s = q->nodes[s].next)
      {
        const Node *n = &q->nodes[s];
        if (n->where == WHERE_ZOMBIE)
          {
            zombies++;
            continue;
          }
        if ((gint64)b <= q->cur || n->where != b || n->time < q->wstart
            || (n->time - q->wstart) >> q->shift != b)
          return FALSE;
        live++;
      }
  for (guint32 s = q->far_head; s != NIL; s = q->nodes[s].next)
    {
      const Node *n = &q->nodes[s];
      if (n->where == WHERE_ZOMBIE)
        {
          zombies++;
          continue;
        }
      if (n->where != WHERE_FAR || n->time < q->wend)
        return FALSE;
      live++;
    }
  if (live != q->live)
    return FALSE;
  /* Every node is live, a zombie, or free. */
  guint32 nfree = 0;
  for (guint32 s = q->free_head; s != NIL; s = q->nodes[s].next)
    if (++nfree > q->nnodes)
      return FALSE;
  return nfree + live + zombies == q->nnodes;
}
