#pragma once

/*
 * The placement policy interface: what a policy receives, what it returns,
 * and the descriptor a plugin exports.  Built-in policies and plugins use
 * exactly this header, so a plugin is an ordinary policy that happens to live
 * in a shared object.
 *
 * The header is self-contained (GLib only): a plugin needs neither moesim's
 * other headers nor its libraries.  Everything crosses the boundary as plain
 * arrays, and everything a plugin appends goes through GLib (GArray,
 * GError), which the plugin and moesim share as one shared library.
 *
 * ABI rule: any change to a struct below, to the meaning of a field, or to
 * the vtable bumps MSIM_PLACEMENT_ABI_VERSION.  moesim refuses a plugin whose
 * descriptor carries another version before it reads anything else from it,
 * because with a different layout every other field would be garbage.
 */

#include <glib.h>
#include <string.h>

G_BEGIN_DECLS

#define MSIM_PLACEMENT_ABI_VERSION 1u

/* Name of the descriptor symbol a plugin exports. */
#define MSIM_PLACEMENT_PLUGIN_SYMBOL "msim_placement_plugin"

/* Value of an unassigned entry of MsimPlacementOutput.gpu. */
#define MSIM_PLACEMENT_UNSET G_MAXUINT32

struct _MsimTrace; /* workloads/trace.h; opaque to plugins */

/*
 * One placement problem: put the experts of every MoE layer on GPUs so that
 * few tokens change GPU between consecutive layers.
 *
 * Costs: a token whose top-1 expert at layer l is on GPU g and at layer l+1
 * on GPU h costs 0 if g == h, gpu_cost if g and h are in the same node, and
 * node_cost otherwise (ExFlow's scoring is 0/1/2); 1 <= gpu_cost <= node_cost.  The objective is
 * the sum over tokens and layer boundaries, i.e. sum_l sum_ij pair_counts[l][i][j] * cost(gpu(l,
 * i), gpu(l+1, j)).
 *
 * Capacity: every GPU holds at most slots_per_gpu = ceil(E / G) experts of
 * each layer (exactly E / G when G divides E, as ExFlow requires).
 *
 * All arrays are owned by moesim and valid for the duration of the call.
 */
typedef struct
{
  guint32 layers;             /* L */
  guint32 experts;            /* E, per layer */
  guint32 gpus;               /* G */
  guint32 nodes;              /* N; GPUs are grouped into nodes by gpu_node */
  guint32 slots_per_gpu;      /* ceil(E / G) */
  guint32 gpu_cost;           /* cost of a boundary crossing GPUs inside a node (default 1) */
  guint32 node_cost;          /* cost of a boundary crossing nodes (default 2, 1 with one node) */
  guint32 top_k;              /* experts per token in the trace (0 when built from counts) */
  const guint32 *gpu_node;    /* [gpus]: node of each GPU, 0..nodes-1 */
  guint64 tokens;             /* tokens behind the counts */
  const guint64 *pair_counts; /* [(L-1) * E * E]: [l][i][j] = tokens with top-1 i at l, j at l+1 */
  const guint64 *load;        /* [L * E]: assignments of every rank (a token counts k times) */
  const guint64 *top1_load;   /* [L * E]: tokens whose top-1 expert it is */
  guint64 seed;               /* for every random choice the policy makes */
  const struct _MsimTrace *trace; /* the trace itself, or NULL (built-ins only; plugins
                                   * must not dereference it) */
} MsimPlacementProblem;

/* An extra copy of expert (layer, expert) on GPU gpu; the copies of an
 * expert share its tokens evenly. */
typedef struct
{
  guint32 layer;
  guint32 expert;
  guint32 gpu;
} MsimPlacementReplica;

/* A named number the policy reports (objective, MIP gap, iterations...). */
typedef struct
{
  char name[48];
  double value;
} MsimPlacementStat;

/*
 * What a policy returns.  moesim allocates everything; the policy fills it.
 *   gpu[l * E + e]  the GPU of the primary copy of expert e of layer l; every
 *                   entry starts as MSIM_PLACEMENT_UNSET and must be set.
 *   replicas        extra copies (MsimPlacementReplica); leave empty if the
 *                   policy does not replicate.
 *   slots_per_gpu   capacity per GPU per layer counting replicas; starts at
 *                   problem->slots_per_gpu, raise it when adding replicas.
 *   stats           MsimPlacementStat entries, printed by `moesim place`.
 * moesim checks the result (every expert placed, GPU ids in range, no GPU
 * over capacity in any layer) and rejects it with an error otherwise.
 */
typedef struct
{
  guint32 *gpu;
  GArray *replicas;
  GArray *stats;
  guint32 slots_per_gpu;
} MsimPlacementOutput;

/* Appends a statistic; inline so that plugins need not link moesim. */
static inline void
msim_placement_output_add_stat (MsimPlacementOutput *out, const char *name, double value)
{
  MsimPlacementStat s;
  memset (&s, 0, sizeof s);
  g_strlcpy (s.name, name, sizeof s.name);
  s.value = value;
  g_array_append_val (out->stats, s);
}

/* Appends a replica; inline for the same reason. */
static inline void
msim_placement_output_add_replica (MsimPlacementOutput *out, guint32 layer, guint32 expert,
                                   guint32 gpu)
{
  MsimPlacementReplica r = { layer, expert, gpu };
  g_array_append_val (out->replicas, r);
}

/*
 * A placement policy: a const table of functions plus the state init()
 * creates (the gsl_rng_type pattern).
 *
 *   init       parses @options, a NULL-terminated list of "key=value"
 *              strings (never NULL; possibly empty), and sets *state (NULL is
 *              a valid state).  Unknown keys should be errors.  Returns FALSE
 *              with @error set on bad options.
 *   free_state releases what init created (may be NULL if there is nothing).
 *   place      solves @problem into @out.  Must be deterministic given
 *              problem->seed.  Returns FALSE with @error set on failure.
 */
typedef struct
{
  const char *name;
  const char *summary;
  const char *options_help; /* one "key=value  meaning" line per option, or "" */
  gboolean (*init) (void **state, const char *const *options, GError **error);
  void (*free_state) (void *state);
  gboolean (*place) (void *state, const MsimPlacementProblem *problem, MsimPlacementOutput *out,
                     GError **error);
} MsimPlacementPolicy;

/*
 * The one symbol a plugin exports, named MSIM_PLACEMENT_PLUGIN_SYMBOL:
 *
 *   G_MODULE_EXPORT const MsimPlacementPluginDescriptor msim_placement_plugin = {
 *     MSIM_PLACEMENT_ABI_VERSION, sizeof (MsimPlacementPluginDescriptor), &my_policy,
 *   };
 *
 * abi_version comes first and never moves, so that any future moesim can
 * read it and refuse a mismatch safely.
 */
typedef struct
{
  guint32 abi_version;
  guint32 descriptor_size;
  const MsimPlacementPolicy *policy;
} MsimPlacementPluginDescriptor;

G_END_DECLS
