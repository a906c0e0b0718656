#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gpu-spec.h"
#include "ini.h"
#include "model-spec.h"
#include "msim-check.h"
#include "msim-error.h"

/* ---- helpers --------------------------------------------------------- */

static MsimModelSpec *
model_from_text (const char *text, GError **error)
{
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "test.ini", error);
  if (ini == NULL)
    return NULL;
  return msim_model_spec_new_from_ini (ini, "model", error);
}

static MsimGpuSpec *
gpu_from_text (const char *text, GError **error)
{
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "test.ini", error);
  if (ini == NULL)
    return NULL;
  return msim_gpu_spec_new_from_ini (ini, "gpu", error);
}

static MsimModelSpec *
preset (const char *name)
{
  GError *error = NULL;
  MsimModelSpec *spec = msim_model_spec_load_preset (name, &error);
  ck_assert_msg (spec != NULL, "preset %s: %s", name, error ? error->message : "?");
  return spec;
}

static MsimGpuSpec *
gpu_preset (const char *name)
{
  GError *error = NULL;
  MsimGpuSpec *spec = msim_gpu_spec_load_preset (name, &error);
  ck_assert_msg (spec != NULL, "gpu preset %s: %s", name, error ? error->message : "?");
  return spec;
}

static void
assert_error (GError *error, const char *fragment)
{
  ck_assert_msg (error != NULL, "expected an error containing '%s'", fragment);
  ck_assert_msg (strstr (error->message, fragment) != NULL, "message '%s' lacks '%s'",
                 error->message, fragment);
  ck_assert_int_eq (msim_error_exit_status (error), 2);
}

/* Loads @text as a [model] and expects an error holding every fragment. */
static void
expect_model_error (const char *text, const char *fragment1, const char *fragment2)
{
  GError *error = NULL;
  MsimModelSpec *spec = model_from_text (text, &error);
  ck_assert_msg (spec == NULL, "accepted: %s", text);
  assert_error (error, fragment1);
  if (fragment2 != NULL)
    assert_error (error, fragment2);
  g_error_free (error);
}

static void
expect_gpu_error (const char *text, const char *fragment1, const char *fragment2)
{
  GError *error = NULL;
  MsimGpuSpec *spec = gpu_from_text (text, &error);
  ck_assert_msg (spec == NULL, "accepted: %s", text);
  assert_error (error, fragment1);
  if (fragment2 != NULL)
    assert_error (error, fragment2);
  g_error_free (error);
}

/* A small valid model of 9 lines; the validation tests drop one key and
 * append one line (see model_text). */
#define BASE_MODEL                                                                                 \
  "[model]\n"                                                                                      \
  "name = tiny\n"                                                                                  \
  "layers = 4\n"                                                                                   \
  "experts = 8\n"                                                                                  \
  "top_k = 2\n"                                                                                    \
  "hidden_size = 64\n"                                                                             \
  "expert_ffn_size = 128\n"                                                                        \
  "dtype = bf16\n"                                                                                 \
  "heads = 4\n"

#define BASE_GPU                                                                                   \
  "[gpu]\n"                                                                                        \
  "name = toy\n"                                                                                   \
  "peak_flops = 100e12\n"                                                                          \
  "hbm_bandwidth_Bps = 1e12\n"                                                                     \
  "hbm_capacity_bytes = 1073741824\n"                                                              \
  "launch_overhead_s = 5e-6\n"                                                                     \
  "gemm_flops_efficiency = 0.5\n"                                                                  \
  "gemm_bandwidth_efficiency = 0.8\n"                                                              \
  "grouped_gemm_flops_efficiency = 0.25\n"                                                         \
  "grouped_gemm_bandwidth_efficiency = 0.5\n"                                                      \
  "attention_flops_efficiency = 1\n"                                                               \
  "attention_bandwidth_efficiency = 1\n"                                                           \
  "elementwise_flops_efficiency = 0.1\n"                                                           \
  "elementwise_bandwidth_efficiency = 0.9\n"

/* ---- presets --------------------------------------------------------- */

static const char *const model_presets[] = {
  "deepseek-v2-lite", "deepseek-v3",    "gpt-moe-16e",  "gpt-moe-32e",
  "gpt-moe-64e",      "gpt-moe-8e",     "mixtral-8x7b", "qwen-moe",
  "switch-base-128",  "switch-base-64", NULL,
};

START_TEST (test_preset_list)
{
  g_auto (GStrv) names = msim_model_spec_list_presets ();
  ck_assert_int_eq (g_strv_length (names), g_strv_length ((char **)model_presets));
  for (int i = 0; model_presets[i]; i++)
    ck_assert_str_eq (names[i], model_presets[i]);
  g_auto (GStrv) gpus = msim_gpu_spec_list_presets ();
  ck_assert_int_eq (g_strv_length (gpus), 2);
  ck_assert_str_eq (gpus[0], "a100-sxm4-80gb");
  ck_assert_str_eq (gpus[1], "h100-sxm5-80gb");
}
END_TEST

START_TEST (test_every_preset_loads)
{
  for (int i = 0; model_presets[i]; i++)
    {
      g_autoptr (MsimModelSpec) spec = preset (model_presets[i]);
      ck_assert_str_eq (spec->name, model_presets[i]);
      ck_assert (msim_model_spec_validate (spec, NULL));
      ck_assert_int_eq (spec->dtype_bytes, 2);
      ck_assert_int_gt (msim_model_spec_n_moe_layers (spec), 0);
      /* Loading the file by path gives the same spec. */
      g_autofree char *file = g_strconcat ("models/presets/", model_presets[i], ".ini", NULL);
      g_autofree char *path = msim_test_path (file);
      g_autoptr (MsimModelSpec) again = msim_model_spec_load_file (path, NULL);
      ck_assert_ptr_nonnull (again);
      ck_assert_int_eq (msim_model_spec_total_params (again), msim_model_spec_total_params (spec));
    }
}
END_TEST

