/* Graph-of-tokens routing (Nguyen et al. 2025): similar tokens share
 * routing.  Both routers compute the plain gate distribution G (n x E) and
 * route on P = S G, a similarity-weighted mix over the tokens of the same
 * sequence; experts still process each token's own state.
 *
 *   similarity  S_ij = softmax_j (x_i . x_j / tau)
 *   attention   S = (1/H) sum_h softmax (Q_h K_h^T / sqrt (d_h)), Q_h = x W_Q,h,
 *               K_h = x W_K,h from a synthetic attention layer per MoE layer
 *
 * The mixing is per sequence (tokens of different requests do not attend
 * to each other) and causal by default: token i mixes tokens j <= i, which
 * is all a decoder has.  The paper's formula (our reconstruction, see
 * PAPERS.md) mixes over all tokens; causal = false does that within the
 * sequence.  Cost per sequence of m tokens: one m x m x d GEMM for S (H
 * GEMMs of m x m x d_h for attention) and one m x m x E GEMM for P. */
#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <string.h>

#include "msim-error.h"
#include "router-private.h"

typedef struct
{
  gsl_matrix *g;         /* batch_tokens x E: the plain gate distribution */
  gsl_matrix *s;         /* S x S: the mixing matrix of one sequence */
  gsl_matrix *t;         /* S x S: one head's scores (attention) */
  gsl_matrix *q, *kk;    /* batch_tokens x H d_h (attention) */
  gsl_matrix **wq, **wk; /* [layers] d x H d_h (attention) */
  guint heads, head_dim;
} SimState;

void
msim_row_softmax (gsl_matrix *a, gboolean causal)
{
  for (gsize i = 0; i < a->size1; i++)
    {
      double *row = gsl_matrix_ptr (a, i, 0);
      gsize m = causal ? i + 1 : a->size2;
      msim_softmax (row, (guint)m);
      for (gsize j = m; j < a->size2; j++)
        row[j] = 0.0;
    }
}

void
msim_similarity_mix (const gsl_matrix *x, const gsl_matrix *g, double tau, gboolean causal,
                     gsl_matrix *s, gsl_matrix *p)
{
  g_return_if_fail (s->size1 == x->size1 && s->size2 == x->size1);
  /* x x^T is symmetric: dsyrk computes its lower triangle at half the cost
   * of a GEMM, which is all the causal mask keeps; the full form mirrors
   * it. */
  int status = gsl_blas_dsyrk (CblasLower, CblasNoTrans, 1.0 / tau, x, 0.0, s);
  g_assert (status == GSL_SUCCESS);
  (void)status;
  if (!causal)
    for (gsize i = 0; i < s->size1; i++)
      for (gsize j = i + 1; j < s->size2; j++)
        gsl_matrix_set (s, i, j, gsl_matrix_get (s, j, i));
  msim_row_softmax (s, causal);
  msim_dgemm (CblasNoTrans, CblasNoTrans, 1.0, s, g, 0.0, p);
}

static void
sim_clear (MsimRouter *router)
{
  SimState *st = router->state;
  gsl_matrix *ms[] = { st->g, st->s, st->t, st->q, st->kk };
  for (guint i = 0; i < G_N_ELEMENTS (ms); i++)
    if (ms[i])
      gsl_matrix_free (ms[i]);
  for (guint l = 0; st->wq && l < router->params.layers; l++)
    {
      gsl_matrix_free (st->wq[l]);
      gsl_matrix_free (st->wk[l]);
    }
  g_free (st->wq);
  g_free (st->wk);
  g_free (st);
  router->state = NULL;
}

static gboolean
sim_init (MsimRouter *router, GError **error)
{
  const MsimRouterParams *p = &router->params;
  SimState *st = g_new0 (SimState, 1);
  router->state = st;
  guint S = p->hidden.sequence_len;
  st->g = gsl_matrix_alloc (p->batch_tokens, p->experts);
  st->s = gsl_matrix_alloc (S, S);
  return TRUE;
}

static gboolean
attn_init (MsimRouter *router, GError **error)
{
  const MsimRouterParams *p = &router->params;
  sim_init (router, error);
  SimState *st = router->state;
  guint d = router->dim, S = p->hidden.sequence_len;
  st->heads = p->attention_heads;
  st->head_dim = p->attention_head_dim ? p->attention_head_dim : MAX (1u, d / st->heads);
  guint hd = st->heads * st->head_dim;
  guint64 bytes = (guint64)p->layers * 2 * d * hd * sizeof (double);
  if (bytes > msim_trace_get_memory_limit ())
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "router: attention_heads: %u layers of %u x %u query and key projections need "
                   "more memory than the trace memory limit",
                   p->layers, d, hd);
      return FALSE;
    }
  st->t = gsl_matrix_alloc (S, S);
  st->q = gsl_matrix_alloc (p->batch_tokens, hd);
  st->kk = gsl_matrix_alloc (p->batch_tokens, hd);
  st->wq = g_new0 (gsl_matrix *, p->layers);
  st->wk = g_new0 (gsl_matrix *, p->layers);
  double c = p->attention_qk_corr, std = 1.0 / sqrt ((double)d);
  for (guint l = 0; l < p->layers; l++)
    {
      st->wq[l] = gsl_matrix_alloc (d, hd);
      st->wk[l] = gsl_matrix_alloc (d, hd);
      msim_router_fill_gaussian (st->wq[l], std, router->seed, ROUTER_W_ATTN_Q, l);
      msim_router_fill_gaussian (st->wk[l], std, router->seed, ROUTER_W_ATTN_K, l);
      /* W_K = c W_Q + sqrt(1 - c^2) N keeps N(0, 1/d) entries. */
      gsl_matrix_scale (st->wk[l], sqrt (1.0 - c * c));
      gsl_vector_view wk = gsl_vector_view_array (st->wk[l]->data, (gsize)d * hd);
      gsl_vector_view wq = gsl_vector_view_array (st->wq[l]->data, (gsize)d * hd);
      gsl_blas_daxpy (c, &wq.vector, &wk.vector);
    }
  return TRUE;
}

