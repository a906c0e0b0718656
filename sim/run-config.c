#include "run-config.h"

#include <string.h>

#include "msim-error.h"
#include "analysis-util.h"
#include "placement.h"
#include "workload.h"

static const char *const groups[] = { "topology", "model", "gpu",    "workload", "placement",
                                      "engine",   "output", "sweep",    "offload", "router", NULL };

/* The trace cache of sweeps: path -> MsimTrace*. */
static GMutex cache_lock;
static GHashTable *trace_cache;

void
msim_run_config_set_trace_cache (gboolean enabled)
{
  g_mutex_lock (&cache_lock);
  if (enabled && trace_cache == NULL)
    trace_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) msim_trace_free);
  else if (!enabled && trace_cache != NULL)
    g_clear_pointer (&trace_cache, g_hash_table_destroy);
  g_mutex_unlock (&cache_lock);
}

/* Loads @path, or shares the cached copy.  The lock is held across the
 * load so that concurrent points asking for one trace load it once. */
static MsimTrace *
load_trace (const char *path, gboolean *shared, GError **error)
{
  g_mutex_lock (&cache_lock);
  if (trace_cache == NULL)
    {
      g_mutex_unlock (&cache_lock);
      *shared = FALSE;
      return msim_trace_load (path, error);
    }
  MsimTrace *t = g_hash_table_lookup (trace_cache, path);
  if (t == NULL && (t = msim_trace_load (path, error)) != NULL)
    g_hash_table_insert (trace_cache, g_strdup (path), t);
  g_mutex_unlock (&cache_lock);
  *shared = TRUE;
  return t;
}
static const char *const topology_keys[] = { "file", "preset", "override.*", NULL };
static const char *const workload_keys[]
    = { "trace", "phase", "tokens", "steps", "prompt_len", "offset", "memory_limit_gib", NULL };
static const char *const placement_keys[] = { "policy", "file", "fit_trace", "option.*", NULL };
static const char *const engine_keys[]
    = { "scheme",          "network",        "alltoall",     "alltoall_window",
        "alltoall_subflows", "alltoall_spray", "microbatches", "capacity_factor",
        "base_latency",    "step_latency",   "seed",         "check",
        "route_thread",    "nccl_tuning",    NULL };
static const char *const output_keys[] = { "dir", NULL };

void
msim_run_config_free (MsimRunConfig *cfg)
{
  if (cfg == NULL)
    return;
  msim_ini_free (cfg->ini);
  msim_topology_free (cfg->topology);
  msim_model_spec_free (cfg->model);
  msim_gpu_spec_free (cfg->gpu);
  if (!cfg->trace_shared)
    msim_trace_free (cfg->trace);
  g_free (cfg->trace_path);
  msim_expert_map_free (cfg->placement);
  g_free (cfg->placement_policy);
  g_free (cfg->output_dir);
  g_free (cfg);
}

char *
msim_run_config_resolve (const MsimIni *ini, const char *path)
{
  if (g_path_is_absolute (path))
    return g_strdup (path);
  g_autofree char *dir = g_path_get_dirname (msim_ini_path (ini));
  char *near = g_build_filename (dir, path, NULL);
  if (g_file_test (near, G_FILE_TEST_EXISTS))
    return near;
  g_autofree char *data = g_build_filename (msim_data_dir (), path, NULL);
  if (g_file_test (data, G_FILE_TEST_EXISTS))
    {
      g_free (near);
      return g_steal_pointer (&data);
    }
  return near;
}

static gboolean
apply_sets (MsimIni *ini, const char *const *sets, GError **error)
{
  for (const char *const *s = sets; s && *s; s++)
    {
      const char *eq = strchr (*s, '=');
      const char *dot = strchr (*s, '.');
      if (eq == NULL || dot == NULL || dot > eq || dot == *s || dot + 1 == eq)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "--set '%s': expected SECTION.KEY=VALUE", *s);
          return FALSE;
        }
      g_autofree char *group = g_strndup (*s, dot - *s);
      g_autofree char *key = g_strndup (dot + 1, eq - dot - 1);
      g_autofree char *escaped = g_strescape (*s, NULL);
      g_autofree char *origin = g_strdup_printf ("--set %s", escaped);
      if (!msim_ini_override (ini, group, key, eq + 1, origin, error))
        return FALSE;
    }
  return TRUE;
}

