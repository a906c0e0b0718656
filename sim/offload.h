#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "ini.h"
#include "run-config.h"
#include "trace.h"

G_BEGIN_DECLS

/*
 * Expert offloading: decoding with the routed experts in host memory and a
 * cache of them on every GPU (Pre-gated MoE, ExpertFlow, "Not All Models
 * Suit Expert Offloading").
 *
 * Each decode step produces one token for each of `batch` sequences, block
 * by block, as tasks on three streams per GPU (compute, communication and a
 * copy stream for weight fetches) and flows on the network:
 *   attention -> gate -> [dispatch AllToAllv] -> one kernel per demanded
 *   expert -> [combine AllToAllv] -> combine sum
 * (the all-to-alls only with several GPUs; tokens live on their home GPU,
 * baseline expert parallelism).  Experts are partitioned over the GPUs by
 * the placement and each GPU caches only its own.  An expert whose weights
 * are not resident is fetched from its GPU's host-memory vertex over the
 * topology's route (normally the GPU's PCIe link): a flow of
 * msim_model_spec_expert_bytes() on the shared max-min network, so fetches
 * contend with each other and with any all-to-all crossing the same links.
 * A GPU's fetches run one at a time, in issue order, on its copy stream (a
 * DMA engine fed by one CUDA stream), and an expert's kernel waits for its
 * fetch.  A fetch into a slot waits for the last kernel that used the slot.
 *
 * The cache is either C experts per MoE layer per GPU (per-layer pools) or
 * one pool of floor(cache_bytes / expert bytes) experts per GPU shared by
 * all layers.  Policies decide what to evict (const vtables registered by
 * name, msim_offload_policy_names()):
 *   on-demand   fetch on a miss; nothing is kept from one token to the next
 *               (the baseline of Pre-gated MoE)
 *   lru         least recently used is evicted
 *   lfu         least frequently used (token uses since the start, kept
 *               across evictions), ties by LRU
 *   sch-oracle  keeps the experts with the most uses in the next m steps,
 *               ties by most recent use (the SCH cache of DESIGN.md section
 *               4); prefetches that set one layer ahead, so with batch 1 its
 *               hit rate (SCH convention) equals SCH(m, C) of the trace
 *   pregated    Pre-gated MoE: nothing kept across tokens; while layer l
 *               computes, layer l+1's predicted experts are fetched;
 *               mispredictions are fetched on demand
 * Ties everywhere end with the lower expert id kept.  Cache decisions depend
 * only on the routing, never on timing, so they are made while the task
 * graph is built; timing decides only how long kernels wait.
 *
 * Prefetch (`prefetch`): `pregate` issues, after layer l's gate, fetches of
 * the experts the pre-gate predicts for layer l+1 (layer 0 is never
 * predicted).  Predictions come from a predicted trace written by the
 * pre-gated router (workloads/router.h, `moesim trace gen -r pregated
 * --predicted FILE`) when `predicted_trace` is set; otherwise from the
 * replayed trace's real next-layer experts, each of a token's k predicted
 * experts replaced, with probability 1 - prediction_accuracy, by a uniformly
 * drawn expert outside the token's real set (seeded by [engine] seed).  The
 * prefetch set is the union over the batch (msim_router_prefetch_set); a
 * prefetch never evicts another expert predicted for the same layer, so
 * predictions beyond the free slots are left to demand fetches.
 * `oracle` (sch-oracle only) makes the oracle's target set of the next
 * position resident.  `auto` is the policy's own choice.
 *
 * Metrics cover the measured steps (after warmup_steps): accesses are the
 * distinct experts a GPU needs at one (step, layer); an access is a hit when
 * the expert is resident, a prefetch hit when it was prefetched and not yet
 * used (its kernel may still wait for the transfer), else a miss.  Under the
 * SCH convention a miss on an expert this GPU never saw, while it has seen
 * fewer distinct experts than the pool has slots, also counts as a hit.
 * Stall is the time an expert kernel waited for its weights after its
 * stream and its inputs were ready.
 *
 * Conservation checks (`check`): every expert kernel ran on weights that
 * had arrived and were not overwritten before it ended; bytes delivered by
 * fetch flows = fetches x expert bytes; demand fetches = misses; accesses =
 * hits + prefetch hits + misses; every token's assignments were served.
 */