static double
sim_tau (const MsimRouter *router)
{
  double tau = router->params.tau;
  return tau > 0 ? tau : sqrt ((double)router->dim);
}

static void
sim_scores (MsimRouter *router, const MsimRouterBatch *b, guint layer, const gsl_matrix *x,
            gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs)
{
  SimState *st = router->state;
  gsl_matrix_view g = gsl_matrix_submatrix (st->g, 0, 0, b->n, st->g->size2);
  msim_router_gate_scores (router, layer, x, logits, &g.matrix);
  double tau = sim_tau (router);
  for (guint s = 0; s < b->n_sequences; s++)
    {
      guint a = b->seq_start[s], m = b->seq_start[s + 1] - a;
      gsl_matrix_const_view xs = gsl_matrix_const_submatrix (x, a, 0, m, x->size2);
      gsl_matrix_const_view gs = gsl_matrix_const_submatrix (&g.matrix, a, 0, m, g.matrix.size2);
      gsl_matrix_view ps = gsl_matrix_submatrix (probs, a, 0, m, probs->size2);
      gsl_matrix_view ss = gsl_matrix_submatrix (st->s, 0, 0, m, m);
      msim_similarity_mix (&xs.matrix, &gs.matrix, tau, router->params.causal, &ss.matrix,
                           &ps.matrix);
    }
}

static void
attn_scores (MsimRouter *router, const MsimRouterBatch *b, guint layer, const gsl_matrix *x,
             gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs)
{
  SimState *st = router->state;
  guint H = st->heads, dh = st->head_dim;
  gsl_matrix_view g = gsl_matrix_submatrix (st->g, 0, 0, b->n, st->g->size2);
  msim_router_gate_scores (router, layer, x, logits, &g.matrix);
  gsl_matrix_view q = gsl_matrix_submatrix (st->q, 0, 0, b->n, st->q->size2);
  gsl_matrix_view kk = gsl_matrix_submatrix (st->kk, 0, 0, b->n, st->kk->size2);
  msim_dgemm (CblasNoTrans, CblasNoTrans, 1.0, x, st->wq[layer], 0.0, &q.matrix);
  msim_dgemm (CblasNoTrans, CblasNoTrans, 1.0, x, st->wk[layer], 0.0, &kk.matrix);
  for (guint s = 0; s < b->n_sequences; s++)
    {
      guint a = b->seq_start[s], m = b->seq_start[s + 1] - a;
      gsl_matrix_view as = gsl_matrix_submatrix (st->s, 0, 0, m, m);
      gsl_matrix_view ts = gsl_matrix_submatrix (st->t, 0, 0, m, m);
      gsl_matrix_set_zero (&as.matrix);
      for (guint h = 0; h < H; h++)
        {
          gsl_matrix_view qh = gsl_matrix_submatrix (&q.matrix, a, (gsize)h * dh, m, dh);
          gsl_matrix_view kh = gsl_matrix_submatrix (&kk.matrix, a, (gsize)h * dh, m, dh);
          msim_dgemm (CblasNoTrans, CblasTrans, 1.0 / sqrt ((double)dh), &qh.matrix, &kh.matrix,
                      0.0, &ts.matrix);
          msim_row_softmax (&ts.matrix, router->params.causal);
          gsl_matrix_add (&as.matrix, &ts.matrix);
        }
      gsl_matrix_scale (&as.matrix, 1.0 / H);
      gsl_matrix_const_view gs = gsl_matrix_const_submatrix (&g.matrix, a, 0, m, g.matrix.size2);
      gsl_matrix_view ps = gsl_matrix_submatrix (probs, a, 0, m, probs->size2);
      msim_dgemm (CblasNoTrans, CblasNoTrans, 1.0, &as.matrix, &gs.matrix, 0.0, &ps.matrix);
    }
}

static const char *const sim_keys[]
    = { "tau", "causal", "capacity_factor", "mark_dropped", "weights", NULL };
static const char *const attn_keys[]
    = { "attention_heads", "attention_head_dim", "attention_qk_corr", "causal",
        "capacity_factor", "mark_dropped",       "weights",           NULL };

const MsimRouterType msim_router_type_similarity = {
  .name = "similarity",
  .summary = "route on P = S G, S_ij = softmax_j(x_i . x_j / tau) within the sequence",
  .keys = sim_keys,
  .select = MSIM_ROUTER_SELECT_TOPK,
  .uses_gate = TRUE,
  .init = sim_init,
  .clear = sim_clear,
  .scores = sim_scores,
};

const MsimRouterType msim_router_type_attention = {
  .name = "attention",
  .summary = "route on P = A G, A = head-averaged softmax(QK^T / sqrt(d_h)) of the sequence",
  .keys = attn_keys,
  .select = MSIM_ROUTER_SELECT_TOPK,
  .uses_gate = TRUE,
  .init = attn_init,
  .clear = sim_clear,
  .scores = attn_scores,
};
