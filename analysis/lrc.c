/* Local routing consistency: SRP and SCH (see lrc.h for the definitions). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lrc.h"
#include "msim-error.h"

const guint msim_lrc_default_segments[MSIM_LRC_N_DEFAULT_SEGMENTS] = { 4, 16, 64, 256 };

struct _MsimLrc
{
  guint n_seg, layers, experts, k, n_sequences;
  guint64 tokens;
  gboolean has_ids;
  guint *segments;
  guint64 *windows; /* [seg] */
  double *srp;      /* [seg][layer] */
  guint *tau;       /* [seg][layer] */
  double *sch;      /* [seg][layer][E]: cache size C at index C-1 */
};

typedef struct
{
  guint32 seq, pos;
  gsize token;
} SeqKey;

static int
seq_key_cmp (const void *a, const void *b)
{
  const SeqKey *x = a, *y = b;
  if (x->seq != y->seq)
    return x->seq < y->seq ? -1 : 1;
  if (x->pos != y->pos)
    return x->pos < y->pos ? -1 : 1;
  return x->token < y->token ? -1 : (x->token > y->token ? 1 : 0);
}

/* The histogram H[v] (v = 1..m) of n_e(s) over all windows and experts,
 * kept lazily: hist[v] experts currently have count v, and H[v] receives
 * hist[v] x (windows it stayed that way) whenever hist[v] is about to
 * change, so each slide costs O(k). */
typedef struct
{
  guint m;
  guint *cnt;    /* [E] */
  guint64 *hist; /* [m + 1] */
  guint64 *last; /* [m + 1] window index since which hist[v] holds */
  guint64 *H;    /* [m + 1] */
} Srp;

static inline void
srp_change (Srp *s, guint e, int delta, guint64 w)
{
  guint from = s->cnt[e], to = (guint)((int)from + delta);
  if (from >= 1)
    {
      s->H[from] += s->hist[from] * (w - s->last[from]);
      s->last[from] = w;
      s->hist[from]--;
    }
  if (to >= 1)
    {
      s->H[to] += s->hist[to] * (w - s->last[to]);
      s->last[to] = w;
      s->hist[to]++;
    }
  s->cnt[e] = to;
}

static void
srp_layer (const MsimTrace *t, guint layer, const gsize *order, const gsize *starts, guint nseq,
           Srp *s, guint64 *windows)
{
  const guint k = t->k, m = s->m, E = t->experts;
  memset (s->H, 0, sizeof (guint64) * (m + 1));
  *windows = 0;
  for (guint q = 0; q < nseq; q++)
    {
      gsize a = starts[q], n = starts[q + 1] - starts[q];
      if (n < m)
        continue;
      memset (s->cnt, 0, sizeof (guint) * E);
      memset (s->hist, 0, sizeof (guint64) * (m + 1));
      memset (s->last, 0, sizeof (guint64) * (m + 1));
      for (gsize x = 0; x < m; x++)
        {
          const MsimExpertId *row = msim_trace_row (t, order[a + x], layer);
          for (guint r = 0; r < k; r++)
            srp_change (s, (guint)row[r], +1, 0);
        }
      /* Building window 0 happened "at window 0", so it added nothing to H. */
      gsize nw = n - m + 1;
      for (gsize w = 1; w < nw; w++)
        {
          const MsimExpertId *out = msim_trace_row (t, order[a + w - 1], layer);
          const MsimExpertId *in = msim_trace_row (t, order[a + w + m - 1], layer);
          for (guint r = 0; r < k; r++)
            srp_change (s, (guint)out[r], -1, w);
          for (guint r = 0; r < k; r++)
            srp_change (s, (guint)in[r], +1, w);
        }
      for (guint v = 1; v <= m; v++)
        s->H[v] += s->hist[v] * (nw - s->last[v]);
      *windows += nw;
    }
}

static void
srp_best (const Srp *s, guint k, guint64 windows, double *srp, guint *tau)
{
  const guint m = s->m;
  if (windows == 0)
    {
      *srp = NAN;
      *tau = 0;
      return;
    }
  double act = (double)k * m * (double)windows;
  double best = -1;
  guint best_tau = 0;
  double tp = 0, pairs = 0;
  /* Suffix sums from tau = m down to 1. */
  g_autofree double *f1 = g_new (double, m + 1);
  for (guint v = m; v >= 1; v--)
    {
      tp += (double)v * (double)s->H[v];
      pairs += (double)s->H[v];
      f1[v] = 2.0 * tp / ((double)m * pairs + act);
    }
  for (guint v = 1; v <= m; v++)
    if (f1[v] > best)
      {
        best = f1[v];
        best_tau = v;
      }
  *srp = best;
  *tau = best_tau;
}

