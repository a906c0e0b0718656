#include "model-spec.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "msim-error.h"
#include "spec-source-private.h"

/*
 * Limits on what a spec may say.  They are far above every published model
 * (DeepSeek-V3: 61 layers, 256 experts, hidden 7168, 671e9 parameters) and
 * exist to catch typos (hidden_size = 40960000) before they become hours of
 * simulation, and to keep every derived count inside gint64: with the total
 * capped at 1e15 parameters, bytes (x4) and per-layer sums cannot overflow.
 */
#define MAX_LAYERS         10000
#define MAX_EXPERTS        65536
#define MAX_SHARED_EXPERTS 1024
#define MAX_HIDDEN         1000000
#define MAX_FFN            10000000
#define MAX_HEADS          16384
#define MAX_HEAD_DIM       16384
#define MAX_LORA_RANK      1000000
#define MAX_VOCAB          100000000
#define MAX_TOTAL_PARAMS   1e15
#define MAX_SCALING        1000.0

static const MsimSpecKind model_kind = {
  .group = "model",
  .file_prefix = "",
  .exclude_prefix = "gpu-",
  .what = "model",
};

static const char *const model_keys[] = {
  "name",
  "layers",
  "moe_layers",
  "experts",
  "shared_experts",
  "top_k",
  "expert_groups",
  "topk_groups",
  "hidden_size",
  "expert_ffn_size",
  "shared_expert_ffn_size",
  "dense_ffn_size",
  "ffn_activation",
  "dtype",
  "attention",
  "heads",
  "kv_heads",
  "head_dim",
  "q_lora_rank",
  "kv_lora_rank",
  "qk_nope_head_dim",
  "qk_rope_head_dim",
  "v_head_dim",
  "vocab_size",
  "tie_embeddings",
  "gating",
  "routed_scaling_factor",
  NULL,
};

static const char *const mla_keys[] = {
  "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", NULL,
};

static const char *const activation_names[] = { "swiglu", "geglu", "gelu", "relu", NULL };
static const char *const dtype_names[] = { "fp32", "bf16", "fp16", "fp8", NULL };
static const int dtype_sizes[] = { 4, 2, 2, 1 };
static const char *const attention_names[] = { "gqa", "mla", NULL };
/* Pairs: the model-family alias, then the descriptive name; index / 2 is the
 * MsimGating value. */
static const char *const gating_names[] = {
  "mixtral", "softmax-renorm", "switch", "softmax-raw", "deepseek", "sigmoid-renorm", NULL,
};

/* ---- error reporting shared by the file and in-memory paths ----------- */

typedef struct
{
  const MsimSpecSource *src; /* NULL for a spec built in memory */
  const char *name;
} Where;

static gboolean fail (const Where *w, GError **error, const char *key, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

/* Always returns FALSE so callers can `return fail (...)`. */
static gboolean
fail (const Where *w, GError **error, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (w->src != NULL)
    msim_spec_source_set_error (w->src, error, key, "%s", msg);
  else
    g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "model '%s': %s%s%s",
                 w->name ? w->name : "(unnamed)", key ? key : "", key ? ": " : "", msg);
  return FALSE;
}

static gboolean
in_range (const Where *w, GError **error, const char *key, gint64 v, gint64 min, gint64 max)
{
  if (v >= min && v <= max)
    return TRUE;
  return fail (w, error, key,
               "value %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
               "]",
               v, min, max);
}

/* ---- structure ------------------------------------------------------- */

int
msim_ffn_activation_matrices (MsimFfnActivation activation)
{
  /* Gated units (SwiGLU, GEGLU) multiply an activated gate projection with
   * an up projection before the down projection: three matrices.  Plain
   * GELU/ReLU MLPs have up and down only. */
  return activation == MSIM_FFN_SWIGLU || activation == MSIM_FFN_GEGLU ? 3 : 2;
}

const char *
msim_dtype_name (MsimDtype dtype)
{
  g_return_val_if_fail ((int)dtype >= 0 && dtype <= MSIM_DTYPE_FP8, "?");
  return dtype_names[dtype];
}