START_TEST (test_mixtral)
{
  g_autoptr (MsimModelSpec) m = preset ("mixtral-8x7b");
  ck_assert_int_eq (m->layers, 32);
  ck_assert_int_eq (m->experts, 8);
  ck_assert_int_eq (m->top_k, 2);
  ck_assert_int_eq (m->hidden_size, 4096);
  ck_assert_int_eq (m->expert_ffn_size, 14336);
  ck_assert_int_eq (m->heads, 32);
  ck_assert_int_eq (m->kv_heads, 8);
  ck_assert_int_eq (m->head_dim, 128);
  ck_assert_int_eq (m->gating, MSIM_GATING_SOFTMAX_RENORM);
  ck_assert_int_eq (msim_model_spec_n_moe_layers (m), 32);
  ck_assert (msim_model_spec_is_moe_layer (m, 0) && msim_model_spec_is_moe_layer (m, 31));

  /* SwiGLU expert: 3 * 4096 * 14336 weights, 2 bytes each. */
  ck_assert_int_eq (msim_model_spec_expert_params (m), 176160768);
  ck_assert_int_eq (msim_model_spec_expert_bytes (m), 352321536);
  ck_assert (msim_model_spec_expert_flops_per_token (m) == 352321536.0);
  /* Attention: Q and O 4096x4096, K and V 4096x1024. */
  ck_assert_int_eq (msim_model_spec_attention_params (m), 2 * 16777216 + 2 * 4194304);
  ck_assert (msim_model_spec_attention_proj_flops_per_token (m) == 2.0 * 41943040);
  /* Scores against 1000 keys: 4 * 32 heads * 128 * 1000. */
  ck_assert (msim_model_spec_attention_score_flops_per_token (m, 1000) == 16384000.0);
  ck_assert (msim_model_spec_attention_flops_per_token (m, 1000) == 83886080.0 + 16384000.0);
  ck_assert (msim_model_spec_gate_flops_per_token (m) == 2.0 * 4096 * 8);
  ck_assert_int_eq (msim_model_spec_activation_bytes_per_token (m), 8192);
  /* K and V of 8 heads x 128 dims, bf16. */
  ck_assert_int_eq (msim_model_spec_kv_cache_bytes_per_token (m), 4096);
  ck_assert_int_eq (msim_model_spec_shared_expert_params (m), 0);

  /* Per layer: attention 41,943,040 + norms 8,192 + 8 experts 1,409,286,144
   * + gate 32,768 = 1,451,270,144; 32 layers; embeddings 2 * 32000 * 4096;
   * final norm 4096.  The model card says 46.7B total, 12.9B active. */
  ck_assert_int_eq (msim_model_spec_layer_params (m, 7), 1451270144);
  ck_assert_int_eq (msim_model_spec_embedding_params (m), 262144000);
  ck_assert_int_eq (msim_model_spec_total_params (m), 32LL * 1451270144 + 262144000 + 4096);
  ck_assert_int_eq (msim_model_spec_total_params (m), 46702792704LL);
  ck_assert_int_eq (msim_model_spec_active_params (m),
                    32LL * (41943040 + 8192 + 2 * 176160768 + 32768) + 262144000 + 4096);
  msim_ck_assert_near ((double)msim_model_spec_active_params (m), 12.9e9, 0.005);
}
END_TEST

START_TEST (test_gpt_moe_family)
{
  const int experts[] = { 8, 16, 32, 64 };
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("gpt-moe-%de", experts[i]);
      g_autoptr (MsimModelSpec) g = preset (name);
      ck_assert_int_eq (g->experts, experts[i]);
      ck_assert_int_eq (g->top_k, 1);
      ck_assert_int_eq (g->layers, 24);
      ck_assert_int_eq (g->hidden_size, 1024);
      ck_assert_int_eq (g->head_dim, 64);
      ck_assert_int_eq (g->moe_pattern, MSIM_MOE_LAYERS_EVERY);
      ck_assert_int_eq (msim_model_spec_n_moe_layers (g), 12);
      ck_assert (!msim_model_spec_is_moe_layer (g, 0));
      ck_assert (msim_model_spec_is_moe_layer (g, 1));
      ck_assert (!msim_model_spec_is_moe_layer (g, 22));
      ck_assert (msim_model_spec_is_moe_layer (g, 23));
      /* GELU MLP: 2 matrices, 2 * 1024 * 4096. */
      ck_assert_int_eq (msim_ffn_activation_matrices (g->ffn_activation), 2);
      ck_assert_int_eq (msim_model_spec_expert_params (g), 8388608);
      ck_assert_int_eq (msim_model_spec_dense_ffn_params (g), 8388608);
      ck_assert (msim_model_spec_expert_flops_per_token (g) == 2.0 * 2 * 1024 * 4096);
      ck_assert_int_eq (msim_model_spec_activation_bytes_per_token (g), 2048);
      /* Every block: attention 4 * 1024^2 + 2 norms; 12 dense FFNs; 12 MoE
       * layers of E experts + gate; tied 50304 x 1024 embedding; final norm. */
      gint64 total = 24LL * (4194304 + 2048) + 12LL * 8388608
                     + 12LL * (experts[i] * 8388608LL + 1024LL * experts[i]) + 50304LL * 1024
                     + 1024;
      ck_assert_int_eq (msim_model_spec_total_params (g), total);
      /* The GPT-3 Medium base: about 350M active parameters. */
      msim_ck_assert_near ((double)msim_model_spec_active_params (g), 350e6, 0.015);
    }
  g_autoptr (MsimModelSpec) g8 = preset ("gpt-moe-8e");
  ck_assert_int_eq (msim_model_spec_total_params (g8), 1058292736);
}
END_TEST