/* Ranks of every demand of @layer with window length @m into rank_hist. */
static void
sch_layer (const MsimTrace *t, guint layer, const gsize *order, const gsize *starts, guint nseq,
           guint m, guint64 *rank_hist)
{
  const guint k = t->k, E = t->experts;
  g_autofree guint *cnt = g_new (guint, E);
  g_autofree gint64 *last = g_new (gint64, E);
  memset (rank_hist, 0, sizeof (guint64) * E);
  for (guint q = 0; q < nseq; q++)
    {
      gsize a = starts[q], n = starts[q + 1] - starts[q];
      memset (cnt, 0, sizeof (guint) * E);
      for (guint e = 0; e < E; e++)
        last[e] = -1;
      guint seen = 0;
      for (gsize x = 0; x < MIN ((gsize)m, n); x++)
        {
          const MsimExpertId *row = msim_trace_row (t, order[a + x], layer);
          for (guint r = 0; r < k; r++)
            cnt[row[r]]++;
        }
      for (gsize x = 0; x < n; x++)
        {
          const MsimExpertId *row = msim_trace_row (t, order[a + x], layer);
          guint slots_taken = seen;
          for (guint r = 0; r < k; r++)
            {
              guint e = (guint)row[r];
              guint rank = 0;
              for (guint f = 0; f < E; f++)
                if (f != e
                    && (cnt[f] > cnt[e]
                        || (cnt[f] == cnt[e]
                            && (last[f] > last[e] || (last[f] == last[e] && f < e)))))
                  rank++;
              guint eff = rank;
              if (last[e] < 0)
                {
                  eff = MIN (rank, slots_taken);
                  slots_taken++;
                }
              rank_hist[MIN (eff, E - 1)]++;
            }
          for (guint r = 0; r < k; r++)
            {
              guint e = (guint)row[r];
              if (last[e] < 0)
                seen++;
              last[e] = (gint64)x;
            }
          for (guint r = 0; r < k; r++)
            cnt[row[r]]--;
          if (x + m < n)
            {
              const MsimExpertId *in = msim_trace_row (t, order[a + x + m], layer);
              for (guint r = 0; r < k; r++)
                cnt[in[r]]++;
            }
        }
    }
}

MsimLrc *
msim_lrc_compute (const MsimTrace *trace, const guint *segments, guint n_segments, GError **error)
{
  if (n_segments == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "lrc: no segment lengths");
      return NULL;
    }
  for (guint i = 0; i < n_segments; i++)
    if (segments[i] < 1 || segments[i] > 1000000)
      {
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "lrc: segment length %u is outside 1..1000000", segments[i]);
        return NULL;
      }
  if (trace->tokens == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "lrc: the trace has no tokens");
      return NULL;
    }
  if (msim_trace_max_expert (trace) < 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "lrc: the trace has unset expert ids");
      return NULL;
    }
  const guint L = trace->layers, E = trace->experts, k = trace->k;
  const gsize T = trace->tokens;

  /* Token order and sequence boundaries. */
  g_autofree gsize *order = g_new (gsize, T);
  g_autoptr (GArray) starts = g_array_new (FALSE, FALSE, sizeof (gsize));
  gboolean has_ids = (trace->flags & MSIM_TRACE_SEQUENCES) != 0;
  if (has_ids)
    {
      g_autofree SeqKey *keys = g_new (SeqKey, T);
      for (gsize x = 0; x < T; x++)
        {
          keys[x].seq = msim_trace_sequence (trace, x);
          keys[x].pos = msim_trace_position (trace, x);
          keys[x].token = x;
        }
      qsort (keys, T, sizeof (SeqKey), seq_key_cmp);
      for (gsize x = 0; x < T; x++)
        {
          order[x] = keys[x].token;
          if (x == 0 || keys[x].seq != keys[x - 1].seq)
            g_array_append_val (starts, x);
        }
    }
  else
    {
      for (gsize x = 0; x < T; x++)
        order[x] = x;
      gsize zero = 0;
      g_array_append_val (starts, zero);
    }
  guint nseq = starts->len;
  g_array_append_val (starts, T);
  const gsize *st = (const gsize *)starts->data;

  MsimLrc *lrc = g_new0 (MsimLrc, 1);
  lrc->n_seg = n_segments;
  lrc->layers = L;
  lrc->experts = E;
  lrc->k = k;
  lrc->tokens = T;
  lrc->n_sequences = nseq;
  lrc->has_ids = has_ids;
  lrc->segments = g_memdup2 (segments, sizeof (guint) * n_segments);
  lrc->windows = g_new0 (guint64, n_segments);
  lrc->srp = g_new (double, (gsize)n_segments *L);
  lrc->tau = g_new (guint, (gsize)n_segments * L);
  lrc->sch = g_new (double, (gsize)n_segments *L *E);
  g_autofree guint64 *rank_hist = g_new (guint64, E);
  for (guint si = 0; si < n_segments; si++)
    {
      guint m = segments[si];
      Srp s;
      s.m = m;
      s.cnt = g_new (guint, E);
      s.hist = g_new (guint64, m + 1);
      s.last = g_new (guint64, m + 1);
      s.H = g_new (guint64, m + 1);
      for (guint l = 0; l < L; l++)
        {
          guint64 w;
          srp_layer (trace, l, order, st, nseq, &s, &w);
          lrc->windows[si] = w;
          srp_best (&s, k, w, &lrc->srp[(gsize)si * L + l], &lrc->tau[(gsize)si * L + l]);
          sch_layer (trace, l, order, st, nseq, m, rank_hist);
          double *out = lrc->sch + ((gsize)si * L + l) * E;
          guint64 acc = 0;
          for (guint c = 0; c < E; c++)
            {
              acc += rank_hist[c];
              out[c] = (double)acc / ((double)T * k);
            }
        }
      g_free (s.cnt);
      g_free (s.hist);
      g_free (s.last);
      g_free (s.H);
    }
  return lrc;
}

