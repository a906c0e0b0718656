/* Routers: parameters, the registry, weights, and the batch/layer driver
 * that every router type plugs into (router.h describes the pipeline). */
#include "router.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

#include "msim-error.h"
#include "router-private.h"
#include "trace-private.h"

/* ------------------------------------------------------------------ */
/* Parameters                                                           */
/* ------------------------------------------------------------------ */

void
msim_router_params_init (MsimRouterParams *p, guint layers, guint experts, guint k)
{
  g_return_if_fail (p != NULL);
  memset (p, 0, sizeof *p);
  p->layers = layers;
  p->experts = experts;
  p->k = k;
  p->gating = MSIM_GATING_SOFTMAX_RENORM;
  p->routed_scaling_factor = 1.0;
  p->expert_groups = 1;
  p->topk_groups = 1;
  p->batch_tokens = 4096;
  p->gate_scale = 1.0;
  p->jitter = 0.0;
  p->capacity_factor = 0.0;
  p->mark_dropped = FALSE;
  p->aux_loss_coef = 0.01;
  p->z_loss_coef = 0.001;
  p->weights = NULL;
  p->expert_capacity = 2.0;
  p->tau = 0.0;
  p->causal = TRUE;
  p->attention_heads = 4;
  p->attention_head_dim = 0;
  p->attention_qk_corr = 0.8;
  p->recurrent_dim = 256;
  p->pregate = MSIM_PREGATE_PREDICT;
  p->fluctuation_eps = 0.0;
  msim_hidden_params_init (&p->hidden);
}

void
msim_router_params_init_from_model (MsimRouterParams *p, const MsimModelSpec *m)
{
  g_return_if_fail (p != NULL && m != NULL);
  msim_router_params_init (p, (guint)msim_model_spec_n_moe_layers (m), (guint)m->experts,
                           (guint)m->top_k);
  p->gating = m->gating;
  p->routed_scaling_factor = m->routed_scaling_factor;
  p->expert_groups = (guint)m->expert_groups;
  p->topk_groups = (guint)m->topk_groups;
}

void
msim_router_params_clear (MsimRouterParams *p)
{
  if (p)
    g_clear_pointer (&p->weights, g_free);
}

void
msim_router_params_copy (MsimRouterParams *dst, const MsimRouterParams *src)
{
  g_return_if_fail (dst != NULL && src != NULL);
  *dst = *src;
  dst->weights = g_strdup (src->weights);
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "router: %s: %s", key, msg);
  return FALSE;
}

static gboolean
in_range (double v, double lo, double hi)
{
  return v >= lo && v <= hi;
}

