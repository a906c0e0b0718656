/* The reference max-min solver: plain progressive filling, written to be
 * obviously right rather than fast.  The incremental solver in network.c is
 * tested against it. */
#include <float.h>

#include "network.h"

void
msim_maxmin_reference (guint n_links, const double *capacity, guint n_flows, const guint32 *offsets,
                       const guint32 *links, double *rates_out)
{
  double *residual = g_new (double, n_links);
  guint *unfrozen = g_new0 (guint, n_links);
  gboolean *frozen = g_new0 (gboolean, n_flows);
  guint remaining = 0;

  for (guint l = 0; l < n_links; l++)
    residual[l] = capacity[l];
  for (guint f = 0; f < n_flows; f++)
    {
      if (offsets[f] == offsets[f + 1])
        {
          rates_out[f] = G_MAXDOUBLE;
          frozen[f] = TRUE;
          continue;
        }
      for (guint32 h = offsets[f]; h < offsets[f + 1]; h++)
        unfrozen[links[h]]++;
      remaining++;
    }

  while (remaining > 0)
    {
      /* The link with the smallest fair share saturates first; every
       * unfrozen flow crossing it is frozen at that share. */
      double best = DBL_MAX;
      guint best_link = G_MAXUINT;
      for (guint l = 0; l < n_links; l++)
        if (unfrozen[l] > 0)
          {
            double share = MAX (residual[l], 0.0) / unfrozen[l];
            if (share < best)
              {
                best = share;
                best_link = l;
              }
          }
      g_assert (best_link != G_MAXUINT);
      for (guint f = 0; f < n_flows; f++)
        {
          if (frozen[f])
            continue;
          gboolean crosses = FALSE;
          for (guint32 h = offsets[f]; h < offsets[f + 1]; h++)
            crosses |= links[h] == best_link;
          if (!crosses)
            continue;
          frozen[f] = TRUE;
          rates_out[f] = best;
          remaining--;
          for (guint32 h = offsets[f]; h < offsets[f + 1]; h++)
            {
              residual[links[h]] -= best;
              unfrozen[links[h]]--;
            }
        }
    }
  g_free (residual);
  g_free (unfrozen);
  g_free (frozen);
}
