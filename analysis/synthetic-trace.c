/* Seeded synthetic traces with inter-layer affinity (see synthetic-trace.h). */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <string.h>

#include "msim-error.h"
#include "synthetic-trace.h"

/* Index drawn from cumulative weights @cum[0..n) (cum[n-1] = total). */
static guint
draw (const double *cum, guint n, double u)
{
  double x = u * cum[n - 1];
  guint lo = 0, hi = n - 1;
  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;
      if (cum[mid] > x)
        hi = mid;
      else
        lo = mid + 1;
    }
  return lo;
}

MsimTrace *
msim_synthetic_affinity_trace_new (gsize tokens, guint layers, guint experts, guint k,
                                   double affinity, guint sequence_length, guint64 seed,
                                   GError **error)
{
  if (k < 1 || k > experts || !(affinity >= 0.0 && affinity <= 1.0) || sequence_length < 1)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "synthetic trace: need 1 <= k <= experts, affinity in [0, 1] and a sequence "
                   "length >= 1");
      return NULL;
    }
  g_autoptr (MsimTrace) t
      = msim_trace_new (tokens, layers, k, experts, MSIM_TRACE_SEQUENCES, error);
  if (t == NULL)
    return NULL;
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, (unsigned long)(seed ^ (seed >> 32)));
  const guint E = experts;
  g_autofree double *alpha = g_new (double, E);
  g_autofree double *pop = g_new (double, (gsize)layers *E);    /* per layer popularity */
  g_autofree double *popcum = g_new (double, (gsize)layers *E); /* cumulative */
  g_autofree double *trans = g_new (double, (gsize)E *E);       /* cumulative rows */
  g_autofree guint *perm = g_new (guint, (gsize)layers * E);
  for (guint e = 0; e < E; e++)
    alpha[e] = 0.5;
  for (guint l = 0; l < layers; l++)
    {
      gsl_ran_dirichlet (rng, E, alpha, pop + (gsize)l * E);
      double c = 0;
      for (guint e = 0; e < E; e++)
        {
          /* A floor keeps every expert reachable. */
          c += pop[(gsize)l * E + e] + 1e-3;
          popcum[(gsize)l * E + e] = c;
        }
      for (guint e = 0; e < E; e++)
        perm[(gsize)l * E + e] = e;
      gsl_ran_shuffle (rng, perm + (gsize)l * E, E, sizeof (guint));
    }
  for (guint e = 0; e < E; e++)
    alpha[e] = 0.3;
  g_autofree double *row = g_new (double, E);
  g_autofree double *taken = g_new (double, E);
  /* One transition matrix per boundary would cost E^2 L doubles; a single
   * shared matrix composed with the per-boundary permutation gives every
   * boundary its own structure at E^2. */
  for (guint i = 0; i < E; i++)
    {
      gsl_ran_dirichlet (rng, E, alpha, row);
      double c = 0;
      for (guint j = 0; j < E; j++)
        {
          c += row[j] + 1e-4;
          trans[(gsize)i * E + j] = c;
        }
    }
  for (gsize x = 0; x < tokens; x++)
    {
      guint cur = draw (popcum, E, gsl_rng_uniform (rng));
      for (guint l = 0; l < layers; l++)
        {
          if (l > 0)
            {
              const guint *pi = perm + (gsize)l * E;
              if (gsl_rng_uniform (rng) < affinity)
                cur = pi[cur];
              else
                cur = pi[draw (trans + (gsize)cur * E, E, gsl_rng_uniform (rng))];
            }
          MsimExpertId *ids = msim_trace_row_mut (t, x, l);
          ids[0] = (MsimExpertId)cur;
          /* Other ranks: popularity without replacement. */
          const double *pc = popcum + (gsize)l * E;
          for (guint r = 1; r < k; r++)
            {
              double prev = 0, c = 0;
              for (guint e = 0; e < E; e++)
                {
                  double w = pc[e] - prev;
                  prev = pc[e];
                  gboolean used = FALSE;
                  for (guint z = 0; z < r; z++)
                    used |= ids[z] == (MsimExpertId)e;
                  c += used ? 0 : w;
                  taken[e] = c;
                }
              ids[r] = (MsimExpertId)draw (taken, E, gsl_rng_uniform (rng));
            }
        }
      msim_trace_set_sequence (t, x, (guint32)(x / sequence_length),
                               (guint32)(x % sequence_length));
    }
  gsl_rng_free (rng);
  return g_steal_pointer (&t);
}