START_TEST (test_switch)
{
  g_autoptr (MsimModelSpec) s64 = preset ("switch-base-64");
  g_autoptr (MsimModelSpec) s128 = preset ("switch-base-128");
  ck_assert_int_eq (s64->experts, 64);
  ck_assert_int_eq (s128->experts, 128);
  for (int i = 0; i < 2; i++)
    {
      MsimModelSpec *s = i == 0 ? s64 : s128;
      ck_assert_int_eq (s->layers, 12);
      ck_assert_int_eq (s->top_k, 1);
      ck_assert_int_eq (s->hidden_size, 768);
      ck_assert_int_eq (s->gating, MSIM_GATING_SOFTMAX_RAW);
      ck_assert_int_eq (s->ffn_activation, MSIM_FFN_RELU);
      ck_assert_int_eq (msim_model_spec_n_moe_layers (s), 6);
      for (int l = 0; l < 12; l++)
        ck_assert_int_eq (msim_model_spec_is_moe_layer (s, l), l % 2 == 1);
      /* ReLU MLP wi, wo: 2 * 768 * 3072. */
      ck_assert_int_eq (msim_model_spec_expert_params (s), 4718592);
      ck_assert_int_eq (msim_model_spec_expert_bytes (s), 9437184);
      ck_assert_int_eq (msim_model_spec_attention_params (s), 4 * 768 * 768);
    }
  g_autofree char *pattern = msim_model_spec_moe_layers_string (s64);
  ck_assert_str_eq (pattern, "every-2");
}
END_TEST

START_TEST (test_deepseek_v2_lite)
{
  g_autoptr (MsimModelSpec) d = preset ("deepseek-v2-lite");
  ck_assert_int_eq (d->attention, MSIM_ATTENTION_MLA);
  ck_assert_int_eq (d->moe_pattern, MSIM_MOE_LAYERS_FROM);
  ck_assert (!msim_model_spec_is_moe_layer (d, 0));
  ck_assert (msim_model_spec_is_moe_layer (d, 1));
  ck_assert (msim_model_spec_is_moe_layer (d, 26));
  ck_assert_int_eq (msim_model_spec_n_moe_layers (d), 26);
  ck_assert_int_eq (d->shared_experts, 2);
  ck_assert_int_eq (d->top_k, 6);
  ck_assert_int_eq (d->gating, MSIM_GATING_SOFTMAX_RAW);
  ck_assert_int_eq (msim_model_spec_expert_params (d), 3 * 2048 * 1408);
  ck_assert_int_eq (msim_model_spec_expert_params (d), 8650752);
  ck_assert_int_eq (msim_model_spec_shared_expert_params (d), 2 * 8650752);
  ck_assert_int_eq (msim_model_spec_dense_ffn_params (d), 3 * 2048 * 10944);
  /* MLA without query compression: Q 2048 x 16*192, KV down 2048 x 576,
   * KV up 512 x 16*256, O 16*128 x 2048. */
  ck_assert_int_eq (msim_model_spec_attention_params (d),
                    2048 * 16 * 192 + 2048 * 576 + 512 * 16 * 256 + 16 * 128 * 2048);
  ck_assert_int_eq (msim_model_spec_attention_params (d), 13762560);
  /* The cached latent: 512 + 64 elements. */
  ck_assert_int_eq (msim_model_spec_kv_cache_bytes_per_token (d), 1152);
  ck_assert (msim_model_spec_attention_score_flops_per_token (d, 100) == 2.0 * 16 * 320 * 100);
  ck_assert_int_eq (msim_model_spec_total_params (d), 15706484224LL);
  msim_ck_assert_near ((double)msim_model_spec_total_params (d), 15.7e9, 0.005);
}
END_TEST

START_TEST (test_deepseek_v3)
{
  g_autoptr (MsimModelSpec) d = preset ("deepseek-v3");
  ck_assert_int_eq (d->layers, 61);
  ck_assert_int_eq (msim_model_spec_n_moe_layers (d), 58);
  ck_assert (!msim_model_spec_is_moe_layer (d, 2));
  ck_assert (msim_model_spec_is_moe_layer (d, 3));
  ck_assert_int_eq (d->experts, 256);
  ck_assert_int_eq (d->shared_experts, 1);
  ck_assert_int_eq (d->top_k, 8);
  ck_assert_int_eq (d->expert_groups, 8);
  ck_assert_int_eq (d->topk_groups, 4);
  ck_assert_int_eq (d->gating, MSIM_GATING_SIGMOID_RENORM);
  ck_assert (d->routed_scaling_factor == 2.5);
  ck_assert_int_eq (msim_model_spec_expert_params (d), 3 * 7168 * 2048);
  ck_assert_int_eq (msim_model_spec_activation_bytes_per_token (d), 14336);
  /* Q down 7168x1536, Q up 1536 x 128*192, KV down 7168 x 576,
   * KV up 512 x 128*256, O 128*128 x 7168. */
  ck_assert_int_eq (msim_model_spec_attention_params (d), 7168LL * 1536 + 1536LL * 128 * 192
                                                              + 7168LL * 576 + 512LL * 128 * 256
                                                              + 128LL * 128 * 7168);
  /* The report: 671B total, 37B activated. */
  ck_assert_int_eq (msim_model_spec_total_params (d), 671026404352LL);
  msim_ck_assert_near ((double)msim_model_spec_total_params (d), 671e9, 0.001);
  msim_ck_assert_near ((double)msim_model_spec_active_params (d), 37e9, 0.02);
}
END_TEST

