/* Synthetic workloads from a [router] group (workload.h); the keys are
 * documented in workloads/README.md. */
#include "workload.h"

#include <math.h>
#include <string.h>

#include "generators.h"
#include "msim-error.h"

/* Keys every generator and router takes. */
static const char *const common_keys[] = { "generator", "router", "seed", "sequence_len", NULL };

/* Keys every router takes (the router type adds its own). */
static const char *const router_common_keys[]
    = { "batch_tokens", "gating",          "gate_scale", "jitter", "aux_loss_coef",
        "z_loss_coef",  "fluctuation_eps", "hidden_dim", "topics", "topic_scale",
        "token_scale",  "token_corr",      "drift",      NULL };

static void
add_keys (GPtrArray *a, const char *const *keys)
{
  for (const char *const *k = keys; *k; k++)
    {
      gboolean seen = FALSE;
      for (guint i = 0; i < a->len && !seen; i++)
        seen = strcmp (g_ptr_array_index (a, i), *k) == 0;
      if (!seen)
        g_ptr_array_add (a, (gpointer)*k);
    }
}

const char *const *
msim_workload_keys (void)
{
  static const char *const *all = NULL;
  if (g_once_init_enter (&all))
    {
      GPtrArray *a = g_ptr_array_new ();
      add_keys (a, common_keys);
      add_keys (a, router_common_keys);
      guint n;
      const MsimGeneratorType *const *g = msim_generator_types (&n);
      for (guint i = 0; i < n; i++)
        add_keys (a, g[i]->keys);
      const MsimRouterType *const *r = msim_router_types (&n);
      for (guint i = 0; i < n; i++)
        add_keys (a, r[i]->keys);
      g_ptr_array_add (a, NULL);
      /* Kept for the life of the process, like a static table. */
      g_once_init_leave (&all, (const char *const *)g_ptr_array_free (a, FALSE));
    }
  return all;
}

gboolean
msim_workload_key_applies (const char *kind, const char *name, const char *key)
{
  g_return_val_if_fail (kind != NULL && name != NULL && key != NULL, FALSE);
  if (strcmp (kind, "generator") == 0)
    {
      const MsimGeneratorType *g = msim_generator_lookup (name);
      return g && (g_strv_contains (common_keys, key) || g_strv_contains (g->keys, key));
    }
  if (strcmp (kind, "router") == 0)
    {
      const MsimRouterType *r = msim_router_lookup (name);
      return r
             && (g_strv_contains (common_keys, key) || g_strv_contains (router_common_keys, key)
                 || g_strv_contains (r->keys, key));
    }
  return FALSE;
}

void
msim_workload_free (MsimWorkload *w)
{
  if (w == NULL)
    return;
  g_free (w->kind);
  g_free (w->name);
  msim_trace_free (w->trace);
  msim_trace_free (w->predicted);
  msim_router_report_free (w->report);
  g_free (w);
}

/* ------------------------------------------------------------------ */

typedef struct
{
  const MsimIni *ini;
  const char *group;
  GError **error;
} Cfg;

/* Re-raises a validation error "PREFIX: KEY: message" of the generator,
 * router or hidden-state code at KEY's line when the group sets KEY. */
static void
relocate (Cfg *c, GError *local)
{
  const char *msg = local->message;
  const char *prefixes[] = { "generator: ", "router: ", "hidden states: " };
  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    if (g_str_has_prefix (msg, prefixes[i]))
      {
        const char *key = msg + strlen (prefixes[i]);
        const char *colon = strstr (key, ": ");
        if (colon == NULL)
          break;
        g_autofree char *k = g_strndup (key, (gsize)(colon - key));
        if (msim_ini_has_key (c->ini, c->group, k))
          msim_ini_set_error (c->ini, c->error, c->group, k, "%s", colon + 2);
        else
          msim_ini_set_error (c->ini, c->error, c->group, NULL, "%s: %s", k, colon + 2);
        g_error_free (local);
        return;
      }
  if (local->domain == MSIM_ERROR && local->code != MSIM_ERROR_INPUT)
    {
      g_autofree char *where = g_strdup_printf ("%s: [%s]: ", msim_ini_path (c->ini), c->group);
      g_propagate_prefixed_error (c->error, local, "%s", where);
      return;
    }
  msim_ini_set_error (c->ini, c->error, c->group, NULL, "%s", msg);
  g_error_free (local);
}