gboolean
msim_router_params_validate (const MsimRouterParams *p, GError **error)
{
  g_return_val_if_fail (p != NULL, FALSE);
  if (p->layers == 0)
    return bad (error, "layers", "must be at least 1");
  if (p->experts == 0 || p->experts > MSIM_TRACE_MAX_EXPERTS)
    return bad (error, "experts", "%u is outside 1..%u", p->experts, MSIM_TRACE_MAX_EXPERTS);
  if (p->k == 0 || p->k > p->experts)
    return bad (error, "k", "%u is outside 1..%u", p->k, p->experts);
  if (p->expert_groups == 0 || p->experts % p->expert_groups != 0)
    return bad (error, "expert_groups", "%u experts do not split into %u equal groups", p->experts,
                p->expert_groups);
  if (p->topk_groups == 0 || p->topk_groups > p->expert_groups
      || (guint64)p->topk_groups * (p->experts / p->expert_groups) < p->k)
    return bad (error, "topk_groups", "%u of %u groups of %u experts cannot hold top-%u choices",
                p->topk_groups, p->expert_groups, p->experts / p->expert_groups, p->k);
  if (!in_range (p->routed_scaling_factor, 1e-6, 1e6))
    return bad (error, "routed_scaling_factor", "%g is outside 1e-6..1e6",
                p->routed_scaling_factor);
  if (!msim_hidden_params_validate (&p->hidden, error))
    return FALSE;
  if (p->batch_tokens == 0 || p->batch_tokens % p->hidden.sequence_len != 0)
    return bad (error, "batch_tokens",
                "%u is not a positive multiple of sequence_len (%u): batches hold whole "
                "sequences",
                p->batch_tokens, p->hidden.sequence_len);
  if (p->batch_tokens > (1u << 24))
    return bad (error, "batch_tokens", "%u is above the limit of 16777216", p->batch_tokens);
  if (!in_range (p->gate_scale, 0, 1e6))
    return bad (error, "gate_scale", "%g is outside 0..1e6", p->gate_scale);
  if (!in_range (p->jitter, 0, 0.999))
    return bad (error, "jitter", "%g is outside 0..0.999", p->jitter);
  if (!in_range (p->capacity_factor, 0, 1e6))
    return bad (error, "capacity_factor", "%g is outside 0..1e6 (0 = unlimited)",
                p->capacity_factor);
  if (!in_range (p->aux_loss_coef, 0, 1e6))
    return bad (error, "aux_loss_coef", "%g is outside 0..1e6", p->aux_loss_coef);
  if (!in_range (p->z_loss_coef, 0, 1e6))
    return bad (error, "z_loss_coef", "%g is outside 0..1e6", p->z_loss_coef);
  if (!in_range (p->expert_capacity, 1e-6, 1e6))
    return bad (error, "expert_capacity", "%g is outside 1e-6..1e6", p->expert_capacity);
  if (!in_range (p->tau, 0, 1e12))
    return bad (error, "tau", "%g is outside 0..1e12 (0 = sqrt (hidden_dim))", p->tau);
  if (p->attention_heads == 0 || p->attention_heads > 1024)
    return bad (error, "attention_heads", "%u is outside 1..1024", p->attention_heads);
  if (p->attention_head_dim > 65536)
    return bad (error, "attention_head_dim", "%u is outside 0..65536", p->attention_head_dim);
  if (!in_range (p->attention_qk_corr, 0, 1))
    return bad (error, "attention_qk_corr", "%g is outside 0..1", p->attention_qk_corr);
  if (p->recurrent_dim == 0 || p->recurrent_dim > 65536)
    return bad (error, "recurrent_dim", "%u is outside 1..65536", p->recurrent_dim);
  if (!in_range (p->fluctuation_eps, 0, 1e3))
    return bad (error, "fluctuation_eps", "%g is outside 0..1000", p->fluctuation_eps);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Registry                                                             */
/* ------------------------------------------------------------------ */

static const MsimRouterType *const router_types[] = {
  &msim_router_type_topk,       &msim_router_type_switch,    &msim_router_type_expert_choice,
  &msim_router_type_similarity, &msim_router_type_attention, &msim_router_type_recurrent,
  &msim_router_type_pregated,
};

const MsimRouterType *
msim_router_lookup (const char *name)
{
  g_return_val_if_fail (name != NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (router_types); i++)
    if (strcmp (router_types[i]->name, name) == 0)
      return router_types[i];
  return NULL;
}

const MsimRouterType *const *
msim_router_types (guint *n)
{
  if (n)
    *n = G_N_ELEMENTS (router_types);
  return router_types;
}

/* ------------------------------------------------------------------ */
/* Router objects and weights                                           */
/* ------------------------------------------------------------------ */

void
msim_dgemm (CBLAS_TRANSPOSE_t ta, CBLAS_TRANSPOSE_t tb, double alpha, const gsl_matrix *a,
            const gsl_matrix *b, double beta, gsl_matrix *c)
{
  int status = gsl_blas_dgemm (ta, tb, alpha, a, b, beta, c);
  g_assert (status == GSL_SUCCESS);
  (void)status; /* unused when G_DISABLE_ASSERT is defined */
}

void
msim_router_fill_gaussian (gsl_matrix *m, double std, guint64 seed, guint kind, guint layer)
{
  g_autoptr (gsl_rng) rng = msim_workload_rng_new (seed, MSIM_STREAM_ROUTER_WEIGHTS, kind, layer);
  for (gsize i = 0; i < m->size1; i++)
    for (gsize j = 0; j < m->size2; j++)
      gsl_matrix_set (m, i, j, gsl_ran_gaussian_ziggurat (rng, std));
}

static gsl_matrix *
matrix_from (const double *v, gsize rows, gsize cols)
{
  gsl_matrix *m = gsl_matrix_alloc (rows, cols);
  for (gsize i = 0; i < rows; i++)
    memcpy (gsl_matrix_ptr (m, i, 0), v + i * cols, sizeof (double) * cols);
  return m;
}

static void
free_gate (MsimRouter *r)
{
  if (r->gate == NULL)
    return;
  for (guint l = 0; l < r->params.layers; l++)
    if (r->gate[l])
      gsl_matrix_free (r->gate[l]);
  g_clear_pointer (&r->gate, g_free);
}

/* Gate weights from .npy: [E, d] shared by every layer, [L*E, d] stacked
 * layer by layer, or one [E, d] file per layer when the path contains
 * "{layer}" (the MoE layer index, from 0).  Sets r->dim to d. */
static gboolean
load_gate (MsimRouter *r, GError **error)
{
  const MsimRouterParams *p = &r->params;
  guint L = p->layers, E = p->experts;
  r->gate = g_new0 (gsl_matrix *, L);
  gboolean per_layer = strstr (p->weights, "{layer}") != NULL;
  gsize dim = 0;
  for (guint l = 0; l < (per_layer ? L : 1u); l++)
    {
      g_autofree char *path = NULL;
      if (per_layer)
        {
          g_autofree char *num = g_strdup_printf ("%u", l);
          g_auto (GStrv) parts = g_strsplit (p->weights, "{layer}", -1);
          path = g_strjoinv (num, parts);
        }
      else
        path = g_strdup (p->weights);
      gsize rows = 0, cols = 0;
      g_autofree double *v = NULL;
      if (!msim_npy_load_matrix (path, &rows, &cols, &v, error))
        return FALSE;
      if (dim && cols != dim)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: %" G_GSIZE_FORMAT
                       " columns, but layer 0's weights have %" G_GSIZE_FORMAT,
                       path, cols, dim);
          return FALSE;
        }
      dim = cols;
      if (per_layer || rows == E)
        {
          if (rows != E)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s: shape (%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT
                           "): expected [experts = %u, d] gate weights",
                           path, rows, cols, E);
              return FALSE;
            }
          if (per_layer)
            r->gate[l] = matrix_from (v, rows, cols);
          else
            for (guint m = 0; m < L; m++)
              r->gate[m] = matrix_from (v, rows, cols);
        }
      else if (rows == (gsize)L * E)
        for (guint m = 0; m < L; m++)
          r->gate[m] = matrix_from (v + (gsize)m * E * cols, E, cols);
      else
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: shape (%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT
                       "): expected [experts, d] = [%u, d] for every layer or [layers * experts, "
                       "d] = [%u, d] stacked by layer",
                       path, rows, cols, E, L * E);
          return FALSE;
        }
    }
  r->dim = (guint)dim;
  return TRUE;
}

