#pragma once

/*
 * Floating-point tolerance helpers.  Every comparison of computed rates,
 * capacities or probabilities goes through these so that the tolerance policy
 * lives in one place.  MSIM_REL_EPS is relative to the magnitude of the
 * operands: rates are of order 1e9..1e13 B/s and are sums of a few thousand
 * terms, so a relative error of 1e-9 is far above accumulated rounding
 * (about 1e-13) and far below any physically meaningful difference.
 */

#include <glib.h>
#include <math.h>

G_BEGIN_DECLS

#define MSIM_REL_EPS 1e-9

/* TRUE when a and b agree to @rel relative to the larger magnitude. */
static inline gboolean
msim_float_near (double a, double b, double rel)
{
  double scale = fmax (fabs (a), fabs (b));
  return fabs (a - b) <= rel * scale;
}

/* a >= b within tolerance. */
static inline gboolean
msim_float_ge (double a, double b, double rel)
{
  return a >= b - rel * fmax (fabs (a), fabs (b));
}

/* a <= b within tolerance. */
static inline gboolean
msim_float_le (double a, double b, double rel)
{
  return a <= b + rel * fmax (fabs (a), fabs (b));
}

G_END_DECLS
