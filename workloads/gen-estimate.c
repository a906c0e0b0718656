/* Estimators that recover the generator parameters from a trace
 * (generators.h, MsimGenFit).  They are plain statistics of rank-0 choices,
 * so they also summarise real traces in the generator's terms. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen-private.h"
#include "msim-error.h"

/* ------------------------------------------------------------------ */
/* Zipf exponent                                                        */
/* ------------------------------------------------------------------ */

static int
cmp_u64_desc (const void *a, const void *b)
{
  guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

static int
cmp_u64 (const void *a, const void *b)
{
  guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

/* Mean of log(rank) under a Zipf law with exponent @s over @n ranks: the
 * derivative of the log-normaliser.  Strictly decreasing in s, from
 * log(n!)/n at s = 0 towards 0, so the likelihood equation
 * mean_log_rank(s) = observed mean has one root, found by bisection. */
static double
mean_log_rank (double s, guint n)
{
  double num = 0, den = 0;
  for (guint i = 1; i <= n; i++)
    {
      double w = pow ((double)i, -s);
      num += w * log ((double)i);
      den += w;
    }
  return num / den;
}

static double
fit_zipf (const MsimTrace *t)
{
  guint E = t->experts;
  if (E < 2)
    return NAN;
  g_autofree guint64 *top1 = g_new (guint64, E);
  double sum_log = 0, n = 0;
  for (guint l = 0; l < t->layers; l++)
    {
      msim_trace_count_layer (t, l, NULL, top1);
      qsort (top1, E, sizeof *top1, cmp_u64_desc);
      for (guint i = 0; i < E; i++)
        {
          sum_log += (double)top1[i] * log ((double)(i + 1));
          n += (double)top1[i];
        }
    }
  if (n == 0)
    return NAN;
  double m = sum_log / n;
  if (m >= mean_log_rank (0.0, E))
    return 0.0;
  double lo = 0.0, hi = 64.0;
  if (m <= mean_log_rank (hi, E))
    return hi;
  for (int it = 0; it < 100; it++)
    {
      double mid = 0.5 * (lo + hi);
      if (mean_log_rank (mid, E) > m)
        lo = mid;
      else
        hi = mid;
    }
  return 0.5 * (lo + hi);
}

/* ------------------------------------------------------------------ */
/* Affinity                                                             */
/* ------------------------------------------------------------------ */

/* Pooled over layer boundaries: *follow = share of pairs whose next rank-0
 * expert is the most frequent (modal) successor of the current one; q = the
 * rate at which independent draws would hit those modal successors (for
 * each current expert a, its share times its modal successor's share of
 * layer l+1); *affinity = (follow - q) / (1 - q).  Without affinity the
 * modal successor is the most popular expert and follow = q, so the
 * estimate reads 0 under any popularity law. */
static void
fit_affinity (const MsimTrace *t, double *follow, double *affinity)
{
  *follow = *affinity = NAN;
  if (t->layers < 2)
    return;
  guint E = t->experts;
  g_autofree guint64 *keys = g_new (guint64, t->tokens);
  g_autofree guint64 *next = g_new (guint64, E);
  double pairs = 0, hits = 0, q_sum = 0;
  for (guint l = 0; l + 1 < t->layers; l++)
    {
      gsize n = 0;
      memset (next, 0, sizeof (guint64) * E);
      for (gsize tok = 0; tok < t->tokens; tok++)
        {
          int a = msim_trace_expert (t, tok, l, 0), b = msim_trace_expert (t, tok, l + 1, 0);
          if (a < 0 || b < 0)
            continue;
          keys[n++] = (guint64)a * E + (guint64)b;
          next[b]++;
        }
      if (n == 0)
        continue;
      /* Sorting the (a, b) keys groups each a's successors together: the
       * longest run per a is its most frequent successor.  O(n log n) and
       * O(n) memory, where an E x E count matrix would need 4 GiB at
       * E = 32768. */
      qsort (keys, n, sizeof *keys, cmp_u64);
      guint64 best = 0, run = 0, best_b = 0, a_count = 0;
      double q = 0;
      for (gsize i = 0; i < n; i++)
        {
          run = (i > 0 && keys[i] == keys[i - 1]) ? run + 1 : 1;
          a_count++;
          if (run > best)
            {
              best = run;
              best_b = keys[i] % E;
            }
          gboolean a_ends = i + 1 == n || keys[i + 1] / E != keys[i] / E;
          if (a_ends)
            {
              hits += (double)best;
              /* The chance that an independent draw from layer l+1 lands
               * on this modal successor: what popularity alone explains. */
              q += ((double)a_count / (double)n) * ((double)next[best_b] / (double)n);
              best = run = a_count = 0;
            }
        }
      pairs += (double)n;
      q_sum += q * (double)n;
    }
  if (pairs == 0)
    return;
  double f = hits / pairs, q = q_sum / pairs;
  *follow = f;
  *affinity = q < 1.0 ? (f - q) / (1.0 - q) : NAN;
}

/* ------------------------------------------------------------------ */
/* Segment reuse                                                        */
/* ------------------------------------------------------------------ */

/* The expert set of a row, sorted into @out: segment locality is about
 * which experts consecutive tokens use, not in which rank order (the
 * generator copies whole rows, so it is the same for its traces). */
static void
row_set (const MsimExpertId *row, guint k, MsimExpertId *out)
{
  for (guint r = 0; r < k; r++)
    {
      MsimExpertId v = row[r];
      guint i = r;
      for (; i > 0 && out[i - 1] > v; i--)
        out[i] = out[i - 1];
      out[i] = v;
    }
}

/* 64-bit hash of a sorted set (FNV-1a over the ids): sets are compared for
 * collisions by sorting hashes, which conflates two sets with probability
 * about 2^-64 per pair. */
static guint64
set_hash (const MsimExpertId *set, guint k)
{
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);
  for (guint r = 0; r < k; r++)
    {
      h ^= (guint16)set[r];
      h *= G_GUINT64_CONSTANT (0x100000001b3);
    }
  return h;
}

static void
fit_reuse (const MsimTrace *t, double *rate, double *reuse)
{
  *rate = *reuse = NAN;
  g_autofree guint64 *h = g_new (guint64, t->tokens);
  g_autofree MsimExpertId *cur = g_new (MsimExpertId, t->k), *prev = g_new (MsimExpertId, t->k);
  double pairs = 0, same = 0, q_sum = 0;
  for (guint l = 0; l < t->layers; l++)
    {
      double layer_pairs = 0;
      for (gsize tok = 0; tok < t->tokens; tok++)
        {
          MsimExpertId *swap = prev;
          prev = cur;
          cur = swap;
          row_set (msim_trace_row (t, tok, l), t->k, cur);
          h[tok] = set_hash (cur, t->k);
          if (tok == 0 || msim_trace_sequence (t, tok) != msim_trace_sequence (t, tok - 1)
              || msim_trace_position (t, tok) != msim_trace_position (t, tok - 1) + 1)
            continue;
          layer_pairs++;
          same += memcmp (cur, prev, sizeof (MsimExpertId) * t->k) == 0;
        }
      if (layer_pairs == 0)
        continue;
      qsort (h, t->tokens, sizeof *h, cmp_u64);
      double q = 0, run = 0;
      for (gsize i = 0; i < t->tokens; i++)
        {
          run = (i > 0 && h[i] == h[i - 1]) ? run + 1 : 1;
          if (i + 1 == t->tokens || h[i + 1] != h[i])
            q += (run / (double)t->tokens) * (run / (double)t->tokens);
        }
      pairs += layer_pairs;
      q_sum += q * layer_pairs;
    }
  if (pairs == 0)
    return;
  double f = same / pairs, q = q_sum / pairs;
  *rate = f;
  *reuse = q < 1.0 ? (f - q) / (1.0 - q) : NAN;
}

void
msim_gen_fit (const MsimTrace *trace, MsimGenFit *fit)
{
  g_return_if_fail (trace != NULL && fit != NULL);
  fit->zipf_s = fit_zipf (trace);
  fit_affinity (trace, &fit->follow_rate, &fit->affinity);
  fit_reuse (trace, &fit->reuse_rate, &fit->reuse);
}

/* ------------------------------------------------------------------ */
/* Domain mixture (EM)                                                  */
/* ------------------------------------------------------------------ */

/* One sequence's rank-0 counts, sparse: (layer * E + expert, count). */
typedef struct
{
  guint32 cell;
  guint32 count;
} Cell;

typedef struct
{
  guint D, LE, E, L;
  gsize n;    /* sequences with tokens */
  gsize *off; /* n + 1 offsets into cells */
  Cell *cells;
  double *tokens;  /* rank-0 draws per sequence (tokens x layers, -1 skipped) */
  guint32 *seq_id; /* sequence id of each unit */
} Units;

static void
units_clear (Units *u)
{
  g_free (u->off);
  g_free (u->cells);
  g_free (u->tokens);
  g_free (u->seq_id);
}

static int
cmp_cell (const void *a, const void *b)
{
  guint32 x = ((const Cell *)a)->cell, y = ((const Cell *)b)->cell;
  return x < y ? -1 : x > y ? 1 : 0;
}

/* Collects each sequence's counts: one pass over the trace per layer,
 * bucketed by sequence id. */
static gboolean
units_build (const MsimTrace *t, Units *u, gsize *n_sequences, GError **error)
{
  guint32 max_seq = 0;
  for (gsize tok = 0; tok < t->tokens; tok++)
    max_seq = MAX (max_seq, msim_trace_sequence (t, tok));
  gsize S = (gsize)max_seq + 1;
  *n_sequences = S;
  g_autofree gsize *per_seq = g_new0 (gsize, S + 1);
  gsize total = 0;
  for (gsize tok = 0; tok < t->tokens; tok++)
    for (guint l = 0; l < t->layers; l++)
      if (msim_trace_expert (t, tok, l, 0) >= 0)
        {
          per_seq[msim_trace_sequence (t, tok) + 1]++;
          total++;
        }
  if (total == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "the trace has no routed token");
      return FALSE;
    }
  for (gsize s = 0; s < S; s++)
    per_seq[s + 1] += per_seq[s];
  g_autofree Cell *raw = g_new (Cell, total);
  g_autofree gsize *fill = g_memdup2 (per_seq, sizeof (gsize) * (S + 1));
  for (gsize tok = 0; tok < t->tokens; tok++)
    for (guint l = 0; l < t->layers; l++)
      {
        int e = msim_trace_expert (t, tok, l, 0);
        if (e < 0)
          continue;
        Cell c = { l * t->experts + (guint32)e, 1 };
        raw[fill[msim_trace_sequence (t, tok)]++] = c;
      }
  /* Sort each sequence's cells and merge duplicates in place. */
  u->off = g_new (gsize, S + 1);
  u->cells = g_new (Cell, total);
  u->tokens = g_new (double, S);
  u->seq_id = g_new (guint32, S);
  u->n = 0;
  gsize out = 0;
  u->off[0] = 0;
  for (gsize s = 0; s < S; s++)
    {
      gsize a = per_seq[s], b = per_seq[s + 1];
      if (a == b)
        continue;
      qsort (raw + a, b - a, sizeof (Cell), cmp_cell);
      for (gsize i = a; i < b; i++)
        {
          if (out > u->off[u->n] && u->cells[out - 1].cell == raw[i].cell)
            u->cells[out - 1].count++;
          else
            u->cells[out++] = raw[i];
        }
      u->tokens[u->n] = (double)(b - a);
      u->seq_id[u->n] = (guint32)s;
      u->n++;
      u->off[u->n] = out;
    }
  return TRUE;
}

