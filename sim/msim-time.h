#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Simulated time: an integer count of picoseconds.  Integer time makes runs
 * exactly reproducible (no drift from summing doubles) and gives a range of
 * about 106 days, far beyond any MoE step.  Conversions from floating point
 * round to the nearest picosecond and report overflow instead of wrapping.
 */
typedef gint64 MsimTime;

#define MSIM_TIME_NEVER    G_MAXINT64
#define MSIM_PS_PER_SECOND G_GINT64_CONSTANT (1000000000000)
#define MSIM_TIME_FORMAT   G_GINT64_FORMAT

/* Seconds to picoseconds, rounded to nearest.  FALSE (and *out untouched)
 * for NaN, infinities, negative values or values beyond the range. */
gboolean msim_time_from_seconds (double seconds, MsimTime *out);

double msim_time_to_seconds (MsimTime t);

/* a + b; FALSE on overflow (either sign). */
gboolean msim_time_add (MsimTime a, MsimTime b, MsimTime *out);

/* a + b saturating at MSIM_TIME_NEVER; both must be >= 0. */
MsimTime msim_time_add_sat (MsimTime a, MsimTime b);

/* Time to move @bytes at @rate_Bps, rounded to the nearest picosecond.
 * FALSE for non-finite or negative input, zero rate with non-zero bytes, or
 * a result beyond the range. Zero bytes take zero time at any rate. */
gboolean msim_time_for_bytes (double bytes, double rate_Bps, MsimTime *out);

/* Bytes moved in @t at @rate_Bps (exact up to double rounding). */
double msim_time_bytes_at_rate (MsimTime t, double rate_Bps);

G_END_DECLS
