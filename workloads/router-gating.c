/* The routing maths every router shares: activations, top-k with group
 * limits, gate weights, capacity dropping and expert choice (declared in
 * router-private.h, where each is specified). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "router-private.h"

double
msim_logsumexp (const double *v, guint n)
{
  double mx = -INFINITY;
  for (guint i = 0; i < n; i++)
    mx = MAX (mx, v[i]);
  if (!isfinite (mx))
    return mx;
  double s = 0;
  for (guint i = 0; i < n; i++)
    s += exp (v[i] - mx);
  return mx + log (s);
}

double
msim_softmax (double *v, guint n)
{
  double mx = -INFINITY;
  for (guint i = 0; i < n; i++)
    mx = MAX (mx, v[i]);
  double s = 0;
  for (guint i = 0; i < n; i++)
    s += v[i] = exp (v[i] - mx);
  for (guint i = 0; i < n; i++)
    v[i] /= s;
  return mx + log (s);
}

void
msim_sigmoid (double *v, guint n)
{
  /* Both branches avoid exp overflow for large |v|. */
  for (guint i = 0; i < n; i++)
    v[i] = v[i] >= 0 ? 1.0 / (1.0 + exp (-v[i])) : exp (v[i]) / (1.0 + exp (v[i]));
}

double
msim_gate_activate (MsimGating gating, const double *logits, double *probs, guint n)
{
  if (probs != logits)
    memcpy (probs, logits, sizeof (double) * n);
  if (gating == MSIM_GATING_SIGMOID_RENORM)
    {
      double lse = msim_logsumexp (logits, n);
      msim_sigmoid (probs, n);
      return lse;
    }
  return msim_softmax (probs, n);
}

double
msim_entropy_bits (const double *v, guint n)
{
  double s = 0, h = 0;
  for (guint i = 0; i < n; i++)
    s += v[i];
  if (!(s > 0))
    return 0.0;
  for (guint i = 0; i < n; i++)
    if (v[i] > 0)
      {
        double p = v[i] / s;
        h -= p * log2 (p);
      }
  return h + 0.0;
}

