/* Inter-layer affinity: count matrices, conditional probabilities,
 * entropies, the igraph affinity graph and the affinity gain. */
#include <math.h>
#include <string.h>

#include "affinity.h"
#include "analysis-util.h"
#include "msim-error.h"
#include "placement-private.h"

struct _MsimAffinity
{
  guint layers, experts, k, distance, n_pairs;
  guint64 tokens;
  guint64 *counts[2]; /* [mode][pair][E][E] */
  guint64 *rows[2];   /* [mode][pair][E]: tokens with i at the pair's first layer */
};

MsimAffinity *
msim_affinity_new (const MsimTrace *trace, guint distance, GError **error)
{
  if (distance < 1 || distance >= trace->layers)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "affinity distance %u: expected 1..%u for a trace of %u layers", distance,
                   trace->layers > 1 ? trace->layers - 1 : 0, trace->layers);
      return NULL;
    }
  const guint E = trace->experts, k = trace->k;
  if ((guint64)E * E * (trace->layers - distance) > (guint64)1 << 28)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "affinity: %u layer pairs x %u^2 experts is too large", trace->layers - distance,
                   E);
      return NULL;
    }
  MsimAffinity *a = g_new0 (MsimAffinity, 1);
  a->layers = trace->layers;
  a->experts = E;
  a->k = k;
  a->distance = distance;
  a->n_pairs = trace->layers - distance;
  a->tokens = trace->tokens;
  for (int m = 0; m < 2; m++)
    {
      a->counts[m] = g_new0 (guint64, (gsize)a->n_pairs * E * E);
      a->rows[m] = g_new0 (guint64, (gsize)a->n_pairs * E);
    }
  for (guint p = 0; p < a->n_pairs; p++)
    {
      const MsimExpertId *x = msim_trace_layer_ids (trace, p);
      const MsimExpertId *y = msim_trace_layer_ids (trace, p + distance);
      guint64 *c1 = a->counts[MSIM_AFFINITY_TOP1] + (gsize)p * E * E;
      guint64 *ck = a->counts[MSIM_AFFINITY_ALLK] + (gsize)p * E * E;
      guint64 *r1 = a->rows[MSIM_AFFINITY_TOP1] + (gsize)p * E;
      guint64 *rk = a->rows[MSIM_AFFINITY_ALLK] + (gsize)p * E;
      for (gsize t = 0; t < trace->tokens; t++)
        {
          const MsimExpertId *rx = x + t * k, *ry = y + t * k;
          if (rx[0] < 0 || ry[0] < 0)
            continue;
          c1[(gsize)rx[0] * E + ry[0]]++;
          r1[rx[0]]++;
          for (guint u = 0; u < k; u++)
            {
              if (rx[u] < 0)
                continue;
              rk[rx[u]]++;
              for (guint v = 0; v < k; v++)
                if (ry[v] >= 0)
                  ck[(gsize)rx[u] * E + ry[v]]++;
            }
        }
    }
  return a;
}

void
msim_affinity_free (MsimAffinity *a)
{
  if (a == NULL)
    return;
  for (int m = 0; m < 2; m++)
    {
      g_free (a->counts[m]);
      g_free (a->rows[m]);
    }
  g_free (a);
}

guint
msim_affinity_layers (const MsimAffinity *a)
{
  return a->layers;
}

guint
msim_affinity_experts (const MsimAffinity *a)
{
  return a->experts;
}

guint
msim_affinity_k (const MsimAffinity *a)
{
  return a->k;
}

guint
msim_affinity_distance (const MsimAffinity *a)
{
  return a->distance;
}

guint64
msim_affinity_tokens (const MsimAffinity *a)
{
  return a->tokens;
}

guint
msim_affinity_n_pairs (const MsimAffinity *a)
{
  return a->n_pairs;
}

const guint64 *
msim_affinity_counts (const MsimAffinity *a, MsimAffinityMode mode, guint pair)
{
  g_return_val_if_fail (pair < a->n_pairs, NULL);
  return a->counts[mode] + (gsize)pair * a->experts * a->experts;
}

guint64
msim_affinity_row_tokens (const MsimAffinity *a, MsimAffinityMode mode, guint pair, guint i)
{
  g_return_val_if_fail (pair < a->n_pairs && i < a->experts, 0);
  return a->rows[mode][(gsize)pair * a->experts + i];
}

double
msim_affinity_probability (const MsimAffinity *a, MsimAffinityMode mode, guint pair, guint i,
                           guint j)
{
  g_return_val_if_fail (pair < a->n_pairs && i < a->experts && j < a->experts, NAN);
  guint64 n = msim_affinity_row_tokens (a, mode, pair, i);
  if (n == 0)
    return NAN;
  return (double)msim_affinity_counts (a, mode, pair)[(gsize)i * a->experts + j] / (double)n;
}