MsimRouter *
msim_router_new (const MsimRouterType *type, const MsimRouterParams *params, guint64 seed,
                 GError **error)
{
  g_return_val_if_fail (type != NULL && params != NULL, NULL);
  if (!msim_router_params_validate (params, error))
    return NULL;
  g_autoptr (MsimRouter) r = g_new0 (MsimRouter, 1);
  r->type = type;
  msim_router_params_copy (&r->params, params);
  r->seed = seed;
  r->dim = params->hidden.dim;
  if (params->weights && !type->uses_gate)
    {
      bad (error, "weights", "router %s has no plain gate to load", type->name);
      return NULL;
    }
  if (type->uses_gate)
    {
      if (params->weights)
        {
          if (!load_gate (r, error))
            return NULL;
          r->params.hidden.dim = r->dim;
        }
      else
        {
          /* N(0, 1/d): logits then have the variance of a state
           * coordinate, about 1.3 with the default states. */
          guint64 bytes = (guint64)params->layers * params->experts * r->dim * sizeof (double);
          if (bytes > msim_trace_get_memory_limit ())
            {
              bad (error, "hidden_dim",
                   "gate weights of %u layers x %u experts x %u need more memory than the trace "
                   "memory limit",
                   params->layers, params->experts, r->dim);
              return NULL;
            }
          r->gate = g_new0 (gsl_matrix *, params->layers);
          for (guint l = 0; l < params->layers; l++)
            {
              r->gate[l] = gsl_matrix_alloc (params->experts, r->dim);
              msim_router_fill_gaussian (r->gate[l], 1.0 / sqrt ((double)r->dim), seed,
                                         ROUTER_W_GATE, l);
            }
        }
    }
  if (type->init && !type->init (r, error))
    return NULL;
  return g_steal_pointer (&r);
}

void
msim_router_free (MsimRouter *r)
{
  if (r == NULL)
    return;
  if (r->type->clear && r->state)
    r->type->clear (r);
  free_gate (r);
  msim_router_params_clear (&r->params);
  g_free (r);
}

const MsimRouterType *
msim_router_get_type (const MsimRouter *r)
{
  g_return_val_if_fail (r != NULL, NULL);
  return r->type;
}

const MsimRouterParams *
msim_router_get_params (const MsimRouter *r)
{
  g_return_val_if_fail (r != NULL, NULL);
  return &r->params;
}

guint
msim_router_dim (const MsimRouter *r)
{
  g_return_val_if_fail (r != NULL, 0);
  return r->dim;
}

const gsl_matrix *
msim_router_gate (const MsimRouter *r, guint layer)
{
  g_return_val_if_fail (r != NULL && layer < r->params.layers, NULL);
  return r->gate ? r->gate[layer] : NULL;
}

gpointer
msim_router_get_state (const MsimRouter *r)
{
  g_return_val_if_fail (r != NULL, NULL);
  return r->state;
}

void
msim_router_set_state (MsimRouter *r, gpointer state)
{
  g_return_if_fail (r != NULL);
  r->state = state;
}

void
msim_router_gate_scores (MsimRouter *r, guint layer, const gsl_matrix *x, gsl_matrix *logits,
                         gsl_matrix *probs)
{
  msim_dgemm (CblasNoTrans, CblasTrans, r->params.gate_scale, x, r->gate[layer], 0.0, logits);
  for (gsize i = 0; i < logits->size1; i++)
    msim_gate_activate (r->params.gating, gsl_matrix_const_ptr (logits, i, 0),
                        gsl_matrix_ptr (probs, i, 0), (guint)logits->size2);
}

/* ------------------------------------------------------------------ */
/* Report                                                               */
/* ------------------------------------------------------------------ */

void
msim_router_report_free (MsimRouterReport *rep)
{
  if (rep == NULL)
    return;
  g_free (rep->router);
  g_free (rep->per_layer);
  g_free (rep);
}

static void
add_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_int (JsonBuilder *b, const char *name, guint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, (gint64)v);
}

