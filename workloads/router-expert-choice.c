/* Expert-choice routing (Zhou et al. 2022): the gate scores G = softmax(X
 * W^T) over experts, and each expert takes the ceil(n c / E) tokens of the
 * batch with the highest score for it.  Every expert is exactly full, so
 * there is nothing to drop and load balance is perfect by construction; in
 * exchange a token gets anywhere from 0 to E experts, and the choice looks
 * at the whole batch, so it is not causal (a token's routing depends on
 * later tokens).  The trace has k = E slots: the experts that took the
 * token in decreasing score, then -1 (MSIM_TRACE_DROPS). */
#include "router-private.h"

static const char *const ec_keys[] = { "expert_capacity", "weights", NULL };

static void
ec_scores (MsimRouter *router, const MsimRouterBatch *batch, guint layer, const gsl_matrix *x,
           gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs)
{
  msim_router_gate_scores (router, layer, x, logits, probs);
}

const MsimRouterType msim_router_type_expert_choice = {
  .name = "expert-choice",
  .summary = "each expert takes its top ceil(n c / E) tokens of the batch (0..E per token)",
  .keys = ec_keys,
  .select = MSIM_ROUTER_SELECT_EXPERT_CHOICE,
  .uses_gate = TRUE,
  .scores = ec_scores,
};