typedef enum
{
  MSIM_OFFLOAD_PREFETCH_AUTO,    /* what the policy does by default */
  MSIM_OFFLOAD_PREFETCH_NONE,    /* demand fetches only */
  MSIM_OFFLOAD_PREFETCH_PREGATE, /* layer l+1's predicted experts during layer l */
  MSIM_OFFLOAD_PREFETCH_ORACLE,  /* sch-oracle: its target set, one layer ahead */
} MsimOffloadPrefetch;

typedef enum
{
  MSIM_OFFLOAD_BATCH_STREAMS,     /* sequence b decodes trace tokens offset + b S + s */
  MSIM_OFFLOAD_BATCH_CONSECUTIVE, /* step s decodes trace tokens offset + s B + b */
} MsimOffloadBatchFrom;

typedef struct
{
  const char *policy;            /* a registered name (static string), default "lru" */
  guint cache_experts_per_layer; /* per GPU and MoE layer; 0 = see cache_bytes */
  double cache_bytes; /* per GPU, all layers; 0 = per-layer cache; both 0: 2 x top_k per layer */
  MsimOffloadPrefetch prefetch;    /* default AUTO */
  double prediction_accuracy;      /* [0, 1], default 1 (Pre-gated MoE executes its pre-gate) */
  char *predicted_trace;           /* owned; NULL: degrade the replayed trace */
  guint sch_window;                /* m, default 16 */
  guint batch;                     /* sequences decoded together, default 1 */
  guint steps;                     /* measured decode steps, default 32 */
  guint warmup_steps;              /* simulated first, left out of the metrics; default 0 */
  MsimOffloadBatchFrom batch_from; /* default STREAMS */
  gboolean memory_check;           /* fail when a GPU's memory would not fit, default TRUE */
  gboolean check;                  /* conservation checks, default FALSE */
  gboolean record_timeline;        /* keep what msim_offload_run_timeline needs */
} MsimOffloadOptions;

void msim_offload_options_init (MsimOffloadOptions *options);
void msim_offload_options_clear (MsimOffloadOptions *options);

/* Reads the [offload] group of @ini (absent: defaults) into @out, which is
 * initialised first.  Unknown keys, bad values and giving both cache keys
 * are errors naming the file, line and key.  `predicted_trace` is resolved
 * like every config path (msim_run_config_resolve). */
gboolean msim_offload_options_from_ini (const MsimIni *ini, MsimOffloadOptions *out,
                                        GError **error);

/* Registered policy names, NULL-terminated (static), and a one-line
 * description of one (NULL when unknown). */
const char *const *msim_offload_policy_names (void);
const char *msim_offload_policy_summary (const char *name);

typedef struct _MsimOffloadRun MsimOffloadRun;

/*
 * Simulates @o on the topology, model, GPU, trace, placement and [engine]
 * settings of @cfg (its [workload] tokens/steps/phase are not used: decode
 * batch and steps come from @o).  Errors: MSIM_ERROR_INPUT for settings
 * the engine does not model (context-coherent scheme, micro-batches,
 * capacity factor, replicated experts) or that do not fit the trace;
 * MSIM_ERROR_LIMIT for GPU memory; MSIM_ERROR_RUNTIME for a failed
 * conservation check.  Messages name the [offload] key when @cfg has an ini.
 * @cfg is not referenced after the call.  Cost: O(steps x layers x (batch k
 * + E log E)) to build, plus the simulation.  (transfer full)
 */
MsimOffloadRun *msim_offload_run (MsimRunConfig *cfg, const MsimOffloadOptions *o, GError **error);
void msim_offload_run_free (MsimOffloadRun *run);

typedef enum
{
  MSIM_OFFLOAD_HIT,
  MSIM_OFFLOAD_PREFETCH_HIT,
  MSIM_OFFLOAD_MISS,
} MsimOffloadOutcome;

