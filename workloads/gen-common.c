/* Synthetic generators: parameters, the table of named generators, and the
 * token loop that combines popularity (gen-zipf.c), affinity paths
 * (gen-markov.c), segment reuse (gen-segment.c) and domains
 * (gen-mixture.c).  generators.h describes the model. */
#include <math.h>
#include <string.h>

#include "gen-private.h"
#include "msim-error.h"

void
msim_gen_params_init (MsimGenParams *p, guint layers, guint experts, guint k)
{
  g_return_if_fail (p != NULL);
  memset (p, 0, sizeof *p);
  p->layers = layers;
  p->experts = experts;
  p->k = k;
  p->sequence_len = 512;
  p->zipf_s = 0.0;
  p->zipf_shuffle = TRUE;
  p->affinity = 0.0;
  p->reuse = 0.0;
  p->domains = 1;
  p->domain_weights = NULL;
}

void
msim_gen_params_clear (MsimGenParams *p)
{
  if (p == NULL)
    return;
  g_clear_pointer (&p->domain_weights, g_free);
}

void
msim_gen_params_copy (MsimGenParams *dst, const MsimGenParams *src)
{
  g_return_if_fail (dst != NULL && src != NULL);
  *dst = *src;
  dst->domain_weights = src->domain_weights
                            ? g_memdup2 (src->domain_weights, sizeof (double) * src->domains)
                            : NULL;
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "generator: %s: %s", key, msg);
  return FALSE;
}