/* log-likelihood of unit @i under component @d with log-probabilities
 * @logth (D x LE), sparse. */
static double
unit_loglik (const Units *u, gsize i, const double *logth_d)
{
  double s = 0;
  for (gsize c = u->off[i]; c < u->off[i + 1]; c++)
    s += u->cells[c].count * logth_d[u->cells[c].cell];
  return s;
}

/* One EM run from the given start; returns the final log-likelihood and
 * leaves weights/theta in @pi and @logth, responsibilities in @resp. */
static double
em_run (const Units *u, guint D, double *pi, double *logth, double *resp, double *acc)
{
  gsize LE = u->LE;
  double prev = -INFINITY, ll = -INFINITY;
  for (int it = 0; it < 1000; it++)
    {
      /* E step. */
      ll = 0;
      for (gsize i = 0; i < u->n; i++)
        {
          double *r = resp + i * D, mx = -INFINITY;
          for (guint d = 0; d < D; d++)
            {
              r[d] = log (pi[d]) + unit_loglik (u, i, logth + d * LE);
              mx = MAX (mx, r[d]);
            }
          double z = 0;
          for (guint d = 0; d < D; d++)
            z += r[d] = exp (r[d] - mx);
          for (guint d = 0; d < D; d++)
            r[d] /= z;
          ll += mx + log (z);
        }
      /* M step, with a small symmetric prior so that an expert a component
       * never saw keeps a finite log-probability. */
      memset (acc, 0, sizeof (double) * D * LE);
      for (guint d = 0; d < D; d++)
        pi[d] = 0;
      for (gsize i = 0; i < u->n; i++)
        for (guint d = 0; d < D; d++)
          {
            double r = resp[i * D + d];
            pi[d] += r;
            for (gsize c = u->off[i]; c < u->off[i + 1]; c++)
              acc[d * LE + u->cells[c].cell] += r * u->cells[c].count;
          }
      for (guint d = 0; d < D; d++)
        {
          for (guint l = 0; l < u->L; l++)
            {
              double *a = acc + d * LE + (gsize)l * u->E, tot = 0;
              for (guint e = 0; e < u->E; e++)
                tot += a[e] += 0.01;
              for (guint e = 0; e < u->E; e++)
                logth[d * LE + (gsize)l * u->E + e] = log (a[e] / tot);
            }
          pi[d] = MAX (pi[d] / (double)u->n, 1e-12);
        }
      if (fabs (ll - prev) <= 1e-10 * fabs (ll))
        break;
      prev = ll;
    }
  return ll;
}

