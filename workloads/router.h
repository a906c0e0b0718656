#pragma once

/*
 * Routers: token hidden states in, routing decisions out.
 *
 * A router reads synthetic hidden states (hidden-states.h) batch by batch
 * and layer by layer, scores the experts, selects them, and writes an
 * MsimTrace with gate weights and sequence ids, the same form traces are
 * imported in, so everything downstream is router-agnostic.  Alongside it
 * reports routing metrics (MsimRouterReport): capacity drops, the
 * load-balancing and z losses, routing entropy, routing fluctuation under a
 * small perturbation of the states, and for the pre-gated router the
 * accuracy of its next-layer prediction.
 *
 * Built-in routers (msim_router_lookup):
 *   topk            softmax (or the model's gating) over W_l x, top-k,
 *                   Mixtral renormalisation or Switch raw weights
 *   switch          topk with raw (unnormalised) weights, Switch style
 *   expert-choice   each expert takes its top ceil(n c / E) tokens of the
 *                   batch; a token gets 0..E experts
 *   similarity      P = S G, S_ij = softmax_j(x_i . x_j / tau) over the
 *                   token's sequence (Graph of Tokens, similarity-aware)
 *   attention       P = A G, A = softmax(Q K^T / sqrt(d_h)) of a synthetic
 *                   attention layer averaged over heads (attention-aware)
 *   recurrent       RMoE: x_l = W1_l h_l, r_l = GRU(x_l, r_{l-1}), r_0 = 0,
 *                   one GRU shared by all layers, logits = W2_l r_l
 *   pregated        topk, plus layer l's pre-gate (layer l+1's gate applied
 *                   to layer l's input) predicting layer l+1's experts
 *
 * Shared machinery, in the order it applies to one layer of one batch:
 *   1. x = h, times (1 + U(-jitter, jitter)) per coordinate if jitter > 0
 *      (Switch router jitter; same noise in the perturbed pass);
 *   2. the router's scores: logits (n x E) and the routing distribution
 *      (n x E): softmax of logits for the softmax gatings, the sigmoid for
 *      sigmoid-renorm gating; similarity/attention mix it over tokens;
 *   3. selection: top-k per token (ties: lower expert id), within the best
 *      topk_groups of expert_groups groups when the model limits groups
 *      (group score: best expert for softmax gating, sum of the best two for
 *      sigmoid gating, as DeepSeek-V2 / V3); or expert choice;
 *   4. weights: renormalised over the chosen k (mixtral, deepseek) or raw
 *      (switch), times routed_scaling_factor;
 *   5. capacity (capacity_factor > 0): C = ceil(n k / E * CF) per batch of
 *      n tokens; the first choices of all tokens are placed before any
 *      second choice, in token order; an assignment to a full expert is
 *      dropped.  Dropped assignments are counted in the report; the trace
 *      keeps the router's choices unless mark_dropped, which writes -1
 *      (MSIM_EXPERT_NONE, with MSIM_TRACE_DROPS) in their cells.  Keeping
 *      them is the default because `moesim run` applies the engine's own
 *      capacity per micro-batch with the same first-choices-first rule, and
 *      dropping twice would be wrong.
 *
 * Expert-choice traces have k = E slots per token: the experts that took
 * the token in decreasing gate score, then -1 (MSIM_TRACE_DROPS).  The step
 * engine replays traces with k = top_k, so these are for study (`moesim
 * trace gen`, `route-stats`), and msim_workload_generate_from_ini refuses
 * them for `moesim run`.
 *
 * Batches are batch_tokens consecutive tokens (whole sequences; the last
 * batch may be shorter).  Capacity, expert choice and the pre-gate prefetch
 * sets are per batch; similarity and attention look within a sequence.
 *
 * Randomness: one seed; router weights, hidden states, jitter and the
 * perturbation each have their own streams (workload-private.h), so the same
 * seed gives the same trace bit for bit, and measuring fluctuation does not
 * change the trace.
 */

#include <glib.h>
#include <gsl/gsl_matrix.h>
#include <json-glib/json-glib.h>

#include "hidden-states.h"
#include "model-spec.h"
#include "trace.h"

G_BEGIN_DECLS

typedef enum
{
  MSIM_PREGATE_PREDICT, /* the real gate routes; the pre-gate only predicts (prefetch) */
  MSIM_PREGATE_EXECUTE, /* the pre-gate's choice is executed, as Pre-gated MoE trains it */
} MsimPregateMode;