gboolean
msim_gen_params_validate (const MsimGenParams *p, GError **error)
{
  g_return_val_if_fail (p != NULL, FALSE);
  if (p->layers == 0)
    return bad (error, "layers", "must be at least 1");
  if (p->experts == 0 || p->experts > MSIM_TRACE_MAX_EXPERTS)
    return bad (error, "experts", "%u is outside 1..%u", p->experts, MSIM_TRACE_MAX_EXPERTS);
  if (p->k == 0 || p->k > p->experts)
    return bad (error, "k", "%u experts per token is outside 1..%u (the number of experts)", p->k,
                p->experts);
  if (p->sequence_len == 0)
    return bad (error, "sequence_len", "must be at least 1");
  if (!(p->zipf_s >= 0.0 && p->zipf_s <= 64.0))
    return bad (error, "zipf_s", "%g is outside 0..64", p->zipf_s);
  if (!(p->affinity >= 0.0 && p->affinity <= 1.0))
    return bad (error, "affinity", "%g is outside 0..1", p->affinity);
  if (!(p->reuse >= 0.0 && p->reuse <= 1.0))
    return bad (error, "reuse", "%g is outside 0..1", p->reuse);
  if (p->domains == 0 || p->domains > MSIM_GEN_MAX_DOMAINS)
    return bad (error, "domains", "%u is outside 1..%u", p->domains, MSIM_GEN_MAX_DOMAINS);
  if (p->domain_weights)
    {
      double sum = 0;
      for (guint d = 0; d < p->domains; d++)
        {
          double w = p->domain_weights[d];
          if (!(w >= 0.0) || !isfinite (w))
            return bad (error, "domain_weights", "weight %u is %g; weights must be finite and >= 0",
                        d + 1, w);
          sum += w;
        }
      if (!(sum > 0.0))
        return bad (error, "domain_weights", "the weights sum to 0");
    }
  /* Popularity orders and paths: 2 ids per (domain, layer, expert). */
  guint64 cells = 0, bytes = 0;
  if (!g_uint64_checked_mul (&cells, (guint64)p->domains * p->layers, p->experts)
      || !g_uint64_checked_mul (&bytes, cells, 2 * sizeof (MsimExpertId))
      || bytes > msim_trace_get_memory_limit ())
    return bad (error, "domains",
                "%u domains x %u layers x %u experts need more memory for popularity orders and "
                "affinity paths than the trace memory limit allows",
                p->domains, p->layers, p->experts);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Named generators                                                     */
/* ------------------------------------------------------------------ */

static void
uniform_defaults (MsimGenParams *p)
{
  p->zipf_s = 0.0;
}

static void
zipf_defaults (MsimGenParams *p)
{
  p->zipf_s = 1.0;
}

static void
markov_defaults (MsimGenParams *p)
{
  p->affinity = 0.8;
}

static void
segment_defaults (MsimGenParams *p)
{
  p->reuse = 0.5;
}

static void
mixture_defaults (MsimGenParams *p)
{
  p->domains = 4;
  p->zipf_s = 1.0;
}

static const char *const uniform_keys[] = { NULL };
static const char *const zipf_keys[] = { "zipf_s", "zipf_shuffle", NULL };
static const char *const markov_keys[] = { "affinity", "zipf_s", "zipf_shuffle", NULL };
static const char *const segment_keys[] = { "reuse", "zipf_s", "zipf_shuffle", NULL };
static const char *const mixture_keys[]
    = { "domains", "domain_weights", "zipf_s", "zipf_shuffle", "affinity", "reuse", NULL };

static const MsimGeneratorType gen_uniform
    = { "uniform", "every expert equally likely, layers and tokens independent", uniform_keys,
        uniform_defaults };
static const MsimGeneratorType gen_zipf
    = { "zipf", "Zipf/power-law expert popularity per layer (zipf_s)", zipf_keys, zipf_defaults };
static const MsimGeneratorType gen_markov
    = { "markov", "inter-layer affinity paths followed with probability affinity", markov_keys,
        markov_defaults };
static const MsimGeneratorType gen_segment
    = { "segment", "consecutive tokens of a sequence reuse experts with probability reuse",
        segment_keys, segment_defaults };
static const MsimGeneratorType gen_mixture
    = { "mixture", "domain mixture; each domain has its own popularity and paths", mixture_keys,
        mixture_defaults };

static const MsimGeneratorType *const generator_types[]
    = { &gen_uniform, &gen_zipf, &gen_markov, &gen_segment, &gen_mixture };

const MsimGeneratorType *
msim_generator_lookup (const char *name)
{
  g_return_val_if_fail (name != NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (generator_types); i++)
    if (strcmp (generator_types[i]->name, name) == 0)
      return generator_types[i];
  return NULL;
}

const MsimGeneratorType *const *
msim_generator_types (guint *n)
{
  if (n)
    *n = G_N_ELEMENTS (generator_types);
  return generator_types;
}

/* ------------------------------------------------------------------ */
/* The token loop                                                       */
/* ------------------------------------------------------------------ */

void
gen_model_clear (GenModel *m)
{
  g_free (m->rank_p);
  if (m->rank_table)
    gsl_ran_discrete_free (m->rank_table);
  g_free (m->perm);
  g_free (m->succ);
  if (m->domain_table)
    gsl_ran_discrete_free (m->domain_table);
  memset (m, 0, sizeof *m);
}

MsimTrace *
msim_gen_generate (const MsimGenParams *p, gsize tokens, guint64 seed, GError **error)
{
  g_return_val_if_fail (p != NULL, NULL);
  if (!msim_gen_params_validate (p, error))
    return NULL;
  g_autoptr (MsimTrace) t
      = msim_trace_new (tokens, p->layers, p->k, p->experts, MSIM_TRACE_SEQUENCES, error);
  if (t == NULL)
    return NULL;

  GenModel m = { p->domains, p->layers, p->experts, p->k, NULL, NULL, NULL, NULL, NULL };
  g_autoptr (gsl_rng) structure = msim_workload_rng_new (seed, MSIM_STREAM_GEN_STRUCTURE, 0, 0);
  if (!gen_popularity_init (&m, p, structure, error) || !gen_mixture_init (&m, p, error))
    {
      gen_model_clear (&m);
      return NULL;
    }
  gen_markov_init (&m);

  g_autoptr (gsl_rng) rng = msim_workload_rng_new (seed, MSIM_STREAM_GEN_TOKENS, 0, 0);
  guint d = 0;
  for (gsize tok = 0; tok < tokens; tok++)
    {
      guint32 seq = (guint32)(tok / p->sequence_len);
      guint32 pos = (guint32)(tok % p->sequence_len);
      msim_trace_set_sequence (t, tok, seq, pos);
      if (pos == 0)
        d = gen_mixture_draw (&m, rng);
      for (guint l = 0; l < p->layers; l++)
        {
          MsimExpertId *row = msim_trace_row_mut (t, tok, l);
          if (gen_segment_reuses (p, pos, rng))
            {
              memcpy (row, msim_trace_row (t, tok - 1, l), sizeof (MsimExpertId) * p->k);
              continue;
            }
          const MsimExpertId *up = l > 0 ? msim_trace_row (t, tok, l - 1) : NULL;
          for (guint r = 0; r < p->k; r++)
            {
              MsimExpertId e = -1;
              if (up && p->affinity > 0.0 && gsl_rng_uniform (rng) < p->affinity)
                {
                  e = gen_markov_next (&m, d, l - 1, up[r]);
                  if (gen_row_has (row, r, e))
                    e = -1;
                }
              if (e < 0)
                e = gen_popularity_draw (&m, d, l, row, r, rng);
              row[r] = e;
            }
        }
    }
  gen_model_clear (&m);
  return g_steal_pointer (&t);
}