/* k-means++ style start: component centres are the histograms of D
 * sequences, each next one picked with probability proportional to its
 * squared distance from the nearest centre chosen so far. */
static void
em_start (const Units *u, guint D, gsl_rng *rng, double *pi, double *logth, double *centre)
{
  gsize LE = u->LE;
  g_autofree double *dist = g_new (double, u->n);
  for (gsize i = 0; i < u->n; i++)
    dist[i] = INFINITY;
  for (guint d = 0; d < D; d++)
    {
      gsize pick;
      if (d == 0)
        pick = gsl_rng_uniform_int (rng, u->n);
      else
        {
          double tot = 0;
          for (gsize i = 0; i < u->n; i++)
            tot += dist[i];
          double x = gsl_rng_uniform (rng) * tot;
          for (pick = 0; pick + 1 < u->n; pick++)
            if ((x -= dist[pick]) < 0)
              break;
        }
      double *c = centre + d * LE;
      memset (c, 0, sizeof (double) * LE);
      for (gsize k = u->off[pick]; k < u->off[pick + 1]; k++)
        c[u->cells[k].cell] = u->cells[k].count / u->tokens[pick];
      double cc = 0;
      for (gsize x = 0; x < LE; x++)
        cc += c[x] * c[x];
      for (gsize i = 0; i < u->n; i++)
        {
          double ii = 0, ic = 0;
          for (gsize k = u->off[i]; k < u->off[i + 1]; k++)
            {
              double v = u->cells[k].count / u->tokens[i];
              ii += v * v;
              ic += v * c[u->cells[k].cell];
            }
          dist[i] = MIN (dist[i], MAX (0.0, ii + cc - 2 * ic));
        }
      /* theta_d: the picked histogram per layer, mixed half and half with
       * uniform so that no expert starts at probability 0. */
      for (guint l = 0; l < u->L; l++)
        {
          double *cl = c + (gsize)l * u->E, tot = 0;
          for (guint e = 0; e < u->E; e++)
            tot += cl[e];
          for (guint e = 0; e < u->E; e++)
            {
              double th = 0.5 / u->E + (tot > 0 ? 0.5 * cl[e] / tot : 0.5 / u->E);
              logth[d * LE + (gsize)l * u->E + e] = log (th);
            }
        }
      pi[d] = 1.0 / D;
    }
}

