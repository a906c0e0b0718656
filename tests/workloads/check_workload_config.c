/* The [router] config group: generators and routers from a key file, the
 * model's shape, seeds, and errors with file, line and key. */
#include <math.h>

#include "generators.h"
#include "trace-test-util.h"
#include "workload.h"

/* A 3-MoE-layer model: every-2 of 6 blocks, 8 experts, top-2. */
static const char model_text[] = "[model]\n"
                                 "name = tiny\n"
                                 "layers = 6\n"
                                 "moe_layers = every-2\n"
                                 "experts = 8\n"
                                 "top_k = 2\n"
                                 "hidden_size = 64\n"
                                 "expert_ffn_size = 128\n"
                                 "dense_ffn_size = 128\n"
                                 "heads = 4\n"
                                 "dtype = bf16\n";

static MsimModelSpec *
tiny_model (void)
{
  GError *err = NULL;
  g_autoptr (MsimIni) ini
      = msim_ini_load_data (model_text, sizeof model_text - 1, "tiny.ini", &err);
  ck_assert_msg (ini != NULL, "%s", err ? err->message : "?");
  MsimModelSpec *m = msim_model_spec_new_from_ini (ini, "model", &err);
  ck_assert_msg (m != NULL, "%s", err ? err->message : "?");
  return m;
}

/* Loads "[router]\n" + @body as cfg.ini and returns the workload or NULL
 * with @err set. */
static MsimWorkload *
from_text (const char *body, guint64 tokens, guint64 seed, GError **err)
{
  g_autofree char *text = g_strconcat ("[router]\n", body, NULL);
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "cfg.ini", err);
  if (ini == NULL)
    return NULL;
  g_autoptr (MsimModelSpec) m = tiny_model ();
  return msim_workload_new_from_ini (ini, "router", m, tokens, seed, err);
}

START_TEST (test_generator_group)
{
  GError *err = NULL;
  g_autoptr (MsimWorkload) w = from_text (
      "generator = markov\naffinity = 0.5\nzipf_s = 1.0\nsequence_len = 32\n", 400, 3, &err);
  ck_assert_msg (w != NULL, "%s", err ? err->message : "?");
  ck_assert_str_eq (w->kind, "generator");
  ck_assert_str_eq (w->name, "markov");
  ck_assert_uint_eq (w->seed, 3);
  ck_assert_ptr_null (w->report);
  ck_assert_uint_eq (w->trace->tokens, 400);
  ck_assert_uint_eq (w->trace->layers, 3); /* MoE layers, not blocks */
  ck_assert_uint_eq (w->trace->k, 2);
  ck_assert_uint_eq (w->trace->experts, 8);
  ck_assert_uint_eq (msim_trace_sequence (w->trace, 33), 1);
  /* The same through the library directly. */
  MsimGenParams p;
  msim_gen_params_init (&p, 3, 8, 2);
  p.affinity = 0.5;
  p.zipf_s = 1.0;
  p.sequence_len = 32;
  g_autoptr (MsimTrace) direct = msim_gen_generate (&p, 400, 3, NULL);
  ck_assert (msim_trace_equal (direct, w->trace));
  /* A seed key overrides the caller's. */
  g_autoptr (MsimWorkload) s = from_text (
      "generator = markov\naffinity = 0.5\nzipf_s = 1.0\nsequence_len = 32\nseed = 3\n", 400, 99,
      &err);
  ck_assert (msim_trace_equal (s->trace, w->trace));
  ck_assert_uint_eq (s->seed, 3);
  /* Domain weights as a comma-separated list. */
  g_autoptr (MsimWorkload) mix
      = from_text ("generator = mixture\ndomain_weights = 3, 1\nreuse = 0.2\n", 300, 1, &err);
  ck_assert_msg (mix != NULL, "%s", err ? err->message : "?");
  msim_gen_params_clear (&p);
}
END_TEST