void
msim_affinity_pair_stats (const MsimAffinity *a, MsimAffinityMode mode, guint pair,
                          MsimAffinityStats *out)
{
  const guint E = a->experts;
  const guint64 *c = msim_affinity_counts (a, mode, pair);
  memset (out, 0, sizeof *out);
  g_autofree double *ri = g_new0 (double, E);
  g_autofree double *cj = g_new0 (double, E);
  double tot = 0;
  for (guint i = 0; i < E; i++)
    for (guint j = 0; j < E; j++)
      {
        double v = (double)c[(gsize)i * E + j];
        ri[i] += v;
        cj[j] += v;
        tot += v;
      }
  out->samples = (guint64)tot;
  if (tot <= 0)
    return;
  double hj = 0, hji = 0;
  for (guint j = 0; j < E; j++)
    if (cj[j] > 0)
      hj -= cj[j] / tot * log2 (cj[j] / tot);
  for (guint i = 0; i < E; i++)
    for (guint j = 0; j < E; j++)
      {
        double v = (double)c[(gsize)i * E + j];
        if (v > 0)
          hji -= v / tot * log2 (v / ri[i]);
      }
  out->entropy = hj;
  out->conditional_entropy = hji;
  /* Clamp rounding below zero: I >= 0 in exact arithmetic. */
  out->mutual_information = MAX (0.0, hj - hji);
  out->normalized_mi = hj > 0 ? out->mutual_information / hj : 0.0;
}

void
msim_affinity_mean_stats (const MsimAffinity *a, MsimAffinityMode mode, MsimAffinityStats *out)
{
  memset (out, 0, sizeof *out);
  for (guint p = 0; p < a->n_pairs; p++)
    {
      MsimAffinityStats s;
      msim_affinity_pair_stats (a, mode, p, &s);
      out->conditional_entropy += s.conditional_entropy / a->n_pairs;
      out->entropy += s.entropy / a->n_pairs;
      out->mutual_information += s.mutual_information / a->n_pairs;
      out->normalized_mi += s.normalized_mi / a->n_pairs;
      out->samples += s.samples;
    }
}

/* ---- igraph ---- */

static gpointer
install_attribute_table (gpointer data)
{
  igraph_set_attribute_table (&igraph_cattribute_table);
  return NULL;
}

static gboolean
igraph_failed (igraph_error_t rc, const char *what, GError **error)
{
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME, "affinity graph: igraph %s failed: %s", what,
               igraph_strerror (rc));
  return FALSE;
}

