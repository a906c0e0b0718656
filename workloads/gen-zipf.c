/* Expert popularity: a finite Zipf law over popularity ranks (zipf_s = 0 is
 * uniform) and one random order of the experts per (domain, layer). */
#include <math.h>

#include "gen-private.h"
#include "msim-error.h"

/* A uniformly random permutation of 0..n-1 into @out (Fisher-Yates via
 * gsl_ran_shuffle on an identity array). */
static void
random_order (MsimExpertId *out, guint n, gsl_rng *rng)
{
  for (guint i = 0; i < n; i++)
    out[i] = (MsimExpertId)i;
  gsl_ran_shuffle (rng, out, n, sizeof *out);
}

gboolean
gen_popularity_init (GenModel *m, const MsimGenParams *p, gsl_rng *structure, GError **error)
{
  guint E = m->E;
  m->rank_p = g_new (double, E);
  double sum = 0;
  for (guint i = 0; i < E; i++)
    sum += m->rank_p[i] = pow ((double)(i + 1), -p->zipf_s);
  for (guint i = 0; i < E; i++)
    m->rank_p[i] /= sum;
  if (p->zipf_s > 0.0)
    {
      m->rank_table = gsl_ran_discrete_preproc (E, m->rank_p);
      if (m->rank_table == NULL)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "generator: zipf_s: cannot build the sampling table for %u experts", E);
          return FALSE;
        }
    }
  gsize n = (gsize)m->D * m->L * E;
  m->perm = g_new (MsimExpertId, n);
  /* Uniform popularity has no order to keep, so it is always shuffled:
   * that makes the affinity paths random permutations. */
  gboolean shuffle = p->zipf_shuffle || p->zipf_s == 0.0;
  for (gsize dl = 0; dl < (gsize)m->D * m->L; dl++)
    {
      MsimExpertId *perm = m->perm + dl * E;
      if (shuffle)
        random_order (perm, E, structure);
      else
        for (guint i = 0; i < E; i++)
          perm[i] = (MsimExpertId)i;
    }
  return TRUE;
}

MsimExpertId
gen_popularity_draw (const GenModel *m, guint d, guint l, const MsimExpertId *row, guint r,
                     gsl_rng *rng)
{
  const MsimExpertId *perm = m->perm + ((gsize)d * m->L + l) * m->E;
  /* Rejection of already chosen experts samples exactly from the
   * distribution renormalised over the rest, at an expected cost of
   * 1 / (1 - mass chosen) draws.  A steep Zipf law with large k can make
   * that mass close to 1, so after a bounded number of rejections the
   * remaining mass is scanned directly (O(E), same distribution). */
  for (int tries = 0; tries < 64; tries++)
    {
      gsize rank
          = m->rank_table ? gsl_ran_discrete (rng, m->rank_table) : gsl_rng_uniform_int (rng, m->E);
      MsimExpertId e = perm[rank];
      if (!gen_row_has (row, r, e))
        return e;
    }
  double rest = 0;
  for (guint i = 0; i < m->E; i++)
    if (!gen_row_has (row, r, perm[i]))
      rest += m->rank_p[i];
  double u = gsl_rng_uniform (rng) * rest;
  MsimExpertId last = -1;
  for (guint i = 0; i < m->E; i++)
    {
      if (gen_row_has (row, r, perm[i]))
        continue;
      last = perm[i];
      u -= m->rank_p[i];
      if (u < 0)
        return perm[i];
    }
  return last; /* rounding left u >= 0 at the end: the last free expert */
}
