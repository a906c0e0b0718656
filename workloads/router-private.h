#pragma once

/* Router internals shared by workloads/router*.c, and the routing maths as
 * small pure functions so the tests can check them on hand-computed cases. */

#include <gsl/gsl_blas.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

#include "router.h"
#include "workload-private.h"

G_BEGIN_DECLS

struct _MsimRouter
{
  const MsimRouterType *type;
  MsimRouterParams params;
  guint64 seed;
  guint dim;         /* d of the hidden states */
  gsl_matrix **gate; /* [layers] E x d when type->uses_gate, else NULL */
  gpointer state;
};

/* Matrix kinds for MSIM_STREAM_ROUTER_WEIGHTS (the 'a' of the stream). */
enum
{
  ROUTER_W_GATE = 1,
  ROUTER_W_RMOE_IN,  /* W1_l */
  ROUTER_W_RMOE_OUT, /* W2_l */
  ROUTER_W_GRU,
  ROUTER_W_ATTN_Q,
  ROUTER_W_ATTN_K,
};

/* Fills @m with N(0, std^2) from the stream (seed, ROUTER_WEIGHTS, kind,
 * layer). */
void msim_router_fill_gaussian (gsl_matrix *m, double std, guint64 seed, guint kind, guint layer);

/*
 * C = alpha op(A) op(B) + beta C through gsl_blas_dgemm.  Its only failure
 * is a shape mismatch, which no input can cause (the shapes follow from
 * validated parameters), so it is a programmer error: asserted here rather
 * than turned into a GError.  With GSL's handler off (the CLI) a mismatch
 * would otherwise leave C unchanged and silently corrupt the routing.
 */
void msim_dgemm (CBLAS_TRANSPOSE_t ta, CBLAS_TRANSPOSE_t tb, double alpha, const gsl_matrix *a,
                 const gsl_matrix *b, double beta, gsl_matrix *c);

/* ---- gating maths (router-gating.c) -------------------------------- */

/* In place over @n values: softmax (max-subtracted; returns logsumexp of
 * the input), or elementwise logistic sigmoid. */
double msim_softmax (double *v, guint n);
void msim_sigmoid (double *v, guint n);
/* logsumexp of @n values without changing them. */
double msim_logsumexp (const double *v, guint n);

/* Applies the gating activation to @n logits into @probs (softmax for the
 * softmax gatings, sigmoid for sigmoid-renorm) and returns logsumexp. */
double msim_gate_activate (MsimGating gating, const double *logits, double *probs, guint n);

/* Entropy in bits of @v normalised to sum 1 (0 log 0 = 0). */
double msim_entropy_bits (const double *v, guint n);

/*
 * Top-k of one token: the @k largest of @scores (E values), ties to the
 * lower expert id, in decreasing order, into @ids; restricted to the best
 * @topk_groups of @groups equal groups of consecutive experts when groups >
 * 1 (group score: max for softmax gatings, sum of the two largest for
 * sigmoid-renorm).  @weights (may be NULL) gets the gate weights: scores
 * renormalised over the chosen k (softmax-renorm, sigmoid-renorm) or raw
 * (softmax-raw), times @scale.  O(E k).
 */
void msim_route_topk (const double *scores, guint E, guint k, guint groups, guint topk_groups,
                      MsimGating gating, double scale, int *ids, double *weights);

/* Index of the largest of @n values, ties to the lowest index. */
guint msim_argmax (const double *v, guint n);

/* C = ceil(n k / E * cf) for cf > 0, else G_MAXUINT64. */
guint64 msim_route_capacity (guint64 n, guint k, guint E, double cf);

/*
 * Capacity dropping, first choices first: @ids is n x k (row-major, rank 0
 * first; negative cells are skipped); for rank 0 of every token in token
 * order, then rank 1, ..., an assignment to an expert that already has
 * @capacity assignments is dropped: @dropped[i k + r] = 1, else 0.
 * @load (E entries) is zeroed and receives the kept counts.  Returns the
 * number dropped.  O(n k + E).
 */
guint64 msim_route_drop (const int *ids, guint n, guint k, guint E, guint64 capacity,
                         guint8 *dropped, guint64 *load);

/*
 * Expert choice over @scores (n x E, row-major): expert e takes the
 * @capacity tokens with the largest scores[., e] (ties to the lower token
 * index; capacity is clamped to n).  @ids/@weights (n x E) get, per token,
 * the experts that took it in decreasing score (ties: lower id) and their
 * scores, then -1 / 0.  Returns the total number of assignments
 * (E * min(capacity, n)).  O(E n log n).
 */
guint64 msim_route_expert_choice (const double *scores, guint n, guint E, guint64 capacity,
                                  int *ids, double *weights);

/* ---- similarity / attention mixing (router-similarity.c) ----------- */

/*
 * For one sequence of @x (m x d rows) and gate distributions @g (m x E):
 * S = row-softmax(x x^T / tau), causally masked (token i sees j <= i) when
 * @causal, and @p = S g.  @s is an m x m workspace that holds S on return.
 */
void msim_similarity_mix (const gsl_matrix *x, const gsl_matrix *g, double tau, gboolean causal,
                          gsl_matrix *s, gsl_matrix *p);

/* Row-softmax of @a in place with the optional causal mask. */
void msim_row_softmax (gsl_matrix *a, gboolean causal);

/* ---- GRU (router-recurrent.c) -------------------------------------- */

/* PyTorch's GRU cell: gates ordered r, z, n in the 3p rows of w_ih (3p x
 * in) and w_hh (3p x p), biases b_ih, b_hh (3p). */
typedef struct
{
  guint in, hidden;
  gsl_matrix *w_ih, *w_hh;
  gsl_vector *b_ih, *b_hh;
} MsimGru;

MsimGru *msim_gru_new (guint in, guint hidden);
void msim_gru_free (MsimGru *gru);

/*
 * One step for a batch: @x (n x in), @h (n x hidden) replaced by h':
 *   r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
 *   z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
 *   c = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
 *   h' = (1 - z) * c + z * h
 * @gi, @gh are n x 3p workspaces.  Two GEMMs and O(n p) elementwise work.
 */
void msim_gru_step (const MsimGru *gru, const gsl_matrix *x, gsl_matrix *h, gsl_matrix *gi,
                    gsl_matrix *gh);

/* ---- built-in router types ----------------------------------------- */

extern const MsimRouterType msim_router_type_topk;
extern const MsimRouterType msim_router_type_switch;
extern const MsimRouterType msim_router_type_expert_choice;
extern const MsimRouterType msim_router_type_similarity;
extern const MsimRouterType msim_router_type_attention;
extern const MsimRouterType msim_router_type_recurrent;
extern const MsimRouterType msim_router_type_pregated;

/* The plain gate scores shared by topk, switch, expert-choice and
 * pregated: logits = gate_scale * x W_l^T, probs = activation(logits). */
void msim_router_gate_scores (MsimRouter *router, guint layer, const gsl_matrix *x,
                              gsl_matrix *logits, gsl_matrix *probs);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimGru, msim_gru_free)

G_END_DECLS
