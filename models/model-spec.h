#pragma once

/*
 * MsimModelSpec: the shape of a Mixture-of-Experts transformer, as much of it
 * as routing, placement, communication and a roofline compute model need.
 *
 * A spec is read from a [model] group (keys below) or from a preset file
 * `models/presets/NAME.ini`.  In a config, the group may say
 * `preset = NAME` or `include = FILE`; keys written next to it override the
 * preset's.  Unknown keys are errors, and every error names the file, line,
 * group and key it is about.
 *
 * [model] keys (required unless a default is given):
 *   name                    free text; default: the preset name or file stem
 *   layers                  transformer blocks, 1..10000
 *   moe_layers              which blocks have an MoE FFN (default all):
 *                             all      every block
 *                             every-N  blocks l (0-based) with (l + 1) % N == 0,
 *                                      i.e. every-2 = blocks 1, 3, 5, ...
 *                                      (Megatron-DeepSpeed --expert-interval,
 *                                      Switch sparse_step 2, Qwen decoder_sparse_step)
 *                             from-N   blocks 0..N-1 dense, MoE from block N on
 *                                      (DeepSeek first_k_dense_replace)
 *   experts                 routed experts per MoE layer, 1..65536
 *   shared_experts          always-active experts per MoE layer (default 0)
 *   top_k                   routed experts per token, 1..experts
 *   expert_groups           routed experts split into this many groups for
 *   topk_groups             group-limited routing: a token picks its top_k
 *                           among the best topk_groups groups (DeepSeek-V3
 *                           n_group / topk_group); defaults 1 and 1 (no limit)
 *   hidden_size             model width, 1..1e6
 *   expert_ffn_size         intermediate size of one routed expert
 *   shared_expert_ffn_size  intermediate size of one shared expert
 *                           (default expert_ffn_size)
 *   dense_ffn_size          intermediate size of the FFN of non-MoE blocks;
 *                           required when moe_layers leaves dense blocks
 *   ffn_activation          swiglu | geglu (3 matrices: gate, up, down) or
 *                           gelu | relu (2 matrices: up, down); default swiglu
 *   dtype                   fp32 | bf16 | fp16 | fp8: weights and activations
 *   attention               gqa (default; MHA when kv_heads == heads) | mla
 *   heads                   query heads
 *   kv_heads                key/value heads, divides heads (gqa; default heads)
 *   head_dim                (gqa) default hidden_size / heads
 *   q_lora_rank             (mla) query compression rank, 0 = none (default 0)
 *   kv_lora_rank            (mla) key/value latent rank
 *   qk_nope_head_dim        (mla) per-head query/key dims without RoPE
 *   qk_rope_head_dim        (mla) per-head query/key dims with RoPE
 *   v_head_dim              (mla) per-head value dims
 *   vocab_size              0 = embeddings not modelled (default 0)
 *   tie_embeddings          output projection shares the input embedding
 *                           (default false)
 *   gating                  how the chosen experts' weights are formed:
 *                             mixtral | softmax-renorm  softmax, top-k,
 *                                       renormalised to sum 1
 *                             switch | softmax-raw      softmax, top-k,
 *                                       raw probabilities (Switch top-1,
 *                                       DeepSeek-V2, Qwen1.5-MoE)
 *                             deepseek | sigmoid-renorm sigmoid scores, top-k,
 *                                       renormalised, times
 *                                       routed_scaling_factor (DeepSeek-V3)
 *                           default mixtral
 *   routed_scaling_factor   multiplies routed expert weights (default 1)
 *
 * Counting conventions (all documented at the functions): parameters are
 * weight-matrix elements; biases, positional embeddings and the small
 * per-model gates some models add (Qwen's shared-expert gate, DeepSeek-V3's
 * score-correction bias) are ignored, each below 0.1 % of the total.  RMSNorm
 * or LayerNorm scales are counted (hidden_size each).  FLOPs are 2 per
 * multiply-add, forward pass only; elementwise work (activations, softmax,
 * norms) is not counted in the GEMM FLOPs.
 */

#include <glib.h>

#include "ini.h"

G_BEGIN_DECLS

typedef enum
{
  MSIM_MOE_LAYERS_ALL,
  MSIM_MOE_LAYERS_EVERY, /* every-N: (l + 1) % N == 0 */
  MSIM_MOE_LAYERS_FROM,  /* from-N: l >= N */
} MsimMoeLayerPattern;

