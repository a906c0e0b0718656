#pragma once

#include <glib.h>

#include "placement-plugin.h"
#include "topology.h"
#include "trace.h"

G_BEGIN_DECLS

/*
 * Expert placement: which GPU holds each expert of each MoE layer.
 *
 * MsimPlacement maps every (layer, expert) to the GPU of its primary copy,
 * plus optional extra copies (replicas) on other GPUs, as EPLB makes.  The
 * copies of an expert share its tokens evenly.
 *
 * MsimClusterShape says which node each GPU is in; cross-node figures and the
 * node-aware policies need it.  It comes from a topology (node = host) or
 * from "G GPUs in N equal nodes".
 *
 * Policies (see placement-plugin.h for the interface) are looked up by name
 * in a table (msim_placement_policy_find) or loaded from a plugin
 * ("plugin:PATH", msim_placement_policy_resolve), and run with
 * msim_placement_run(), which validates what they return.
 */

/* ---- cluster shape ---------------------------------------------------- */

typedef struct
{
  guint gpus;
  guint nodes;
  guint32 *gpu_node; /* [gpus] */
  gboolean uniform;  /* every node has gpus / nodes GPUs, numbered node by node */
} MsimClusterShape;

/* @gpus GPUs in @nodes nodes of equal size, numbered node by node (GPU g is
 * in node g / (gpus / nodes)).  MSIM_ERROR_INPUT unless 1 <= nodes <= gpus,
 * nodes divides gpus and gpus <= 65536.  (transfer full) */
MsimClusterShape *msim_cluster_shape_new (guint gpus, guint nodes, GError **error);

/* The GPUs of @topo with their hosts as nodes.  (transfer full) */
MsimClusterShape *msim_cluster_shape_new_from_topology (const MsimTopology *topo, GError **error);

MsimClusterShape *msim_cluster_shape_copy (const MsimClusterShape *shape);
void msim_cluster_shape_free (MsimClusterShape *shape);

/* ---- placements --------------------------------------------------------- */

typedef struct _MsimPlacement MsimPlacement;

/* A placement of @layers x @experts experts on @gpus GPUs with every expert
 * unset (MSIM_PLACEMENT_UNSET).  (transfer full) */
MsimPlacement *msim_placement_new (guint layers, guint experts, guint gpus);
MsimPlacement *msim_placement_copy (const MsimPlacement *p);
void msim_placement_free (MsimPlacement *p);

guint msim_placement_layers (const MsimPlacement *p);
guint msim_placement_experts (const MsimPlacement *p);
guint msim_placement_gpus (const MsimPlacement *p);

/* Primary copy. */
void msim_placement_set_gpu (MsimPlacement *p, guint layer, guint expert, guint gpu);
guint msim_placement_get_gpu (const MsimPlacement *p, guint layer, guint expert);

/* The primary GPUs as one array [layer * E + expert] (transfer none). */
const guint32 *msim_placement_gpu_array (const MsimPlacement *p);

/* Extra copies.  Replica 0 is the primary; add_replica appends copy 1, 2, ... */
void msim_placement_add_replica (MsimPlacement *p, guint layer, guint expert, guint gpu);
guint msim_placement_n_replicas (const MsimPlacement *p, guint layer, guint expert); /* >= 1 */
guint msim_placement_replica_gpu (const MsimPlacement *p, guint layer, guint expert, guint replica);
/* Total extra copies over all layers (0 without replicas). */
guint msim_placement_n_extra (const MsimPlacement *p);

/* Copies (primary and replicas) that GPU @gpu holds in @layer. */
guint msim_placement_slots_used (const MsimPlacement *p, guint layer, guint gpu);

/* Checks every expert is placed on a GPU < gpus and that no GPU holds more
 * than @slots_per_gpu copies in any layer (0: ceil(E / G) plus, with
 * replicas, the layer's extra copies divided over the GPUs, rounded up).
 * MSIM_ERROR_INPUT naming the layer, expert or GPU. */
gboolean msim_placement_validate (const MsimPlacement *p, guint slots_per_gpu, GError **error);