static MsimTopology *
load_topology (const MsimIni *ini, GError **error)
{
  if (!msim_ini_check_keys (ini, "topology", topology_keys, error))
    return NULL;
  g_autofree char *file = NULL, *preset = NULL;
  if (!msim_ini_get_string (ini, "topology", "file", FALSE, NULL, &file, error)
      || !msim_ini_get_string (ini, "topology", "preset", FALSE, NULL, &preset, error))
    return NULL;
  if ((file == NULL) == (preset == NULL))
    {
      msim_ini_set_error (ini, error, "topology", NULL,
                          "give exactly one of 'file' (a topology file) or 'preset' (a name such "
                          "as dgx-h100)");
      return NULL;
    }
  GError *local = NULL;
  MsimTopology *t;
  if (file)
    {
      g_autofree char *path = msim_run_config_resolve (ini, file);
      /* override.KEY replaces [topology] keys of the file, as for presets,
       * so that sweeps can vary a topology file (e.g. its oversubscription). */
      g_autoptr (MsimIni) tini = msim_ini_load (path, &local);
      t = NULL;
      if (tini && msim_ini_check_groups (tini, msim_topology_ini_groups (), &local))
        {
          g_auto (GStrv) keys = msim_ini_keys (ini, "topology");
          gboolean ok = TRUE;
          for (char **k = keys; ok && *k; k++)
            if (g_str_has_prefix (*k, "override."))
              {
                g_autofree char *v
                    = g_key_file_get_value (msim_ini_keyfile (ini), "topology", *k, NULL);
                g_autofree char *origin = g_strdup_printf ("%s [topology] %s", msim_ini_path (ini), *k);
                ok = msim_ini_override (tini, "topology", *k + strlen ("override."), v, origin,
                                        &local);
              }
          if (ok)
            t = msim_topology_new_from_ini (tini, &local);
        }
    }
  else
    {
      g_autoptr (GPtrArray) ov = g_ptr_array_new_with_free_func (g_free);
      g_auto (GStrv) keys = msim_ini_keys (ini, "topology");
      for (char **k = keys; *k; k++)
        if (g_str_has_prefix (*k, "override."))
          {
            g_autofree char *v = g_key_file_get_value (msim_ini_keyfile (ini), "topology", *k, NULL);
            g_ptr_array_add (ov, g_strdup_printf ("%s=%s", *k + strlen ("override."), v));
          }
      g_ptr_array_add (ov, NULL);
      t = msim_topology_load_preset (preset, (const char *const *) ov->pdata, &local);
    }
  if (t == NULL)
    {
      g_autofree char *where = g_strdup_printf ("%s: [topology]: ", msim_ini_path (ini));
      g_propagate_prefixed_error (error, local, "%s", where);
    }
  return t;
}