const char *
msim_gating_name (MsimGating gating)
{
  g_return_val_if_fail ((int)gating >= 0 && gating <= MSIM_GATING_SIGMOID_RENORM, "?");
  return gating_names[2 * gating + 1];
}

gboolean
msim_model_spec_is_moe_layer (const MsimModelSpec *spec, int layer)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  g_return_val_if_fail (layer >= 0 && layer < spec->layers, FALSE);
  switch (spec->moe_pattern)
    {
      case MSIM_MOE_LAYERS_ALL:
        return TRUE;
      case MSIM_MOE_LAYERS_EVERY:
        return (layer + 1) % spec->moe_pattern_n == 0;
      case MSIM_MOE_LAYERS_FROM:
        return layer >= spec->moe_pattern_n;
      default:
        g_return_val_if_reached (FALSE);
    }
}

static int
count_moe_layers (MsimMoeLayerPattern pattern, int n, int layers)
{
  switch (pattern)
    {
      case MSIM_MOE_LAYERS_ALL:
        return layers;
      case MSIM_MOE_LAYERS_EVERY:
        return n > 0 ? layers / n : 0;
      case MSIM_MOE_LAYERS_FROM:
        return n < layers ? layers - n : 0;
      default:
        return 0;
    }
}

int
msim_model_spec_n_moe_layers (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return count_moe_layers (spec->moe_pattern, spec->moe_pattern_n, spec->layers);
}

char *
msim_model_spec_moe_layers_string (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);
  switch (spec->moe_pattern)
    {
      case MSIM_MOE_LAYERS_EVERY:
        return g_strdup_printf ("every-%d", spec->moe_pattern_n);
      case MSIM_MOE_LAYERS_FROM:
        return g_strdup_printf ("from-%d", spec->moe_pattern_n);
      case MSIM_MOE_LAYERS_ALL:
      default:
        return g_strdup ("all");
    }
}

/* Parses all | every-N | from-N.  N's range is checked by validation, which
 * knows the layer count. */
static gboolean
parse_moe_layers (const char *text, MsimMoeLayerPattern *pattern, int *n)
{
  gint64 v;
  if (strcmp (text, "all") == 0)
    {
      *pattern = MSIM_MOE_LAYERS_ALL;
      *n = 0;
      return TRUE;
    }
  const char *num = NULL;
  if (g_str_has_prefix (text, "every-"))
    {
      *pattern = MSIM_MOE_LAYERS_EVERY;
      num = text + strlen ("every-");
    }
  else if (g_str_has_prefix (text, "from-"))
    {
      *pattern = MSIM_MOE_LAYERS_FROM;
      num = text + strlen ("from-");
    }
  else
    return FALSE;
  /* Digits only: msim_parse_int64 would also take "1e1" or " 2". */
  if (*num == '\0' || strspn (num, "0123456789") != strlen (num) || strlen (num) > 9)
    return FALSE;
  if (!msim_parse_int64 (num, &v))
    return FALSE;
  *n = (int)v;
  return TRUE;
}

/* ---- parameters ------------------------------------------------------ */

gint64
msim_model_spec_expert_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return msim_ffn_activation_matrices (spec->ffn_activation) * spec->hidden_size
         * spec->expert_ffn_size;
}

gint64
msim_model_spec_expert_bytes (const MsimModelSpec *spec)
{
  return msim_model_spec_expert_params (spec) * spec->dtype_bytes;
}

gint64
msim_model_spec_shared_expert_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return (gint64)spec->shared_experts * msim_ffn_activation_matrices (spec->ffn_activation)
         * spec->hidden_size * spec->shared_expert_ffn_size;
}

gint64
msim_model_spec_dense_ffn_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return msim_ffn_activation_matrices (spec->ffn_activation) * spec->hidden_size
         * spec->dense_ffn_size;
}

gint64
msim_model_spec_gate_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return spec->hidden_size * spec->experts;
}

static gint64
attention_params (int attention, gint64 hidden, gint64 heads, gint64 kv_heads, gint64 head_dim,
                  gint64 q_lora, gint64 kv_lora, gint64 nope, gint64 rope, gint64 v)
{
  if (attention == MSIM_ATTENTION_MLA)
    {
      gint64 qk = nope + rope;
      gint64 q = q_lora > 0 ? hidden * q_lora + q_lora * heads * qk : hidden * heads * qk;
      gint64 kv_down = hidden * (kv_lora + rope);
      gint64 kv_up = kv_lora * heads * (nope + v);
      gint64 o = heads * v * hidden;
      return q + kv_down + kv_up + o;
    }
  return hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden;
}