static void
stats_json (const MsimRouterStats *s, JsonBuilder *b)
{
  add_int (b, "tokens", s->tokens);
  add_int (b, "assignments", s->assignments);
  add_int (b, "dropped", s->dropped);
  add_double (b, "drop_rate",
              s->assignments + s->dropped
                  ? (double)s->dropped / (double)(s->assignments + s->dropped)
                  : 0.0);
  add_double (b, "balance", s->balance);
  add_double (b, "aux_loss", s->aux_loss);
  add_double (b, "z", s->z);
  add_double (b, "z_loss", s->z_loss);
  add_double (b, "routing_entropy_bits", s->routing_entropy_bits);
  add_double (b, "load_entropy_bits", s->load_entropy_bits);
  add_double (b, "top1_entropy_bits", s->top1_entropy_bits);
  add_double (b, "fluctuation", s->fluctuation);
  add_double (b, "pregate_top1", s->pregate_top1);
  add_double (b, "pregate_recall", s->pregate_recall);
  add_double (b, "prefetch_recall", s->prefetch_recall);
  add_double (b, "prefetch_precision", s->prefetch_precision);
  add_double (b, "experts_per_token", s->experts_per_token);
  add_double (b, "unrouted_share", s->unrouted_share);
}

void
msim_router_report_to_json (const MsimRouterReport *rep, JsonBuilder *b)
{
  g_return_if_fail (rep != NULL && b != NULL);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "router");
  json_builder_add_string_value (b, rep->router);
  add_int (b, "seed", rep->seed);
  add_int (b, "layers", rep->layers);
  add_int (b, "capacity", rep->capacity);
  json_builder_set_member_name (b, "total");
  json_builder_begin_object (b);
  stats_json (&rep->total, b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "per_layer");
  json_builder_begin_array (b);
  for (guint l = 0; l < rep->layers; l++)
    {
      json_builder_begin_object (b);
      add_int (b, "layer", l);
      stats_json (&rep->per_layer[l], b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static void
fmt_cell (GString *s, double v)
{
  if (isfinite (v))
    g_string_append_printf (s, " %8.4f", v);
  else
    g_string_append_printf (s, " %8s", "-");
}

char *
msim_router_report_to_text (const MsimRouterReport *rep)
{
  g_return_val_if_fail (rep != NULL, NULL);
  GString *s = g_string_new (NULL);
  const MsimRouterStats *t = &rep->total;
  g_string_append_printf (
      s, "router %s, seed %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT " tokens x %u layers",
      rep->router, rep->seed, t->tokens, rep->layers);
  if (rep->capacity)
    g_string_append_printf (s, ", capacity %" G_GUINT64_FORMAT " per expert and batch",
                            rep->capacity);
  g_string_append_c (s, '\n');
  g_string_append_printf (s, "%5s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "layer", "drop",
                          "balance", "z", "H_route", "H_load", "fluct", "pre_top1", "pre_rec",
                          "ec_e/tok");
  for (guint l = 0; l <= rep->layers; l++)
    {
      const MsimRouterStats *x = l < rep->layers ? &rep->per_layer[l] : t;
      if (l < rep->layers)
        g_string_append_printf (s, "%5u", l);
      else
        g_string_append_printf (s, "%5s", "all");
      guint64 tot = x->assignments + x->dropped;
      fmt_cell (s, tot ? (double)x->dropped / (double)tot : 0.0);
      fmt_cell (s, x->balance);
      fmt_cell (s, x->z);
      fmt_cell (s, x->routing_entropy_bits);
      fmt_cell (s, x->load_entropy_bits);
      fmt_cell (s, x->fluctuation);
      fmt_cell (s, x->pregate_top1);
      fmt_cell (s, x->pregate_recall);
      fmt_cell (s, x->experts_per_token);
      g_string_append_c (s, '\n');
    }
  g_string_append (
      s, "drop: dropped share of assignments; balance: E sum f_e P_e (1 = balanced);\n"
         "z: mean logsumexp(logits)^2; H_route: mean per-token routing entropy (bits);\n"
         "H_load: entropy of the expert load (bits); fluct: share of tokens whose top-1\n"
         "changes under the perturbation; pre_top1 / pre_rec: pre-gate top-1 accuracy and\n"
         "set recall; ec_e/tok: experts per token (expert choice)\n");
  return g_string_free (s, FALSE);
}

/* ------------------------------------------------------------------ */
/* The driver                                                           */
/* ------------------------------------------------------------------ */

/* Per-layer accumulators, turned into MsimRouterStats at the end. */
typedef struct
{
  double tokens, kept, dropped;
  double balance_sum; /* sum over batches of n * balance */
  double z_sum, entropy_sum;
  double fluct_changed, fluct_n;
  double pre_top1, pre_recall, pre_n;
  double pf_hit, pf_need, pf_pred;
  double ec_experts, ec_unrouted;
  guint64 *load, *top1; /* E each */
} Acc;

/* Matrices of one batch, allocated once for batch_tokens rows; views of n
 * rows are taken for the last, shorter batch. */
typedef struct
{
  gsl_matrix *h, *x, *jit, *hp, *xp;
  gsl_matrix *logits, *probs, *logits2, *probs2, *plogits, *pprobs, *pending;
  gsl_matrix *carry, *carry2;
  int *ids, *real_ids, *pred_ids;
  double *w;
  guint8 *dropped;
  guint64 *load, *sel;
  double *pmean;
  guint8 *u_pred, *u_need;
  guint *seq_start;
} Work;

static gsl_matrix *
alloc_or_null (gboolean want, gsize rows, gsize cols)
{
  return want && rows && cols ? gsl_matrix_calloc (rows, cols) : NULL;
}

static void
work_clear (Work *w)
{
  gsl_matrix **ms[]
      = { &w->h,       &w->x,      &w->jit,     &w->hp,     &w->xp,      &w->logits, &w->probs,
          &w->logits2, &w->probs2, &w->plogits, &w->pprobs, &w->pending, &w->carry,  &w->carry2 };
  for (guint i = 0; i < G_N_ELEMENTS (ms); i++)
    if (*ms[i])
      gsl_matrix_free (*ms[i]);
  g_free (w->ids);
  g_free (w->real_ids);
  g_free (w->pred_ids);
  g_free (w->w);
  g_free (w->dropped);
  g_free (w->load);
  g_free (w->sel);
  g_free (w->pmean);
  g_free (w->u_pred);
  g_free (w->u_need);
  g_free (w->seq_start);
}

/* An n-row view of @m, or NULL for NULL. */
typedef struct
{
  gsl_matrix_view v;
  gsl_matrix *m;
} Rows;

static gsl_matrix *
rows_of (Rows *r, gsl_matrix *m, gsize n)
{
  if (m == NULL)
    return r->m = NULL;
  r->v = gsl_matrix_submatrix (m, 0, 0, n, m->size2);
  return r->m = &r->v.matrix;
}

/* x = h * jit elementwise (or a copy when there is no jitter). */
static void
apply_jitter (const gsl_matrix *h, const gsl_matrix *jit, gsl_matrix *x)
{
  gsl_matrix_memcpy (x, h);
  if (jit)
    gsl_matrix_mul_elements (x, jit);
}

static void
fill_jitter (gsl_matrix *jit, gsize first, const MsimRouterBatch *b, guint layer, double eps,
             guint64 seed, gsl_rng *rng)
{
  for (guint s = 0; s < b->n_sequences; s++)
    {
      msim_workload_rng_reseed (rng, seed, MSIM_STREAM_JITTER, (first + b->seq_start[s]), layer);
      for (guint i = b->seq_start[s]; i < b->seq_start[s + 1]; i++)
        for (gsize j = 0; j < jit->size2; j++)
          gsl_matrix_set (jit, i, j, 1.0 + gsl_ran_flat (rng, -eps, eps));
    }
}

/* hp = h + eps * rms(h_i) * xi_i per token. */
static void
perturb (const gsl_matrix *h, gsl_matrix *hp, gsize first, const MsimRouterBatch *b, guint layer,
         double eps, guint64 seed, gsl_rng *rng)
{
  gsize d = h->size2;
  for (guint s = 0; s < b->n_sequences; s++)
    {
      msim_workload_rng_reseed (rng, seed, MSIM_STREAM_PERTURB, (first + b->seq_start[s]), layer);
      for (guint i = b->seq_start[s]; i < b->seq_start[s + 1]; i++)
        {
          const double *src = gsl_matrix_const_ptr (h, i, 0);
          double *dst = gsl_matrix_ptr (hp, i, 0), ss = 0;
          for (gsize j = 0; j < d; j++)
            ss += src[j] * src[j];
          double scale = eps * sqrt (ss / (double)d);
          for (gsize j = 0; j < d; j++)
            dst[j] = src[j] + scale * gsl_ran_gaussian_ziggurat (rng, 1.0);
        }
    }
}

static void
topk_rows (const MsimRouterParams *p, const gsl_matrix *probs, guint n, int *ids, double *w)
{
  for (guint i = 0; i < n; i++)
    msim_route_topk (gsl_matrix_const_ptr (probs, i, 0), p->experts, p->k, p->expert_groups,
                     p->topk_groups, p->gating, p->routed_scaling_factor, ids + (gsize)i * p->k,
                     w ? w + (gsize)i * p->k : NULL);
}

static void
finish_stats (MsimRouterStats *s, const Acc *a, guint E, const MsimRouterParams *p,
              gboolean pregated, gboolean ec)
{
  s->tokens = (guint64)a->tokens;
  s->assignments = (guint64)a->kept;
  s->dropped = (guint64)a->dropped;
  s->balance = a->tokens ? a->balance_sum / a->tokens : NAN;
  s->aux_loss = p->aux_loss_coef * s->balance;
  s->z = a->tokens ? a->z_sum / a->tokens : NAN;
  s->z_loss = p->z_loss_coef * s->z;
  s->routing_entropy_bits = a->tokens ? a->entropy_sum / a->tokens : NAN;
  g_autofree double *v = g_new (double, E);
  for (guint e = 0; e < E; e++)
    v[e] = (double)a->load[e];
  s->load_entropy_bits = msim_entropy_bits (v, E);
  for (guint e = 0; e < E; e++)
    v[e] = (double)a->top1[e];
  s->top1_entropy_bits = msim_entropy_bits (v, E);
  s->fluctuation = a->fluct_n ? a->fluct_changed / a->fluct_n : NAN;
  s->pregate_top1 = pregated && a->pre_n ? a->pre_top1 / a->pre_n : NAN;
  s->pregate_recall = pregated && a->pre_n ? a->pre_recall / a->pre_n : NAN;
  s->prefetch_recall = pregated && a->pf_need ? a->pf_hit / a->pf_need : NAN;
  s->prefetch_precision = pregated && a->pf_pred ? a->pf_hit / a->pf_pred : NAN;
  s->experts_per_token = ec && a->tokens ? a->ec_experts / a->tokens : NAN;
  s->unrouted_share = ec && a->tokens ? a->ec_unrouted / a->tokens : NAN;
}

MsimTrace *
msim_router_run (MsimRouter *r, gsize tokens, MsimRouterReport **report_out,
                 MsimTrace **predicted_out, GError **error)
{
  g_return_val_if_fail (r != NULL, NULL);
  const MsimRouterParams *p = &r->params;
  const MsimRouterType *type = r->type;
  guint L = p->layers, E = p->experts, k = p->k, d = r->dim;
  gboolean ec = type->select == MSIM_ROUTER_SELECT_EXPERT_CHOICE;
  gboolean pregated = type->predicts_next;
  gboolean execute = pregated && p->pregate == MSIM_PREGATE_EXECUTE;
  gboolean fluct = p->fluctuation_eps > 0;
  gboolean mark = !ec && p->mark_dropped && p->capacity_factor > 0;
  guint K = ec ? E : k;
  MsimTraceFlags flags = MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES;
  if (ec || mark)
    flags |= MSIM_TRACE_DROPS;
  g_autoptr (MsimTrace) t = msim_trace_alloc (type->name, tokens, L, K, E, flags, error);
  if (t == NULL)
    return NULL;
  g_autoptr (MsimTrace) pred = NULL;
  if (pregated && predicted_out)
    {
      pred = msim_trace_alloc (type->name, tokens, L, k, E, MSIM_TRACE_SEQUENCES, error);
      if (pred == NULL)
        return NULL;
    }
  MsimHiddenParams hp = p->hidden;
  hp.dim = d;
  g_autoptr (MsimHiddenStates) hs = msim_hidden_states_new (&hp, r->seed, error);
  if (hs == NULL)
    return NULL;
  guint cd = type->carry_dim ? type->carry_dim (r) : 0;
  gsize B = MIN ((gsize)p->batch_tokens, tokens);
  guint S = p->hidden.sequence_len;

  Work w = { 0 };
  w.h = gsl_matrix_calloc (B, d);
  w.x = gsl_matrix_calloc (B, d);
  w.jit = alloc_or_null (p->jitter > 0, B, d);
  w.hp = alloc_or_null (fluct, B, d);
  w.xp = alloc_or_null (fluct, B, d);
  w.logits = gsl_matrix_calloc (B, E);
  w.probs = gsl_matrix_calloc (B, E);
  w.logits2 = alloc_or_null (fluct, B, E);
  w.probs2 = alloc_or_null (fluct, B, E);
  w.plogits = alloc_or_null (pregated, B, E);
  w.pprobs = alloc_or_null (pregated, B, E);
  w.pending = alloc_or_null (execute, B, E);
  w.carry = alloc_or_null (cd > 0, B, cd);
  w.carry2 = alloc_or_null (cd > 0 && fluct, B, cd);
  w.ids = g_new (int, B *K);
  w.real_ids = g_new (int, B *k);
  w.pred_ids = g_new (int, B *k);
  w.w = g_new (double, B *K);
  w.dropped = g_new0 (guint8, B * k);
  w.load = g_new (guint64, E);
  w.sel = g_new (guint64, E);
  w.pmean = g_new (double, E);
  w.u_pred = g_new (guint8, E);
  w.u_need = g_new (guint8, E);
  w.seq_start = g_new (guint, B / S + 2);
  g_autofree Acc *acc = g_new0 (Acc, L);
  g_autofree guint64 *counts = g_new0 (guint64, (gsize)2 * L * E);
  for (guint l = 0; l < L; l++)
    {
      acc[l].load = counts + (gsize)2 * l * E;
      acc[l].top1 = acc[l].load + E;
    }
  g_autoptr (gsl_rng) noise = gsl_rng_alloc (gsl_rng_mt19937);
  guint64 capacity_full
      = ec ? msim_route_capacity (B, 1, E, p->expert_capacity)
           : (p->capacity_factor > 0 ? msim_route_capacity (B, k, E, p->capacity_factor) : 0);
  gboolean any_dropped = FALSE;

  for (gsize first = 0; first < tokens; first += B)
    {
      guint n = (guint)MIN (B, tokens - first);
      MsimRouterBatch batch = { first, n, 0, w.seq_start };
      for (guint s = 0; s < n; s += S)
        w.seq_start[batch.n_sequences++] = s;
      w.seq_start[batch.n_sequences] = n;
      for (guint i = 0; i < n; i++)
        {
          gsize tok = first + i;
          msim_trace_set_sequence (t, tok, (guint32)(tok / S), (guint32)(tok % S));
          if (pred)
            msim_trace_set_sequence (pred, tok, (guint32)(tok / S), (guint32)(tok % S));
        }
      Rows vh, vx, vj, vhp, vxp, vlg, vpr, vlg2, vpr2, vplg, vppr, vpend, vc, vc2;
      gsl_matrix *H = rows_of (&vh, w.h, n), *X = rows_of (&vx, w.x, n);
      gsl_matrix *J = rows_of (&vj, w.jit, n), *HP = rows_of (&vhp, w.hp, n);
      gsl_matrix *XP = rows_of (&vxp, w.xp, n);
      gsl_matrix *LG = rows_of (&vlg, w.logits, n), *PR = rows_of (&vpr, w.probs, n);
      gsl_matrix *LG2 = rows_of (&vlg2, w.logits2, n), *PR2 = rows_of (&vpr2, w.probs2, n);
      gsl_matrix *PLG = rows_of (&vplg, w.plogits, n), *PPR = rows_of (&vppr, w.pprobs, n);
      gsl_matrix *PEND = rows_of (&vpend, w.pending, n);
      gsl_matrix *C = rows_of (&vc, w.carry, n), *C2 = rows_of (&vc2, w.carry2, n);
      if (C)
        gsl_matrix_set_zero (C);
      if (C2)
        gsl_matrix_set_zero (C2);
      msim_hidden_states_fill (hs, first, n, H);
      guint64 cap = ec ? msim_route_capacity (n, 1, E, p->expert_capacity)
                       : msim_route_capacity (n, k, E, p->capacity_factor);

      for (guint l = 0; l < L; l++)
        {
          Acc *a = &acc[l];
          if (l > 0)
            msim_hidden_states_drift (hs, first, n, l, H);
          if (J)
            fill_jitter (J, first, &batch, l, p->jitter, r->seed, noise);
          apply_jitter (H, J, X);
          type->scores (r, &batch, l, X, C, LG, PR);

          /* The distribution whose choice is executed: the router's own,
           * or in pre-gated execute mode what the pre-gate computed during
           * the previous layer. */
          const gsl_matrix *EXE = (execute && l > 0) ? PEND : PR;

          /* Selection. */
          memset (w.sel, 0, sizeof (guint64) * E);
          guint64 n_dropped = 0;
          if (ec)
            {
              msim_route_expert_choice (gsl_matrix_const_ptr (EXE, 0, 0), n, E, cap, w.ids, w.w);
              for (guint i = 0; i < n; i++)
                {
                  guint m = 0;
                  for (guint s = 0; s < E && w.ids[(gsize)i * E + s] >= 0; s++)
                    {
                      m++;
                      w.sel[w.ids[(gsize)i * E + s]]++;
                    }
                  a->ec_experts += m;
                  a->ec_unrouted += m == 0;
                }
            }
          else
            {
              topk_rows (p, EXE, n, w.ids, w.w);
              for (gsize c = 0; c < (gsize)n * k; c++)
                w.sel[w.ids[c]]++;
              if (p->capacity_factor > 0)
                n_dropped = msim_route_drop (w.ids, n, k, E, cap, w.dropped, w.load);
            }

          /* Pre-gate: compare the prediction made during layer l-1 with
           * the real gate, then predict layer l+1 from this layer's input. */
          if (pregated)
            {
              topk_rows (p, PR, n, w.real_ids, NULL);
              if (l > 0)
                {
                  memset (w.u_pred, 0, E);
                  memset (w.u_need, 0, E);
                  for (guint i = 0; i < n; i++)
                    {
                      const int *pi = w.pred_ids + (gsize)i * k, *ri = w.real_ids + (gsize)i * k;
                      a->pre_top1 += pi[0] == ri[0];
                      guint hit = 0;
                      for (guint x = 0; x < k; x++)
                        {
                          for (guint y = 0; y < k; y++)
                            hit += pi[x] == ri[y];
                          w.u_pred[pi[x]] = 1;
                          w.u_need[ri[x]] = 1;
                        }
                      a->pre_recall += (double)hit / k;
                      a->pre_n++;
                    }
                  for (guint e = 0; e < E; e++)
                    {
                      a->pf_hit += w.u_pred[e] && w.u_need[e];
                      a->pf_need += w.u_need[e];
                      a->pf_pred += w.u_pred[e];
                    }
                }
              else if (pred)
                for (guint i = 0; i < n; i++)
                  {
                    MsimExpertId *row = msim_trace_row_mut (pred, first + i, 0);
                    for (guint x = 0; x < k; x++)
                      row[x] = (MsimExpertId)w.real_ids[(gsize)i * k + x];
                  }
              if (l + 1 < L)
                {
                  type->scores (r, &batch, l + 1, X, NULL, PLG, PPR);
                  topk_rows (p, PPR, n, w.pred_ids, NULL);
                  if (execute)
                    gsl_matrix_memcpy (PEND, PPR);
                  if (pred)
                    for (guint i = 0; i < n; i++)
                      {
                        MsimExpertId *row = msim_trace_row_mut (pred, first + i, l + 1);
                        for (guint x = 0; x < k; x++)
                          row[x] = (MsimExpertId)w.pred_ids[(gsize)i * k + x];
                      }
                }
            }

          /* Write the trace and count. */
          for (guint i = 0; i < n; i++)
            {
              MsimExpertId *row = msim_trace_row_mut (t, first + i, l);
              float *wrow = msim_trace_weight_row_mut (t, first + i, l);
              for (guint x = 0; x < K; x++)
                {
                  int e = w.ids[(gsize)i * K + x];
                  double wt = w.w[(gsize)i * K + x];
                  gboolean drop = !ec && p->capacity_factor > 0 && w.dropped[(gsize)i * k + x];
                  if (e >= 0 && !drop)
                    {
                      a->load[e]++;
                      a->kept++;
                    }
                  if (drop && mark)
                    {
                      e = MSIM_EXPERT_NONE;
                      wt = 0;
                      any_dropped = TRUE;
                    }
                  row[x] = (MsimExpertId)e;
                  wrow[x] = (float)wt;
                }
              if (w.ids[(gsize)i * K] >= 0)
                a->top1[w.ids[(gsize)i * K]]++;
            }
          a->dropped += (double)n_dropped;
          a->tokens += n;

          /* Balance, z, entropy over the executed distribution. */
          memset (w.pmean, 0, sizeof (double) * E);
          guint64 sel_total = 0;
          for (guint e = 0; e < E; e++)
            sel_total += w.sel[e];
          for (guint i = 0; i < n; i++)
            {
              const double *pr = gsl_matrix_const_ptr (EXE, i, 0);
              double sum = 0;
              for (guint e = 0; e < E; e++)
                sum += pr[e];
              for (guint e = 0; e < E; e++)
                w.pmean[e] += sum > 0 ? pr[e] / sum : 0;
              a->entropy_sum += msim_entropy_bits (pr, E);
              double lse = msim_logsumexp (gsl_matrix_const_ptr (LG, i, 0), E);
              a->z_sum += lse * lse;
            }
          double balance = 0;
          for (guint e = 0; e < E; e++)
            balance += (sel_total ? (double)w.sel[e] / (double)sel_total : 0) * w.pmean[e] / n;
          a->balance_sum += n * E * balance;

          /* Fluctuation: the same layer on perturbed states. */
          if (fluct)
            {
              perturb (H, HP, first, &batch, l, p->fluctuation_eps, r->seed, noise);
              apply_jitter (HP, J, XP);
              type->scores (r, &batch, l, XP, C2, LG2, PR2);
              for (guint i = 0; i < n; i++)
                a->fluct_changed += msim_argmax (gsl_matrix_const_ptr (PR, i, 0), E)
                                    != msim_argmax (gsl_matrix_const_ptr (PR2, i, 0), E);
              a->fluct_n += n;
            }
        }
    }
  work_clear (&w);
  if (mark && !any_dropped)
    t->flags &= ~MSIM_TRACE_DROPS;

  if (report_out)
    {
      MsimRouterReport *rep = g_new0 (MsimRouterReport, 1);
      rep->router = g_strdup (type->name);
      rep->seed = r->seed;
      rep->layers = L;
      rep->capacity = capacity_full;
      rep->per_layer = g_new0 (MsimRouterStats, L);
      Acc all = { 0 };
      g_autofree guint64 *all_counts = g_new0 (guint64, 2 * (gsize)E);
      all.load = all_counts;
      all.top1 = all_counts + E;
      double h_load = 0, h_top1 = 0;
      for (guint l = 0; l < L; l++)
        {
          finish_stats (&rep->per_layer[l], &acc[l], E, p, pregated, ec);
          h_load += rep->per_layer[l].load_entropy_bits;
          h_top1 += rep->per_layer[l].top1_entropy_bits;
          const Acc *a = &acc[l];
          all.tokens += a->tokens;
          all.kept += a->kept;
          all.dropped += a->dropped;
          all.balance_sum += a->balance_sum;
          all.z_sum += a->z_sum;
          all.entropy_sum += a->entropy_sum;
          all.fluct_changed += a->fluct_changed;
          all.fluct_n += a->fluct_n;
          all.pre_top1 += a->pre_top1;
          all.pre_recall += a->pre_recall;
          all.pre_n += a->pre_n;
          all.pf_hit += a->pf_hit;
          all.pf_need += a->pf_need;
          all.pf_pred += a->pf_pred;
          all.ec_experts += a->ec_experts;
          all.ec_unrouted += a->ec_unrouted;
        }
      finish_stats (&rep->total, &all, E, p, pregated, ec);
      /* Token-weighted means over layers; totals of counts.  tokens counts
       * each token once, not once per layer. */
      rep->total.tokens = tokens;
      rep->total.load_entropy_bits = h_load / L;
      rep->total.top1_entropy_bits = h_top1 / L;
      *report_out = rep;
    }
  if (predicted_out)
    *predicted_out = g_steal_pointer (&pred);
  return g_steal_pointer (&t);
}

guint
msim_router_prefetch_set (const MsimTrace *predicted, guint layer, gsize first, gsize n,
                          guint8 *needed)
{
  g_return_val_if_fail (predicted != NULL && needed != NULL, 0);
  g_return_val_if_fail (layer < predicted->layers && first + n <= predicted->tokens, 0);
  memset (needed, 0, predicted->experts);
  guint count = 0;
  for (gsize i = first; i < first + n; i++)
    {
      const MsimExpertId *row = msim_trace_row (predicted, i, layer);
      for (guint x = 0; x < predicted->k; x++)
        if (row[x] >= 0 && !needed[row[x]])
          {
            needed[row[x]] = 1;
            count++;
          }
    }
  return count;
}
