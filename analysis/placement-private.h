#pragma once

/* Helpers shared by the placement policy files of analysis/.  Not installed,
 * not part of the plugin ABI. */

#include <gsl/gsl_rng.h>

#include "placement.h"

G_BEGIN_DECLS

/* ---- the built-in policies (one file each) ---- */

extern const MsimPlacementPolicy msim_placement_policy_contiguous;
extern const MsimPlacementPolicy msim_placement_policy_round_robin;
extern const MsimPlacementPolicy msim_placement_policy_local_search;
extern const MsimPlacementPolicy msim_placement_policy_exflow_ilp;
extern const MsimPlacementPolicy msim_placement_policy_graph_partition;
extern const MsimPlacementPolicy msim_placement_policy_eplb;

/* ---- policy options ("key=value" lists) ---- */

/* Parses @options into a table key -> value, rejecting keys not in the
 * NULL-terminated @allowed, duplicates and entries without '='.  Errors read
 * "policy NAME: option 'KEY': ...".  (transfer full) */
GHashTable *msim_policy_options_parse (const char *policy, const char *const *options,
                                       const char *const *allowed, GError **error);

/* Typed getters: *out = @def when the key is absent. */
gboolean msim_policy_option_uint (GHashTable *opts, const char *policy, const char *key, guint def,
                                  guint min, guint max, guint *out, GError **error);
gboolean msim_policy_option_double (GHashTable *opts, const char *policy, const char *key,
                                    double def, double min, double max, double *out,
                                    GError **error);
/* One of the NULL-terminated @choices; *out = its index. */
gboolean msim_policy_option_choice (GHashTable *opts, const char *policy, const char *key, int def,
                                    const char *const *choices, int *out, GError **error);

/* ---- linear assignment (placement-assign.c) ---- */

typedef struct _MsimAssign MsimAssign;

/* Workspace for problems up to @max_rows x @max_cols. */
MsimAssign *msim_assign_new (guint max_rows, guint max_cols);
void msim_assign_free (MsimAssign *a);

/* Assigns each of @rows rows to a distinct column of @cols >= rows,
 * minimising sum cost[r * cols + c]; row_col[r] receives the column.
 * Returns the minimum.  Integer costs, so the result is exact and
 * deterministic (ties go to the lowest column the search reaches first).
 * O(rows^2 cols), no allocation. */
gint64 msim_assign_solve (MsimAssign *a, guint rows, guint cols, const gint64 *cost,
                          guint *row_col);

/* ---- the placement search engine (placement-search.c) ---- */

typedef struct _MsimSearch MsimSearch;

MsimSearch *msim_search_new (const MsimPlacementProblem *problem);
void msim_search_free (MsimSearch *s);

/* cost(g, h) of the problem: 0, gpu_cost or node_cost. */
gint64 msim_search_gpu_distance (const MsimSearch *s, guint g, guint h);

/* Objective of @gpu [L * E] (== msim_placement_problem_cost). */
gint64 msim_search_cost (const MsimSearch *s, const guint32 *gpu);

/* Contiguous and round-robin layouts into @gpu [L * E]. */
void msim_search_contiguous (const MsimPlacementProblem *problem, guint32 *gpu);
void msim_search_round_robin (const MsimPlacementProblem *problem, guint32 *gpu);

/* A uniformly random layout respecting the capacity. */
void msim_search_random (MsimSearch *s, gsl_rng *rng, guint32 *gpu);

/*
 * Descent from @gpu to a local optimum of two exact moves:
 *  - best response of one layer given both neighbours: a linear assignment
 *    of its experts to the GPUs' slots (msim_assign_solve);
 *  - relabelling every layer after a boundary by the GPU permutation that
 *    minimises that boundary's cost (the other boundaries do not change);
 *    with nodes, the permutations that keep nodes together (node-level
 *    assignment over GPU-level assignments).
 * A move is taken only if it lowers the cost, so the result is never worse
 * than the start.  Stops at a local optimum, after @max_sweeps sweeps, or at
 * @deadline_us (g_get_monotonic_time; 0 = none).  Returns the cost.
 */
gint64 msim_search_descend (MsimSearch *s, guint32 *gpu, guint max_sweeps, gint64 deadline_us);

/*
 * Exact optimum by dynamic programming over the layer chain, when every GPU
 * holds exactly E / G experts and the number of ways to group one layer's
 * experts (into nodes, then GPUs) is at most @max_states.  Given each
 * layer's grouping, GPU labels can be chosen boundary by boundary (relabelling
 * the rest of the chain never changes earlier boundaries), so the optimum is
 * a shortest path over groupings.  Returns FALSE (and leaves @gpu alone)
 * when the state space is too large or the shape does not allow it;
 * *n_states receives the state count (G_MAXUINT64 when not applicable).
 * O(L S^2 (G E + G^3)).
 */
gboolean msim_search_exact (MsimSearch *s, guint32 *gpu, guint64 max_states, guint64 *n_states);

/* Iterated local search: @restarts perturbation rounds from the best layout
 * so far (random segments of layers re-drawn), each followed by a descent;
 * keeps the best.  @gpu holds the start on entry and the best on return.
 * Returns its cost. */
gint64 msim_search_iterate (MsimSearch *s, guint32 *gpu, gsl_rng *rng, guint restarts,
                            gint64 deadline_us, guint *improvements);

/*
 * The default heuristic: the exact DP when the state space is at most
 * @max_states, otherwise the best of descents from contiguous, a greedy
 * chain and random starts followed by iterated local search.  Never worse
 * than contiguous.  Deterministic for a given seed unless @deadline_us cuts
 * it short.  Adds its statistics to @out if not NULL.
 */
gint64 msim_search_best (const MsimPlacementProblem *problem, guint32 *gpu, guint restarts,
                         guint64 max_states, gint64 deadline_us, MsimPlacementOutput *out);

/* ---- misc ---- */

/* A gsl_rng (mt19937) seeded with @seed; never NULL. */
gsl_rng *msim_placement_rng_new (guint64 seed);

/* Builds a placement from a policy output (no validation). */
MsimPlacement *msim_placement_from_output (const MsimPlacementProblem *problem,
                                           const MsimPlacementOutput *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimAssign, msim_assign_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimSearch, msim_search_free)

G_END_DECLS