START_TEST (test_qwen)
{
  g_autoptr (MsimModelSpec) q = preset ("qwen-moe");
  ck_assert_int_eq (q->layers, 24);
  ck_assert_int_eq (msim_model_spec_n_moe_layers (q), 24);
  ck_assert_int_eq (q->experts, 60);
  ck_assert_int_eq (q->top_k, 4);
  ck_assert_int_eq (q->gating, MSIM_GATING_SOFTMAX_RAW);
  ck_assert_int_eq (msim_model_spec_expert_params (q), 8650752);
  /* One shared MLP of 5632 = four shared experts of 1408. */
  ck_assert_int_eq (msim_model_spec_shared_expert_params (q), 4 * 8650752);
  ck_assert (msim_model_spec_shared_expert_flops_per_token (q)
             == 4 * msim_model_spec_expert_flops_per_token (q));
  ck_assert_int_eq (msim_model_spec_total_params (q), 14315587584LL);
  msim_ck_assert_near ((double)msim_model_spec_total_params (q), 14.3e9, 0.002);
  msim_ck_assert_near ((double)msim_model_spec_active_params (q), 2.7e9, 0.005);
  /* The blog's 2.0B activated non-embedding parameters. */
  gint64 non_embedding = msim_model_spec_active_params (q) - msim_model_spec_embedding_params (q);
  msim_ck_assert_near ((double)non_embedding, 2.0e9, 0.04);
}
END_TEST

/* ---- MoE layer patterns ------------------------------------------------ */

START_TEST (test_moe_patterns)
{
  struct
  {
    const char *pattern;
    int layers;
    const char *moe; /* '1' = MoE block */
  } cases[] = {
    { "all", 5, "11111" },         { "every-1", 5, "11111" }, { "every-2", 5, "01010" },
    { "every-3", 9, "001001001" }, { "every-4", 4, "0001" },  { "from-0", 4, "1111" },
    { "from-2", 5, "00111" },      { "from-4", 5, "00001" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf (
          "[model]\nlayers = %d\nmoe_layers = %s\nexperts = 4\ntop_k = 1\nhidden_size = 32\n"
          "expert_ffn_size = 64\ndense_ffn_size = 96\ndtype = fp32\nheads = 2\n",
          cases[i].layers, cases[i].pattern);
      GError *error = NULL;
      g_autoptr (MsimModelSpec) s = model_from_text (text, &error);
      ck_assert_msg (s != NULL, "%s: %s", cases[i].pattern, error ? error->message : "");
      int n = 0;
      for (int l = 0; l < cases[i].layers; l++)
        {
          gboolean want = cases[i].moe[l] == '1';
          ck_assert_msg (msim_model_spec_is_moe_layer (s, l) == want, "%s layer %d",
                         cases[i].pattern, l);
          n += want;
        }
      ck_assert_int_eq (msim_model_spec_n_moe_layers (s), n);
      /* Dense blocks use dense_ffn_size, SwiGLU by default: 3 * 32 * 96. */
      ck_assert_int_eq (msim_model_spec_dense_ffn_params (s), 9216);
      ck_assert_int_eq (s->dtype_bytes, 4);
      ck_assert_int_eq (s->head_dim, 16);
      g_autofree char *back = msim_model_spec_moe_layers_string (s);
      ck_assert_str_eq (back, cases[i].pattern);
      /* Layer parameters differ between dense and MoE blocks exactly by
       * the FFN: 4 experts * 3*32*64 + gate 32*4 vs 3*32*96. */
      gint64 base = 4 * 32 * 32 + 2 * 32;
      for (int l = 0; l < cases[i].layers; l++)
        ck_assert_int_eq (msim_model_spec_layer_params (s, l),
                          base + (cases[i].moe[l] == '1' ? 4 * 6144 + 128 : 9216));
    }
}
END_TEST

/* ---- overrides and preset chains -------------------------------------- */

START_TEST (test_overrides)
{
  GError *error = NULL;
  g_autoptr (MsimModelSpec) a = model_from_text (
      "[model]\npreset = mixtral-8x7b\ntop_k = 1\nname = mixtral-top1\n", &error);
  ck_assert_msg (a != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (a->name, "mixtral-top1");
  ck_assert_int_eq (a->top_k, 1);
  ck_assert_int_eq (a->experts, 8);
  ck_assert_int_eq (a->expert_ffn_size, 14336);

  /* Without a name the preset's own name key wins over the default. */
  g_autoptr (MsimModelSpec) b
      = model_from_text ("[model]\npreset = gpt-moe-64e\nhidden_size = 2048\n"
                         "expert_ffn_size = 8192\ndense_ffn_size = 8192\n",
                         &error);
  ck_assert_msg (b != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (b->name, "gpt-moe-64e");
  ck_assert_int_eq (b->experts, 64);
  ck_assert_int_eq (b->head_dim, 128);
  ck_assert_int_eq (msim_model_spec_expert_params (b), 2 * 2048 * 8192);

  /* include = FILE (resolved in the data directory) works the same way. */
  g_autoptr (MsimModelSpec) c = model_from_text (
      "[model]\ninclude = models/presets/mixtral-8x7b.ini\nexperts = 16\n", &error);
  ck_assert_msg (c != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq (c->experts, 16);
  ck_assert_int_eq (c->top_k, 2);

  /* A group with another name, in a config with other groups. */
  const char *cfg = "[topology]\nkind = nvswitch\n[draft]\npreset = qwen-moe\nlayers = 2\n";
  g_autoptr (MsimIni) ini = msim_ini_load_data (cfg, strlen (cfg), "cfg.ini", NULL);
  g_autoptr (MsimModelSpec) d = msim_model_spec_new_from_ini (ini, "draft", &error);
  ck_assert_msg (d != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq (d->layers, 2);
  ck_assert_int_eq (d->experts, 60);
  ck_assert_ptr_null (msim_model_spec_new_from_ini (ini, "model", &error));
  assert_error (error, "cfg.ini: no [model] group");
  g_clear_error (&error);

  /* GPU overrides, and preset names with or without the gpu- prefix. */
  g_autoptr (MsimGpuSpec) g
      = gpu_from_text ("[gpu]\npreset = h100-sxm5-80gb\nlaunch_overhead_s = 1e-6\n", &error);
  ck_assert_msg (g != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (g->name, "h100-sxm5-80gb");
  ck_assert (g->peak_flops == 989e12);
  ck_assert (g->launch_overhead_s == 1e-6);
  g_autoptr (MsimGpuSpec) g2 = gpu_preset ("gpu-a100-sxm4-80gb");
  ck_assert_str_eq (g2->name, "a100-sxm4-80gb");
  g_autoptr (MsimGpuSpec) g3 = msim_gpu_spec_copy (g2);
  ck_assert_str_eq (g3->name, "a100-sxm4-80gb");
  ck_assert (g3->hbm_bandwidth_Bps == 2.039e12);
}
END_TEST

START_TEST (test_gpu_presets)
{
  g_autoptr (MsimGpuSpec) a = gpu_preset ("a100-sxm4-80gb");
  ck_assert (a->peak_flops == 312e12);
  ck_assert (a->hbm_bandwidth_Bps == 2.039e12);
  ck_assert_int_eq (a->hbm_capacity_bytes, 80LL << 30);
  ck_assert (a->launch_overhead_s > 1e-6 && a->launch_overhead_s < 1e-5);
  g_autoptr (MsimGpuSpec) h = gpu_preset ("h100-sxm5-80gb");
  ck_assert (h->peak_flops == 989e12);
  ck_assert (h->hbm_bandwidth_Bps == 3.35e12);
  ck_assert_int_eq (h->hbm_capacity_bytes, 80LL << 30);
  for (int c = 0; c < MSIM_KERNEL_N_CLASSES; c++)
    {
      ck_assert (a->flops_efficiency[c] > 0 && a->flops_efficiency[c] <= 1);
      ck_assert (h->bandwidth_efficiency[c] > 0 && h->bandwidth_efficiency[c] <= 1);
    }
  ck_assert (msim_gpu_spec_validate (a, NULL));
  ck_assert_str_eq (msim_kernel_class_name (MSIM_KERNEL_GROUPED_GEMM), "grouped_gemm");
}
END_TEST

/* ---- roofline ---------------------------------------------------------- */

START_TEST (test_roofline_closed_form)
{
  GError *error = NULL;
  g_autoptr (MsimGpuSpec) g = gpu_from_text (BASE_GPU, &error);
  ck_assert_msg (g != NULL, "%s", error ? error->message : "");
  /* Compute-bound GEMM: 1e12 / (100e12 * 0.5) = 0.02 s beats
   * 1e9 / (1e12 * 0.8) = 1.25 ms; plus 5 us launch. */
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_GEMM, 1e12, 1e9), 0.020005, 1e-12);
  /* Memory-bound GEMM: 1e10 / 0.8e12 = 12.5 ms beats 1e9 / 50e12 = 20 us. */
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_GEMM, 1e9, 1e10), 0.012505, 1e-12);
  /* The class picks the efficiencies: grouped 0.25 and 0.5. */
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_GROUPED_GEMM, 1e12, 1e9), 0.040005,
                       1e-12);
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_GROUPED_GEMM, 1e9, 1e10), 0.020005,
                       1e-12);
  /* Attention at full efficiency: 2e12 / 100e12 = 20 ms. */
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_ATTENTION, 2e12, 1e9), 0.020005,
                       1e-12);
  /* Elementwise: 9e8 B / 0.9e12 = 1 ms beats 1e9 / 10e12 = 0.1 ms. */
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_ELEMENTWISE, 1e9, 9e8), 0.001005,
                       1e-12);
  /* At the ridge both terms are equal. */
  msim_ck_assert_near (msim_gpu_kernel_time_s (g, MSIM_KERNEL_GEMM, 5e10, 8e8), 0.001005, 1e-12);
  /* No work: the launch overhead alone. */
  ck_assert (msim_gpu_kernel_time_s (g, MSIM_KERNEL_GEMM, 0, 0) == 5e-6);
}
END_TEST

