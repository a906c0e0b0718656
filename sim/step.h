#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "collective.h"
#include "gpu-spec.h"
#include "model-spec.h"
#include "network.h"
#include "topology.h"
#include "trace.h"

G_BEGIN_DECLS

/*
 * The MoE step engine: inference steps of a model on a cluster, layer by
 * layer, as tasks on GPU streams and flows on the network.
 *
 * Per block and micro-batch, on every GPU: attention over the tokens
 * located there, the gate, then for MoE blocks the dispatch AllToAllv (the
 * real per-GPU-pair token counts of this batch and layer), the grouped
 * expert FFN of the tokens that reached each GPU, and:
 *  - baseline-ep: the combine AllToAllv back to each token's home GPU;
 *  - context-coherent (ExFlow): no combine; each token moves to the GPU of
 *    its top-1 expert, where its next attention runs on the replicated
 *    context; the partial outputs of its other experts are sent to that GPU.
 * Dense blocks run attention and the dense FFN locally.  Compute and
 * communication are separate streams, so overlap (micro-batch i+1's
 * dispatch during micro-batch i's experts) happens where dependencies
 * allow.
 */

typedef enum
{
  MSIM_SCHEME_BASELINE_EP,
  MSIM_SCHEME_CONTEXT_COHERENT,
} MsimScheme;

typedef enum
{
  MSIM_PHASE_PREFILL,
  MSIM_PHASE_DECODE,
} MsimPhase;

typedef struct
{
  MsimScheme scheme;
  MsimPhase phase;
  MsimNetworkModel network;
  MsimCommParams comm;
  guint microbatches;     /* >= 1 */
  double capacity_factor; /* 0: unlimited; else C = ceil(T k / E x CF) per micro-batch */
  guint64 tokens;         /* prefill: prompt tokens per step; decode: sequences in the batch */
  guint steps;            /* decode steps (prefill: steps of distinct trace tokens) */
  guint64 prompt_len;     /* tokens per sequence (prefill) or context at decode start */
  guint64 token_offset;   /* first trace token used */
  gboolean check;         /* network invariant checks at every re-solve */
  gboolean record_timeline;
  /* Routing on a second thread: AUTO when worthwhile (several cores, large
   * batches); the results are the same either way. */
  enum
  {
    MSIM_ROUTE_THREAD_AUTO,
    MSIM_ROUTE_THREAD_OFF,
    MSIM_ROUTE_THREAD_ON,
  } route_thread;
} MsimStepOptions;

void msim_step_options_init (MsimStepOptions *options);

/*
 * Where the experts live: expert e of the l-th MoE block has copies on GPUs
 * gpus[offsets[l * E + e] .. offsets[l * E + e + 1]) (at least one).  A
 * token uses the copy on its own GPU if there is one, else one on its own
 * host, else one chosen by token index, so copies split their expert's
 * tokens evenly and deterministically.
 */
typedef struct
{
  guint layers;   /* MoE blocks */
  guint experts;  /* E */
  guint *offsets; /* layers * E + 1 entries */
  guint *gpus;
} MsimExpertMap;

/* A map with one copy per expert: @gpu_of[l * E + e] (copied). */
MsimExpertMap *msim_expert_map_new_single (guint layers, guint experts, const guint *gpu_of);
/* A map from per-(layer, expert) lists; @lists[l * E + e] is a GArray of
 * guint (copied). */
MsimExpertMap *msim_expert_map_new (guint layers, guint experts, GArray *const *lists);
void msim_expert_map_free (MsimExpertMap *map);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimExpertMap, msim_expert_map_free)

typedef struct _MsimStepRun MsimStepRun;

/* Runs the simulation.  @map's layers must equal the model's MoE blocks and
 * the trace's layers.  Errors (MSIM_ERROR_INPUT / LIMIT) for inconsistent
 * inputs: trace and model disagree, not enough trace tokens, a GPU index
 * out of range, memory beyond a GPU's capacity. (transfer full) */
MsimStepRun *msim_step_run (MsimTopology *topo, const MsimModelSpec *model, const MsimGpuSpec *gpu,
                            const MsimTrace *trace, const MsimExpertMap *map,
                            const MsimStepOptions *options, GError **error);
void msim_step_run_free (MsimStepRun *run);

/* Summary figures. */
double msim_step_run_time_s (const MsimStepRun *run);       /* all steps */
double msim_step_run_tokens_per_s (const MsimStepRun *run); /* tokens processed / time */
double
msim_step_run_a2a_time_s (const MsimStepRun *run); /* sum over blocks of dispatch + combine */
double msim_step_run_dispatch_bytes (const MsimStepRun *run);
double msim_step_run_combine_bytes (const MsimStepRun *run);
double msim_step_run_cross_gpu_fraction (const MsimStepRun *run);
double msim_step_run_cross_node_fraction (const MsimStepRun *run);
guint64 msim_step_run_dropped (const MsimStepRun *run);
/* The most loaded link's bytes divided by its capacity: the time it must
 * spend transferring, a lower bound on the communication time (the
 * "maximum congestion" of the packet-spraying paper). */
double msim_step_run_max_link_load_s (const MsimStepRun *run);
guint64 msim_step_run_assignments (const MsimStepRun *run); /* processed (token, expert) pairs */

/* The full report (summary, per step, per block, per GPU, per link). */
JsonNode *msim_step_run_to_json (const MsimStepRun *run);
/* Per-block rows as CSV text (transfer full). */
char *msim_step_run_to_csv (const MsimStepRun *run);
/* Chrome/Perfetto trace events (transfer full). */
char *msim_step_run_timeline (const MsimStepRun *run);
/* A short human-readable table (transfer full). */
char *msim_step_run_summary (const MsimStepRun *run);

const char *msim_scheme_name (MsimScheme scheme);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimStepRun, msim_step_run_free)

G_END_DECLS