static gboolean
get_uint (Cfg *c, const char *key, guint def, guint min, guint max, guint *out)
{
  gint64 v;
  if (!msim_ini_get_int64 (c->ini, c->group, key, FALSE, def, min, max, &v, c->error))
    return FALSE;
  *out = (guint)v;
  return TRUE;
}

static gboolean
get_double (Cfg *c, const char *key, double def, double min, double max, double *out)
{
  return msim_ini_get_double (c->ini, c->group, key, FALSE, def, min, max, out, c->error);
}

static gboolean
get_bool (Cfg *c, const char *key, gboolean def, gboolean *out)
{
  return msim_ini_get_bool (c->ini, c->group, key, FALSE, def, out, c->error);
}

/* Resolves a path in the group like every other file a config names:
 * absolute as is; else beside the config file if it exists there, else
 * under the moesim data directory if it exists there, else beside the
 * config (so the error names the path the user most likely meant). */
static char *
resolve (const MsimIni *ini, const char *path)
{
  if (g_path_is_absolute (path))
    return g_strdup (path);
  g_autofree char *dir = g_path_get_dirname (msim_ini_path (ini));
  char *near = g_build_filename (dir, path, NULL);
  /* A per-layer pattern is probed with layer 0. */
  g_auto (GStrv) near_parts = g_strsplit (near, "{layer}", -1);
  g_autofree char *probe = g_strjoinv ("0", near_parts);
  if (g_file_test (probe, G_FILE_TEST_EXISTS))
    return near;
  g_autofree char *data = g_build_filename (msim_data_dir (), path, NULL);
  g_auto (GStrv) parts = g_strsplit (data, "{layer}", -1);
  g_autofree char *data_probe = g_strjoinv ("0", parts);
  if (g_file_test (data_probe, G_FILE_TEST_EXISTS))
    {
      g_free (near);
      return g_steal_pointer (&data);
    }
  return near;
}

/* Keys of the group that the chosen generator/router does not take: an
 * error naming the key, and the keys it does take. */
static gboolean
check_applicable (Cfg *c, const char *what, const char *name, const char *const *kind_keys,
                  const char *const *type_keys)
{
  g_autoptr (GPtrArray) allowed = g_ptr_array_new ();
  add_keys (allowed, common_keys);
  add_keys (allowed, kind_keys);
  add_keys (allowed, type_keys);
  g_ptr_array_add (allowed, NULL);
  const char *const *all = msim_workload_keys ();
  g_auto (GStrv) keys = msim_ini_keys (c->ini, c->group);
  for (char **k = keys; *k; k++)
    {
      gboolean known = g_strv_contains (all, *k);
      gboolean ok = g_strv_contains ((const char *const *)allowed->pdata, *k);
      if (known && !ok)
        {
          g_autofree char *list = g_strjoinv (", ", (char **)allowed->pdata);
          msim_ini_set_error (c->ini, c->error, c->group, *k,
                              "does not apply to %s %s (its keys: %s)", what, name, list);
          return FALSE;
        }
    }
  return msim_ini_check_keys (c->ini, c->group, all, c->error);
}

static gboolean
read_domain_weights (Cfg *c, MsimGenParams *p)
{
  if (!msim_ini_has_key (c->ini, c->group, "domain_weights"))
    return TRUE;
  g_autofree char *text = NULL;
  if (!msim_ini_get_string (c->ini, c->group, "domain_weights", TRUE, NULL, &text, c->error))
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  guint n = g_strv_length (parts);
  if (msim_ini_has_key (c->ini, c->group, "domains") && n != p->domains)
    {
      msim_ini_set_error (c->ini, c->error, c->group, "domain_weights", "%u weights for %u domains",
                          n, p->domains);
      return FALSE;
    }
  if (n == 0 || n > MSIM_GEN_MAX_DOMAINS)
    {
      msim_ini_set_error (c->ini, c->error, c->group, "domain_weights",
                          "expected 1..%u comma-separated weights", MSIM_GEN_MAX_DOMAINS);
      return FALSE;
    }
  p->domains = n;
  p->domain_weights = g_new (double, n);
  for (guint i = 0; i < n; i++)
    {
      g_strstrip (parts[i]);
      double v;
      if (!msim_parse_double (parts[i], &v) || v < 0)
        {
          msim_ini_set_error (c->ini, c->error, c->group, "domain_weights",
                              "weight %u '%s' is not a finite number >= 0", i + 1, parts[i]);
          return FALSE;
        }
      p->domain_weights[i] = v;
    }
  return TRUE;
}