typedef struct
{
  /* Model shape (msim_router_params_init_from_model). */
  guint layers, experts, k;
  MsimGating gating;
  double routed_scaling_factor;
  guint expert_groups, topk_groups; /* 1, 1 = no group limit */
  /* Batching. */
  guint batch_tokens; /* default 4096, a multiple of hidden.sequence_len */
  /* Gate. */
  double gate_scale;      /* multiplies the logits (inverse temperature), default 1 */
  double jitter;          /* Switch multiplicative jitter epsilon, default 0 */
  double capacity_factor; /* 0 = unlimited (default) */
  gboolean mark_dropped;  /* write -1 for dropped assignments (default FALSE) */
  double aux_loss_coef;   /* alpha of the load-balancing loss, default 0.01 */
  double z_loss_coef;     /* default 0.001 */
  char *weights;          /* gate weights .npy ([E, d] or [L*E, d]; "{layer}" in
                           * the name: one [E, d] file per layer), NULL = random */
  /* expert-choice */
  double expert_capacity; /* c: an expert takes ceil(n c / E) tokens, default 2 */
  /* similarity / attention */
  double tau;               /* similarity temperature; 0 = sqrt (d) (default), the
                             * scaled dot product of attention */
  gboolean causal;          /* mix over this and earlier tokens of the sequence only
                             * (default TRUE: what a decoder can do) */
  guint attention_heads;    /* default 4 */
  guint attention_head_dim; /* 0 = d / heads (default) */
  /* Correlation of the synthetic key projection with the query projection:
   * W_K = c W_Q + sqrt(1 - c^2) N.  1 makes QK^T a similarity kernel
   * (positive semi-definite), 0 a random bilinear form that ignores
   * similarity; trained attention lies between (default 0.8). */
  double attention_qk_corr;
  /* recurrent */
  guint recurrent_dim; /* p, default 256 */
  /* pre-gated */
  MsimPregateMode pregate;
  /* Measurement: relative size of the perturbation of the hidden states for
   * routing fluctuation (h' = h + eps rms(h) xi, xi ~ N(0, I)); 0 = off. */
  double fluctuation_eps;
  /* The synthetic states. */
  MsimHiddenParams hidden;
} MsimRouterParams;

/* Defaults above for @layers x @experts x top-@k with mixtral gating. */
void msim_router_params_init (MsimRouterParams *params, guint layers, guint experts, guint k);
/* Shape and gating from a model: MoE layers, experts, top_k, gating,
 * routed_scaling_factor, expert groups. */
void msim_router_params_init_from_model (MsimRouterParams *params, const MsimModelSpec *model);
void msim_router_params_clear (MsimRouterParams *params);
void msim_router_params_copy (MsimRouterParams *dst, const MsimRouterParams *src);
/* Errors read "router: KEY: what is wrong" (MSIM_ERROR_INPUT). */
gboolean msim_router_params_validate (const MsimRouterParams *params, GError **error);

/* ------------------------------------------------------------------ */
/* The interface                                                        */
/* ------------------------------------------------------------------ */

typedef struct _MsimRouter MsimRouter;

typedef enum
{
  MSIM_ROUTER_SELECT_TOPK,          /* each token picks k experts */
  MSIM_ROUTER_SELECT_EXPERT_CHOICE, /* each expert picks tokens */
} MsimRouterSelect;

/* One batch as a router sees it: n tokens starting at trace token @first,
 * cut into sequences at batch-relative offsets seq_start[0..n_sequences]. */
typedef struct
{
  gsize first;
  guint n;
  guint n_sequences;
  const guint *seq_start;
} MsimRouterBatch;

/*
 * A router type: a const table of functions plus per-router state
 * (MsimRouter.state), like gsl_rng_type.  Built-ins register in the table
 * behind msim_router_lookup.
 */
typedef struct
{
  const char *name;
  const char *summary;
  /* Configuration keys this router takes besides the common ones
   * (workloads/README.md), NULL-terminated. */
  const char *const *keys;
  MsimRouterSelect select;
  /* Reads the per-layer gate W_l (E x d, random or loaded); the common code
   * owns it (msim_router_gate). */
  gboolean uses_gate;
  /* Also scores layer l+1 from layer l's input (the pre-gate). */
  gboolean predicts_next;
  /* Optional: builds ->state (weights, workspaces sized for batch_tokens). */
  gboolean (*init) (MsimRouter *router, GError **error);
  /* Optional: frees ->state. */
  void (*clear) (MsimRouter *router);
  /* Optional: width of a per-token state carried from layer to layer
   * within a batch (RMoE's r), zeroed at the start of every batch; 0 = none. */
  guint (*carry_dim) (const MsimRouter *router);
  /* Scores layer @layer for the batch: @x (n x d) router inputs, @carry
   * (n x carry_dim, or NULL) updated in place, writes @logits and @probs
   * (n x E; probs is the distribution selection reads).  Must not draw
   * random numbers: the same inputs give the same scores (the perturbed
   * pass relies on it). */
  void (*scores) (MsimRouter *router, const MsimRouterBatch *batch, guint layer,
                  const gsl_matrix *x, gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs);
} MsimRouterType;