START_TEST (test_roofline_presets)
{
  g_autoptr (MsimGpuSpec) a100 = gpu_preset ("a100-sxm4-80gb");
  g_autoptr (MsimGpuSpec) h100 = gpu_preset ("h100-sxm5-80gb");
  g_autoptr (MsimModelSpec) m = preset ("mixtral-8x7b");
  double expert_bytes = (double)msim_model_spec_expert_bytes (m);
  double expert_flops = msim_model_spec_expert_flops_per_token (m);

  /* Decode: one token through one Mixtral expert on an A100 reads all
   * 352,321,536 weight bytes for 352,321,536 FLOPs: memory-bound,
   * 352321536 / (2.039e12 * 0.88) + 4e-6 = 200.354 us (compute would take
   * 352321536 / (312e12 * 0.77) = 1.47 us). */
  double decode = msim_gpu_kernel_time_s (a100, MSIM_KERNEL_GROUPED_GEMM, expert_flops,
                                          expert_bytes + 2.0 * 8192);
  msim_ck_assert_near (decode, (352321536.0 + 16384.0) / (2.039e12 * 0.88) + 4e-6, 1e-12);
  msim_ck_assert_near (decode, 200.3627e-6, 1e-5);

  /* Prefill: 4096 tokens through the same expert on an H100:
   * 4096 * 352321536 FLOPs / (989e12 * 0.72) + 4e-6 = 2.0306 ms, against
   * (352321536 + 2 * 4096 * 8192) B / (3.35e12 * 0.88) = 0.142 ms. */
  double tokens = 4096;
  double prefill = msim_gpu_kernel_time_s (h100, MSIM_KERNEL_GROUPED_GEMM, tokens * expert_flops,
                                           expert_bytes + 2 * tokens * 8192);
  msim_ck_assert_near (prefill, 4096.0 * 352321536.0 / (989e12 * 0.72) + 4e-6, 1e-12);
  msim_ck_assert_near (prefill, 2.030610790e-3, 1e-8);
}
END_TEST