/* The DeepSpeed/ExFlow baseline: expert e on GPU floor(e * G / E) in every
 * layer (floor(e / (E / G)) when G divides E).  (transfer full) */
MsimPlacement *msim_placement_new_contiguous (guint layers, guint experts, guint gpus);

/* ---- files ----------------------------------------------------------------
 *
 * moesim CSV: a header "layer,expert,gpu" or "layer,expert,gpu,replica",
 * then one row per copy (replica 0 is the primary, 1.. are extra copies).
 * ExFlow CSV: a header naming the columns "Expert" and "Node" (other columns,
 * such as a pandas index, are ignored), one row per expert; the global id is
 * layer * E + expert and "Node" is the GPU index.  Blank lines and lines
 * starting with '#' are skipped.
 */

typedef enum
{
  MSIM_PLACEMENT_CSV_AUTO, /* from the header */
  MSIM_PLACEMENT_CSV_MOESIM,
  MSIM_PLACEMENT_CSV_EXFLOW,
} MsimPlacementCsvFormat;

/*
 * Reads a placement.  Dimensions given as 0 are taken from the file (largest
 * id + 1); given ones are checked against it.  ExFlow files need @experts.
 * Errors (MSIM_ERROR_INPUT, MSIM_ERROR_IO) name the file and line.
 * (transfer full)
 */
MsimPlacement *msim_placement_load (const char *path, guint layers, guint experts, guint gpus,
                                    GError **error);
MsimPlacement *msim_placement_load_data (const char *data, gsize length, const char *name,
                                         guint layers, guint experts, guint gpus, GError **error);

/* The CSV text of @p in @format (AUTO = moesim).  ExFlow CSV cannot hold
 * replicas: NULL with MSIM_ERROR_INPUT.  (transfer full) */
char *msim_placement_to_csv (const MsimPlacement *p, MsimPlacementCsvFormat format, GError **error);

/* Writes the CSV atomically (temporary file renamed over @path). */
gboolean msim_placement_save (const MsimPlacement *p, const char *path,
                              MsimPlacementCsvFormat format, GError **error);

/* ---- evaluation ------------------------------------------------------- */

/*
 * How a placement does on a trace.  Cross fractions are over (token, layer
 * boundary) pairs and follow each token's top-1 expert (DESIGN.md section 4).
 * With replicas two routing models are reported:
 *   split   a token goes to each copy of its expert with equal probability,
 *           wherever it is (what EPLB deployments do; loads are balanced as
 *           planned);
 *   local   a token prefers a copy on its current GPU, then one in its node,
 *           then any copy (copies in a tier share it evenly).
 * Without replicas both are the same.  Loads count every rank (a token is k
 * assignments per layer); copies share their expert's load evenly.
 */
typedef struct
{
  guint64 tokens;
  guint64 boundaries; /* tokens * (layers - 1) */
  double cross_gpu;   /* split routing */
  double cross_node;
  double cross_gpu_local; /* locality-first routing */
  double cross_node_local;
  double mean_cost;            /* mean 0 / gpu_cost / node_cost per boundary (1, 2 here) */
  double load_imbalance;       /* mean over layers of max / mean GPU load (split routing) */
  double load_imbalance_max;   /* worst layer */
  double load_imbalance_local; /* the same under locality-first routing of the top-1
                                * choice (other ranks split) */
  double load_imbalance_local_max;
  guint worst_layer;
} MsimPlacementEval;

/* Evaluates @p on @trace.  @shape may be NULL (one node).  The trace must have
 * the placement's layers and at most its experts; the shape its GPUs.
 * O(T L k + L E^2 r^2) for r copies per expert. */
gboolean msim_placement_evaluate (const MsimPlacement *p, const MsimTrace *trace,
                                  const MsimClusterShape *shape, MsimPlacementEval *out,
                                  GError **error);

/* Per-GPU load of @layer (all ranks, copies splitting evenly) into @loads
 * [gpus]. */
void msim_placement_layer_loads (const MsimPlacement *p, const MsimTrace *trace, guint layer,
                                 double *loads);

