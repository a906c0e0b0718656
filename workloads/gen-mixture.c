/* Domain mixtures: every sequence belongs to one domain, drawn from the
 * domain weights; domains differ in their popularity orders and affinity
 * paths (one per domain, gen-zipf.c and gen-markov.c). */
#include "gen-private.h"
#include "msim-error.h"

gboolean
gen_mixture_init (GenModel *m, const MsimGenParams *p, GError **error)
{
  if (m->D == 1)
    return TRUE;
  g_autofree double *w = g_new (double, m->D);
  for (guint d = 0; d < m->D; d++)
    w[d] = p->domain_weights ? p->domain_weights[d] : 1.0;
  m->domain_table = gsl_ran_discrete_preproc (m->D, w);
  if (m->domain_table == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "generator: domain_weights: cannot build the sampling table");
      return FALSE;
    }
  return TRUE;
}

guint
gen_mixture_draw (const GenModel *m, gsl_rng *rng)
{
  return m->domain_table ? (guint)gsl_ran_discrete (rng, m->domain_table) : 0;
}
