#pragma once

/*
 * Synthetic routing-trace generators.
 *
 * A generator writes an MsimTrace (with sequence ids and positions) whose
 * statistics are set by a few parameters, each of which can be estimated
 * back from the trace (msim_gen_fit_*): a generated trace is a controlled
 * experiment, and a real trace can be summarised in the same terms.
 *
 * The model, one draw per (token, layer, rank), in this order:
 *
 *   tokens are cut into sequences of sequence_len tokens (the last may be
 *   shorter); each sequence draws a domain d from domain_weights;
 *
 *   segment locality: a token that is not the first of its sequence copies
 *   the previous token's whole row (all k experts, same order) at this layer
 *   with probability `reuse`; otherwise
 *
 *   for each rank r: at layers l > 0, with probability `affinity` the rank
 *   follows the affinity path: expert succ_{d,l-1}(e) where e is this
 *   token's rank-r expert at layer l-1 (succ is a permutation, so distinct
 *   experts stay distinct; a successor already chosen by a lower rank is
 *   drawn afresh instead); otherwise the rank draws from the popularity
 *   distribution of (d, l) among the experts not chosen yet (top-k choices
 *   are always distinct).
 *
 *   popularity: expert at popularity rank i (1-based) has probability
 *   i^-zipf_s / H(E, zipf_s); zipf_s = 0 is uniform.  Which expert holds
 *   rank i is a random permutation per (domain, layer) (zipf_shuffle, default
 *   true; false puts expert 0 first everywhere).  Affinity paths preserve
 *   popularity rank: succ maps the layer-l expert of rank i to the layer-l+1
 *   expert of rank i, so every layer's rank-0 marginal stays exactly Zipf
 *   while affinity is dialled.  With zipf_s = 0 the orders are random, so
 *   the path is a random permutation per layer pair.
 *
 * Rank 0 is the exact product of the model above; ranks >= 1 follow the path
 * with probability slightly below `affinity` when a collision forces a fresh
 * draw.  The estimators therefore use rank 0.
 *
 * Randomness: two gsl_rng_mt19937 streams derived from the caller's seed
 * (structure: permutations; tokens: the draws, in token-major order), so a
 * longer trace with the same seed and parameters extends a shorter one.
 */

#include <glib.h>

#include "trace.h"

G_BEGIN_DECLS

/* Largest number of domains of a mixture. */
#define MSIM_GEN_MAX_DOMAINS 1024

typedef struct
{
  guint layers;           /* L, >= 1 */
  guint experts;          /* E, 1..MSIM_TRACE_MAX_EXPERTS */
  guint k;                /* experts per token, 1..E */
  guint sequence_len;     /* tokens per sequence, >= 1 (default 512) */
  double zipf_s;          /* popularity exponent, 0..64 (default 0) */
  gboolean zipf_shuffle;  /* random popularity order per (domain, layer) (default TRUE) */
  double affinity;        /* inter-layer Markov strength, 0..1 (default 0) */
  double reuse;           /* segment reuse probability, 0..1 (default 0) */
  guint domains;          /* mixture components, 1..MSIM_GEN_MAX_DOMAINS (default 1) */
  double *domain_weights; /* @domains weights (normalised on use), NULL = equal; owned */
} MsimGenParams;

/* Defaults above for a model of @layers x @experts x top-@k. */
void msim_gen_params_init (MsimGenParams *params, guint layers, guint experts, guint k);
void msim_gen_params_clear (MsimGenParams *params);
/* Deep copy into caller storage @dst (cleared first is not needed). */
void msim_gen_params_copy (MsimGenParams *dst, const MsimGenParams *src);
/* Range and consistency checks; errors read "generator: KEY: what is wrong". */
gboolean msim_gen_params_validate (const MsimGenParams *params, GError **error);

/*
 * Named generators: each is the model above with some parameters fixed and
 * others open.  @keys are the configuration keys (MsimGenParams field
 * names, see workloads/README.md) the name accepts besides sequence_len;
 * @apply_defaults sets the name's defaults (e.g. markov: affinity 0.8).
 *
 *   uniform  popularity uniform, nothing else
 *   zipf     zipf_s (default 1.0), zipf_shuffle
 *   markov   affinity (default 0.8), zipf_s (default 0), zipf_shuffle
 *   segment  reuse (default 0.5), zipf_s (default 0), zipf_shuffle
 *   mixture  domains (default 4), domain_weights, zipf_s (default 1.0),
 *            zipf_shuffle, affinity, reuse: the general model, one
 *            popularity order and affinity path per domain
 */