/* NULL when unknown. */
const MsimRouterType *msim_router_lookup (const char *name);
const MsimRouterType *const *msim_router_types (guint *n);

/*
 * A router of @type with @params (copied) and @seed: draws or loads its
 * weights.  Errors: invalid parameters, unreadable or mis-shaped weights
 * (file and shape in the message).  (transfer full)
 */
MsimRouter *msim_router_new (const MsimRouterType *type, const MsimRouterParams *params,
                             guint64 seed, GError **error);
void msim_router_free (MsimRouter *router);

const MsimRouterType *msim_router_get_type (const MsimRouter *router);
const MsimRouterParams *msim_router_get_params (const MsimRouter *router);
/* Hidden-state width d the router reads (from the weights when loaded). */
guint msim_router_dim (const MsimRouter *router);
/* Gate W_l (E x d) of routers with uses_gate, else NULL (transfer none). */
const gsl_matrix *msim_router_gate (const MsimRouter *router, guint layer);
/* The router's private state (for router implementations). */
gpointer msim_router_get_state (const MsimRouter *router);
void msim_router_set_state (MsimRouter *router, gpointer state);

/* ------------------------------------------------------------------ */
/* Running                                                              */
/* ------------------------------------------------------------------ */

typedef struct
{
  guint64 tokens;      /* tokens routed */
  guint64 assignments; /* (token, expert) pairs kept */
  guint64 dropped;     /* assignments dropped by capacity */
  /* Load balance: E * sum_e f_e P_e with f_e = share of the selected
   * assignments (before capacity) and P_e = mean routing probability (1 =
   * balanced); aux_loss = aux_loss_coef * balance.  z = mean over tokens of
   * logsumexp(logits)^2; z_loss = z_loss_coef * z. */
  double balance, aux_loss, z, z_loss;
  /* Mean over tokens of the entropy (bits) of the routing distribution
   * (normalised to sum 1); entropy (bits) of the kept assignments over
   * experts; entropy of the top-1 choices over experts. */
  double routing_entropy_bits, load_entropy_bits, top1_entropy_bits;
  /* Share of tokens whose top-1 expert (argmax of the routing
   * distribution) changes when the hidden states are perturbed; NaN when
   * not measured. */
  double fluctuation;
  /* Pre-gated (NaN otherwise; layer 0 has no prediction): share of tokens
   * whose predicted top-1 is the real gate's top-1; mean |predicted set ∩
   * real set| / k; and per batch, the unique experts the real gate needed
   * that the prediction named (recall) and the predicted ones that were
   * needed (precision). */
  double pregate_top1, pregate_recall, prefetch_recall, prefetch_precision;
  /* Expert choice (NaN otherwise): mean experts per token, share of tokens
   * no expert took. */
  double experts_per_token, unrouted_share;
} MsimRouterStats;

typedef struct
{
  char *router;
  guint64 seed;
  guint layers;
  guint64 capacity;           /* per-expert capacity of a full batch; 0 = unlimited */
  MsimRouterStats total;      /* over all layers (sums and token-weighted means) */
  MsimRouterStats *per_layer; /* [layers] */
} MsimRouterReport;

void msim_router_report_free (MsimRouterReport *report);
/* Adds the report as a JSON object to @builder (at a value position). */
void msim_router_report_to_json (const MsimRouterReport *report, JsonBuilder *builder);
/* A human-readable table (transfer full). */
char *msim_router_report_to_text (const MsimRouterReport *report);

/*
 * Routes @tokens tokens.  Returns the trace (k = top_k, or E for expert
 * choice; gate weights and sequence ids; MSIM_TRACE_DROPS when it holds -1
 * cells).  @report (optional) gets the metrics.  @predicted (optional, only
 * for routers that predict) gets the pre-gate's predictions in trace form:
 * row (t, l) holds the experts predicted for layer l while layer l-1 ran;
 * layer 0, which has no previous layer, repeats the real routing.
 * Cost: O(T L (d E + router work)).  (transfer full)
 */
MsimTrace *msim_router_run (MsimRouter *router, gsize tokens, MsimRouterReport **report,
                            MsimTrace **predicted, GError **error);

/*
 * Prefetch set for the engine: marks in @needed (E entries, overwritten)
 * the experts that tokens [@first, @first + n) are predicted to use at
 * @layer, and returns how many there are.  Works on any trace; with the
 * @predicted trace of a pre-gated run it is the set Pre-gated MoE fetches
 * while layer - 1 computes.  O(n k).
 */
guint msim_router_prefetch_set (const MsimTrace *predicted, guint layer, gsize first, gsize n,
                                guint8 *needed);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimRouter, msim_router_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimRouterReport, msim_router_report_free)

G_END_DECLS