static MsimTrace *
make_generator (Cfg *c, const MsimGeneratorType *type, const MsimModelSpec *model, guint64 tokens,
                guint64 seed)
{
  static const char *const none[] = { NULL };
  if (!check_applicable (c, "generator", type->name, none, type->keys))
    return NULL;
  MsimGenParams p;
  msim_gen_params_init (&p, (guint)msim_model_spec_n_moe_layers (model), (guint)model->experts,
                        (guint)model->top_k);
  type->apply_defaults (&p);
  double aff, reuse, zipf;
  guint domains;
  gboolean ok = get_uint (c, "sequence_len", p.sequence_len, 1, G_MAXUINT32, &p.sequence_len)
                && get_double (c, "zipf_s", p.zipf_s, 0, 64, &zipf)
                && get_bool (c, "zipf_shuffle", p.zipf_shuffle, &p.zipf_shuffle)
                && get_double (c, "affinity", p.affinity, 0, 1, &aff)
                && get_double (c, "reuse", p.reuse, 0, 1, &reuse)
                && get_uint (c, "domains", p.domains, 1, MSIM_GEN_MAX_DOMAINS, &domains);
  if (ok)
    {
      p.zipf_s = zipf;
      p.affinity = aff;
      p.reuse = reuse;
      p.domains = domains;
      ok = read_domain_weights (c, &p);
    }
  MsimTrace *t = NULL;
  if (ok)
    {
      GError *local = NULL;
      t = msim_gen_generate (&p, (gsize)tokens, seed, &local);
      if (t == NULL)
        relocate (c, local);
    }
  msim_gen_params_clear (&p);
  return t;
}

static const char *const gating_names[]
    = { "mixtral", "switch", "deepseek", "softmax-renorm", "softmax-raw", "sigmoid-renorm", NULL };
static const MsimGating gating_values[]
    = { MSIM_GATING_SOFTMAX_RENORM, MSIM_GATING_SOFTMAX_RAW, MSIM_GATING_SIGMOID_RENORM,
        MSIM_GATING_SOFTMAX_RENORM, MSIM_GATING_SOFTMAX_RAW, MSIM_GATING_SIGMOID_RENORM };