/* ---- problems ----------------------------------------------------------- */

/* The problem of placing @trace on @shape: counts, loads, costs 1 / 2 (1 / 1
 * with one node), ceil(E / G) slots per GPU.  The trace must stay alive while
 * the problem is used.  MSIM_ERROR_INPUT for an empty trace.  (transfer full) */
MsimPlacementProblem *msim_placement_problem_new (const MsimTrace *trace,
                                                  const MsimClusterShape *shape, guint64 seed,
                                                  GError **error);

/* The same from top-1 pair counts alone ([L-1][E][E], copied); loads are
 * derived from them (top_k = 1, trace = NULL).  For tests and for callers
 * that aggregate counts themselves.  (transfer full) */
MsimPlacementProblem *msim_placement_problem_new_from_counts (guint layers, guint experts,
                                                              const guint64 *pair_counts,
                                                              const MsimClusterShape *shape,
                                                              guint64 seed, GError **error);

void msim_placement_problem_free (MsimPlacementProblem *problem);

/* The objective: sum over boundaries and top-1 pairs of count x cost, for the
 * primary GPUs @gpu [L * E].  O(L E^2). */
guint64 msim_placement_problem_cost (const MsimPlacementProblem *problem, const guint32 *gpu);

/* Pairs crossing GPUs and nodes under @gpu, and the total (token boundaries). */
void msim_placement_problem_crossings (const MsimPlacementProblem *problem, const guint32 *gpu,
                                       guint64 *cross_gpu, guint64 *cross_node, guint64 *total);

/* ---- policies ----------------------------------------------------------- */

#define MSIM_PLACEMENT_DEFAULT_POLICY "affinity-local-search"

/* Built-in policy by name, or NULL. */
const MsimPlacementPolicy *msim_placement_policy_find (const char *name);

/* The built-in policies in table order; *n_policies set. */
const MsimPlacementPolicy *const *msim_placement_policy_list (guint *n_policies);

/* A loaded plugin: keeps the shared object open while its policy is used. */
typedef struct _MsimPlacementPlugin MsimPlacementPlugin;

/*
 * Opens @path with g_module_open_full and checks its descriptor: the symbol
 * MSIM_PLACEMENT_PLUGIN_SYMBOL must exist, its ABI version must equal
 * MSIM_PLACEMENT_ABI_VERSION (checked before any other field is read), its
 * size must cover the descriptor and its policy must have a name, init and
 * place.  Errors are MSIM_ERROR_INPUT and name the file.  (transfer full)
 */
MsimPlacementPlugin *msim_placement_plugin_open (const char *path, GError **error);
const MsimPlacementPolicy *msim_placement_plugin_policy (const MsimPlacementPlugin *plugin);
const char *msim_placement_plugin_path (const MsimPlacementPlugin *plugin);
void msim_placement_plugin_free (MsimPlacementPlugin *plugin);

/* "NAME" (built-in) or "plugin:PATH".  For a plugin, *plugin receives the
 * opened module, which must outlive the use of the returned policy; it is
 * set to NULL for built-ins.  An unknown name lists the known ones. */
const MsimPlacementPolicy *
msim_placement_policy_resolve (const char *spec, MsimPlacementPlugin **plugin, GError **error);

/*
 * Runs @policy on @problem with @options (NULL-terminated "key=value", or
 * NULL), checks the result and returns it as a placement.  *stats (if not
 * NULL) receives the policy's MsimPlacementStat entries plus "seconds", the
 * wall time of place().  Errors of the policy are prefixed with its name.
 * (transfer full)
 */
MsimPlacement *msim_placement_run (const MsimPlacementPolicy *policy, const char *const *options,
                                   const MsimPlacementProblem *problem, GArray **stats,
                                   GError **error);

/* Value of statistic @name in @stats, or NAN. */
double msim_placement_stats_get (const GArray *stats, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimClusterShape, msim_cluster_shape_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimPlacement, msim_placement_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimPlacementProblem, msim_placement_problem_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimPlacementPlugin, msim_placement_plugin_free)

G_END_DECLS