static gboolean
load_workload (MsimRunConfig *cfg, GError **error)
{
  const MsimIni *ini = cfg->ini;
  MsimStepOptions *o = &cfg->options;
  if (!msim_ini_has_group (ini, "workload"))
    {
      msim_ini_set_error (ini, error, NULL, NULL, "missing [workload] group (trace = FILE)");
      return FALSE;
    }
  if (!msim_ini_check_keys (ini, "workload", workload_keys, error))
    return FALSE;
  static const char *const phases[] = { "prefill", "decode", NULL };
  int phase;
  gint64 tokens, steps, prompt_len, offset;
  double mem_gib;
  g_autofree char *trace = NULL;
  gboolean routed = msim_ini_has_group (ini, "router");
  if (!msim_ini_get_string (ini, "workload", "trace", !routed, NULL, &trace, error)
      || !msim_ini_get_choice (ini, "workload", "phase", FALSE, 0, phases, &phase, error)
      || !msim_ini_get_int64 (ini, "workload", "tokens", FALSE, 4096, 1, G_GINT64_CONSTANT (1) << 32,
                              &tokens, error)
      || !msim_ini_get_int64 (ini, "workload", "steps", FALSE, 1, 1, 1000000, &steps, error)
      || !msim_ini_get_int64 (ini, "workload", "prompt_len", FALSE, 512, 1, 10000000, &prompt_len,
                              error)
      || !msim_ini_get_int64 (ini, "workload", "offset", FALSE, 0, 0, G_GINT64_CONSTANT (1) << 40,
                              &offset, error)
      || !msim_ini_get_double (ini, "workload", "memory_limit_gib", FALSE, 8.0, 0.001, 1e6,
                               &mem_gib, error))
    return FALSE;
  o->phase = (MsimPhase) phase;
  o->tokens = (guint64) tokens;
  o->steps = (guint) steps;
  o->prompt_len = (guint64) prompt_len;
  o->token_offset = (guint64) offset;
  msim_trace_set_memory_limit ((guint64) (mem_gib * 1073741824.0));
  if (routed && trace)
    {
      msim_ini_set_error (ini, error, "workload", "trace",
                          "give either a trace here or a [router] group that generates one, not "
                          "both");
      return FALSE;
    }
  GError *local = NULL;
  if (routed)
    {
      /* Generated in memory, seeded by [engine] seed unless [router] has its own. */
      guint64 need = o->token_offset + o->tokens * o->steps;
      cfg->trace = msim_workload_generate_from_ini (ini, "router", cfg->model, need, cfg->seed,
                                                    error);
      if (cfg->trace == NULL)
        return FALSE;
      g_autofree char *name = NULL;
      if (!msim_ini_get_string (ini, "router", "router", FALSE, NULL, &name, NULL) || !name)
        msim_ini_get_string (ini, "router", "generator", FALSE, "?", &name, NULL);
      cfg->trace_path = g_strdup_printf ("[router] %s", name);
      return TRUE;
    }
  cfg->trace_path = msim_run_config_resolve (ini, trace);
  cfg->trace = load_trace (cfg->trace_path, &cfg->trace_shared, &local);
  if (cfg->trace == NULL)
    {
      g_autofree char *where = g_strdup_printf ("%s: [workload] trace: ", msim_ini_path (ini));
      g_propagate_prefixed_error (error, local, "%s", where);
      return FALSE;
    }
  return TRUE;
}

/* The trace against the model and the [workload] keys.  msim_step_run
 * checks the same for its API callers, but only here are the file, line
 * and key known that the user has to change. */
static gboolean
check_workload (MsimRunConfig *cfg, GError **error)
{
  const MsimIni *ini = cfg->ini;
  const MsimTrace *t = cfg->trace;
  const MsimModelSpec *m = cfg->model;
  const MsimStepOptions *o = &cfg->options;
  int n_moe = msim_model_spec_n_moe_layers (m);
  if (t->layers != (guint) n_moe)
    {
      msim_ini_set_error (ini, error, "workload", "trace",
                          "%s has %u layers but model %s has %d MoE layers", cfg->trace_path,
                          t->layers, m->name, n_moe);
      return FALSE;
    }
  if (t->k != (guint) m->top_k)
    {
      msim_ini_set_error (ini, error, "workload", "trace",
                          "%s routes each token to %u experts but model %s has top_k = %d",
                          cfg->trace_path, t->k, m->name, m->top_k);
      return FALSE;
    }
  if (t->experts > (guint) m->experts)
    {
      msim_ini_set_error (ini, error, "workload", "trace",
                          "%s uses %u experts but model %s has %d", cfg->trace_path, t->experts,
                          m->name, m->experts);
      return FALSE;
    }
  guint gpus = msim_topology_n_gpus (cfg->topology);
  /* `moesim offload` decodes its own batch ([offload] batch); only the
   * step engine needs a token per GPU. */
  if (o->tokens < gpus && !msim_ini_has_group (ini, "offload"))
    {
      msim_ini_set_error (ini, error, "workload", "tokens",
                          "%" G_GUINT64_FORMAT " tokens per step cannot give each of %u GPUs a "
                          "token",
                          o->tokens, gpus);
      return FALSE;
    }
  /* tokens <= 2^32, steps <= 1e6, offset <= 2^40: no overflow. */
  guint64 need = o->token_offset + o->tokens * o->steps;
  if (need > t->tokens)
    {
      const char *key = o->token_offset >= t->tokens                ? "offset"
                        : o->token_offset + o->tokens > t->tokens ? "tokens"
                                                                  : "steps";
      msim_ini_set_error (ini, error, "workload", key,
                          "the run needs trace tokens [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                          ") but %s has %" G_GSIZE_FORMAT,
                          o->token_offset, need, cfg->trace_path, t->tokens);
      return FALSE;
    }
  return TRUE;
}