static gboolean
read_router_params (Cfg *c, MsimRouterParams *p)
{
  MsimHiddenParams *h = &p->hidden;
  int gating = -1;
  if (msim_ini_has_key (c->ini, c->group, "gating")
      && !msim_ini_get_choice (c->ini, c->group, "gating", TRUE, 0, gating_names, &gating,
                               c->error))
    return FALSE;
  if (gating >= 0)
    p->gating = gating_values[gating];
  static const char *const modes[] = { "predict", "execute", NULL };
  int mode = 0;
  g_autofree char *weights = NULL;
  if (!get_uint (c, "sequence_len", h->sequence_len, 1, 1u << 24, &h->sequence_len)
      || !get_uint (c, "batch_tokens", p->batch_tokens, 1, 1u << 24, &p->batch_tokens)
      || !get_double (c, "gate_scale", p->gate_scale, 0, 1e6, &p->gate_scale)
      || !get_double (c, "jitter", p->jitter, 0, 0.999, &p->jitter)
      || !get_double (c, "capacity_factor", p->capacity_factor, 0, 1e6, &p->capacity_factor)
      || !get_bool (c, "mark_dropped", p->mark_dropped, &p->mark_dropped)
      || !get_double (c, "aux_loss_coef", p->aux_loss_coef, 0, 1e6, &p->aux_loss_coef)
      || !get_double (c, "z_loss_coef", p->z_loss_coef, 0, 1e6, &p->z_loss_coef)
      || !get_double (c, "expert_capacity", p->expert_capacity, 1e-6, 1e6, &p->expert_capacity)
      || !get_double (c, "tau", p->tau, 0, 1e12, &p->tau)
      || !get_bool (c, "causal", p->causal, &p->causal)
      || !get_uint (c, "attention_heads", p->attention_heads, 1, 1024, &p->attention_heads)
      || !get_uint (c, "attention_head_dim", p->attention_head_dim, 0, 65536,
                    &p->attention_head_dim)
      || !get_double (c, "attention_qk_corr", p->attention_qk_corr, 0, 1, &p->attention_qk_corr)
      || !get_uint (c, "recurrent_dim", p->recurrent_dim, 1, 65536, &p->recurrent_dim)
      || !msim_ini_get_choice (c->ini, c->group, "pregate", FALSE, 0, modes, &mode, c->error)
      || !get_double (c, "fluctuation_eps", p->fluctuation_eps, 0, 1000, &p->fluctuation_eps)
      || !get_uint (c, "hidden_dim", h->dim, 1, 65536, &h->dim)
      || !get_uint (c, "topics", h->topics, 1, 65536, &h->topics)
      || !get_double (c, "topic_scale", h->topic_scale, 0, 1e6, &h->topic_scale)
      || !get_double (c, "token_scale", h->token_scale, 0, 1e6, &h->token_scale)
      || !get_double (c, "token_corr", h->token_corr, 0, 1, &h->token_corr)
      || !get_double (c, "drift", h->drift, 0, 1e6, &h->drift)
      || !msim_ini_get_string (c->ini, c->group, "weights", FALSE, NULL, &weights, c->error))
    return FALSE;
  p->pregate = (MsimPregateMode)mode;
  if (weights)
    p->weights = resolve (c->ini, weights);
  /* batch_tokens defaults to 4096 rounded down to whole sequences (at
   * least one), so that changing only sequence_len stays valid. */
  if (!msim_ini_has_key (c->ini, c->group, "batch_tokens"))
    p->batch_tokens = MAX (1u, 4096u / h->sequence_len) * h->sequence_len;
  return TRUE;
}

static MsimWorkload *
make_router (Cfg *c, const MsimRouterType *type, const MsimModelSpec *model, guint64 tokens,
             guint64 seed)
{
  if (!check_applicable (c, "router", type->name, router_common_keys, type->keys))
    return NULL;
  MsimRouterParams p;
  msim_router_params_init_from_model (&p, model);
  if (!read_router_params (c, &p))
    {
      msim_router_params_clear (&p);
      return NULL;
    }
  GError *local = NULL;
  gboolean loaded = p.weights != NULL;
  guint want_dim = p.hidden.dim;
  g_autoptr (MsimRouter) r = msim_router_new (type, &p, seed, &local);
  msim_router_params_clear (&p);
  if (r == NULL)
    {
      relocate (c, local);
      return NULL;
    }
  if (loaded && msim_ini_has_key (c->ini, c->group, "hidden_dim")
      && want_dim != msim_router_dim (r))
    {
      msim_ini_set_error (c->ini, c->error, c->group, "hidden_dim",
                          "%u, but the gate weights have %u columns (drop hidden_dim: loaded "
                          "weights set it)",
                          want_dim, msim_router_dim (r));
      return NULL;
    }
  MsimWorkload *w = g_new0 (MsimWorkload, 1);
  w->trace = msim_router_run (r, (gsize)tokens, &w->report,
                              type->predicts_next ? &w->predicted : NULL, &local);
  if (w->trace == NULL)
    {
      relocate (c, local);
      msim_workload_free (w);
      return NULL;
    }
  return w;
}