START_TEST (test_router_group)
{
  GError *err = NULL;
  g_autoptr (MsimWorkload) w
      = from_text ("router = pregated\nhidden_dim = 16\nsequence_len = 16\nbatch_tokens = 32\n"
                   "drift = 0\nfluctuation_eps = 0.05\ncapacity_factor = 1.25\n",
                   100, 2, &err);
  ck_assert_msg (w != NULL, "%s", err ? err->message : "?");
  ck_assert_str_eq (w->kind, "router");
  ck_assert_ptr_nonnull (w->report);
  ck_assert_ptr_nonnull (w->predicted);
  ck_assert (w->trace->weights != NULL);
  ck_assert_uint_eq (w->report->capacity, 10); /* ceil (32 * 2 / 8 * 1.25) */
  ck_assert (isfinite (w->report->total.fluctuation));
  ck_assert (w->report->total.pregate_top1 == 1.0);
  /* The run entry point returns the same trace. */
  g_autofree char *text = g_strdup ("[router]\nrouter = topk\nhidden_dim = 16\n"
                                    "sequence_len = 16\n");
  g_autoptr (MsimIni) ini = msim_ini_load_data (text, strlen (text), "run.ini", &err);
  g_autoptr (MsimModelSpec) m = tiny_model ();
  g_autoptr (MsimTrace) t = msim_workload_generate_from_ini (ini, "router", m, 64, 5, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  ck_assert_uint_eq (t->k, 2);
  ck_assert_uint_eq (t->layers, 3);
  /* batch_tokens defaults to whole sequences near 4096. */
  g_autoptr (MsimWorkload) odd
      = from_text ("router = topk\nhidden_dim = 8\nsequence_len = 100\n", 50, 1, &err);
  ck_assert_msg (odd != NULL, "%s", err ? err->message : "?");
  /* Gating names. */
  g_autoptr (MsimWorkload) sw = from_text (
      "router = topk\nhidden_dim = 8\nsequence_len = 8\ngating = switch\n", 16, 1, &err);
  ck_assert_msg (sw != NULL, "%s", err ? err->message : "?");
  float w0 = msim_trace_weight (sw->trace, 0, 0, 0), w1 = msim_trace_weight (sw->trace, 0, 0, 1);
  ck_assert (w0 + w1 < 1.0f);
}
END_TEST

START_TEST (test_errors)
{
  GError *err = NULL;
  struct
  {
    const char *body;
    const char *want1, *want2;
  } cases[] = {
    { "generator = zipf\nzipf_z = 1\n", "cfg.ini:3: [router] zipf_z", "unknown key" },
    { "generator = zipf\naffinity = 0.5\n", "cfg.ini:3: [router] affinity",
      "does not apply to generator zipf" },
    { "router = topk\ntau = 2\n", "cfg.ini:3: [router] tau", "does not apply to router topk" },
    { "generator = zipf\nzipf_s = -1\n", "cfg.ini:3: [router] zipf_s", NULL },
    { "generator = zipf\nrouter = topk\n", "cfg.ini:3: [router] router", "exactly one" },
    { "sequence_len = 3\n", "[router]", "exactly one" },
    { "generator = zap\n", "cfg.ini:2: [router] generator", "unknown generator 'zap'" },
    { "router = zap\n", "cfg.ini:2: [router] router", "known: topk, switch" },
    { "router = topk\nsequence_len = 16\nbatch_tokens = 40\n", "cfg.ini:4: [router] batch_tokens",
      "sequence_len" },
    { "generator = mixture\ndomains = 2\ndomain_weights = 1,2,3\n",
      "cfg.ini:4: [router] domain_weights", "3 weights for 2 domains" },
    { "generator = mixture\ndomain_weights = 1,x\n", "cfg.ini:3: [router] domain_weights", "'x'" },
    { "router = topk\nweights = nowhere.npy\n", "nowhere.npy", NULL },
    { "router = topk\ngating = soft\n", "cfg.ini:3: [router] gating", NULL },
    { "router = topk\nhidden_dim = 0\n", "cfg.ini:3: [router] hidden_dim", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (MsimWorkload) w = from_text (cases[i].body, 64, 1, &err);
      ck_assert_msg (w == NULL, "case %u succeeded", i);
      ck_assert_msg (err != NULL, "case %u: no error", i);
      ck_assert_msg (strstr (err->message, cases[i].want1) != NULL, "case %u: %s", i, err->message);
      if (cases[i].want2)
        ck_assert_msg (strstr (err->message, cases[i].want2) != NULL, "case %u: %s", i,
                       err->message);
      ck_assert_msg (msim_error_exit_status (err) == 2, "case %u: exit status %d", i,
                     msim_error_exit_status (err));
      g_clear_error (&err);
    }
  /* Zero tokens; a missing group. */
  ck_assert_ptr_null (from_text ("generator = zipf\n", 0, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "0 tokens", NULL);
  g_clear_error (&err);
  g_autoptr (MsimIni) ini = msim_ini_load_data ("[x]\na = 1\n", 10, "x.ini", NULL);
  g_autoptr (MsimModelSpec) m = tiny_model ();
  ck_assert_ptr_null (msim_workload_new_from_ini (ini, "router", m, 10, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "missing [router] group", NULL);
  g_clear_error (&err);
  /* moesim run cannot replay expert choice. */
  g_autoptr (MsimIni) ec
      = msim_ini_load_data ("[router]\nrouter = expert-choice\n", 32, "ec.ini", NULL);
  ck_assert_ptr_null (msim_workload_generate_from_ini (ec, "router", m, 64, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "ec.ini:2: [router] router", "k = E", NULL);
  g_clear_error (&err);
  /* ... but the general entry point makes it. */
  g_autoptr (MsimWorkload) ok = msim_workload_new_from_ini (ec, "router", m, 16, 1, &err);
  ck_assert_msg (ok != NULL, "%s", err ? err->message : "?");
  ck_assert_uint_eq (ok->trace->k, 8);
}
END_TEST

START_TEST (test_keys)
{
  const char *const *keys = msim_workload_keys ();
  ck_assert (g_strv_contains (keys, "zipf_s"));
  ck_assert (g_strv_contains (keys, "recurrent_dim"));
  ck_assert (g_strv_contains (keys, "fluctuation_eps"));
  ck_assert (!g_strv_contains (keys, "include"));
  ck_assert (msim_workload_key_applies ("router", "attention", "attention_heads"));
  ck_assert (msim_workload_key_applies ("router", "topk", "drift"));
  ck_assert (!msim_workload_key_applies ("router", "topk", "tau"));
  ck_assert (msim_workload_key_applies ("generator", "mixture", "reuse"));
  ck_assert (!msim_workload_key_applies ("generator", "zipf", "reuse"));
  ck_assert (msim_workload_key_applies ("generator", "zipf", "seed"));
  ck_assert (!msim_workload_key_applies ("router", "nope", "tau"));
  ck_assert (!msim_workload_key_applies ("trace", "topk", "seed"));
}
END_TEST

START_TEST (test_relative_weights)
{
  /* weights = FILE resolves beside the config file. */
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *cfg = g_build_filename (dir, "cfg.ini", NULL);
  g_autofree char *npy = g_build_filename (dir, "gate.npy", NULL);
  /* A [8, 4] float64 gate written by hand. */
  const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (8, 4), }";
  GString *s = g_string_new (NULL);
  g_string_append_len (s, "\x93NUMPY\x01\x00", 8);
  gsize total = (10 + strlen (dict) + 1 + 63) / 64 * 64, hl = total - 10;
  g_string_append_c (s, (char)hl);
  g_string_append_c (s, 0);
  g_string_append (s, dict);
  while (s->len < total - 1)
    g_string_append_c (s, ' ');
  g_string_append_c (s, '\n');
  for (int i = 0; i < 32; i++)
    {
      double v = (i % 5) * 0.3 - 0.5;
      g_string_append_len (s, (const char *)&v, 8);
    }
  ck_assert (g_file_set_contents (npy, s->str, (gssize)s->len, NULL));
  g_string_free (s, TRUE);
  const char *text = "[router]\nrouter = topk\nweights = gate.npy\nsequence_len = 8\n";
  ck_assert (g_file_set_contents (cfg, text, -1, NULL));
  GError *err = NULL;
  g_autoptr (MsimIni) ini = msim_ini_load (cfg, &err);
  g_autoptr (MsimModelSpec) m = tiny_model ();
  g_autoptr (MsimWorkload) w = msim_workload_new_from_ini (ini, "router", m, 24, 1, &err);
  ck_assert_msg (w != NULL, "%s", err ? err->message : "?");
  /* hidden_dim contradicting the file is an error at its line. */
  const char *bad = "[router]\nrouter = topk\nweights = gate.npy\nhidden_dim = 16\n";
  ck_assert (g_file_set_contents (cfg, bad, -1, NULL));
  g_autoptr (MsimIni) ini2 = msim_ini_load (cfg, &err);
  ck_assert_ptr_null (msim_workload_new_from_ini (ini2, "router", m, 24, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "cfg.ini:4: [router] hidden_dim", "4 columns", NULL);
  g_clear_error (&err);
  tt_rmtree (dir);
}
END_TEST

static Suite *
workload_config_suite (void)
{
  Suite *s = suite_create ("workload-config");
  TCase *tc = tcase_create ("groups");
  tcase_add_test (tc, test_generator_group);
  tcase_add_test (tc, test_router_group);
  tcase_add_test (tc, test_keys);
  tcase_add_test (tc, test_relative_weights);
  suite_add_tcase (s, tc);
  tc = tcase_create ("errors");
  tcase_add_test (tc, test_errors);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (workload_config_suite)