/* MsimPlacement (primary GPU and extra copies) to the step engine's map. */
static MsimExpertMap *
expert_map_from_placement (const MsimPlacement *p)
{
  guint L = msim_placement_layers (p), E = msim_placement_experts (p);
  g_autoptr (GPtrArray) lists = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  for (guint l = 0; l < L; l++)
    for (guint e = 0; e < E; e++)
      {
        GArray *a = g_array_new (FALSE, FALSE, sizeof (guint));
        for (guint r = 0; r < msim_placement_n_replicas (p, l, e); r++)
          {
            guint g = msim_placement_replica_gpu (p, l, e, r);
            g_array_append_val (a, g);
          }
        g_ptr_array_add (lists, a);
      }
  return msim_expert_map_new (L, E, (GArray *const *) lists->pdata);
}

/* Fits placement policy @spec (a built-in name or plugin:PATH) on the
 * workload trace, or on the traces of `fit_trace` (fit on some categories,
 * run on another). */
static MsimPlacement *
fit_placement (MsimRunConfig *cfg, const char *spec, GError **error)
{
  const MsimIni *ini = cfg->ini;
  GError *local = NULL;
  g_autoptr (MsimPlacementPlugin) plugin = NULL;
  const MsimPlacementPolicy *policy = msim_placement_policy_resolve (spec, &plugin, &local);
  if (policy == NULL)
    {
      msim_ini_set_error (ini, error, "placement", "policy", "%s", local->message);
      g_error_free (local);
      return NULL;
    }
  g_autoptr (MsimTrace) fit = NULL;
  g_autofree char *fit_list = NULL;
  if (!msim_ini_get_string (ini, "placement", "fit_trace", FALSE, NULL, &fit_list, error))
    return NULL;
  if (fit_list)
    {
      g_auto (GStrv) parts = g_strsplit (fit_list, ";", -1);
      g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
      for (char **p = parts; *p; p++)
        {
          g_strstrip (*p);
          if (**p)
            g_ptr_array_add (paths, msim_run_config_resolve (ini, *p));
        }
      g_ptr_array_add (paths, NULL);
      fit = msim_trace_load_files ((const char *const *) paths->pdata,
                                       (guint) cfg->model->experts, &local);
      if (fit == NULL)
        {
          msim_ini_set_error (ini, error, "placement", "fit_trace", "%s", local->message);
          g_error_free (local);
          return NULL;
        }
    }
  const MsimTrace *trace = fit ? fit : cfg->trace;
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new_from_topology (cfg->topology, error);
  if (shape == NULL)
    return NULL;
  g_autoptr (MsimPlacementProblem) problem
      = msim_placement_problem_new (trace, shape, cfg->seed, &local);
  if (problem == NULL)
    {
      msim_ini_set_error (ini, error, "placement", fit ? "fit_trace" : "policy", "%s",
                          local->message);
      g_error_free (local);
      return NULL;
    }
  GStrvBuilder *ob = g_strv_builder_new ();
  g_auto (GStrv) keys = msim_ini_keys (ini, "placement");
  for (char **k = keys; *k; k++)
    if (g_str_has_prefix (*k, "option."))
      {
        g_autofree char *v = g_key_file_get_value (msim_ini_keyfile (ini), "placement", *k, NULL);
        g_autofree char *kv = g_strdup_printf ("%s=%s", *k + strlen ("option."), v);
        g_strv_builder_add (ob, kv);
      }
  g_auto (GStrv) options = g_strv_builder_end (ob);
  g_strv_builder_unref (ob);
  MsimPlacement *p = msim_placement_run (policy, (const char *const *) options, problem, NULL,
                                         &local);
  if (p == NULL)
    {
      msim_ini_set_error (ini, error, "placement", "policy", "%s", local->message);
      g_error_free (local);
    }
  return p;
}

