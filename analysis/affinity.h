#pragma once

#include <glib.h>
#include <igraph.h>

#include "trace.h"

G_BEGIN_DECLS

/*
 * Inter-layer expert affinity (ExFlow): how a token's expert at layer l
 * predicts its expert at layer l + d.
 *
 * For each layer pair (l, l + d), l = 0 .. L-d-1 ("pair l"), two E x E count
 * matrices:
 *   top-1  C[i][j] = tokens whose top-1 expert is i at l and j at l + d;
 *          P(j | i) = C[i][j] / sum_j C[i][j]; rows sum to 1.
 *   all-k  C[i][j] = tokens with i among their k experts at l and j among
 *          their k experts at l + d (each token adds its k x k pairs);
 *          P(j | i) = C[i][j] / n_i with n_i the tokens that use i at l,
 *          i.e. the probability that j is among the token's choices at
 *          l + d; rows sum to k.
 * Summary numbers per pair, in bits, from the joint distribution
 * p(i, j) = C[i][j] / sum C (for all-k: over the k^2 pairs of each token):
 *   H(J | I)  conditional entropy of the later expert given the earlier one;
 *   H(J)      entropy of the later expert;
 *   I(I; J) = H(J) - H(J | I), the mutual information, and I / H(J).
 * These are plug-in estimates: with few tokens per cell they overstate the
 * mutual information slightly.
 */

typedef enum
{
  MSIM_AFFINITY_TOP1,
  MSIM_AFFINITY_ALLK,
} MsimAffinityMode;

typedef struct _MsimAffinity MsimAffinity;

/* Counts every pair (l, l + @distance) of @trace; distance 1..L-1.
 * O(T (L - d) k^2).  (transfer full) */
MsimAffinity *msim_affinity_new (const MsimTrace *trace, guint distance, GError **error);
void msim_affinity_free (MsimAffinity *a);

guint msim_affinity_layers (const MsimAffinity *a);
guint msim_affinity_experts (const MsimAffinity *a);
guint msim_affinity_k (const MsimAffinity *a);
guint msim_affinity_distance (const MsimAffinity *a);
guint64 msim_affinity_tokens (const MsimAffinity *a);
/* Number of layer pairs, L - d. */
guint msim_affinity_n_pairs (const MsimAffinity *a);

/* The E x E counts of pair @pair, row-major [i * E + j] (transfer none). */
const guint64 *msim_affinity_counts (const MsimAffinity *a, MsimAffinityMode mode, guint pair);

/* Tokens with expert @i at layer @pair (top-1: as top-1; all-k: among the k). */
guint64 msim_affinity_row_tokens (const MsimAffinity *a, MsimAffinityMode mode, guint pair,
                                  guint i);

/* P(j at l + d | i at l) as defined above; NaN when no token has i at l. */
double msim_affinity_probability (const MsimAffinity *a, MsimAffinityMode mode, guint pair, guint i,
                                  guint j);

typedef struct
{
  double conditional_entropy; /* H(J | I), bits */
  double entropy;             /* H(J), bits */
  double mutual_information;  /* bits */
  double normalized_mi;       /* I / H(J), 0 when H(J) = 0 */
  guint64 samples;            /* sum of the counts */
} MsimAffinityStats;

void msim_affinity_pair_stats (const MsimAffinity *a, MsimAffinityMode mode, guint pair,
                               MsimAffinityStats *out);
/* Mean of the per-pair values (samples: the sum). */
void msim_affinity_mean_stats (const MsimAffinity *a, MsimAffinityMode mode,
                               MsimAffinityStats *out);

/*
 * The affinity graph: one vertex per (layer, expert), id layer * E + expert,
 * with attributes "name" ("L3E5"), "layer", "expert" and "load" (tokens at
 * that expert: top-1 or all-k per @mode); one directed edge (l, i) -> (l+d, j)
 * per non-zero count, with attributes "weight" (the count) and
 * "probability" (P(j | i)).  @graph must be uninitialised; on success the
 * caller destroys it.  igraph errors become MSIM_ERROR_RUNTIME.
 */
gboolean msim_affinity_graph (const MsimAffinity *a, MsimAffinityMode mode, igraph_t *graph,
                              GError **error);

/* The graph as GraphML at @path, written atomically. */
gboolean msim_affinity_save_graphml (const MsimAffinity *a, MsimAffinityMode mode, const char *path,
                                     GError **error);

/*
 * Affinity gain on @gpus GPUs (one node): the cross-GPU fraction of top-1
 * layer boundaries under contiguous placement and under the best placement
 * affinity-local-search finds on the same trace (exact for Mixtral-sized
 * layers), their difference and the relative reduction.
 */
typedef struct
{
  guint gpus;
  double contiguous;
  double best;
  double gain;          /* contiguous - best */
  double relative_gain; /* gain / contiguous, 0 when contiguous is 0 */
  gboolean exact;       /* best is the proven optimum */
} MsimAffinityGain;

gboolean msim_affinity_gain (const MsimTrace *trace, guint gpus, guint64 seed,
                             MsimAffinityGain *out, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimAffinity, msim_affinity_free)

G_END_DECLS
