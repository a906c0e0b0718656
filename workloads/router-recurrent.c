/* Layerwise recurrent router, RMoE (Qiu et al. 2024): routers of different
 * layers share information through a GRU that runs over depth, not over
 * the sequence.  For MoE layer l:
 *
 *   x_l = W1_l h_l               (p x d, p = recurrent_dim, default 256)
 *   r_l = GRU (x_l, r_{l-1})     (one GRU cell shared by every layer, r_0 = 0)
 *   logits_l = W2_l r_l          (E x p)
 *
 * then the shared pipeline: softmax (the model's gating), top-k,
 * renormalise.  r is the per-token carry the driver keeps from layer to
 * layer within a batch.
 *
 * Weights are seeded random: W1_l ~ N(0, 1/d), so x_l has the scale of a
 * state coordinate; the GRU as PyTorch initialises it, U(-1/sqrt(p),
 * 1/sqrt(p)); W2_l ~ N(0, 16/p), calibrated so that the mean routing
 * entropy with the default states is close to the plain gate's (about 2.3
 * of 3 bits for 8 experts; 1/p would leave the routing nearly uniform,
 * because this GRU's r has small coordinates).  Gate weights cannot be loaded for this
 * router (it has no plain gate). */
#include <gsl/gsl_blas.h>
#include <gsl/gsl_randist.h>
#include <math.h>

#include "msim-error.h"
#include "router-private.h"

MsimGru *
msim_gru_new (guint in, guint hidden)
{
  MsimGru *g = g_new0 (MsimGru, 1);
  g->in = in;
  g->hidden = hidden;
  g->w_ih = gsl_matrix_calloc (3 * (gsize)hidden, in);
  g->w_hh = gsl_matrix_calloc (3 * (gsize)hidden, hidden);
  g->b_ih = gsl_vector_calloc (3 * (gsize)hidden);
  g->b_hh = gsl_vector_calloc (3 * (gsize)hidden);
  return g;
}

void
msim_gru_free (MsimGru *g)
{
  if (g == NULL)
    return;
  gsl_matrix_free (g->w_ih);
  gsl_matrix_free (g->w_hh);
  gsl_vector_free (g->b_ih);
  gsl_vector_free (g->b_hh);
  g_free (g);
}

static inline double
logistic (double v)
{
  return v >= 0 ? 1.0 / (1.0 + exp (-v)) : exp (v) / (1.0 + exp (v));
}

void
msim_gru_step (const MsimGru *g, const gsl_matrix *x, gsl_matrix *h, gsl_matrix *gi, gsl_matrix *gh)
{
  gsize n = x->size1, p = g->hidden;
  g_return_if_fail (h->size1 == n && h->size2 == p && x->size2 == g->in);
  g_return_if_fail (gi->size1 >= n && gi->size2 == 3 * p && gh->size1 >= n && gh->size2 == 3 * p);
  gsl_matrix_view vi = gsl_matrix_submatrix (gi, 0, 0, n, 3 * p);
  gsl_matrix_view vh = gsl_matrix_submatrix (gh, 0, 0, n, 3 * p);
  /* All three gates of the input and of the hidden state in two GEMMs. */
  msim_dgemm (CblasNoTrans, CblasTrans, 1.0, x, g->w_ih, 0.0, &vi.matrix);
  msim_dgemm (CblasNoTrans, CblasTrans, 1.0, h, g->w_hh, 0.0, &vh.matrix);
  const double *bi = g->b_ih->data, *bh = g->b_hh->data;
  gsize si = g->b_ih->stride, sh = g->b_hh->stride;
  for (gsize i = 0; i < n; i++)
    {
      const double *a = gsl_matrix_const_ptr (&vi.matrix, i, 0);
      const double *c = gsl_matrix_const_ptr (&vh.matrix, i, 0);
      double *hr = gsl_matrix_ptr (h, i, 0);
      for (gsize j = 0; j < p; j++)
        {
          double r = logistic (a[j] + bi[j * si] + c[j] + bh[j * sh]);
          double z = logistic (a[p + j] + bi[(p + j) * si] + c[p + j] + bh[(p + j) * sh]);
          double cand = tanh (a[2 * p + j] + bi[(2 * p + j) * si]
                              + r * (c[2 * p + j] + bh[(2 * p + j) * sh]));
          hr[j] = (1.0 - z) * cand + z * hr[j];
        }
    }
}

typedef struct
{
  guint p;
  gsl_matrix **w1; /* [layers] p x d */
  gsl_matrix **w2; /* [layers] E x p */
  MsimGru *gru;
  gsl_matrix *xp;      /* batch_tokens x p */
  gsl_matrix *gi, *gh; /* batch_tokens x 3p */
} RmoeState;