gint64
msim_model_spec_attention_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return attention_params (spec->attention, spec->hidden_size, spec->heads, spec->kv_heads,
                           spec->head_dim, spec->q_lora_rank, spec->kv_lora_rank,
                           spec->qk_nope_head_dim, spec->qk_rope_head_dim, spec->v_head_dim);
}

/* Attention, its norms and the block's two pre-norms: what every block has. */
static gint64
block_base_params (const MsimModelSpec *spec)
{
  gint64 norms = 2 * spec->hidden_size;
  /* MLA normalises its compressed latents (q_a_layernorm when queries are
   * compressed, kv_a_layernorm always). */
  if (spec->attention == MSIM_ATTENTION_MLA)
    norms += spec->q_lora_rank + spec->kv_lora_rank;
  return msim_model_spec_attention_params (spec) + norms;
}

static gint64
layer_params (const MsimModelSpec *spec, int layer, int routed)
{
  gint64 p = block_base_params (spec);
  if (msim_model_spec_is_moe_layer (spec, layer))
    p += routed * msim_model_spec_expert_params (spec) + msim_model_spec_shared_expert_params (spec)
         + msim_model_spec_gate_params (spec);
  else
    p += msim_model_spec_dense_ffn_params (spec);
  return p;
}

gint64
msim_model_spec_layer_params (const MsimModelSpec *spec, int layer)
{
  g_return_val_if_fail (spec != NULL, 0);
  g_return_val_if_fail (layer >= 0 && layer < spec->layers, 0);
  return layer_params (spec, layer, spec->experts);
}

gint64
msim_model_spec_embedding_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return spec->vocab_size * spec->hidden_size * (spec->tie_embeddings ? 1 : 2);
}

static gint64
model_params (const MsimModelSpec *spec, gboolean active)
{
  gint64 total = 0;
  for (int l = 0; l < spec->layers; l++)
    total += layer_params (spec, l, active ? spec->top_k : spec->experts);
  /* The final norm before the output projection. */
  return total + msim_model_spec_embedding_params (spec) + spec->hidden_size;
}

gint64
msim_model_spec_total_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return model_params (spec, FALSE);
}

gint64
msim_model_spec_active_params (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return model_params (spec, TRUE);
}

/* ---- per-token work -------------------------------------------------- */

double
msim_model_spec_attention_proj_flops_per_token (const MsimModelSpec *spec)
{
  return 2.0 * (double)msim_model_spec_attention_params (spec);
}

double
msim_model_spec_attention_score_flops_per_token (const MsimModelSpec *spec, double context_tokens)
{
  g_return_val_if_fail (spec != NULL, 0.0);
  g_return_val_if_fail (context_tokens >= 0.0, 0.0);
  if (spec->attention == MSIM_ATTENTION_MLA)
    /* Non-absorbed MLA: keys have nope + rope dims, values v dims per head.
     * The weight-absorbed decode form trades these for kv_lora_rank-wide
     * dot products; the roofline of a decode step is bound by reading the
     * cache anyway, so the simpler count is kept. */
    return 2.0 * spec->heads
           * (double)(spec->qk_nope_head_dim + spec->qk_rope_head_dim + spec->v_head_dim)
           * context_tokens;
  return 4.0 * spec->heads * (double)spec->head_dim * context_tokens;
}

double
msim_model_spec_attention_flops_per_token (const MsimModelSpec *spec, double context_tokens)
{
  return msim_model_spec_attention_proj_flops_per_token (spec)
         + msim_model_spec_attention_score_flops_per_token (spec, context_tokens);
}

double
msim_model_spec_gate_flops_per_token (const MsimModelSpec *spec)
{
  return 2.0 * (double)msim_model_spec_gate_params (spec);
}

double
msim_model_spec_expert_flops_per_token (const MsimModelSpec *spec)
{
  return 2.0 * (double)msim_model_spec_expert_params (spec);
}

