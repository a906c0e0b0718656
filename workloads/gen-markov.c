/* Inter-layer affinity paths: succ maps the layer-l expert of popularity
 * rank i to the layer-(l+1) expert of rank i, per domain.  Preserving rank
 * keeps every layer's popularity exactly Zipf whatever the affinity, so the
 * two parameters can be dialled (and estimated) independently. */
#include "gen-private.h"

void
gen_markov_init (GenModel *m)
{
  if (m->L < 2)
    return;
  guint E = m->E;
  m->succ = g_new (MsimExpertId, (gsize)m->D * (m->L - 1) * E);
  for (guint d = 0; d < m->D; d++)
    for (guint l = 0; l + 1 < m->L; l++)
      {
        const MsimExpertId *from = m->perm + ((gsize)d * m->L + l) * E;
        const MsimExpertId *to = from + E;
        MsimExpertId *succ = m->succ + ((gsize)d * (m->L - 1) + l) * E;
        for (guint i = 0; i < E; i++)
          succ[from[i]] = to[i];
      }
}
