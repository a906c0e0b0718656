#pragma once

/* The pieces of the synthetic generator (workloads/gen-*.c); generators.h
 * describes the model. */

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "generators.h"
#include "workload-private.h"

G_BEGIN_DECLS

typedef struct
{
  guint D, L, E, k;
  /* Popularity (gen-zipf.c): probability of each popularity rank, an alias
   * table over ranks (NULL when uniform), and perm[(d L + l) E + i] = the
   * expert of rank i in domain d, layer l. */
  double *rank_p;
  gsl_ran_discrete_t *rank_table;
  MsimExpertId *perm;
  /* Affinity paths (gen-markov.c): succ[(d (L-1) + l) E + e] = the layer
   * l+1 successor of expert e of layer l in domain d; NULL when L == 1. */
  MsimExpertId *succ;
  /* Domains (gen-mixture.c): NULL when D == 1. */
  gsl_ran_discrete_t *domain_table;
} GenModel;

/* gen-zipf.c */
gboolean gen_popularity_init (GenModel *m, const MsimGenParams *p, gsl_rng *structure,
                              GError **error);
/* Draws the rank-@r expert of @row for (d, l): from the popularity
 * distribution restricted to experts not in row[0..r). */
MsimExpertId gen_popularity_draw (const GenModel *m, guint d, guint l, const MsimExpertId *row,
                                  guint r, gsl_rng *rng);

/* gen-markov.c */
void gen_markov_init (GenModel *m);
/* The affinity successor of @e (an expert of layer @l) at layer l + 1. */
static inline MsimExpertId
gen_markov_next (const GenModel *m, guint d, guint l, MsimExpertId e)
{
  return m->succ[((gsize)d * (m->L - 1) + l) * m->E + (gsize)e];
}

/* gen-mixture.c */
gboolean gen_mixture_init (GenModel *m, const MsimGenParams *p, GError **error);
guint gen_mixture_draw (const GenModel *m, gsl_rng *rng);

/* gen-segment.c: TRUE when a token at @position copies its predecessor's row. */
gboolean gen_segment_reuses (const MsimGenParams *p, guint32 position, gsl_rng *rng);

void gen_model_clear (GenModel *m);

/* Shared by the estimators: returns TRUE when @e is among row[0..n). */
static inline gboolean
gen_row_has (const MsimExpertId *row, guint n, MsimExpertId e)
{
  for (guint i = 0; i < n; i++)
    if (row[i] == e)
      return TRUE;
  return FALSE;
}

G_END_DECLS