typedef enum
{
  MSIM_FFN_SWIGLU,
  MSIM_FFN_GEGLU,
  MSIM_FFN_GELU,
  MSIM_FFN_RELU,
} MsimFfnActivation;

typedef enum
{
  MSIM_DTYPE_FP32,
  MSIM_DTYPE_BF16,
  MSIM_DTYPE_FP16,
  MSIM_DTYPE_FP8,
} MsimDtype;

typedef enum
{
  MSIM_ATTENTION_GQA,
  MSIM_ATTENTION_MLA,
} MsimAttentionKind;

typedef enum
{
  MSIM_GATING_SOFTMAX_RENORM,
  MSIM_GATING_SOFTMAX_RAW,
  MSIM_GATING_SIGMOID_RENORM,
} MsimGating;

/*
 * The struct is public because the step runner reads these fields in its
 * per-layer loop and they are plain data; treat a loaded spec as read-only.
 * Code that fills one in memory must call msim_model_spec_validate() before
 * using it: the derived functions assume a valid spec.
 */
typedef struct
{
  char *name;
  int layers;
  MsimMoeLayerPattern moe_pattern;
  int moe_pattern_n; /* N of every-N / from-N; 0 for all */
  int experts;
  int shared_experts;
  int top_k;
  int expert_groups;
  int topk_groups;
  gint64 hidden_size;
  gint64 expert_ffn_size;
  gint64 shared_expert_ffn_size;
  gint64 dense_ffn_size; /* 0 when every block is MoE */
  MsimFfnActivation ffn_activation;
  MsimDtype dtype;
  int dtype_bytes;
  MsimAttentionKind attention;
  int heads;
  int kv_heads; /* == heads for mla */
  int head_dim; /* gqa: per head; mla: qk_nope_head_dim + qk_rope_head_dim */
  int q_lora_rank;
  int kv_lora_rank;
  int qk_nope_head_dim;
  int qk_rope_head_dim;
  int v_head_dim;
  gint64 vocab_size;
  gboolean tie_embeddings;
  MsimGating gating;
  double routed_scaling_factor;
} MsimModelSpec;

/* ---- loading ---------------------------------------------------------- */

/* Loads models/presets/@name.ini under msim_data_dir().  An unknown name is
 * an error that lists the known presets.  (transfer full) */
MsimModelSpec *msim_model_spec_load_preset (const char *name, GError **error);

/* Loads a model file: a key file whose only group is [model].  (transfer full) */
MsimModelSpec *msim_model_spec_load_file (const char *path, GError **error);

/* Reads [@group] of a larger config (normally "model"), following
 * `preset = NAME`.  Other groups of @ini are not looked at.  (transfer full) */
MsimModelSpec *msim_model_spec_new_from_ini (const MsimIni *ini, const char *group, GError **error);

/* Sorted names of the model presets (transfer full, g_strfreev). */
char **msim_model_spec_list_presets (void);

MsimModelSpec *msim_model_spec_copy (const MsimModelSpec *spec);
void msim_model_spec_free (MsimModelSpec *spec);

/* Checks ranges and consistency of a spec built in memory (loaders already
 * do this, with file and line in the message).  Errors read
 * "model 'NAME': key: what is wrong". */
gboolean msim_model_spec_validate (const MsimModelSpec *spec, GError **error);

/* ---- structure -------------------------------------------------------- */

/* TRUE when block @layer (0-based, 0 <= layer < layers) has an MoE FFN. */
gboolean msim_model_spec_is_moe_layer (const MsimModelSpec *spec, int layer);
int msim_model_spec_n_moe_layers (const MsimModelSpec *spec);

/* The moe_layers value: "all", "every-2", "from-3" (transfer full). */
char *msim_model_spec_moe_layers_string (const MsimModelSpec *spec);

/* Weight matrices of one FFN: 3 for gated activations (gate, up, down),
 * 2 otherwise (up, down). */
int msim_ffn_activation_matrices (MsimFfnActivation activation);

const char *msim_dtype_name (MsimDtype dtype);
const char *msim_gating_name (MsimGating gating);

/* ---- parameters (weight elements) and bytes --------------------------- */

/* One routed expert: matrices * hidden_size * expert_ffn_size.
 * Mixtral-8x7B: 3 * 4096 * 14336 = 176,160,768. */