double
msim_model_spec_shared_expert_flops_per_token (const MsimModelSpec *spec)
{
  return 2.0 * (double)msim_model_spec_shared_expert_params (spec);
}

double
msim_model_spec_dense_ffn_flops_per_token (const MsimModelSpec *spec)
{
  return 2.0 * (double)msim_model_spec_dense_ffn_params (spec);
}

gint64
msim_model_spec_activation_bytes_per_token (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  return spec->hidden_size * spec->dtype_bytes;
}

gint64
msim_model_spec_kv_cache_bytes_per_token (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, 0);
  if (spec->attention == MSIM_ATTENTION_MLA)
    return (gint64)(spec->kv_lora_rank + spec->qk_rope_head_dim) * spec->dtype_bytes;
  return 2 * (gint64)spec->kv_heads * spec->head_dim * spec->dtype_bytes;
}

/* ---- validation ------------------------------------------------------- */

/* Everything a spec must satisfy, whichever way it was built.  Range checks
 * repeat what the key-file getters already enforce, so that in-memory specs
 * get them too; the cross-field checks are only here. */
static gboolean
validate (const MsimModelSpec *s, const Where *w, GError **error)
{
  if (s->name == NULL || *s->name == '\0')
    return fail (w, error, "name", "must not be empty");
  if (!in_range (w, error, "layers", s->layers, 1, MAX_LAYERS)
      || !in_range (w, error, "experts", s->experts, 1, MAX_EXPERTS)
      || !in_range (w, error, "shared_experts", s->shared_experts, 0, MAX_SHARED_EXPERTS)
      || !in_range (w, error, "top_k", s->top_k, 1, MAX_EXPERTS)
      || !in_range (w, error, "expert_groups", s->expert_groups, 1, MAX_EXPERTS)
      || !in_range (w, error, "topk_groups", s->topk_groups, 1, MAX_EXPERTS)
      || !in_range (w, error, "hidden_size", s->hidden_size, 1, MAX_HIDDEN)
      || !in_range (w, error, "expert_ffn_size", s->expert_ffn_size, 1, MAX_FFN)
      || !in_range (w, error, "heads", s->heads, 1, MAX_HEADS)
      || !in_range (w, error, "vocab_size", s->vocab_size, 0, MAX_VOCAB))
    return FALSE;
  if (s->shared_experts > 0
      && !in_range (w, error, "shared_expert_ffn_size", s->shared_expert_ffn_size, 1, MAX_FFN))
    return FALSE;
  if ((int)s->ffn_activation < 0 || s->ffn_activation > MSIM_FFN_RELU)
    return fail (w, error, "ffn_activation", "invalid value %d", (int)s->ffn_activation);
  if ((int)s->dtype < 0 || s->dtype > MSIM_DTYPE_FP8)
    return fail (w, error, "dtype", "invalid value %d", (int)s->dtype);
  if (s->dtype_bytes != dtype_sizes[s->dtype])
    return fail (w, error, "dtype", "%s has %d bytes per element, not %d", dtype_names[s->dtype],
                 dtype_sizes[s->dtype], s->dtype_bytes);
  if ((int)s->gating < 0 || s->gating > MSIM_GATING_SIGMOID_RENORM)
    return fail (w, error, "gating", "invalid value %d", (int)s->gating);
  if (!(s->routed_scaling_factor > 0.0 && s->routed_scaling_factor <= MAX_SCALING))
    return fail (w, error, "routed_scaling_factor", "value %g is out of range (0, %g]",
                 s->routed_scaling_factor, MAX_SCALING);

  if (s->top_k > s->experts)
    return fail (w, error, "top_k", "top_k %d exceeds the %d routed experts", s->top_k, s->experts);
  if (s->expert_groups > s->experts || s->experts % s->expert_groups != 0)
    return fail (w, error, "expert_groups", "%d routed experts do not split into %d equal groups",
                 s->experts, s->expert_groups);
  if (s->topk_groups > s->expert_groups)
    return fail (w, error, "topk_groups", "topk_groups %d exceeds expert_groups %d", s->topk_groups,
                 s->expert_groups);
  int reachable = s->topk_groups * (s->experts / s->expert_groups);
  if (s->top_k > reachable)
    return fail (w, error, "top_k",
                 "top_k %d exceeds the %d experts in the %d groups a token may use", s->top_k,
                 reachable, s->topk_groups);

  switch (s->moe_pattern)
    {
      case MSIM_MOE_LAYERS_ALL:
        break;
      case MSIM_MOE_LAYERS_EVERY:
        if (s->moe_pattern_n < 1 || s->moe_pattern_n > s->layers)
          return fail (w, error, "moe_layers", "every-%d selects no block of a %d-layer model",
                       s->moe_pattern_n, s->layers);
        break;
      case MSIM_MOE_LAYERS_FROM:
        if (s->moe_pattern_n < 0 || s->moe_pattern_n >= s->layers)
          return fail (w, error, "moe_layers", "from-%d leaves no MoE block in a %d-layer model",
                       s->moe_pattern_n, s->layers);
        break;
      default:
        return fail (w, error, "moe_layers", "invalid pattern %d", (int)s->moe_pattern);
    }
  int dense = s->layers - count_moe_layers (s->moe_pattern, s->moe_pattern_n, s->layers);
  if (dense > 0 && s->dense_ffn_size <= 0)
    {
      g_autofree char *pat = msim_model_spec_moe_layers_string (s);
      return fail (w, error, "dense_ffn_size",
                   "required: moe_layers = %s leaves %d of %d blocks dense", pat, dense, s->layers);
    }
  if (!in_range (w, error, "dense_ffn_size", s->dense_ffn_size, 0, MAX_FFN))
    return FALSE;

  if (s->attention == MSIM_ATTENTION_GQA)
    {
      if (!in_range (w, error, "kv_heads", s->kv_heads, 1, s->heads))
        return FALSE;
      if (s->heads % s->kv_heads != 0)
        return fail (w, error, "kv_heads",
                     "heads %d is not divisible by kv_heads %d (each key/value head serves an "
                     "equal group of query heads)",
                     s->heads, s->kv_heads);
      if (!in_range (w, error, "head_dim", s->head_dim, 1, MAX_HEAD_DIM))
        return FALSE;
    }
  else if (s->attention == MSIM_ATTENTION_MLA)
    {
      if (!in_range (w, error, "q_lora_rank", s->q_lora_rank, 0, MAX_LORA_RANK)
          || !in_range (w, error, "kv_lora_rank", s->kv_lora_rank, 1, MAX_LORA_RANK)
          || !in_range (w, error, "qk_nope_head_dim", s->qk_nope_head_dim, 0, MAX_HEAD_DIM)
          || !in_range (w, error, "qk_rope_head_dim", s->qk_rope_head_dim, 0, MAX_HEAD_DIM)
          || !in_range (w, error, "v_head_dim", s->v_head_dim, 1, MAX_HEAD_DIM))
        return FALSE;
      if (s->qk_nope_head_dim + s->qk_rope_head_dim < 1)
        return fail (w, error, "qk_nope_head_dim",
                     "qk_nope_head_dim + qk_rope_head_dim must be at least 1");
      if (s->kv_heads != s->heads)
        return fail (w, error, "kv_heads", "mla has one key/value head per query head (%d), not %d",
                     s->heads, s->kv_heads);
      if (s->head_dim != s->qk_nope_head_dim + s->qk_rope_head_dim)
        return fail (w, error, "head_dim", "must equal qk_nope_head_dim + qk_rope_head_dim (%d)",
                     s->qk_nope_head_dim + s->qk_rope_head_dim);
    }
  else
    return fail (w, error, "attention", "invalid value %d", (int)s->attention);

  /* The per-key limits alone allow products far beyond gint64 (hidden 1e6 x
   * ffn 1e7 x 65536 experts x 10000 layers), so bound the total in double
   * before anything computes it in integers. */
  double matrices = msim_ffn_activation_matrices (s->ffn_activation);
  double h = (double)s->hidden_size;
  double attn = (double)attention_params (s->attention, s->hidden_size, s->heads, s->kv_heads,
                                          s->head_dim, s->q_lora_rank, s->kv_lora_rank,
                                          s->qk_nope_head_dim, s->qk_rope_head_dim, s->v_head_dim);
  double moe_layer = matrices * h
                         * ((double)s->experts * s->expert_ffn_size
                            + (double)s->shared_experts * s->shared_expert_ffn_size)
                     + h * s->experts;
  double n_moe = count_moe_layers (s->moe_pattern, s->moe_pattern_n, s->layers);
  double estimate = s->layers * (attn + 2 * h + s->q_lora_rank + s->kv_lora_rank)
                    + n_moe * moe_layer + dense * matrices * h * (double)s->dense_ffn_size
                    + 2.0 * (double)s->vocab_size * h + h;
  if (!(estimate <= MAX_TOTAL_PARAMS))
    return fail (w, error, NULL, "the model would have %.3g parameters, more than the limit %g",
                 estimate, MAX_TOTAL_PARAMS);
  return TRUE;
}