MsimWorkload *
msim_workload_new_from_ini (const MsimIni *ini, const char *group, const MsimModelSpec *model,
                            guint64 tokens, guint64 seed, GError **error)
{
  g_return_val_if_fail (ini != NULL && group != NULL && model != NULL, NULL);
  Cfg c = { ini, group, error };
  if (!msim_ini_has_group (ini, group))
    {
      msim_ini_set_error (ini, error, NULL, NULL,
                          "missing [%s] group (generator = NAME or "
                          "router = NAME)",
                          group);
      return NULL;
    }
  gboolean has_gen = msim_ini_has_key (ini, group, "generator");
  gboolean has_router = msim_ini_has_key (ini, group, "router");
  if (has_gen == has_router)
    {
      msim_ini_set_error (ini, error, group, has_gen ? "router" : NULL,
                          "name exactly one of generator = NAME or router = NAME");
      return NULL;
    }
  if (tokens == 0)
    {
      msim_ini_set_error (ini, error, group, NULL, "0 tokens requested");
      return NULL;
    }
  gint64 s = (gint64)(seed & G_MAXINT64);
  if (msim_ini_has_key (ini, group, "seed")
      && !msim_ini_get_int64 (ini, group, "seed", TRUE, 0, 0, G_MAXINT64, &s, error))
    return NULL;
  if (msim_ini_has_key (ini, group, "seed"))
    seed = (guint64)s;
  const char *kind = has_gen ? "generator" : "router";
  g_autofree char *name = NULL;
  if (!msim_ini_get_string (ini, group, kind, TRUE, NULL, &name, error))
    return NULL;

  MsimWorkload *w = NULL;
  if (has_gen)
    {
      const MsimGeneratorType *type = msim_generator_lookup (name);
      if (type == NULL)
        {
          guint n;
          const MsimGeneratorType *const *all = msim_generator_types (&n);
          g_autoptr (GString) list = g_string_new (NULL);
          for (guint i = 0; i < n; i++)
            g_string_append_printf (list, "%s%s", i ? ", " : "", all[i]->name);
          msim_ini_set_error (ini, error, group, "generator", "unknown generator '%s' (known: %s)",
                              name, list->str);
          return NULL;
        }
      MsimTrace *t = make_generator (&c, type, model, tokens, seed);
      if (t == NULL)
        return NULL;
      w = g_new0 (MsimWorkload, 1);
      w->trace = t;
    }
  else
    {
      const MsimRouterType *type = msim_router_lookup (name);
      if (type == NULL)
        {
          guint n;
          const MsimRouterType *const *all = msim_router_types (&n);
          g_autoptr (GString) list = g_string_new (NULL);
          for (guint i = 0; i < n; i++)
            g_string_append_printf (list, "%s%s", i ? ", " : "", all[i]->name);
          msim_ini_set_error (ini, error, group, "router", "unknown router '%s' (known: %s)", name,
                              list->str);
          return NULL;
        }
      w = make_router (&c, type, model, tokens, seed);
      if (w == NULL)
        return NULL;
    }
  w->kind = g_strdup (kind);
  w->name = g_steal_pointer (&name);
  w->seed = seed;
  return w;
}

MsimTrace *
msim_workload_generate_from_ini (const MsimIni *ini, const char *group, const MsimModelSpec *model,
                                 guint64 tokens_needed, guint64 seed, GError **error)
{
  g_return_val_if_fail (ini != NULL && group != NULL && model != NULL, NULL);
  g_autofree char *router = NULL;
  if (msim_ini_has_key (ini, group, "router")
      && msim_ini_get_string (ini, group, "router", TRUE, NULL, &router, NULL)
      && msim_router_lookup (router) != NULL
      && msim_router_lookup (router)->select == MSIM_ROUTER_SELECT_EXPERT_CHOICE)
    {
      msim_ini_set_error (ini, error, group, "router",
                          "expert-choice routing gives a token 0..E experts (a trace with k = E "
                          "slots), which the step engine cannot replay with top_k = %d; study it "
                          "with 'moesim trace gen --router expert-choice' or 'moesim trace "
                          "route-stats'",
                          model->top_k);
      return NULL;
    }
  g_autoptr (MsimWorkload) w
      = msim_workload_new_from_ini (ini, group, model, tokens_needed, seed, error);
  if (w == NULL)
    return NULL;
  return g_steal_pointer (&w->trace);
}