static gboolean
load_placement (MsimRunConfig *cfg, GError **error)
{
  const MsimIni *ini = cfg->ini;
  if (!msim_ini_check_keys (ini, "placement", placement_keys, error))
    return FALSE;
  g_autofree char *policy = NULL, *file = NULL;
  if (!msim_ini_get_string (ini, "placement", "policy", FALSE, "contiguous", &policy, error)
      || !msim_ini_get_string (ini, "placement", "file", FALSE, NULL, &file, error))
    return FALSE;
  guint G = msim_topology_n_gpus (cfg->topology);
  guint E = (guint) cfg->model->experts;
  guint L = (guint) msim_model_spec_n_moe_layers (cfg->model);
  if (file && msim_ini_has_key (ini, "placement", "policy"))
    {
      msim_ini_set_error (ini, error, "placement", "file",
                          "give a placement file or a policy, not both");
      return FALSE;
    }
  if (file)
    {
      g_autofree char *path = msim_run_config_resolve (ini, file);
      GError *local = NULL;
      g_autoptr (MsimPlacement) p = msim_placement_load (path, L, E, G, &local);
      if (p == NULL)
        {
          msim_ini_set_error (ini, error, "placement", "file", "%s", local->message);
          g_error_free (local);
          return FALSE;
        }
      cfg->placement_policy = g_strdup_printf ("file:%s", file);
      cfg->placement = expert_map_from_placement (p);
      return TRUE;
    }
  if (strcmp (policy, "contiguous") == 0 || strcmp (policy, "round-robin") == 0)
    {
      gboolean contiguous = policy[0] == 'c';
      if (contiguous && E % G != 0 && G % E != 0)
        {
          msim_ini_set_error (ini, error, "placement", "policy",
                              "contiguous placement needs the experts (%u) to divide evenly over "
                              "the GPUs (%u), or the GPUs over the experts",
                              E, G);
          return FALSE;
        }
      /* contiguous: expert e on GPU e / (E/G).  With fewer experts than
       * GPUs, the GPUs form G/E expert-parallel groups of E consecutive
       * GPUs, each holding every expert once (expert e on the GPUs g with
       * g mod E = e), as DeepSpeed-MoE combines expert and data
       * parallelism; tokens use the copy on their own GPU or host when
       * there is one.  round-robin: expert e on GPU e mod G. */
      g_autoptr (GPtrArray) lists
          = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
      for (guint l = 0; l < L; l++)
        for (guint e = 0; e < E; e++)
          {
            GArray *a = g_array_new (FALSE, FALSE, sizeof (guint));
            if (contiguous && E < G)
              for (guint g = e; g < G; g += E)
                g_array_append_val (a, g);
            else
              {
                guint g = contiguous ? e / (E / G) : e % G;
                g_array_append_val (a, g);
              }
            g_ptr_array_add (lists, a);
          }
      cfg->placement_policy = g_strdup (policy);
      cfg->placement = msim_expert_map_new (L, E, (GArray *const *) lists->pdata);
      return TRUE;
    }
  g_autoptr (MsimPlacement) p = fit_placement (cfg, policy, error);
  if (p == NULL)
    return FALSE;
  cfg->placement_policy = g_strdup (policy);
  cfg->placement = expert_map_from_placement (p);
  return TRUE;
}