typedef struct
{
  const char *name;
  const char *summary;
  const char *const *keys;
  void (*apply_defaults) (MsimGenParams *params);
} MsimGeneratorType;

/* NULL when unknown. */
const MsimGeneratorType *msim_generator_lookup (const char *name);
/* All built-in generators; *@n gets their number. */
const MsimGeneratorType *const *msim_generator_types (guint *n);

/*
 * Generates @tokens tokens.  The trace has MSIM_TRACE_SEQUENCES (no gate
 * weights: a generator models choices, not scores).  Errors: invalid
 * parameters, or a trace beyond the trace memory limit.
 * Cost: O(D L E) set-up, O(T L k) expected draws.  (transfer full)
 */
MsimTrace *msim_gen_generate (const MsimGenParams *params, gsize tokens, guint64 seed,
                              GError **error);

/* ------------------------------------------------------------------ */
/* Estimators: recover the parameters from a trace                      */
/* ------------------------------------------------------------------ */

/*
 * All use rank 0 and skip -1 cells.  Stated accuracy (tested in
 * tests/workloads/check_generators.c) holds for traces of the size noted.
 */
typedef struct
{
  /* Zipf exponent: maximum-likelihood fit of a finite Zipf law over E
   * ranks to each layer's rank-0 counts sorted in decreasing order, pooled
   * over layers.  Within 0.05 of zipf_s for 0.5 <= zipf_s <= 2 and T L >=
   * 50,000 draws over E = 16; a uniform trace reads slightly above 0 (below
   * 0.1: sorting counts that differ by noise makes them look skewed).  A
   * mixture of domains with different popularity orders reads lower. */
  double zipf_s;
  /* follow_rate: share of (token, boundary) pairs whose rank-0 expert at
   * l+1 is the most frequent (modal) successor of its rank-0 expert at l;
   * q: the chance that an independent draw from layer l+1 hits that modal
   * successor (sum over a of share(a) x share(modal successor of a));
   * affinity = (follow_rate - q) / (1 - q), pooled over boundaries.  Reads
   * 0 without affinity under any popularity law; within 0.03 of the
   * generator's affinity for T >= 20,000 and E <= 64 when affinity clearly
   * beats popularity (affinity > (1 - affinity) (p_max - p_min), so that the
   * path, not the most popular expert, is the modal successor). */
  double follow_rate;
  double affinity;
  /* reuse_rate: share of consecutive token pairs of a sequence with the
   * same expert set at a layer; q: collision probability of the sets of two
   * independent tokens (sum of squared set frequencies); reuse =
   * (reuse_rate - q) / (1 - q), pooled over layers.  Within 0.03 for T >= 20,000, single domain,
   * affinity 0 (affinity and domains make rows of neighbours agree more
   * than the pooled q predicts, and the estimate then reads high). */
  double reuse_rate;
  double reuse;
} MsimGenFit;

/* Fills @fit; a quantity that cannot be estimated (one layer: affinity; no
 * consecutive pairs: reuse) is NAN.  O(T L k + L E^2). */
void msim_gen_fit (const MsimTrace *trace, MsimGenFit *fit);

/*
 * Mixture weights by EM on a mixture of per-layer categorical distributions
 * over each sequence's rank-0 expert counts (sequences are the units a
 * domain is drawn for), started from @restarts seeded k-means++ picks
 * (the best likelihood wins).  @weights gets @domains values sorted in
 * decreasing order (labels are not identifiable); @assignment, if not NULL,
 * gets each sequence's most likely component (in the sorted order), indexed
 * by sequence id, with @n_sequences entries (max sequence id + 1).
 * Within 0.05 of the generator's weights for >= 1000 sequences of >= 32
 * tokens over >= 4 layers, E >= 16, zipf_s >= 1 (the sampling noise of
 * the drawn domains themselves is about 0.016 for a weight of 0.5 there).  Errors: trace without
 * sequences, fewer sequences than domains.  (*@assignment transfer full)
 */
gboolean msim_gen_fit_domains (const MsimTrace *trace, guint domains, guint restarts, guint64 seed,
                               double *weights, guint **assignment, gsize *n_sequences,
                               GError **error);

G_END_DECLS
