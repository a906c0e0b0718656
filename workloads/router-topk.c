/* Top-k softmax gating: Mixtral (top-k of softmax, renormalised over the
 * chosen k) and Switch (raw probabilities, classically top-1).  The gate of
 * each layer is W_l (E x d); logits = gate_scale * W_l x.  Selection,
 * weights, capacity and metrics are the shared pipeline of router.c. */
#include "router-private.h"

static const char *const topk_keys[] = { "capacity_factor", "mark_dropped", "weights", NULL };

static void
gate_scores (MsimRouter *router, const MsimRouterBatch *batch, guint layer, const gsl_matrix *x,
             gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs)
{
  msim_router_gate_scores (router, layer, x, logits, probs);
}

/* Switch Transformer: the expert's output is scaled by its raw softmax
 * probability, whatever the model's own gating says. */
static gboolean
switch_init (MsimRouter *router, GError **error)
{
  router->params.gating = MSIM_GATING_SOFTMAX_RAW;
  return TRUE;
}

const MsimRouterType msim_router_type_topk = {
  .name = "topk",
  .summary = "top-k of the gate softmax; weights per the model's gating (Mixtral renormalises)",
  .keys = topk_keys,
  .select = MSIM_ROUTER_SELECT_TOPK,
  .uses_gate = TRUE,
  .scores = gate_scores,
};

const MsimRouterType msim_router_type_switch = {
  .name = "switch",
  .summary = "top-k of the gate softmax with raw (unnormalised) weights, Switch style",
  .keys = topk_keys,
  .select = MSIM_ROUTER_SELECT_TOPK,
  .uses_gate = TRUE,
  .init = switch_init,
  .scores = gate_scores,
};