void
msim_lrc_free (MsimLrc *lrc)
{
  if (lrc == NULL)
    return;
  g_free (lrc->segments);
  g_free (lrc->windows);
  g_free (lrc->srp);
  g_free (lrc->tau);
  g_free (lrc->sch);
  g_free (lrc);
}

guint
msim_lrc_n_segments (const MsimLrc *lrc)
{
  return lrc->n_seg;
}

guint
msim_lrc_segment (const MsimLrc *lrc, guint index)
{
  g_return_val_if_fail (index < lrc->n_seg, 0);
  return lrc->segments[index];
}

guint
msim_lrc_layers (const MsimLrc *lrc)
{
  return lrc->layers;
}

guint
msim_lrc_experts (const MsimLrc *lrc)
{
  return lrc->experts;
}

guint
msim_lrc_k (const MsimLrc *lrc)
{
  return lrc->k;
}

guint64
msim_lrc_tokens (const MsimLrc *lrc)
{
  return lrc->tokens;
}

guint
msim_lrc_n_sequences (const MsimLrc *lrc)
{
  return lrc->n_sequences;
}

gboolean
msim_lrc_has_sequence_ids (const MsimLrc *lrc)
{
  return lrc->has_ids;
}

guint64
msim_lrc_windows (const MsimLrc *lrc, guint index)
{
  g_return_val_if_fail (index < lrc->n_seg, 0);
  return lrc->windows[index];
}

double
msim_lrc_srp (const MsimLrc *lrc, guint index, guint layer)
{
  g_return_val_if_fail (index < lrc->n_seg, NAN);
  if (layer == MSIM_LRC_MODEL)
    {
      if (lrc->windows[index] == 0)
        return NAN;
      double sum = 0;
      for (guint l = 0; l < lrc->layers; l++)
        sum += lrc->srp[(gsize)index * lrc->layers + l];
      return sum / lrc->layers;
    }
  g_return_val_if_fail (layer < lrc->layers, NAN);
  return lrc->srp[(gsize)index * lrc->layers + layer];
}

guint
msim_lrc_srp_threshold (const MsimLrc *lrc, guint index, guint layer)
{
  g_return_val_if_fail (index < lrc->n_seg && layer < lrc->layers, 0);
  return lrc->tau[(gsize)index * lrc->layers + layer];
}

double
msim_lrc_sch (const MsimLrc *lrc, guint index, guint layer, guint cache)
{
  g_return_val_if_fail (index < lrc->n_seg && cache >= 1 && cache <= lrc->experts, NAN);
  const guint E = lrc->experts;
  if (layer == MSIM_LRC_MODEL)
    {
      double sum = 0;
      for (guint l = 0; l < lrc->layers; l++)
        sum += lrc->sch[((gsize)index * lrc->layers + l) * E + cache - 1];
      return sum / lrc->layers;
    }
  g_return_val_if_fail (layer < lrc->layers, NAN);
  return lrc->sch[((gsize)index * lrc->layers + layer) * E + cache - 1];
}