gboolean
msim_affinity_graph (const MsimAffinity *a, MsimAffinityMode mode, igraph_t *graph, GError **error)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, install_attribute_table, NULL);
  const guint E = a->experts, d = a->distance;
  const igraph_integer_t nv = (igraph_integer_t)a->layers * E;
  igraph_vector_int_t edges;
  igraph_vector_t weight, prob;
  if (igraph_vector_int_init (&edges, 0) != IGRAPH_SUCCESS)
    return igraph_failed (IGRAPH_ENOMEM, "vector_init", error);
  igraph_vector_init (&weight, 0);
  igraph_vector_init (&prob, 0);
  igraph_error_t rc = IGRAPH_SUCCESS;
  for (guint p = 0; p < a->n_pairs && rc == IGRAPH_SUCCESS; p++)
    {
      const guint64 *c = msim_affinity_counts (a, mode, p);
      for (guint i = 0; i < E && rc == IGRAPH_SUCCESS; i++)
        for (guint j = 0; j < E; j++)
          {
            guint64 v = c[(gsize)i * E + j];
            if (v == 0)
              continue;
            if ((rc = igraph_vector_int_push_back (&edges, (igraph_integer_t)p * E + i))
                    != IGRAPH_SUCCESS
                || (rc = igraph_vector_int_push_back (&edges, (igraph_integer_t)(p + d) * E + j))
                       != IGRAPH_SUCCESS
                || (rc = igraph_vector_push_back (&weight, (double)v)) != IGRAPH_SUCCESS
                || (rc
                    = igraph_vector_push_back (&prob, msim_affinity_probability (a, mode, p, i, j)))
                       != IGRAPH_SUCCESS)
              break;
          }
    }
  if (rc == IGRAPH_SUCCESS)
    rc = igraph_create (graph, &edges, nv, IGRAPH_DIRECTED);
  igraph_vector_int_destroy (&edges);
  if (rc != IGRAPH_SUCCESS)
    {
      igraph_vector_destroy (&weight);
      igraph_vector_destroy (&prob);
      return igraph_failed (rc, "create", error);
    }
  igraph_vector_t layer, expert, load;
  igraph_strvector_t names;
  igraph_vector_init (&layer, nv);
  igraph_vector_init (&expert, nv);
  igraph_vector_init (&load, nv);
  igraph_strvector_init (&names, nv);
  for (igraph_integer_t v = 0; v < nv; v++)
    {
      guint l = (guint)(v / E), e = (guint)(v % E);
      char buf[32];
      g_snprintf (buf, sizeof buf, "L%uE%u", l, e);
      igraph_strvector_set (&names, v, buf);
      VECTOR (layer)[v] = l;
      VECTOR (expert)[v] = e;
      /* Load: tokens at the expert, from the pair that starts at the layer
       * (or ends there, for the last d layers). */
      double ld = 0;
      if (l < a->n_pairs)
        ld = (double)msim_affinity_row_tokens (a, mode, l, e);
      else
        {
          const guint64 *c = msim_affinity_counts (a, mode, l - d);
          for (guint i = 0; i < E; i++)
            ld += (double)c[(gsize)i * E + e];
          if (mode == MSIM_AFFINITY_ALLK && a->k > 0)
            ld /= a->k;
        }
      VECTOR (load)[v] = ld;
    }
  if ((rc = SETVASV (graph, "name", &names)) != IGRAPH_SUCCESS
      || (rc = SETVANV (graph, "layer", &layer)) != IGRAPH_SUCCESS
      || (rc = SETVANV (graph, "expert", &expert)) != IGRAPH_SUCCESS
      || (rc = SETVANV (graph, "load", &load)) != IGRAPH_SUCCESS
      || (rc = SETEANV (graph, "weight", &weight)) != IGRAPH_SUCCESS
      || (rc = SETEANV (graph, "probability", &prob)) != IGRAPH_SUCCESS)
    igraph_destroy (graph);
  igraph_vector_destroy (&layer);
  igraph_vector_destroy (&expert);
  igraph_vector_destroy (&load);
  igraph_strvector_destroy (&names);
  igraph_vector_destroy (&weight);
  igraph_vector_destroy (&prob);
  if (rc != IGRAPH_SUCCESS)
    return igraph_failed (rc, "attribute", error);
  return TRUE;
}

static gboolean
write_graphml (FILE *out, gpointer data, GError **error)
{
  igraph_error_t rc = igraph_write_graph_graphml (data, out, FALSE);
  if (rc != IGRAPH_SUCCESS)
    return igraph_failed (rc, "write_graph_graphml", error);
  return TRUE;
}

gboolean
msim_affinity_save_graphml (const MsimAffinity *a, MsimAffinityMode mode, const char *path,
                            GError **error)
{
  igraph_t g;
  if (!msim_affinity_graph (a, mode, &g, error))
    return FALSE;
  gboolean ok = msim_write_file_atomic (path, write_graphml, &g, error);
  igraph_destroy (&g);
  return ok;
}

/* ---- affinity gain ---- */

gboolean
msim_affinity_gain (const MsimTrace *trace, guint gpus, guint64 seed, MsimAffinityGain *out,
                    GError **error)
{
  memset (out, 0, sizeof *out);
  out->gpus = gpus;
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (gpus, 1, error);
  if (shape == NULL)
    return FALSE;
  g_autoptr (MsimPlacementProblem) pb = msim_placement_problem_new (trace, shape, seed, error);
  if (pb == NULL)
    return FALSE;
  const gsize n = (gsize)pb->layers * pb->experts;
  g_autofree guint32 *contig = g_new (guint32, n);
  g_autofree guint32 *best = g_new (guint32, n);
  msim_search_contiguous (pb, contig);
  MsimPlacementOutput o
      = { best, NULL, g_array_new (FALSE, FALSE, sizeof (MsimPlacementStat)), pb->slots_per_gpu };
  msim_search_best (pb, best, 24, 512, 0, &o);
  out->exact = msim_placement_stats_get (o.stats, "exact") == 1.0;
  g_array_unref (o.stats);
  guint64 xc, xb, tot;
  msim_placement_problem_crossings (pb, contig, &xc, NULL, &tot);
  msim_placement_problem_crossings (pb, best, &xb, NULL, NULL);
  if (tot > 0)
    {
      out->contiguous = (double)xc / (double)tot;
      out->best = (double)xb / (double)tot;
    }
  out->gain = out->contiguous - out->best;
  out->relative_gain = out->contiguous > 0 ? out->gain / out->contiguous : 0.0;
  return TRUE;
}