static gboolean
load_engine (MsimRunConfig *cfg, GError **error)
{
  const MsimIni *ini = cfg->ini;
  MsimStepOptions *o = &cfg->options;
  if (!msim_ini_check_keys (ini, "engine", engine_keys, error)
      || !msim_ini_check_keys (ini, "output", output_keys, error))
    return FALSE;
  static const char *const schemes[] = { "baseline-ep", "context-coherent", NULL };
  static const char *const networks[] = { "maxmin", "analytical", NULL };
  static const char *const a2a[] = { "direct", "hierarchical", NULL };
  static const char *const when[] = { "auto", "off", "on", NULL }; /* MsimStepOptions order */
  int scheme, network, algo, route_thread;
  gint64 window, mbs, seed, subflows;
  gboolean check, spray;
  if (!msim_ini_get_choice (ini, "engine", "scheme", FALSE, 0, schemes, &scheme, error)
      || !msim_ini_get_choice (ini, "engine", "network", FALSE, 0, networks, &network, error)
      || !msim_ini_get_choice (ini, "engine", "alltoall", FALSE, 0, a2a, &algo, error)
      || !msim_ini_get_int64 (ini, "engine", "alltoall_window", FALSE, 0, 0, 64, &window, error)
      || !msim_ini_get_int64 (ini, "engine", "alltoall_subflows", FALSE, 1, 1, 64, &subflows,
                              error)
      || !msim_ini_get_bool (ini, "engine", "alltoall_spray", FALSE, FALSE, &spray, error)
      || !msim_ini_get_int64 (ini, "engine", "microbatches", FALSE, 1, 1, 1024, &mbs, error)
      || !msim_ini_get_double (ini, "engine", "capacity_factor", FALSE, 0.0, 0.0, 1e6,
                               &o->capacity_factor, error)
      || !msim_ini_get_double (ini, "engine", "base_latency", FALSE, o->comm.base_latency_s, 0.0,
                               1.0, &o->comm.base_latency_s, error)
      || !msim_ini_get_double (ini, "engine", "step_latency", FALSE, o->comm.step_latency_s, 0.0,
                               1.0, &o->comm.step_latency_s, error)
      || !msim_ini_get_bool (ini, "engine", "nccl_tuning", FALSE, o->comm.nccl_tuning,
                             &o->comm.nccl_tuning, error)
      || !msim_ini_get_int64 (ini, "engine", "seed", FALSE, 1, 0, G_MAXINT64, &seed, error)
      || !msim_ini_get_bool (ini, "engine", "check", FALSE, FALSE, &check, error)
      || !msim_ini_get_choice (ini, "engine", "route_thread", FALSE, 0, when, &route_thread,
                               error)
      || !msim_ini_get_string (ini, "output", "dir", FALSE, "out", &cfg->output_dir, error))
    return FALSE;
  o->scheme = (MsimScheme) scheme;
  o->network = (MsimNetworkModel) network;
  o->comm.a2a_hierarchical = algo == 1;
  o->comm.a2a_window = (guint) window;
  o->comm.a2a_subflows = (guint) subflows;
  o->comm.a2a_spray = spray;
  o->microbatches = (guint) mbs;
  o->check = check;
  o->route_thread = route_thread;
  cfg->seed = (guint64) seed;
  if (o->capacity_factor > 0.0 && o->capacity_factor < 1e-3)
    {
      msim_ini_set_error (ini, error, "engine", "capacity_factor",
                          "must be 0 (no capacity limit) or at least 0.001");
      return FALSE;
    }
  return TRUE;
}

static MsimRunConfig *
load_config (const char *path, const char *const *sets, GError **error)
{
  g_autoptr (MsimRunConfig) cfg = g_new0 (MsimRunConfig, 1);
  cfg->ini = msim_ini_load (path, error);
  if (cfg->ini == NULL || !apply_sets (cfg->ini, sets, error)
      || !msim_ini_check_groups (cfg->ini, groups, error))
    return NULL;
  msim_step_options_init (&cfg->options);
  if (!msim_ini_has_group (cfg->ini, "topology") || !msim_ini_has_group (cfg->ini, "model")
      || !msim_ini_has_group (cfg->ini, "gpu"))
    {
      msim_ini_set_error (cfg->ini, error, NULL, NULL,
                          "a run config needs [topology], [model], [gpu] and [workload] groups");
      return NULL;
    }
  if (!(cfg->topology = load_topology (cfg->ini, error))
      || !(cfg->model = msim_model_spec_new_from_ini (cfg->ini, "model", error))
      || !(cfg->gpu = msim_gpu_spec_new_from_ini (cfg->ini, "gpu", error))
      || !load_engine (cfg, error) || !load_workload (cfg, error)
      || !check_workload (cfg, error) || !load_placement (cfg, error))
    return NULL;
  return g_steal_pointer (&cfg);
}

MsimRunConfig *
msim_run_config_load (const char *path, const char *const *sets, GError **error)
{
  MsimRunConfig *cfg = load_config (path, sets, error);
  /* Messages quote values, paths and names from the config, which escapes
   * (\n) and file names can fill with anything, also through the errors
   * of the readers it calls (topology, traces): keep every message one
   * line of valid UTF-8, as the CLI promises (found by tests/fuzz). */
  if (cfg == NULL && error != NULL && *error != NULL)
    {
      char *msg = g_utf8_make_valid ((*error)->message, -1);
      for (char *c = msg; *c; c++)
        if (g_ascii_iscntrl (*c))
          *c = '?';
      g_free ((*error)->message);
      (*error)->message = msg;
    }
  return cfg;
}
