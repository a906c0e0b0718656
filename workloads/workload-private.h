#pragma once

/* Helpers shared by the synthetic generators, the hidden-state generator and
 * the routers (workloads/gen-*.c, hidden-states.c, router*.c). */

#include <glib.h>
#include <gsl/gsl_rng.h>

G_BEGIN_DECLS

/*
 * Random streams.  Every consumer of randomness draws from its own
 * gsl_rng_mt19937 seeded with msim_workload_seed (seed, stream, a, b), so
 * that what one part draws never shifts what another part sees: the hidden
 * states of sequence 7 at layer 3 are the same whether the run also measures
 * fluctuation, which router reads them, or how tokens are batched.
 */
typedef enum
{
  MSIM_STREAM_GEN_STRUCTURE = 1, /* generator: popularity orders, affinity paths */
  MSIM_STREAM_GEN_TOKENS,        /* generator: the token-by-token draws */
  MSIM_STREAM_HIDDEN_TOPICS,     /* hidden states: topic centres */
  MSIM_STREAM_HIDDEN_SEQUENCE,   /* hidden states: topic and token deviations (a = sequence) */
  MSIM_STREAM_HIDDEN_DRIFT,      /* hidden states: drift (a = sequence, b = layer) */
  MSIM_STREAM_PERTURB,           /* fluctuation perturbation (a = sequence, b = layer) */
  MSIM_STREAM_JITTER,            /* router jitter (a = sequence, b = layer) */
  MSIM_STREAM_ROUTER_WEIGHTS,    /* router weights (a = matrix kind, b = layer) */
  MSIM_STREAM_FIT,               /* estimators that need randomness (EM starts) */
} MsimStream;

/* splitmix64 of the inputs, folded to a 32-bit mt19937 seed (mt19937 uses
 * only the low 32 bits, and treats 0 as 4357, so 0 is avoided). */
unsigned long msim_workload_seed (guint64 seed, guint64 stream, guint64 a, guint64 b);

/* A gsl_rng_mt19937 seeded as above (transfer full, gsl_rng_free). */
gsl_rng *msim_workload_rng_new (guint64 seed, guint64 stream, guint64 a, guint64 b);

/* Reseeds @rng in place: cheaper than a new allocation per sequence. */
void msim_workload_rng_reseed (gsl_rng *rng, guint64 seed, guint64 stream, guint64 a, guint64 b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (gsl_rng, gsl_rng_free)

G_END_DECLS