gboolean
msim_model_spec_validate (const MsimModelSpec *spec, GError **error)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  Where w = { NULL, spec->name };
  return validate (spec, &w, error);
}

/* ---- loading ---------------------------------------------------------- */

void
msim_model_spec_free (MsimModelSpec *spec)
{
  if (spec == NULL)
    return;
  g_free (spec->name);
  g_free (spec);
}

MsimModelSpec *
msim_model_spec_copy (const MsimModelSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);
  MsimModelSpec *copy = g_memdup2 (spec, sizeof *spec);
  copy->name = g_strdup (spec->name);
  return copy;
}

#define GET_INT(key, required, def, min, max, field)                                               \
  do                                                                                               \
    {                                                                                              \
      gint64 v_;                                                                                   \
      if (!msim_spec_source_get_int64 (src, key, required, def, min, max, &v_, error))             \
        return NULL;                                                                               \
      field = v_;                                                                                  \
    }                                                                                              \
  while (0)

static MsimModelSpec *
parse (const MsimSpecSource *src, GError **error)
{
  if (!msim_spec_source_check_keys (src, model_keys, error))
    return NULL;
  g_autoptr (MsimModelSpec) s = g_new0 (MsimModelSpec, 1);
  Where w = { src, NULL };

  if (!msim_spec_source_get_string (src, "name", FALSE, msim_spec_source_default_name (src),
                                    &s->name, error))
    return NULL;
  w.name = s->name;
  if (*s->name == '\0')
    {
      fail (&w, error, "name", "must not be empty");
      return NULL;
    }

  GET_INT ("layers", TRUE, 0, 1, MAX_LAYERS, s->layers);

  g_autofree char *pattern = NULL;
  if (!msim_spec_source_get_string (src, "moe_layers", FALSE, "all", &pattern, error))
    return NULL;
  if (!parse_moe_layers (pattern, &s->moe_pattern, &s->moe_pattern_n))
    {
      fail (&w, error, "moe_layers", "expected all, every-N or from-N, got '%s'", pattern);
      return NULL;
    }

  GET_INT ("experts", TRUE, 0, 1, MAX_EXPERTS, s->experts);
  GET_INT ("shared_experts", FALSE, 0, 0, MAX_SHARED_EXPERTS, s->shared_experts);
  GET_INT ("top_k", TRUE, 0, 1, MAX_EXPERTS, s->top_k);
  GET_INT ("expert_groups", FALSE, 1, 1, MAX_EXPERTS, s->expert_groups);
  GET_INT ("topk_groups", FALSE, 1, 1, MAX_EXPERTS, s->topk_groups);
  GET_INT ("hidden_size", TRUE, 0, 1, MAX_HIDDEN, s->hidden_size);
  GET_INT ("expert_ffn_size", TRUE, 0, 1, MAX_FFN, s->expert_ffn_size);
  GET_INT ("shared_expert_ffn_size", FALSE, s->expert_ffn_size, 1, MAX_FFN,
           s->shared_expert_ffn_size);
  /* Absent means "no dense blocks"; validation insists on it when the
   * pattern leaves some. */
  GET_INT ("dense_ffn_size", FALSE, 0, 1, MAX_FFN, s->dense_ffn_size);

  int choice = 0;
  if (!msim_spec_source_get_choice (src, "ffn_activation", FALSE, MSIM_FFN_SWIGLU, activation_names,
                                    &choice, error))
    return NULL;
  s->ffn_activation = choice;
  if (!msim_spec_source_get_choice (src, "dtype", TRUE, 0, dtype_names, &choice, error))
    return NULL;
  s->dtype = choice;
  s->dtype_bytes = dtype_sizes[choice];

  if (!msim_spec_source_get_choice (src, "attention", FALSE, MSIM_ATTENTION_GQA, attention_names,
                                    &choice, error))
    return NULL;
  s->attention = choice;
  GET_INT ("heads", TRUE, 0, 1, MAX_HEADS, s->heads);
  if (s->attention == MSIM_ATTENTION_GQA)
    {
      for (const char *const *k = mla_keys; *k; k++)
        if (msim_spec_source_has_key (src, *k))
          {
            fail (&w, error, *k, "only used with attention = mla");
            return NULL;
          }
      GET_INT ("kv_heads", FALSE, s->heads, 1, MAX_HEADS, s->kv_heads);
      if (msim_spec_source_has_key (src, "head_dim"))
        GET_INT ("head_dim", TRUE, 0, 1, MAX_HEAD_DIM, s->head_dim);
      else if (s->hidden_size % s->heads != 0 || s->hidden_size / s->heads > MAX_HEAD_DIM)
        {
          fail (&w, error, "head_dim",
                "required: hidden_size %" G_GINT64_FORMAT " is not a usable multiple of "
                "heads %d",
                s->hidden_size, s->heads);
          return NULL;
        }
      else
        s->head_dim = (int)(s->hidden_size / s->heads);
    }
  else
    {
      if (msim_spec_source_has_key (src, "head_dim"))
        {
          fail (&w, error, "head_dim",
                "not used with attention = mla (set qk_nope_head_dim, qk_rope_head_dim and "
                "v_head_dim)");
          return NULL;
        }
      GET_INT ("kv_heads", FALSE, s->heads, 1, MAX_HEADS, s->kv_heads);
      GET_INT ("q_lora_rank", FALSE, 0, 0, MAX_LORA_RANK, s->q_lora_rank);
      GET_INT ("kv_lora_rank", TRUE, 0, 1, MAX_LORA_RANK, s->kv_lora_rank);
      GET_INT ("qk_nope_head_dim", TRUE, 0, 0, MAX_HEAD_DIM, s->qk_nope_head_dim);
      GET_INT ("qk_rope_head_dim", TRUE, 0, 0, MAX_HEAD_DIM, s->qk_rope_head_dim);
      GET_INT ("v_head_dim", TRUE, 0, 1, MAX_HEAD_DIM, s->v_head_dim);
      s->head_dim = s->qk_nope_head_dim + s->qk_rope_head_dim;
    }

  GET_INT ("vocab_size", FALSE, 0, 0, MAX_VOCAB, s->vocab_size);
  if (!msim_spec_source_get_bool (src, "tie_embeddings", FALSE, FALSE, &s->tie_embeddings, error))
    return NULL;
  if (!msim_spec_source_get_choice (src, "gating", FALSE, 0, gating_names, &choice, error))
    return NULL;
  s->gating = choice / 2;
  if (!msim_spec_source_get_double (src, "routed_scaling_factor", FALSE, 1.0, 1e-9, MAX_SCALING,
                                    &s->routed_scaling_factor, error))
    return NULL;

  if (!validate (s, &w, error))
    return NULL;
  return g_steal_pointer (&s);
}

static gpointer
parse_any (const MsimSpecSource *src, GError **error)
{
  return parse (src, error);
}

MsimModelSpec *
msim_model_spec_new_from_ini (const MsimIni *ini, const char *group, GError **error)
{
  return msim_spec_new_from_ini (&model_kind, parse_any, ini, group, error);
}

MsimModelSpec *
msim_model_spec_load_file (const char *path, GError **error)
{
  return msim_spec_load_file (&model_kind, parse_any, path, error);
}

MsimModelSpec *
msim_model_spec_load_preset (const char *name, GError **error)
{
  return msim_spec_load_preset (&model_kind, parse_any, name, error);
}

char **
msim_model_spec_list_presets (void)
{
  return msim_spec_list_presets (&model_kind);
}