static void
rmoe_clear (MsimRouter *router)
{
  RmoeState *st = router->state;
  for (guint l = 0; st->w1 && l < router->params.layers; l++)
    {
      gsl_matrix_free (st->w1[l]);
      gsl_matrix_free (st->w2[l]);
    }
  g_free (st->w1);
  g_free (st->w2);
  msim_gru_free (st->gru);
  if (st->xp)
    {
      gsl_matrix_free (st->xp);
      gsl_matrix_free (st->gi);
      gsl_matrix_free (st->gh);
    }
  g_free (st);
  router->state = NULL;
}

static gboolean
rmoe_init (MsimRouter *router, GError **error)
{
  const MsimRouterParams *prm = &router->params;
  guint p = prm->recurrent_dim, d = router->dim, L = prm->layers, E = prm->experts;
  guint64 bytes = ((guint64)L * p * (d + E) + 6ull * p * p) * sizeof (double);
  if (bytes > msim_trace_get_memory_limit ())
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "router: recurrent_dim: %u layers of %u x %u and %u x %u weights need more "
                   "memory than the trace memory limit",
                   L, p, d, E, p);
      return FALSE;
    }
  RmoeState *st = g_new0 (RmoeState, 1);
  router->state = st;
  st->p = p;
  st->w1 = g_new0 (gsl_matrix *, L);
  st->w2 = g_new0 (gsl_matrix *, L);
  for (guint l = 0; l < L; l++)
    {
      st->w1[l] = gsl_matrix_alloc (p, d);
      st->w2[l] = gsl_matrix_alloc (E, p);
      msim_router_fill_gaussian (st->w1[l], 1.0 / sqrt ((double)d), router->seed, ROUTER_W_RMOE_IN,
                                 l);
      msim_router_fill_gaussian (st->w2[l], 4.0 / sqrt ((double)p), router->seed, ROUTER_W_RMOE_OUT,
                                 l);
    }
  st->gru = msim_gru_new (p, p);
  g_autoptr (gsl_rng) rng
      = msim_workload_rng_new (router->seed, MSIM_STREAM_ROUTER_WEIGHTS, ROUTER_W_GRU, 0);
  double bound = 1.0 / sqrt ((double)p);
  gsl_matrix *ms[] = { st->gru->w_ih, st->gru->w_hh };
  for (guint m = 0; m < 2; m++)
    for (gsize i = 0; i < ms[m]->size1; i++)
      for (gsize j = 0; j < ms[m]->size2; j++)
        gsl_matrix_set (ms[m], i, j, gsl_ran_flat (rng, -bound, bound));
  for (gsize i = 0; i < 3 * (gsize)p; i++)
    {
      gsl_vector_set (st->gru->b_ih, i, gsl_ran_flat (rng, -bound, bound));
      gsl_vector_set (st->gru->b_hh, i, gsl_ran_flat (rng, -bound, bound));
    }
  st->xp = gsl_matrix_alloc (prm->batch_tokens, p);
  st->gi = gsl_matrix_alloc (prm->batch_tokens, 3 * (gsize)p);
  st->gh = gsl_matrix_alloc (prm->batch_tokens, 3 * (gsize)p);
  return TRUE;
}

static guint
rmoe_carry_dim (const MsimRouter *router)
{
  return router->params.recurrent_dim;
}

static void
rmoe_scores (MsimRouter *router, const MsimRouterBatch *b, guint layer, const gsl_matrix *x,
             gsl_matrix *carry, gsl_matrix *logits, gsl_matrix *probs)
{
  RmoeState *st = router->state;
  g_return_if_fail (carry != NULL);
  gsl_matrix_view xp = gsl_matrix_submatrix (st->xp, 0, 0, b->n, st->p);
  msim_dgemm (CblasNoTrans, CblasTrans, 1.0, x, st->w1[layer], 0.0, &xp.matrix);
  msim_gru_step (st->gru, &xp.matrix, carry, st->gi, st->gh);
  msim_dgemm (CblasNoTrans, CblasTrans, router->params.gate_scale, carry, st->w2[layer], 0.0,
              logits);
  for (gsize i = 0; i < logits->size1; i++)
    msim_gate_activate (router->params.gating, gsl_matrix_const_ptr (logits, i, 0),
                        gsl_matrix_ptr (probs, i, 0), (guint)logits->size2);
}

static const char *const rmoe_keys[] = { "recurrent_dim", "capacity_factor", "mark_dropped", NULL };

const MsimRouterType msim_router_type_recurrent = {
  .name = "recurrent",
  .summary = "RMoE: a GRU shared across layers carries routing state over depth",
  .keys = rmoe_keys,
  .select = MSIM_ROUTER_SELECT_TOPK,
  .uses_gate = FALSE,
  .init = rmoe_init,
  .clear = rmoe_clear,
  .carry_dim = rmoe_carry_dim,
  .scores = rmoe_scores,
};