/* ---- validation errors -------------------------------------------------- */

/* @base with the line setting @drop removed (if any) and @line appended;
 * *lineno is the appended line's number. */
static char *
text_with (const char *base, const char *drop, const char *line, int *lineno)
{
  g_auto (GStrv) lines = g_strsplit (base, "\n", -1);
  GString *out = g_string_new (NULL);
  int n = 0;
  for (char **l = lines; *l; l++)
    {
      if (**l == '\0')
        continue;
      if (drop != NULL && g_str_has_prefix (*l, drop) && (*l)[strlen (drop)] == ' ')
        continue;
      g_string_append_printf (out, "%s\n", *l);
      n++;
    }
  g_string_append_printf (out, "%s\n", line);
  *lineno = n + 1;
  return g_string_free (out, FALSE);
}

static void
expect_model_line_error (const char *drop, const char *line, const char *key, const char *what)
{
  int lineno = 0;
  g_autofree char *text = text_with (BASE_MODEL, drop, line, &lineno);
  g_autofree char *where = g_strdup_printf ("test.ini:%d: [model] %s", lineno, key);
  expect_model_error (text, where, what);
}

static void
expect_gpu_line_error (const char *drop, const char *line, const char *key, const char *what)
{
  int lineno = 0;
  g_autofree char *text = text_with (BASE_GPU, drop, line, &lineno);
  g_autofree char *where = g_strdup_printf ("test.ini:%d: [gpu] %s", lineno, key);
  expect_gpu_error (text, where, what);
}

START_TEST (test_model_validation)
{
  /* The base itself is valid. */
  g_autoptr (MsimModelSpec) ok = model_from_text (BASE_MODEL, NULL);
  ck_assert_ptr_nonnull (ok);
  ck_assert_int_eq (ok->kv_heads, 4);
  ck_assert_int_eq (ok->head_dim, 16);

  expect_model_line_error ("top_k", "top_k = 9", "top_k", "top_k 9 exceeds the 8 routed experts");
  expect_model_line_error ("layers", "layers = 0", "layers", "value 0 is out of range");
  expect_model_line_error ("hidden_size", "hidden_size = 2000000", "hidden_size",
                           "out of range [1, 1000000]");
  expect_model_line_error ("experts", "experts = 70000", "experts", "out of range [1, 65536]");
  expect_model_line_error (NULL, "kv_heads = 3", "kv_heads", "not divisible by kv_heads 3");
  expect_model_line_error (NULL, "kv_heads = 8", "kv_heads", "out of range [1, 4]");
  expect_model_line_error (NULL, "topk = 2", "topk", "unknown key");
  expect_model_line_error (NULL, "moe_layers = every-5", "moe_layers",
                           "every-5 selects no block of a 4-layer model");
  expect_model_line_error (NULL, "moe_layers = from-4", "moe_layers", "from-4 leaves no MoE block");
  expect_model_line_error (NULL, "moe_layers = sometimes", "moe_layers",
                           "expected all, every-N or from-N, got 'sometimes'");
  expect_model_line_error (NULL, "moe_layers = every-1e1", "moe_layers", "expected all");
  expect_model_line_error (NULL, "kv_lora_rank = 512", "kv_lora_rank",
                           "only used with attention = mla");
  expect_model_line_error (NULL, "expert_groups = 3", "expert_groups",
                           "8 routed experts do not split into 3 equal groups");
  expect_model_line_error (NULL, "topk_groups = 2", "topk_groups", "exceeds expert_groups 1");
  expect_model_line_error ("dtype", "dtype = int4", "dtype", "'int4' is not one of");
  expect_model_line_error (NULL, "gating = random", "gating", "is not one of");
  expect_model_line_error (NULL, "routed_scaling_factor = 0", "routed_scaling_factor",
                           "out of range");
  expect_model_line_error (NULL, "vocab_size = -1", "vocab_size", "out of range");
  expect_model_line_error ("name", "name =", "name", "must not be empty");
  expect_model_line_error (NULL, "preset = mixtral-9x9b", "preset",
                           "unknown model preset 'mixtral-9x9b'");
  /* The unknown-preset message lists the known ones. */
  expect_model_error (BASE_MODEL "preset = mixtral-9x9b\n", "mixtral-8x7b", "deepseek-v3");
  expect_model_line_error (NULL, "preset = ../../etc/passwd", "preset",
                           "invalid model preset name");
  /* A GPU preset is not a model preset. */
  expect_model_line_error (NULL, "preset = gpu-a100-sxm4-80gb", "preset", "unknown model preset");

  /* Errors about keys the file does not set point at the group header. */
  expect_model_error (BASE_MODEL "moe_layers = from-1\n", "test.ini:1: [model] dense_ffn_size",
                      "required: moe_layers = from-1 leaves 1 of 4 blocks dense");
  expect_model_error ("[model]\nlayers = 4\ntop_k = 1\nhidden_size = 8\nexpert_ffn_size = 8\n"
                      "dtype = bf16\nheads = 1\n",
                      "test.ini:1: [model]", "missing required key 'experts'");
  {
    int lineno;
    g_autofree char *text = text_with (BASE_MODEL, "heads", "heads = 5", &lineno);
    expect_model_error (text, "test.ini:1: [model] head_dim",
                        "hidden_size 64 is not a usable multiple of heads 5");
  }
  expect_model_error (BASE_MODEL "attention = mla\nkv_lora_rank = 8\nqk_nope_head_dim = 8\n"
                                 "qk_rope_head_dim = 8\nv_head_dim = 8\nhead_dim = 16\n",
                      "test.ini:15: [model] head_dim", "not used with attention = mla");
  expect_model_error (BASE_MODEL "attention = mla\nkv_lora_rank = 8\nqk_nope_head_dim = 8\n"
                                 "qk_rope_head_dim = 8\n",
                      "test.ini:1: [model]", "missing required key 'v_head_dim'");
  /* Absurd totals are refused before anything multiplies them out. */
  expect_model_error ("[model]\nlayers = 10000\nexperts = 65536\ntop_k = 1\n"
                      "hidden_size = 1000000\nexpert_ffn_size = 10000000\ndtype = bf16\n"
                      "heads = 1000\n",
                      "test.ini:1: [model]", "more than the limit 1e+15");

  /* An override is blamed on the line that wrote it... */
  expect_model_error ("[model]\npreset = mixtral-8x7b\ntop_k = 12\n", "test.ini:3: [model] top_k",
                      "exceeds the 8 routed experts");
  /* ...and a preset's own value on the preset file's line. */
  expect_model_error ("[model]\npreset = mixtral-8x7b\nexperts = 1\n",
                      "models/presets/mixtral-8x7b.ini:", "[model] top_k: top_k 2 exceeds the 1");
  expect_model_error ("[model]\npreset = mixtral-8x7b\nlayer = 3\n", "test.ini:3: [model] layer",
                      "unknown key");
}
END_TEST

