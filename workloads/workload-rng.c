/* Seeded random streams for generators and routers (workload-private.h). */
#include "workload-private.h"

static guint64
splitmix64 (guint64 x)
{
  x += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15);
  x = (x ^ (x >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  x = (x ^ (x >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return x ^ (x >> 31);
}

unsigned long
msim_workload_seed (guint64 seed, guint64 stream, guint64 a, guint64 b)
{
  guint64 h = splitmix64 (seed);
  h = splitmix64 (h ^ stream);
  h = splitmix64 (h ^ a);
  h = splitmix64 (h ^ b);
  guint32 s = (guint32)(h ^ (h >> 32));
  return s ? s : 1;
}

gsl_rng *
msim_workload_rng_new (guint64 seed, guint64 stream, guint64 a, guint64 b)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  /* gsl_rng_alloc only fails when malloc does; GLib aborts then too. */
  g_assert (rng != NULL);
  gsl_rng_set (rng, msim_workload_seed (seed, stream, a, b));
  return rng;
}

void
msim_workload_rng_reseed (gsl_rng *rng, guint64 seed, guint64 stream, guint64 a, guint64 b)
{
  gsl_rng_set (rng, msim_workload_seed (seed, stream, a, b));
}