typedef struct
{
  double w;
  guint d;
} Ranked;

static int
cmp_ranked (const void *a, const void *b)
{
  const Ranked *x = a, *y = b;
  if (x->w != y->w)
    return x->w < y->w ? 1 : -1;
  return x->d < y->d ? -1 : x->d > y->d ? 1 : 0;
}

gboolean
msim_gen_fit_domains (const MsimTrace *t, guint D, guint restarts, guint64 seed, double *weights,
                      guint **assignment, gsize *n_sequences, GError **error)
{
  g_return_val_if_fail (t != NULL && weights != NULL && D >= 1, FALSE);
  if (t->sequences == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "fitting domains needs sequence ids (the unit a domain is drawn for); this "
                   "trace has none");
      return FALSE;
    }
  guint64 need = (guint64)D * t->layers * t->experts * 3 * sizeof (double);
  if (need > msim_trace_get_memory_limit ())
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "fitting %u domains over %u layers x %u experts needs more memory than the "
                   "trace memory limit",
                   D, t->layers, t->experts);
      return FALSE;
    }
  Units u = { 0 };
  gsize S = 0;
  if (!units_build (t, &u, &S, error))
    {
      units_clear (&u);
      return FALSE;
    }
  u.D = D;
  u.E = t->experts;
  u.L = t->layers;
  u.LE = (guint)((gsize)t->layers * t->experts);
  if (u.n < D)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%" G_GSIZE_FORMAT " sequences cannot be split into %u domains", u.n, D);
      units_clear (&u);
      return FALSE;
    }
  gsize LE = u.LE;
  g_autofree double *pi = g_new (double, D), *best_pi = g_new (double, D);
  g_autofree double *logth = g_new (double, D *LE), *acc = g_new (double, D *LE);
  g_autofree double *resp = g_new (double, u.n *D), *best_resp = g_new (double, u.n *D);
  double best = -INFINITY;
  g_autoptr (gsl_rng) rng = msim_workload_rng_new (seed, MSIM_STREAM_FIT, D, 0);
  for (guint run = 0; run < MAX (restarts, 1u); run++)
    {
      em_start (&u, D, rng, pi, logth, acc);
      double ll = em_run (&u, D, pi, logth, resp, acc);
      if (ll > best)
        {
          best = ll;
          memcpy (best_pi, pi, sizeof (double) * D);
          memcpy (best_resp, resp, sizeof (double) * u.n * D);
        }
    }
  g_autofree Ranked *rk = g_new (Ranked, D);
  for (guint d = 0; d < D; d++)
    rk[d] = (Ranked){ best_pi[d], d };
  qsort (rk, D, sizeof *rk, cmp_ranked);
  g_autofree guint *rank_of = g_new (guint, D);
  for (guint d = 0; d < D; d++)
    {
      weights[d] = rk[d].w;
      rank_of[rk[d].d] = d;
    }
  if (assignment)
    {
      guint *a = g_new (guint, S);
      for (gsize s = 0; s < S; s++)
        a[s] = G_MAXUINT;
      for (gsize i = 0; i < u.n; i++)
        {
          guint arg = 0;
          for (guint d = 1; d < D; d++)
            if (best_resp[i * D + d] > best_resp[i * D + arg])
              arg = d;
          a[u.seq_id[i]] = rank_of[arg];
        }
      *assignment = a;
    }
  if (n_sequences)
    *n_sequences = S;
  units_clear (&u);
  return TRUE;
}