START_TEST (test_gpu_validation)
{
  g_autoptr (MsimGpuSpec) ok = gpu_from_text (BASE_GPU, NULL);
  ck_assert_ptr_nonnull (ok);
  expect_gpu_line_error ("gemm_flops_efficiency", "gemm_flops_efficiency = 1.5",
                         "gemm_flops_efficiency", "out of range");
  expect_gpu_line_error ("elementwise_bandwidth_efficiency", "elementwise_bandwidth_efficiency = 0",
                         "elementwise_bandwidth_efficiency", "out of range");
  expect_gpu_line_error ("launch_overhead_s", "launch_overhead_s = -1e-6", "launch_overhead_s",
                         "out of range");
  /* A peak written in TFLOP/s instead of FLOP/s. */
  expect_gpu_line_error ("peak_flops", "peak_flops = 312", "peak_flops", "out of range");
  expect_gpu_line_error ("hbm_capacity_bytes", "hbm_capacity_bytes = 80.5", "hbm_capacity_bytes",
                         "expected an integer");
  expect_gpu_line_error (NULL, "tflops = 3", "tflops", "unknown key");
  expect_gpu_line_error (NULL, "preset = b200", "preset", "unknown GPU preset 'b200'");
  expect_gpu_error (BASE_GPU "preset = b200\n", "a100-sxm4-80gb", "h100-sxm5-80gb");
  expect_gpu_error ("[gpu]\npreset = a100-sxm4-80gb\ngemm_flops_efficiency = 2\n",
                    "test.ini:3: [gpu] gemm_flops_efficiency", "out of range");
  int lineno;
  g_autofree char *text = text_with (BASE_GPU, "peak_flops", "", &lineno);
  expect_gpu_error (text, "test.ini:1: [gpu]", "missing required key 'peak_flops'");
}
END_TEST

