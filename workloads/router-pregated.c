/* Pre-gated MoE (Hwang et al., ISCA 2024): block l computes the gate of
 * block l+1 from block l's input, so layer l+1's experts are known one
 * layer early and can be fetched while layer l computes.
 *
 * Our pre-gate of layer l+1 is layer l+1's own gate W_{l+1} applied to
 * layer l's state (the paper trains a separate pre-gate to do exactly
 * this; an untrained stand-in that reads the stale state is its natural
 * synthetic form).  Its accuracy then falls as the hidden states drift
 * between layers, and is exact with drift = 0.
 *
 * pregate = predict (default): the real gate routes (the trace), the
 * pre-gate only predicts (the predicted trace, the prefetch sets), and the
 * report gives the prediction's top-1 accuracy, set recall and per-batch
 * prefetch recall/precision.  pregate = execute: the pre-gate's choice is
 * what runs, as in the paper's system, so prefetch is exact and the report
 * measures agreement with the conventional gate instead.  The driver in
 * router.c does the bookkeeping for any type with predicts_next. */
#include "router-private.h"

static const char *const pregated_keys[]
    = { "pregate", "capacity_factor", "mark_dropped", "weights", NULL };

static void
pregated_scores (MsimRouter *router, const MsimRouterBatch *batch, guint layer, const gsl_matrix *x,
                 gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs)
{
  msim_router_gate_scores (router, layer, x, logits, probs);
}

const MsimRouterType msim_router_type_pregated = {
  .name = "pregated",
  .summary = "top-k, plus layer l's pre-gate predicting layer l+1's experts (prefetch)",
  .keys = pregated_keys,
  .select = MSIM_ROUTER_SELECT_TOPK,
  .uses_gate = TRUE,
  .predicts_next = TRUE,
  .scores = pregated_scores,
};