gint64 msim_model_spec_expert_params (const MsimModelSpec *spec);
/* expert_params * dtype_bytes: what moving or caching one expert costs. */
gint64 msim_model_spec_expert_bytes (const MsimModelSpec *spec);
/* All shared experts of one MoE layer together:
 * shared_experts * matrices * hidden_size * shared_expert_ffn_size. */
gint64 msim_model_spec_shared_expert_params (const MsimModelSpec *spec);
/* FFN of one dense block: matrices * hidden_size * dense_ffn_size. */
gint64 msim_model_spec_dense_ffn_params (const MsimModelSpec *spec);
/* Router of one MoE layer: hidden_size * experts. */
gint64 msim_model_spec_gate_params (const MsimModelSpec *spec);
/* Attention projections of one block.
 *   gqa: hidden*heads*head_dim (Q) + 2*hidden*kv_heads*head_dim (K, V)
 *        + heads*head_dim*hidden (O)
 *   mla: Q: hidden*q_lora + q_lora*heads*(nope+rope), or hidden*heads*(nope+rope)
 *        when q_lora_rank = 0; KV down: hidden*(kv_lora + rope);
 *        KV up: kv_lora*heads*(nope + v); O: heads*v*hidden
 *        (DeepSeek-V2 paper section 2.1; its latent norms are counted in
 *        layer_params). */
gint64 msim_model_spec_attention_params (const MsimModelSpec *spec);
/* Every parameter of block @layer: attention, norms, and its FFN (dense, or
 * all routed + shared experts + gate). */
gint64 msim_model_spec_layer_params (const MsimModelSpec *spec, int layer);
/* Input embedding, output projection unless tied, final norm; 0 when
 * vocab_size is 0. */
gint64 msim_model_spec_embedding_params (const MsimModelSpec *spec);
/* Whole model.  Mixtral-8x7B: 46,702,792,704 (model card: 46.7B). */
gint64 msim_model_spec_total_params (const MsimModelSpec *spec);
/* Parameters one token touches: as total, with top_k routed experts per MoE
 * layer instead of all.  Includes both embedding matrices; model cards
 * differ on that (Mixtral's 12.9B includes them, DeepSeek-V2-Lite's 2.4B does
 * not), so compare with care. */
gint64 msim_model_spec_active_params (const MsimModelSpec *spec);

/* ---- per-token work --------------------------------------------------- */

/* FLOPs of one token through one block's attention projections:
 * 2 * attention_params. */
double msim_model_spec_attention_proj_flops_per_token (const MsimModelSpec *spec);
/* FLOPs of one token's attention scores and weighted values against
 * @context_tokens keys (itself included):
 *   gqa: 4 * heads * head_dim * context   (QK^T and PV, 2 FLOPs per MAC)
 *   mla: 2 * heads * (nope + rope + v) * context, the non-absorbed form.
 * For a causal prefill of T tokens the mean context is (T + 1) / 2. */
double msim_model_spec_attention_score_flops_per_token (const MsimModelSpec *spec,
                                                        double context_tokens);
/* Projections plus scores. */
double msim_model_spec_attention_flops_per_token (const MsimModelSpec *spec, double context_tokens);
/* Router GEMM: 2 * hidden_size * experts. */
double msim_model_spec_gate_flops_per_token (const MsimModelSpec *spec);
/* One token through one routed expert: 2 * expert_params, e.g. SwiGLU
 * 2 * 3 * hidden * ffn.  A token costs top_k of these per MoE layer. */
double msim_model_spec_expert_flops_per_token (const MsimModelSpec *spec);
/* One token through all shared experts of a layer: 2 * shared_expert_params. */
double msim_model_spec_shared_expert_flops_per_token (const MsimModelSpec *spec);
/* One token through a dense block's FFN: 2 * dense_ffn_params. */
double msim_model_spec_dense_ffn_flops_per_token (const MsimModelSpec *spec);

/* Bytes of one token's hidden state, the payload of dispatch and combine:
 * hidden_size * dtype_bytes. */
gint64 msim_model_spec_activation_bytes_per_token (const MsimModelSpec *spec);
/* KV-cache bytes one token adds to one block:
 *   gqa: 2 * kv_heads * head_dim * dtype_bytes
 *   mla: (kv_lora_rank + qk_rope_head_dim) * dtype_bytes (the cached latent). */
gint64 msim_model_spec_kv_cache_bytes_per_token (const MsimModelSpec *spec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimModelSpec, msim_model_spec_free)

G_END_DECLS