START_TEST (test_load_errors)
{
  GError *error = NULL;
  ck_assert_ptr_null (msim_model_spec_load_preset ("nonexistent", &error));
  assert_error (error, "unknown model preset 'nonexistent'");
  assert_error (error, "deepseek-v2-lite, deepseek-v3, gpt-moe-16e");
  g_clear_error (&error);
  ck_assert_ptr_null (msim_model_spec_load_preset ("../presets/mixtral-8x7b", &error));
  assert_error (error, "invalid model preset name");
  g_clear_error (&error);
  ck_assert_ptr_null (msim_gpu_spec_load_preset ("v100", &error));
  assert_error (error, "unknown GPU preset 'v100'");
  g_clear_error (&error);
  ck_assert_ptr_null (msim_model_spec_load_file ("/nonexistent/model.ini", &error));
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_clear_error (&error);

  /* A model file holds [model] only. */
  g_autofree char *dir = g_dir_make_tmp ("msim-specs-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "m.ini", NULL);
  ck_assert (g_file_set_contents (path, BASE_MODEL "[gpu]\nname = x\n", -1, NULL));
  ck_assert_ptr_null (msim_model_spec_load_file (path, &error));
  assert_error (error, "m.ini:10: [gpu]: unknown group");
  g_clear_error (&error);
  ck_assert (g_file_set_contents (path, BASE_MODEL, -1, NULL));
  g_autoptr (MsimModelSpec) m = msim_model_spec_load_file (path, &error);
  ck_assert_ptr_nonnull (m);
  ck_assert_str_eq (m->name, "tiny");
  g_unlink (path);
  g_rmdir (dir);
}
END_TEST

START_TEST (test_in_memory_validate)
{
  g_autoptr (MsimModelSpec) m = preset ("mixtral-8x7b");
  g_autoptr (MsimModelSpec) c = msim_model_spec_copy (m);
  ck_assert (c->name != m->name);
  ck_assert (msim_model_spec_validate (c, NULL));
  c->top_k = 9;
  GError *error = NULL;
  ck_assert (!msim_model_spec_validate (c, &error));
  assert_error (error, "model 'mixtral-8x7b': top_k: top_k 9 exceeds the 8 routed experts");
  g_clear_error (&error);
  c->top_k = 2;
  c->dtype_bytes = 4;
  ck_assert (!msim_model_spec_validate (c, &error));
  assert_error (error, "dtype: bf16 has 2 bytes per element, not 4");
  g_clear_error (&error);

  g_autoptr (MsimGpuSpec) g = gpu_preset ("h100-sxm5-80gb");
  g->bandwidth_efficiency[MSIM_KERNEL_ATTENTION] = 0;
  ck_assert (!msim_gpu_spec_validate (g, &error));
  assert_error (error, "gpu 'h100-sxm5-80gb': attention_bandwidth_efficiency: value 0");
  g_clear_error (&error);
}
END_TEST

/* Preset chains need preset files of our own: point the data directory at a
 * temporary tree for the duration of the test. */
START_TEST (test_preset_chains)
{
  g_autofree char *old = g_strdup (g_getenv ("MOESIM_DATA_DIR"));
  g_autofree char *root = g_dir_make_tmp ("msim-presets-XXXXXX", NULL);
  g_autofree char *dir = g_build_filename (root, "models", "presets", NULL);
  ck_assert_int_eq (g_mkdir_with_parents (dir, 0700), 0);
  g_setenv ("MOESIM_DATA_DIR", root, TRUE);

  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  struct
  {
    const char *name, *text;
  } presets[] = {
    { "loop-a", "[model]\npreset = loop-b\n" },
    { "loop-b", "[model]\npreset = loop-a\n" },
    { "stray", "[model]\nlayers = 2\n[topology]\nkind = ring\n" },
    { "base", BASE_MODEL },
    { "mid", "[model]\npreset = base\nexperts = 16\n" },
    { "top", "[model]\npreset = mid\ntop_k = 4\n" },
    { "gpu-fake", BASE_GPU },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (presets); i++)
    {
      g_autofree char *file = g_strconcat (presets[i].name, ".ini", NULL);
      char *path = g_build_filename (dir, file, NULL);
      ck_assert (g_file_set_contents (path, presets[i].text, -1, NULL));
      g_ptr_array_add (files, path);
    }
  /* A chain of 10 presets, deeper than the limit of 8. */
  for (int i = 0; i < 10; i++)
    {
      g_autofree char *file = g_strdup_printf ("deep%d.ini", i);
      g_autofree char *text = g_strdup_printf ("[model]\npreset = deep%d\n", i + 1);
      char *path = g_build_filename (dir, file, NULL);
      ck_assert (g_file_set_contents (path, text, -1, NULL));
      g_ptr_array_add (files, path);
    }

  GError *error = NULL;
  /* Three levels: top over mid over base, each key from its nearest layer. */
  g_autoptr (MsimModelSpec) top = model_from_text ("[model]\npreset = top\nlayers = 6\n", &error);
  ck_assert_msg (top != NULL, "%s", error ? error->message : "");
  ck_assert_int_eq (top->layers, 6);
  ck_assert_int_eq (top->top_k, 4);
  ck_assert_int_eq (top->experts, 16);
  ck_assert_int_eq (top->hidden_size, 64);
  ck_assert_str_eq (top->name, "tiny");

  ck_assert_ptr_null (msim_model_spec_load_preset ("loop-a", &error));
  assert_error (error, "loop-b.ini:2: [model] preset: preset 'loop-a' includes itself (cycle)");
  g_clear_error (&error);
  ck_assert_ptr_null (model_from_text ("[model]\npreset = deep0\n", &error));
  assert_error (error, "[model] preset: presets nest deeper than 8 levels");
  g_clear_error (&error);
  ck_assert_ptr_null (model_from_text ("[model]\npreset = stray\n", &error));
  assert_error (error, "stray.ini:3: [topology]: unknown group");
  g_clear_error (&error);

  /* Listing: model presets exclude gpu-*; GPU presets strip the prefix. */
  g_auto (GStrv) models = msim_model_spec_list_presets ();
  ck_assert (g_strv_contains ((const char *const *)models, "base"));
  ck_assert (!g_strv_contains ((const char *const *)models, "gpu-fake"));
  ck_assert (!g_strv_contains ((const char *const *)models, "fake"));
  g_auto (GStrv) gpus = msim_gpu_spec_list_presets ();
  ck_assert_int_eq (g_strv_length (gpus), 1);
  ck_assert_str_eq (gpus[0], "fake");
  g_autoptr (MsimGpuSpec) fake = gpu_preset ("fake");
  ck_assert_str_eq (fake->name, "toy");

  for (guint i = 0; i < files->len; i++)
    g_unlink (g_ptr_array_index (files, i));
  g_rmdir (dir);
  g_autofree char *models_dir = g_build_filename (root, "models", NULL);
  g_rmdir (models_dir);
  g_rmdir (root);
  if (old != NULL)
    g_setenv ("MOESIM_DATA_DIR", old, TRUE);
  else
    g_unsetenv ("MOESIM_DATA_DIR");
}
END_TEST

static Suite *
specs_suite (void)
{
  Suite *s = suite_create ("specs");
  struct
  {
    const char *name;
    const TTest *test;
  } cases[] = {
    { "preset_list", test_preset_list },
    { "every_preset_loads", test_every_preset_loads },
    { "mixtral", test_mixtral },
    { "gpt_moe_family", test_gpt_moe_family },
    { "switch", test_switch },
    { "deepseek_v2_lite", test_deepseek_v2_lite },
    { "deepseek_v3", test_deepseek_v3 },
    { "qwen", test_qwen },
    { "moe_patterns", test_moe_patterns },
    { "overrides", test_overrides },
    { "gpu_presets", test_gpu_presets },
    { "roofline_closed_form", test_roofline_closed_form },
    { "roofline_presets", test_roofline_presets },
    { "model_validation", test_model_validation },
    { "gpu_validation", test_gpu_validation },
    { "load_errors", test_load_errors },
    { "in_memory_validate", test_in_memory_validate },
    { "preset_chains", test_preset_chains },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TCase *tc = tcase_create (cases[i].name);
      tcase_add_test (tc, cases[i].test);
      suite_add_tcase (s, tc);
    }
  return s;
}

MSIM_CHECK_MAIN (specs_suite)
