#include "msim-time.h"

#include <math.h>

/* Largest double that converts to a representable int64: 2^63 is exactly
 * representable but one past G_MAXINT64, so the bound is strict. */
static const double TIME_LIMIT_PS = 9223372036854775808.0;

static gboolean
ps_from_double (double ps, MsimTime *out)
{
  if (!isfinite (ps) || ps < 0.0)
    return FALSE;
  double r = nearbyint (ps);
  if (r >= TIME_LIMIT_PS)
    return FALSE;
  *out = (MsimTime)r;
  return TRUE;
}

gboolean
msim_time_from_seconds (double seconds, MsimTime *out)
{
  return ps_from_double (seconds * 1e12, out);
}

double
msim_time_to_seconds (MsimTime t)
{
  /* Split to keep full precision for large times: whole seconds plus the
   * picosecond remainder, each exact in a double. */
  MsimTime whole = t / MSIM_PS_PER_SECOND;
  MsimTime frac = t % MSIM_PS_PER_SECOND;
  return (double)whole + (double)frac * 1e-12;
}

gboolean
msim_time_add (MsimTime a, MsimTime b, MsimTime *out)
{
  MsimTime r;
  if (__builtin_add_overflow (a, b, &r))
    return FALSE;
  *out = r;
  return TRUE;
}

MsimTime
msim_time_add_sat (MsimTime a, MsimTime b)
{
  g_return_val_if_fail (a >= 0 && b >= 0, MSIM_TIME_NEVER);
  MsimTime r;
  if (__builtin_add_overflow (a, b, &r))
    return MSIM_TIME_NEVER;
  return r;
}

gboolean
msim_time_for_bytes (double bytes, double rate_Bps, MsimTime *out)
{
  if (!isfinite (bytes) || bytes < 0.0 || !isfinite (rate_Bps) || rate_Bps < 0.0)
    return FALSE;
  if (bytes == 0.0)
    {
      *out = 0;
      return TRUE;
    }
  if (rate_Bps == 0.0)
    return FALSE;
  return ps_from_double (bytes / rate_Bps * 1e12, out);
}

double
msim_time_bytes_at_rate (MsimTime t, double rate_Bps)
{
  return msim_time_to_seconds (t) * rate_Bps;
}