/* One access: a GPU needing an expert at one (step, layer). */
typedef struct
{
  guint step;  /* decode step, warm-up steps included */
  guint layer; /* MoE layer index */
  guint expert;
  guint gpu;
  guint tokens; /* tokens of the batch routed to it */
  MsimOffloadOutcome outcome;
  gboolean sch_hit; /* a hit under the SCH convention */
  gint64 fetch;     /* index of the fetch that brought its weights */
  double kernel_start_s, kernel_end_s;
  double stall_s; /* kernel start - when its stream and inputs were ready */
} MsimOffloadAccess;

/* One weight transfer from host memory. */
typedef struct
{
  guint step;  /* the step it serves (a prefetch for (s, l+1) is issued in s) */
  guint layer; /* MoE layer of the expert fetched */
  guint expert;
  guint gpu;
  guint slot; /* slot within its pool (per-layer pools: the layer's) */
  gboolean prefetch;
  gboolean used;                      /* a demand used it before it was evicted */
  gint evicted_layer, evicted_expert; /* the expert it replaced, -1 for a free slot */
  double bytes;                       /* delivered by the network */
  double start_s, end_s;
} MsimOffloadFetch;

/* Records in issue order (transfer none), including warm-up steps. */
const MsimOffloadAccess *msim_offload_run_accesses (const MsimOffloadRun *run, gsize *n);
const MsimOffloadFetch *msim_offload_run_fetches (const MsimOffloadRun *run, gsize *n);

/* Pass as @layer for the whole model. */
#define MSIM_OFFLOAD_ALL_LAYERS G_MAXUINT

/* Measured steps only. */
double msim_offload_run_time_s (const MsimOffloadRun *run);
double msim_offload_run_latency_per_token_s (const MsimOffloadRun *run); /* mean step latency */
double msim_offload_run_hit_rate (const MsimOffloadRun *run, guint layer);
double msim_offload_run_sch_hit_rate (const MsimOffloadRun *run, guint layer); /* SCH convention */
/* SCH(m, C) of the decoded tokens (each sequence of the batch on its own)
 * at the run's equivalent cache size, as in the JSON "sch". */
double msim_offload_run_sch (const MsimOffloadRun *run, guint layer);
guint64 msim_offload_run_misses (const MsimOffloadRun *run);
guint64 msim_offload_run_fetch_count (const MsimOffloadRun *run);
double msim_offload_run_bytes_fetched (const MsimOffloadRun *run);
double msim_offload_run_stall_s (const MsimOffloadRun *run); /* summed over GPUs */
double msim_offload_run_memory_used_bytes (const MsimOffloadRun *run, guint gpu);

/* The report (setup, summary, per layer, per step, per GPU) (transfer full). */
JsonNode *msim_offload_run_to_json (const MsimOffloadRun *run);
/* A human-readable table (transfer full). */
char *msim_offload_run_summary (const MsimOffloadRun *run);
/* Per-layer and per-step rows as CSV (transfer full). */
char *msim_offload_run_layers_csv (const MsimOffloadRun *run);
char *msim_offload_run_steps_csv (const MsimOffloadRun *run);
/* Chrome/Perfetto trace events: compute, communication and copy tracks per
 * GPU; NULL unless options.record_timeline (transfer full). */
char *msim_offload_run_timeline (const MsimOffloadRun *run);

/*
 * SCH(m, C) of one MoE layer (Not All Models Suit Expert Offloading; the
 * definition of analysis/lrc.h, which it reproduces for later merging):
 * over @n_sequences sequences of @length consecutive trace tokens starting
 * at @first[i], windows never crossing a sequence.  Writes @sch_out[C - 1]
 * for every C in 1..E.  Negative (dropped) ids are not demands.
 * O(n_sequences x length x k x E).
 */
void msim_offload_trace_sch (const MsimTrace *trace, guint layer, const gsize *first,
                             guint n_sequences, gsize length, guint m, double *sch_out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimOffloadRun, msim_offload_run_free)

G_END_DECLS
