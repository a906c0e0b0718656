/* Linear assignment by shortest augmenting paths with potentials (the
 * Hungarian method in its O(n^2 m) form).  Placement calls it once per layer
 * per sweep with n = E rows and m = G * slots columns, so n, m <= a few
 * hundred; an O(n^3) dense method is the right tool there, and integer costs
 * keep every result exact and reproducible. */
#include "placement-private.h"

struct _MsimAssign
{
  guint max_rows, max_cols;
  gint64 *u, *v, *minv; /* potentials (rows, columns), slack */
  guint *match;         /* match[j] = row (1-based) of column j, 0 = free */
  guint *way;
  gboolean *used;
};

MsimAssign *
msim_assign_new (guint max_rows, guint max_cols)
{
  MsimAssign *a = g_new0 (MsimAssign, 1);
  a->max_rows = max_rows;
  a->max_cols = max_cols;
  a->u = g_new (gint64, max_rows + 1);
  a->v = g_new (gint64, max_cols + 1);
  a->minv = g_new (gint64, max_cols + 1);
  a->match = g_new (guint, max_cols + 1);
  a->way = g_new (guint, max_cols + 1);
  a->used = g_new (gboolean, max_cols + 1);
  return a;
}

void
msim_assign_free (MsimAssign *a)
{
  if (a == NULL)
    return;
  g_free (a->u);
  g_free (a->v);
  g_free (a->minv);
  g_free (a->match);
  g_free (a->way);
  g_free (a->used);
  g_free (a);
}

gint64
msim_assign_solve (MsimAssign *a, guint rows, guint cols, const gint64 *cost, guint *row_col)
{
  g_return_val_if_fail (a != NULL && rows <= cols, 0);
  g_return_val_if_fail (rows <= a->max_rows && cols <= a->max_cols, 0);
  /* Far above any reachable sum (counts are below 2^40) and far below
   * overflow when two of them are added. */
  const gint64 inf = G_MAXINT64 / 4;
  gint64 *u = a->u, *v = a->v, *minv = a->minv;
  guint *match = a->match, *way = a->way;
  gboolean *used = a->used;

  for (guint i = 0; i <= rows; i++)
    u[i] = 0;
  for (guint j = 0; j <= cols; j++)
    {
      v[j] = 0;
      match[j] = 0;
      way[j] = 0;
    }
  for (guint i = 1; i <= rows; i++)
    {
      /* Grow a shortest-path tree from row i until it reaches a free column,
       * then flip the matching along the path. */
      match[0] = i;
      guint j0 = 0;
      for (guint j = 0; j <= cols; j++)
        {
          minv[j] = inf;
          used[j] = FALSE;
        }
      do
        {
          used[j0] = TRUE;
          guint i0 = match[j0];
          gint64 delta = inf;
          guint j1 = 0;
          const gint64 *crow = cost + (gsize)(i0 - 1) * cols;
          for (guint j = 1; j <= cols; j++)
            if (!used[j])
              {
                gint64 cur = crow[j - 1] - u[i0] - v[j];
                if (cur < minv[j])
                  {
                    minv[j] = cur;
                    way[j] = j0;
                  }
                if (minv[j] < delta)
                  {
                    delta = minv[j];
                    j1 = j;
                  }
              }
          for (guint j = 0; j <= cols; j++)
            if (used[j])
              {
                u[match[j]] += delta;
                v[j] -= delta;
              }
            else
              minv[j] -= delta;
          j0 = j1;
        }
      while (match[j0] != 0);
      do
        {
          guint j1 = way[j0];
          match[j0] = match[j1];
          j0 = j1;
        }
      while (j0 != 0);
    }
  gint64 total = 0;
  for (guint j = 1; j <= cols; j++)
    if (match[j] != 0)
      {
        row_col[match[j] - 1] = j - 1;
        total += cost[(gsize)(match[j] - 1) * cols + (j - 1)];
      }
  return total;
}