guint
msim_argmax (const double *v, guint n)
{
  guint best = 0;
  for (guint i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

/* Group score: the best expert (softmax gatings, DeepSeek-V2) or the sum
 * of the two best (sigmoid, DeepSeek-V3). */
static double
group_score (const double *s, guint n, MsimGating gating)
{
  double a = -INFINITY, b = -INFINITY;
  for (guint i = 0; i < n; i++)
    {
      if (s[i] > a)
        {
          b = a;
          a = s[i];
        }
      else if (s[i] > b)
        b = s[i];
    }
  if (gating == MSIM_GATING_SIGMOID_RENORM && n >= 2)
    return a + b;
  return a;
}

void
msim_route_topk (const double *scores, guint E, guint k, guint groups, guint topk_groups,
                 MsimGating gating, double scale, int *ids, double *weights)
{
  g_return_if_fail (k >= 1 && k <= E);
  /* Allowed experts: all, or the members of the best topk_groups groups.
   * The mask lives on the stack for the common sizes; E up to 32768 would
   * need 32 KiB, so larger E falls back to the heap. */
  guint8 stack_mask[1024];
  g_autofree guint8 *heap_mask = E > sizeof stack_mask ? g_malloc (E) : NULL;
  guint8 *allowed = heap_mask ? heap_mask : stack_mask;
  memset (allowed, 1, E);
  if (groups > 1 && topk_groups < groups)
    {
      guint per = E / groups;
      g_return_if_fail (per * groups == E);
      double gs_stack[64];
      guint8 gsel_stack[64];
      g_autofree double *gs_heap = groups > 64 ? g_new (double, groups) : NULL;
      g_autofree guint8 *gsel_heap = groups > 64 ? g_new (guint8, groups) : NULL;
      double *gs = gs_heap ? gs_heap : gs_stack;
      guint8 *gsel = gsel_heap ? gsel_heap : gsel_stack;
      memset (gsel, 0, groups);
      for (guint g = 0; g < groups; g++)
        gs[g] = group_score (scores + g * per, per, gating);
      for (guint t = 0; t < topk_groups; t++)
        {
          guint best = G_MAXUINT;
          for (guint g = 0; g < groups; g++)
            if (!gsel[g] && (best == G_MAXUINT || gs[g] > gs[best]))
              best = g;
          gsel[best] = 1;
        }
      for (guint e = 0; e < E; e++)
        allowed[e] = gsel[e / per];
    }
  double sum = 0;
  for (guint r = 0; r < k; r++)
    {
      int best = -1;
      for (guint e = 0; e < E; e++)
        if (allowed[e] && (best < 0 || scores[e] > scores[best]))
          best = (int)e;
      if (best < 0)
        {
          /* Fewer allowed experts than k (a group limit too tight for k):
           * the remaining ranks stay empty. */
          for (; r < k; r++)
            {
              ids[r] = -1;
              if (weights)
                weights[r] = 0;
            }
          break;
        }
      allowed[best] = 0;
      ids[r] = best;
      sum += scores[best];
    }
  if (weights == NULL)
    return;
  gboolean renorm = gating != MSIM_GATING_SOFTMAX_RAW;
  for (guint r = 0; r < k; r++)
    if (ids[r] >= 0)
      weights[r] = scale * (renorm ? (sum > 0 ? scores[ids[r]] / sum : 1.0 / k) : scores[ids[r]]);
}

guint64
msim_route_capacity (guint64 n, guint k, guint E, double cf)
{
  if (!(cf > 0))
    return G_MAXUINT64;
  return (guint64)ceil ((double)n * k / E * cf);
}

guint64
msim_route_drop (const int *ids, guint n, guint k, guint E, guint64 capacity, guint8 *dropped,
                 guint64 *load)
{
  memset (load, 0, sizeof (guint64) * E);
  memset (dropped, 0, (gsize)n * k);
  guint64 n_dropped = 0;
  for (guint r = 0; r < k; r++)
    for (guint i = 0; i < n; i++)
      {
        int e = ids[(gsize)i * k + r];
        if (e < 0)
          continue;
        if (load[e] >= capacity)
          {
            dropped[(gsize)i * k + r] = 1;
            n_dropped++;
          }
        else
          load[e]++;
      }
  return n_dropped;
}

typedef struct
{
  double score;
  guint index;
} Scored;

/* Decreasing score, ties to the lower index: a total order, so qsort's
 * instability cannot show. */
static int
cmp_scored (const void *a, const void *b)
{
  const Scored *x = a, *y = b;
  if (x->score != y->score)
    return x->score < y->score ? 1 : -1;
  return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;
}

guint64
msim_route_expert_choice (const double *scores, guint n, guint E, guint64 capacity, int *ids,
                          double *weights)
{
  guint64 c = MIN (capacity, (guint64)n);
  g_autofree Scored *col = g_new (Scored, n);
  g_autofree guint8 *taken = g_new0 (guint8, (gsize)n * E);
  for (guint e = 0; e < E; e++)
    {
      for (guint i = 0; i < n; i++)
        col[i] = (Scored){ scores[(gsize)i * E + e], i };
      qsort (col, n, sizeof *col, cmp_scored);
      for (guint64 j = 0; j < c; j++)
        taken[(gsize)col[j].index * E + e] = 1;
    }
  g_autofree Scored *row = g_new (Scored, E);
  for (guint i = 0; i < n; i++)
    {
      guint m = 0;
      for (guint e = 0; e < E; e++)
        if (taken[(gsize)i * E + e])
          row[m++] = (Scored){ scores[(gsize)i * E + e], e };
      qsort (row, m, sizeof *row, cmp_scored);
      for (guint s = 0; s < E; s++)
        {
          ids[(gsize)i * E + s] = s < m ? (int)row[s].index : -1;
          if (weights)
            weights[(gsize)i * E + s] = s < m ? row[s].score : 0.0;
        }
    }
  return c * E;
}
