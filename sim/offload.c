/* Expert offloading: decode with experts in host memory and a cache per GPU.
 * See offload.h for the model; this file is organised as
 *   options and the [offload] group
 *   cache policies (const vtables + per-key statistics, registered by name)
 *   SCH(m, C) of a trace (the LRC paper's oracle hit rate)
 *   the simulation: set-up, cache bookkeeping, building one step, running
 *   checks, metrics and reports.
 *
 * Why the whole task graph is built before the engine runs (as the step
 * engine does): what a cache holds depends only on the routing, so every
 * hit, miss, eviction and prefetch is known at build time, and timing only
 * decides how long kernels wait for transfers.  Deciding them inside event
 * callbacks instead would cost a callback per kernel and gain nothing. */
#include "offload.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collective.h"
#include "engine.h"
#include "msim-error.h"
#include "msim-float.h"
#include "network.h"
#include "router.h"
#include "tasks.h"
#include "timeline.h"

/* Task categories, for the timeline and per-GPU busy times. */
enum
{
  CAT_ATTENTION,
  CAT_GATE,
  CAT_SHARED,
  CAT_DENSE_FFN,
  CAT_EXPERT,
  CAT_COMBINE_SUM,
  CAT_DISPATCH,
  CAT_COMBINE,
  CAT_FETCH,
  CAT_PREFETCH,
  N_CATS
};

static const char *const cat_names[N_CATS] = {
  "attention",   "gate",     "shared_expert", "dense_ffn", "expert_ffn",
  "combine_sum", "dispatch", "combine",       "fetch",     "prefetch",
};

/* Streams of GPU g: compute, communication (collectives), copy (fetches). */
#define STREAMS_PER_GPU 3

static guint
compute_stream (guint g)
{
  return STREAMS_PER_GPU * g;
}

static guint
copy_stream (guint g)
{
  return STREAMS_PER_GPU * g + 2;
}

/* ------------------------------------------------------------------ */
/* Cache policies                                                       */
/* ------------------------------------------------------------------ */

typedef struct _Sim Sim;

/* What a policy may ask about the simulation when it compares two keys:
 * the position (step, MoE layer) whose next-m window the oracle counts. */
typedef struct
{
  const Sim *sim;
  guint step, layer;
} CacheView;

/* Per-key statistics every built-in policy keeps (each reads what it
 * needs).  Keys are layer * E + expert. */
typedef struct
{
  gint64 *touch;    /* position of the last use or insertion, -1 */
  gint64 *last_use; /* position of the last demand use, -1 */
  double *uses;     /* token uses since the start */
} KeyStats;

/*
 * A cache replacement policy: a const table of functions plus its state.
 * keep_cmp() > 0 when key a should stay rather than key b (never 0 for
 * a != b, so victims are deterministic).
 */
typedef struct
{
  const char *name;
  const char *summary;
  gboolean reuse;        /* FALSE: nothing is kept from one step to the next */
  gboolean needs_future; /* reads the next-m window (oracle) */
  MsimOffloadPrefetch auto_prefetch;
  gpointer (*state_new) (guint n_keys);
  void (*state_free) (gpointer state);
  void (*used) (gpointer state, guint key, gint64 position, guint tokens);
  void (*inserted) (gpointer state, guint key, gint64 position);
  int (*keep_cmp) (gconstpointer state, const CacheView *view, guint a, guint b);
} CachePolicyType;

static gpointer
stats_new (guint n_keys)
{
  KeyStats *s = g_new0 (KeyStats, 1);
  s->touch = g_new (gint64, n_keys);
  s->last_use = g_new (gint64, n_keys);
  s->uses = g_new0 (double, n_keys);
  for (guint i = 0; i < n_keys; i++)
    s->touch[i] = s->last_use[i] = -1;
  return s;
}

static void
stats_free (gpointer state)
{
  KeyStats *s = state;
  g_free (s->touch);
  g_free (s->last_use);
  g_free (s->uses);
  g_free (s);
}

static void
stats_used (gpointer state, guint key, gint64 position, guint tokens)
{
  KeyStats *s = state;
  s->touch[key] = position;
  s->last_use[key] = position;
  s->uses[key] += tokens;
}

static void
stats_inserted (gpointer state, guint key, gint64 position)
{
  KeyStats *s = state;
  s->touch[key] = MAX (s->touch[key], position);
}

static int
cmp_i64 (gint64 a, gint64 b)
{
  return (a > b) - (a < b);
}

/* The last tie-break everywhere: the lower key (expert id) stays, as the
 * SCH ranking of analysis/lrc.h orders equal experts. */
static int
lower_key_stays (guint a, guint b)
{
  return a < b ? 1 : a > b ? -1 : 0;
}

static int
lru_keep (gconstpointer state, const CacheView *view, guint a, guint b)
{
  const KeyStats *s = state;
  int c = cmp_i64 (s->touch[a], s->touch[b]);
  return c ? c : lower_key_stays (a, b);
}

static int
lfu_keep (gconstpointer state, const CacheView *view, guint a, guint b)
{
  const KeyStats *s = state;
  int c = (s->uses[a] > s->uses[b]) - (s->uses[a] < s->uses[b]);
  return c ? c : lru_keep (state, view, a, b);
}

static guint future_uses (const Sim *sim, guint step, guint layer, guint key);

static int
oracle_keep (gconstpointer state, const CacheView *view, guint a, guint b)
{
  const KeyStats *s = state;
  guint fa = future_uses (view->sim, view->step, view->layer, a);
  guint fb = future_uses (view->sim, view->step, view->layer, b);
  int c = (fa > fb) - (fa < fb);
  if (c == 0)
    c = cmp_i64 (s->last_use[a], s->last_use[b]);
  return c ? c : lower_key_stays (a, b);
}

static const CachePolicyType policy_on_demand = {
  .name = "on-demand",
  .summary = "fetch on a miss; nothing kept from one token to the next",
  .reuse = FALSE,
  .auto_prefetch = MSIM_OFFLOAD_PREFETCH_NONE,
  .state_new = stats_new,
  .state_free = stats_free,
  .used = stats_used,
  .inserted = stats_inserted,
  .keep_cmp = lru_keep,
};

static const CachePolicyType policy_lru = {
  .name = "lru",
  .summary = "evict the least recently used expert",
  .reuse = TRUE,
  .auto_prefetch = MSIM_OFFLOAD_PREFETCH_NONE,
  .state_new = stats_new,
  .state_free = stats_free,
  .used = stats_used,
  .inserted = stats_inserted,
  .keep_cmp = lru_keep,
};

static const CachePolicyType policy_lfu = {
  .name = "lfu",
  .summary = "evict the least frequently used expert (token uses since the start), ties LRU",
  .reuse = TRUE,
  .auto_prefetch = MSIM_OFFLOAD_PREFETCH_NONE,
  .state_new = stats_new,
  .state_free = stats_free,
  .used = stats_used,
  .inserted = stats_inserted,
  .keep_cmp = lfu_keep,
};

static const CachePolicyType policy_sch_oracle = {
  .name = "sch-oracle",
  .summary = "keep the experts with the most uses in the next m steps, ties most recent use "
             "(SCH upper bound; prefetches its set one layer ahead)",
  .reuse = TRUE,
  .needs_future = TRUE,
  .auto_prefetch = MSIM_OFFLOAD_PREFETCH_ORACLE,
  .state_new = stats_new,
  .state_free = stats_free,
  .used = stats_used,
  .inserted = stats_inserted,
  .keep_cmp = oracle_keep,
};

static const CachePolicyType policy_pregated = {
  .name = "pregated",
  .summary = "Pre-gated MoE: fetch layer l+1's predicted experts while layer l computes, "
             "misses on demand; nothing kept across tokens",
  .reuse = FALSE,
  .auto_prefetch = MSIM_OFFLOAD_PREFETCH_PREGATE,
  .state_new = stats_new,
  .state_free = stats_free,
  .used = stats_used,
  .inserted = stats_inserted,
  .keep_cmp = lru_keep,
};

static const CachePolicyType *const policies[] = {
  &policy_on_demand, &policy_lru, &policy_lfu, &policy_sch_oracle, &policy_pregated,
};

static const char *const policy_name_list[] = {
  "on-demand", "lru", "lfu", "sch-oracle", "pregated", NULL,
};

const char *const *
msim_offload_policy_names (void)
{
  return policy_name_list;
}

static const CachePolicyType *
policy_lookup (const char *name)
{
  for (gsize i = 0; name && i < G_N_ELEMENTS (policies); i++)
    if (strcmp (policies[i]->name, name) == 0)
      return policies[i];
  return NULL;
}

const char *
msim_offload_policy_summary (const char *name)
{
  const CachePolicyType *p = policy_lookup (name);
  return p ? p->summary : NULL;
}

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

static const char *const prefetch_names[] = { "auto", "none", "pregate", "oracle", NULL };
static const char *const batch_from_names[] = { "streams", "consecutive", NULL };

void
msim_offload_options_init (MsimOffloadOptions *o)
{
  memset (o, 0, sizeof *o);
  o->policy = "lru";
  o->prefetch = MSIM_OFFLOAD_PREFETCH_AUTO;
  o->prediction_accuracy = 1.0;
  o->sch_window = 16;
  o->batch = 1;
  o->steps = 32;
  o->batch_from = MSIM_OFFLOAD_BATCH_STREAMS;
  o->memory_check = TRUE;
}

void
msim_offload_options_clear (MsimOffloadOptions *o)
{
  g_clear_pointer (&o->predicted_trace, g_free);
}

static const char *const offload_keys[] = { "policy",
                                            "cache_experts_per_layer",
                                            "cache_bytes",
                                            "prefetch",
                                            "prediction_accuracy",
                                            "predicted_trace",
                                            "sch_window",
                                            "batch",
                                            "steps",
                                            "warmup_steps",
                                            "batch_from",
                                            "memory_check",
                                            "check",
                                            NULL };

gboolean
msim_offload_options_from_ini (const MsimIni *ini, MsimOffloadOptions *out, GError **error)
{
  msim_offload_options_init (out);
  if (!msim_ini_has_group (ini, "offload"))
    return TRUE;
  if (!msim_ini_check_keys (ini, "offload", offload_keys, error))
    return FALSE;
  int policy, prefetch, from;
  gint64 cache_n, m, batch, steps, warmup;
  double cache_bytes;
  g_autofree char *pred = NULL;
  if (!msim_ini_get_choice (ini, "offload", "policy", FALSE, 1, policy_name_list, &policy, error)
      || !msim_ini_get_int64 (ini, "offload", "cache_experts_per_layer", FALSE, 0, 0, 65536,
                              &cache_n, error)
      || !msim_ini_get_double (ini, "offload", "cache_bytes", FALSE, 0.0, 0.0, 1e15, &cache_bytes,
                               error)
      || !msim_ini_get_choice (ini, "offload", "prefetch", FALSE, 0, prefetch_names, &prefetch,
                               error)
      || !msim_ini_get_double (ini, "offload", "prediction_accuracy", FALSE, 1.0, 0.0, 1.0,
                               &out->prediction_accuracy, error)
      || !msim_ini_get_string (ini, "offload", "predicted_trace", FALSE, NULL, &pred, error)
      || !msim_ini_get_int64 (ini, "offload", "sch_window", FALSE, 16, 1, 1000000, &m, error)
      || !msim_ini_get_int64 (ini, "offload", "batch", FALSE, 1, 1, 4096, &batch, error)
      || !msim_ini_get_int64 (ini, "offload", "steps", FALSE, 32, 1, 1000000, &steps, error)
      || !msim_ini_get_int64 (ini, "offload", "warmup_steps", FALSE, 0, 0, 1000000, &warmup, error)
      || !msim_ini_get_choice (ini, "offload", "batch_from", FALSE, 0, batch_from_names, &from,
                               error)
      || !msim_ini_get_bool (ini, "offload", "memory_check", FALSE, TRUE, &out->memory_check, error)
      || !msim_ini_get_bool (ini, "offload", "check", FALSE, FALSE, &out->check, error))
    return FALSE;
  /* 0 unsets a key, so that --set can switch from one form to the other. */
  if (cache_n > 0 && cache_bytes > 0.0)
    {
      msim_ini_set_error (ini, error, "offload", "cache_bytes",
                          "give at most one of cache_experts_per_layer (experts per MoE layer and "
                          "GPU) and cache_bytes (one budget per GPU for all layers)");
      return FALSE;
    }
  const CachePolicyType *p = policies[policy];
  if (prefetch == MSIM_OFFLOAD_PREFETCH_ORACLE && !p->needs_future)
    {
      msim_ini_set_error (ini, error, "offload", "prefetch",
                          "oracle prefetch needs the future: only policy = sch-oracle has it");
      return FALSE;
    }
  out->policy = p->name;
  out->cache_experts_per_layer = (guint)cache_n;
  out->cache_bytes = cache_bytes;
  out->prefetch = (MsimOffloadPrefetch)prefetch;
  /* Empty unsets it (--set offload.predicted_trace=); without pre-gate
   * prefetch it is not read, so one base config serves every policy. */
  out->predicted_trace = pred && *pred ? msim_run_config_resolve (ini, pred) : NULL;
  out->sch_window = (guint)m;
  out->batch = (guint)batch;
  out->steps = (guint)steps;
  out->warmup_steps = (guint)warmup;
  out->batch_from = (MsimOffloadBatchFrom)from;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* SCH(m, C) of a trace                                                 */
/* ------------------------------------------------------------------ */

void
msim_offload_trace_sch (const MsimTrace *t, guint layer, const gsize *first, guint n_sequences,
                        gsize length, guint m, double *sch_out)
{
  g_return_if_fail (t != NULL && layer < t->layers && m >= 1 && sch_out != NULL);
  const guint k = t->k, E = t->experts;
  g_autofree guint64 *hist = g_new0 (guint64, E);
  g_autofree guint *cnt = g_new (guint, E);
  g_autofree gint64 *last = g_new (gint64, E);
  guint64 demands = 0;
  for (guint q = 0; q < n_sequences; q++)
    {
      gsize a = first[q], n = length;
      g_return_if_fail (a + n <= t->tokens);
      memset (cnt, 0, sizeof (guint) * E);
      for (guint e = 0; e < E; e++)
        last[e] = -1;
      guint seen = 0;
      for (gsize x = 0; x < MIN ((gsize)m, n); x++)
        {
          const MsimExpertId *row = msim_trace_row (t, a + x, layer);
          for (guint r = 0; r < k; r++)
            if (row[r] >= 0)
              cnt[row[r]]++;
        }
      for (gsize x = 0; x < n; x++)
        {
          const MsimExpertId *row = msim_trace_row (t, a + x, layer);
          guint slots_taken = seen;
          for (guint r = 0; r < k; r++)
            {
              if (row[r] < 0)
                continue;
              guint e = (guint)row[r];
              guint rank = 0;
              for (guint f = 0; f < E; f++)
                if (f != e
                    && (cnt[f] > cnt[e]
                        || (cnt[f] == cnt[e]
                            && (last[f] > last[e] || (last[f] == last[e] && f < e)))))
                  rank++;
              guint eff = rank;
              if (last[e] < 0)
                {
                  /* A cold cache with free slots does not count a miss. */
                  eff = MIN (rank, slots_taken);
                  slots_taken++;
                }
              hist[MIN (eff, E - 1)]++;
              demands++;
            }
          for (guint r = 0; r < k; r++)
            if (row[r] >= 0)
              {
                if (last[row[r]] < 0)
                  seen++;
                last[row[r]] = (gint64)x;
              }
          for (guint r = 0; r < k; r++)
            if (row[r] >= 0)
              cnt[row[r]]--;
          if (x + m < n)
            {
              const MsimExpertId *in = msim_trace_row (t, a + x + m, layer);
              for (guint r = 0; r < k; r++)
                if (in[r] >= 0)
                  cnt[in[r]]++;
            }
        }
    }
  guint64 hits = 0;
  for (guint c = 0; c < E; c++)
    {
      hits += hist[c];
      sch_out[c] = demands ? (double)hits / (double)demands : NAN;
    }
}

/* ------------------------------------------------------------------ */
/* The simulation                                                       */
/* ------------------------------------------------------------------ */

/* A set of cache slots: the experts of one MoE layer on one GPU, or all of
 * a GPU's experts when the cache is one byte budget. */
typedef struct
{
  guint n_slots;
  gint32 *slot_key;      /* -1: free */
  gint32 *slot_fetch;    /* the last fetch into the slot, -1 */
  MsimTask **slot_last;  /* the last kernel that read the slot */
  guint *slot_fill_step; /* the step its fetch was for */
  guint8 *slot_fresh;    /* prefetched and not used yet */
  GArray *keys;          /* guint: the keys this pool may hold */
  guint seen;            /* distinct keys demanded so far (SCH convention) */
} Pool;

typedef struct
{
  Pool *pools; /* L (per-layer cache) or 1 */
  guint n_pools;
  gpointer policy_state;
  MsimTask *last_compute; /* the last task submitted on its compute stream */
  guint host_vertex, gpu_vertex;
  guint pcie_link; /* last link of the host-memory route, into the GPU */
  guint slots;     /* over all pools */
  guint owned;     /* experts placed here, all layers */
  double mem_weights, mem_cache, mem_kv, mem_all_resident;
} Gpu;

typedef struct
{
  Sim *sim;
  guint index, step, key, gpu, slot;
  gboolean prefetch, used;
  gint32 evicted;      /* key, -1 */
  gint32 next_in_slot; /* the next fetch into the same slot, -1 */
  MsimTask *task;
  double bytes; /* delivered */
} FetchRec;

typedef struct
{
  guint step, key, gpu, tokens;
  MsimOffloadOutcome outcome;
  gboolean sch_hit;
  gint32 fetch;
  MsimTask *kernel, *prev, *dep;
} AccessRec;

typedef struct
{
  MsimTask **first; /* per GPU: its first task of the step, or NULL */
  MsimTask **last;  /* per GPU: its last task of the step, or NULL */
} StepRec;

struct _Sim
{
  MsimTopology *topo;
  const MsimModelSpec *model;
  const MsimGpuSpec *gpu_spec;
  const MsimTrace *trace;
  const MsimTrace *pred; /* predictions for pre-gate prefetch, or NULL */
  MsimTrace *pred_owned;
  const MsimOffloadOptions *o;
  const CachePolicyType *policy;
  MsimOffloadPrefetch prefetch;
  gboolean per_layer;
  guint G, E, L, k, B, S, n_blocks, m;
  guint64 prompt_len;
  MsimEngine *engine;
  MsimNetwork *net;
  MsimTasks *tasks;
  MsimComm *comm;
  Gpu *gpus;
  guint *owner;        /* [L E]: GPU of each key */
  gint32 *key_slot;    /* [L E]: slot in its pool, -1 */
  guint8 *key_seen;    /* [L E]: demanded before (SCH convention) */
  guint8 *protect;     /* [L E]: workspace, keys victims should avoid */
  guint *key_tokens;   /* [L E]: workspace, tokens per key at one layer */
  gsize *tok;          /* [S B]: trace token of (step, sequence) */
  guint *home;         /* [B]: GPU of each sequence */
  guint32 *use_prefix; /* [L E][S + 1]: token uses before each step (oracle) */
  GPtrArray *fetches;  /* FetchRec* */
  GArray *accesses;    /* AccessRec */
  StepRec *steps;
  guint64 flow_id;
  double act, ebytes, eflops;
};

static Pool *
pool_of (const Sim *sim, guint gpu, guint layer)
{
  Gpu *g = &sim->gpus[gpu];
  return sim->per_layer ? &g->pools[layer] : &g->pools[0];
}

static gint64
position (const Sim *sim, guint step, guint layer)
{
  return (gint64)step * sim->L + layer;
}

/* Token uses of @key in the next m steps as seen from (@step, @layer):
 * steps [step, step + m) for its own layer and later ones, one step later
 * for layers already past in @step (they come next in the step after). */
static guint
future_uses (const Sim *sim, guint step, guint layer, guint key)
{
  guint kl = key / sim->E;
  guint from = step + (!sim->per_layer && kl < layer ? 1 : 0);
  guint to = MIN (from + sim->m, sim->S);
  if (from >= to)
    return 0;
  const guint32 *p = sim->use_prefix + (gsize)key * (sim->S + 1);
  return p[to] - p[from];
}

static MsimTime
kernel_ps (const Sim *sim, MsimKernelClass klass, double flops, double bytes)
{
  double s = msim_gpu_kernel_time_s (sim->gpu_spec, klass, flops, bytes);
  MsimTime t = 0;
  if (!msim_time_from_seconds (s, &t))
    t = MSIM_TIME_NEVER / 4;
  return t;
}

static void
sim_free (Sim *sim)
{
  if (sim == NULL)
    return;
  if (sim->gpus)
    for (guint g = 0; g < sim->G; g++)
      {
        Gpu *gp = &sim->gpus[g];
        for (guint p = 0; p < gp->n_pools; p++)
          {
            Pool *pl = &gp->pools[p];
            g_free (pl->slot_key);
            g_free (pl->slot_fetch);
            g_free (pl->slot_last);
            g_free (pl->slot_fill_step);
            g_free (pl->slot_fresh);
            if (pl->keys)
              g_array_free (pl->keys, TRUE);
          }
        g_free (gp->pools);
        if (gp->policy_state)
          sim->policy->state_free (gp->policy_state);
      }
  g_free (sim->gpus);
  if (sim->steps)
    for (guint s = 0; s < sim->S; s++)
      {
        g_free (sim->steps[s].first);
        g_free (sim->steps[s].last);
      }
  g_free (sim->steps);
  msim_comm_free (sim->comm);
  msim_tasks_free (sim->tasks);
  msim_network_free (sim->net);
  msim_engine_free (sim->engine);
  msim_trace_free (sim->pred_owned);
  g_free (sim->owner);
  g_free (sim->key_slot);
  g_free (sim->key_seen);
  g_free (sim->protect);
  g_free (sim->key_tokens);
  g_free (sim->tok);
  g_free (sim->home);
  g_free (sim->use_prefix);
  if (sim->fetches)
    g_ptr_array_free (sim->fetches, TRUE);
  if (sim->accesses)
    g_array_free (sim->accesses, TRUE);
  g_free (sim);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Sim, sim_free)

/* ---------- fetches ---------- */

static void
fetch_flow_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  FetchRec *f = data;
  f->bytes += info->bytes;
  msim_task_finish (f->task);
}

/* The copy stream reached the fetch: its flow starts now. */
static void
fetch_start (MsimTask *task, gpointer data)
{
  FetchRec *f = data;
  Sim *sim = f->sim;
  const Gpu *g = &sim->gpus[f->gpu];
  MsimRoute route;
  GError *error = NULL;
  /* Set-up checked that every GPU reaches its host memory. */
  if (!msim_topology_route (sim->topo, g->host_vertex, g->gpu_vertex, sim->flow_id++, &route,
                            &error))
    g_error ("offload: %s", error->message);
  msim_network_start_flow (sim->net, msim_engine_now (sim->engine), route.links, route.n_links,
                           route.latency_ps, sim->ebytes, fetch_flow_done, f);
}

/* Empties @slot of @pool; returns the key it held, or -1. */
static gint32
evict (Sim *sim, Pool *pool, guint slot)
{
  gint32 key = pool->slot_key[slot];
  if (key >= 0)
    {
      sim->key_slot[key] = -1;
      pool->slot_key[slot] = -1;
      pool->slot_fresh[slot] = 0;
    }
  return key;
}

/* TRUE when @key's weights are (or are being brought) on its GPU for use at
 * @step.  Policies without reuse discard an expert after its token: a copy
 * fetched for an earlier step is dropped here. */
static gboolean
usable (Sim *sim, Pool *pool, guint key, guint step)
{
  gint32 slot = sim->key_slot[key];
  if (slot < 0)
    return FALSE;
  if (sim->policy->reuse || pool->slot_fill_step[slot] == step)
    return TRUE;
  evict (sim, pool, (guint)slot);
  return FALSE;
}

/* A free slot, else the occupant the policy keeps least, avoiding
 * protected keys while there is any other choice; with @strict, never a
 * protected key (G_MAXUINT when there is no other). */
static guint
choose_slot (Sim *sim, guint gpu, Pool *pool, const CacheView *view, gboolean strict)
{
  for (guint s = 0; s < pool->n_slots; s++)
    if (pool->slot_key[s] < 0)
      return s;
  gpointer state = sim->gpus[gpu].policy_state;
  gint best = -1;
  for (guint pass = 0; pass < (strict ? 1u : 2u) && best < 0; pass++)
    for (guint s = 0; s < pool->n_slots; s++)
      {
        guint key = (guint)pool->slot_key[s];
        if (pass == 0 && sim->protect[key])
          continue;
        if (best < 0 || sim->policy->keep_cmp (state, view, key, (guint)pool->slot_key[best]) < 0)
          best = (gint)s;
      }
  g_assert (best >= 0 || strict);
  return best >= 0 ? (guint)best : G_MAXUINT;
}

/* Fetches @key into @slot (already emptied) of @pool for use at @step,
 * after the tasks in @after (the gates that make the routing known) and the
 * last kernel that read the slot. */
static FetchRec *
issue_fetch (Sim *sim, guint gpu, Pool *pool, guint slot, guint key, guint step, gboolean prefetch,
             gint32 evicted, MsimTask *const *after, guint n_after, gint64 pos)
{
  FetchRec *f = g_new0 (FetchRec, 1);
  f->sim = sim;
  f->index = sim->fetches->len;
  f->step = step;
  f->key = key;
  f->gpu = gpu;
  f->slot = slot;
  f->prefetch = prefetch;
  f->used = !prefetch;
  f->evicted = evicted;
  f->next_in_slot = -1;
  f->task = msim_task_external (sim->tasks, copy_stream (gpu), prefetch ? "prefetch" : "fetch",
                                prefetch ? CAT_PREFETCH : CAT_FETCH, key / sim->E, fetch_start, f);
  for (guint i = 0; i < n_after; i++)
    msim_task_after (f->task, after[i]);
  msim_task_after (f->task, pool->slot_last[slot]);
  msim_task_submit (f->task);
  if (pool->slot_fetch[slot] >= 0)
    ((FetchRec *)g_ptr_array_index (sim->fetches, pool->slot_fetch[slot]))->next_in_slot
        = (gint32)f->index;
  g_ptr_array_add (sim->fetches, f);
  pool->slot_fetch[slot] = (gint32)f->index;
  pool->slot_key[slot] = (gint32)key;
  pool->slot_fill_step[slot] = step;
  pool->slot_fresh[slot] = prefetch;
  sim->key_slot[key] = (gint32)slot;
  sim->policy->inserted (sim->gpus[gpu].policy_state, key, pos);
  return f;
}

/* Makes @key resident in its pool for use at @step by a prefetch issued at
 * position @pos, unless it already is; victims are ranked as seen from
 * (@step, @layer), the position the prefetch serves.  A prefetch never
 * evicts a protected key (another expert predicted for the same position):
 * with more predicted experts than slots, the rest are fetched on demand
 * instead of the prefetches evicting each other. */
static void
prefetch_key (Sim *sim, guint gpu, guint key, guint step, guint layer, MsimTask *const *gates,
              guint n_gates, gint64 pos)
{
  Pool *pool = pool_of (sim, gpu, key / sim->E);
  if (pool->n_slots == 0 || usable (sim, pool, key, step))
    return;
  CacheView view = { sim, step, layer };
  guint slot = choose_slot (sim, gpu, pool, &view, TRUE);
  if (slot == G_MAXUINT)
    return;
  gint32 evicted = evict (sim, pool, slot);
  issue_fetch (sim, gpu, pool, slot, key, step, TRUE, evicted, gates, n_gates, pos);
}

/* ---------- serving one MoE layer on one GPU ---------- */

static void
submit_expert_kernel (Sim *sim, guint gpu, Pool *pool, AccessRec *a, MsimTask *dep)
{
  Gpu *g = &sim->gpus[gpu];
  gint32 slot = sim->key_slot[a->key];
  g_assert (slot >= 0);
  MsimTask *x = msim_task_kernel (sim->tasks, compute_stream (gpu),
                                  kernel_ps (sim, MSIM_KERNEL_GEMM, a->tokens * sim->eflops,
                                             sim->ebytes + 2.0 * a->tokens * sim->act),
                                  "expert_ffn", CAT_EXPERT, a->key / sim->E);
  msim_task_after (x, dep);
  FetchRec *f = g_ptr_array_index (sim->fetches, pool->slot_fetch[slot]);
  msim_task_after (x, f->task);
  msim_task_submit (x);
  f->used = TRUE;
  pool->slot_fresh[slot] = 0;
  pool->slot_last[slot] = x;
  a->fetch = (gint32)f->index;
  a->kernel = x;
  a->prev = g->last_compute;
  a->dep = dep;
  g->last_compute = x;
  g_array_append_val (sim->accesses, *a);
}

static int
cmp_fetch_order (const AccessRec *a, const AccessRec *b, const Sim *sim)
{
  gint32 fa = pool_of (sim, a->gpu, a->key / sim->E)->slot_fetch[sim->key_slot[a->key]];
  gint32 fb = pool_of (sim, b->gpu, b->key / sim->E)->slot_fetch[sim->key_slot[b->key]];
  return (fa > fb) - (fa < fb);
}

/*
 * GPU @gpu needs @n experts of MoE layer @layer at @step (@keys in order of
 * first appearance in the batch, @tokens each).  Classifies each access,
 * tells the policy, then submits kernels: hits, prefetch hits in the order
 * their transfers were issued, then misses, each fetched on demand into the
 * slot the policy frees.  Kernels wait for @dep (the gate or the dispatch).
 * Returns the last kernel, or NULL.
 */
static MsimTask *
serve_layer (Sim *sim, guint gpu, guint step, guint layer, const guint *keys, guint n,
             MsimTask *dep, MsimTask *const *gates, guint n_gates)
{
  if (n == 0)
    return NULL;
  Gpu *g = &sim->gpus[gpu];
  Pool *pool = pool_of (sim, gpu, layer);
  gint64 pos = position (sim, step, layer);
  g_autofree AccessRec *acc = g_new0 (AccessRec, n);
  guint slots_taken = pool->seen, new_seen = 0;
  for (guint i = 0; i < n; i++)
    {
      guint key = keys[i];
      AccessRec *a = &acc[i];
      a->step = step;
      a->key = key;
      a->gpu = gpu;
      a->tokens = sim->key_tokens[key];
      a->fetch = -1;
      sim->protect[key] = 1;
      if (usable (sim, pool, key, step))
        a->outcome
            = pool->slot_fresh[sim->key_slot[key]] ? MSIM_OFFLOAD_PREFETCH_HIT : MSIM_OFFLOAD_HIT;
      else
        a->outcome = MSIM_OFFLOAD_MISS;
      a->sch_hit = a->outcome != MSIM_OFFLOAD_MISS;
      if (!sim->key_seen[key])
        {
          /* SCH convention: a first use while slots are free is no miss. */
          if (slots_taken < pool->n_slots)
            a->sch_hit = TRUE;
          slots_taken++;
          new_seen++;
          sim->key_seen[key] = 1;
        }
    }
  pool->seen += new_seen;
  for (guint i = 0; i < n; i++)
    sim->policy->used (g->policy_state, keys[i], pos, acc[i].tokens);

  /* Hits, then prefetch hits by transfer order, then misses. */
  for (guint i = 0; i < n; i++)
    if (acc[i].outcome == MSIM_OFFLOAD_HIT)
      submit_expert_kernel (sim, gpu, pool, &acc[i], dep);
  g_autofree AccessRec **pre = g_new (AccessRec *, n);
  guint np = 0;
  for (guint i = 0; i < n; i++)
    if (acc[i].outcome == MSIM_OFFLOAD_PREFETCH_HIT)
      {
        /* Insertion sort: a handful of experts per layer. */
        guint j = np++;
        while (j > 0 && cmp_fetch_order (pre[j - 1], &acc[i], sim) > 0)
          {
            pre[j] = pre[j - 1];
            j--;
          }
        pre[j] = &acc[i];
      }
  for (guint i = 0; i < np; i++)
    submit_expert_kernel (sim, gpu, pool, pre[i], dep);
  CacheView view = { sim, step, layer };
  for (guint i = 0; i < n; i++)
    if (acc[i].outcome == MSIM_OFFLOAD_MISS)
      {
        guint slot = choose_slot (sim, gpu, pool, &view, FALSE);
        gint32 evicted = evict (sim, pool, slot);
        issue_fetch (sim, gpu, pool, slot, acc[i].key, step, FALSE, evicted, gates, n_gates, pos);
        submit_expert_kernel (sim, gpu, pool, &acc[i], dep);
      }
  for (guint i = 0; i < n; i++)
    sim->protect[keys[i]] = 0;
  return g->last_compute;
}

/* ---------- prefetch ---------- */

/* Merge sort of @keys by the policy's keep order, best first (a stable
 * sort with a context; qsort has none and n can reach L x E). */
static void
sort_keys (const Sim *sim, gconstpointer state, const CacheView *view, guint *keys, guint *tmp,
           guint n)
{
  if (n < 2)
    return;
  guint h = n / 2;
  sort_keys (sim, state, view, keys, tmp, h);
  sort_keys (sim, state, view, keys + h, tmp, n - h);
  guint i = 0, j = h, o = 0;
  while (i < h && j < n)
    tmp[o++] = sim->policy->keep_cmp (state, view, keys[j], keys[i]) > 0 ? keys[j++] : keys[i++];
  while (i < h)
    tmp[o++] = keys[i++];
  while (j < n)
    tmp[o++] = keys[j++];
  memcpy (keys, tmp, sizeof (guint) * n);
}

/* The oracle's transition before (@step, @layer): the pool's top n_slots
 * keys by future uses (ties: most recent use, lower id), among those used
 * in the window, become resident. */
static void
oracle_transition (Sim *sim, guint gpu, guint step, guint layer, MsimTask *const *gates,
                   guint n_gates, gint64 pos)
{
  Pool *pool = pool_of (sim, gpu, layer);
  if (pool->n_slots == 0)
    return;
  CacheView view = { sim, step, layer };
  guint nk = pool->keys->len;
  g_autofree guint *cand = g_new (guint, nk);
  g_autofree guint *tmp = g_new (guint, nk);
  guint nc = 0;
  for (guint i = 0; i < nk; i++)
    {
      guint key = g_array_index (pool->keys, guint, i);
      if (future_uses (sim, step, layer, key) > 0)
        cand[nc++] = key;
    }
  sort_keys (sim, sim->gpus[gpu].policy_state, &view, cand, tmp, nc);
  guint nt = MIN (nc, pool->n_slots);
  for (guint i = 0; i < nt; i++)
    sim->protect[cand[i]] = 1;
  for (guint i = 0; i < nt; i++)
    prefetch_key (sim, gpu, cand[i], step, layer, gates, n_gates, pos);
  for (guint i = 0; i < nt; i++)
    sim->protect[cand[i]] = 0;
}

/* Prefetches issued once layer @layer's gates (@gates) have run in @step. */
static void
prefetch_point (Sim *sim, guint step, guint layer, MsimTask *const *gates, guint n_gates)
{
  gint64 pos = position (sim, step, layer);
  if (sim->prefetch == MSIM_OFFLOAD_PREFETCH_PREGATE)
    {
      if (layer + 1 >= sim->L)
        return; /* the next token's layer 0 is not known yet */
      guint E = sim->E, next = layer + 1;
      g_autofree guint8 *pred = g_new0 (guint8, E);
      g_autofree guint8 *one = g_new (guint8, E);
      const gsize *tok = sim->tok + (gsize)step * sim->B;
      if (sim->o->batch_from == MSIM_OFFLOAD_BATCH_CONSECUTIVE)
        msim_router_prefetch_set (sim->pred, next, tok[0], sim->B, pred);
      else
        for (guint b = 0; b < sim->B; b++)
          {
            msim_router_prefetch_set (sim->pred, next, tok[b], 1, one);
            for (guint e = 0; e < E; e++)
              pred[e] |= one[e];
          }
      for (guint e = 0; e < E; e++)
        if (pred[e])
          sim->protect[next * E + e] = 1;
      for (guint e = 0; e < E; e++)
        if (pred[e])
          prefetch_key (sim, sim->owner[next * E + e], next * E + e, step, next, gates, n_gates,
                        pos);
      for (guint e = 0; e < E; e++)
        sim->protect[next * E + e] = 0;
    }
  else if (sim->prefetch == MSIM_OFFLOAD_PREFETCH_ORACLE)
    {
      guint ns = step, nl = layer + 1;
      if (nl == sim->L)
        {
          ns++;
          nl = 0;
        }
      if (ns >= sim->S)
        return;
      for (guint g = 0; g < sim->G; g++)
        oracle_transition (sim, g, ns, nl, gates, n_gates, pos);
    }
}

/* ---------- one decode step ---------- */

/* Step @s: every sequence of the batch decodes one token, block by block.
 * @ready[g] is what GPU g's next attention waits for (its previous step). */
static void
build_step (Sim *sim, guint s, MsimTask **ready)
{
  const MsimModelSpec *m = sim->model;
  const guint G = sim->G, E = sim->E, B = sim->B, k = sim->k;
  const gsize *tok = sim->tok + (gsize)s * B;
  double dtb = m->dtype_bytes;
  double ctx = (double)sim->prompt_len + s + 1;
  double attn_w = (double)msim_model_spec_attention_params (m) * dtb;
  double kv_tok = (double)msim_model_spec_kv_cache_bytes_per_token (m);
  StepRec *sr = &sim->steps[s];
  sr->first = g_new0 (MsimTask *, G);
  sr->last = g_new0 (MsimTask *, G);
  g_autofree guint64 *nt = g_new0 (guint64, G);
  for (guint b = 0; b < B; b++)
    nt[sim->home[b]]++;
  g_autofree guint *all = g_new (guint, G);
  for (guint g = 0; g < G; g++)
    all[g] = g;
  g_autofree MsimTask **gate = g_new0 (MsimTask *, G);
  g_autofree MsimTask **gates = g_new0 (MsimTask *, G);
  g_autofree MsimTask **last_exp = g_new0 (MsimTask *, G);
  g_autofree double *dbytes = g_new (double, (gsize)G *G);
  g_autofree double *cbytes = g_new (double, (gsize)G *G);
  g_autofree guint *keys = g_new (guint, (gsize)G * E); /* per GPU, first-appearance order */
  g_autofree guint *nkeys = g_new (guint, G);

  guint l = 0;
  for (guint blk = 0; blk < sim->n_blocks; blk++)
    {
      gboolean moe = msim_model_spec_is_moe_layer (m, (int)blk);
      guint n_gates = 0;
      for (guint g = 0; g < G; g++)
        {
          gate[g] = NULL;
          if (nt[g] == 0)
            continue;
          Gpu *gp = &sim->gpus[g];
          double kv_read = nt[g] * ctx * kv_tok;
          MsimTask *a = msim_task_kernel (
              sim->tasks, compute_stream (g),
              kernel_ps (sim, MSIM_KERNEL_ATTENTION,
                         nt[g] * msim_model_spec_attention_flops_per_token (m, ctx),
                         attn_w + kv_read + 2.0 * nt[g] * sim->act),
              "attention", CAT_ATTENTION, blk);
          msim_task_after (a, ready[g]);
          msim_task_submit (a);
          if (sr->first[g] == NULL)
            sr->first[g] = a;
          MsimTask *last = a;
          if (moe)
            {
              last = gate[g] = msim_task_kernel (
                  sim->tasks, compute_stream (g),
                  kernel_ps (sim, MSIM_KERNEL_GEMM,
                             nt[g] * msim_model_spec_gate_flops_per_token (m),
                             (double)msim_model_spec_gate_params (m) * dtb + nt[g] * sim->act),
                  "gate", CAT_GATE, blk);
              msim_task_submit (gate[g]);
              gates[n_gates++] = gate[g];
              if (m->shared_experts > 0)
                {
                  last = msim_task_kernel (
                      sim->tasks, compute_stream (g),
                      kernel_ps (sim, MSIM_KERNEL_GEMM,
                                 nt[g] * msim_model_spec_shared_expert_flops_per_token (m),
                                 (double)msim_model_spec_shared_expert_params (m) * dtb
                                     + 2.0 * nt[g] * sim->act),
                      "shared_expert", CAT_SHARED, blk);
                  msim_task_submit (last);
                }
            }
          else
            {
              last = msim_task_kernel (
                  sim->tasks, compute_stream (g),
                  kernel_ps (
                      sim, MSIM_KERNEL_GEMM, nt[g] * msim_model_spec_dense_ffn_flops_per_token (m),
                      (double)msim_model_spec_dense_ffn_params (m) * dtb + 2.0 * nt[g] * sim->act),
                  "dense_ffn", CAT_DENSE_FFN, blk);
              msim_task_submit (last);
            }
          ready[g] = gp->last_compute = last;
        }
      if (!moe)
        continue;

      /* Routing: the experts each GPU serves, tokens per expert, and the
       * hidden states crossing GPUs. */
      memset (nkeys, 0, sizeof (guint) * G);
      memset (dbytes, 0, sizeof (double) * G * G);
      memset (cbytes, 0, sizeof (double) * G * G);
      for (guint b = 0; b < B; b++)
        {
          const MsimExpertId *row = msim_trace_row (sim->trace, tok[b], l);
          for (guint r = 0; r < k; r++)
            {
              if (row[r] < 0)
                continue;
              guint key = l * E + (guint)row[r];
              guint h = sim->owner[key];
              if (sim->key_tokens[key]++ == 0)
                keys[h * E + nkeys[h]++] = key;
              if (h != sim->home[b])
                {
                  dbytes[sim->home[b] * G + h] += sim->act;
                  cbytes[h * G + sim->home[b]] += sim->act;
                }
            }
        }
      MsimColl *disp = NULL;
      if (G > 1)
        {
          disp = msim_coll_alltoallv (sim->comm, all, G, dbytes, "dispatch", CAT_DISPATCH, l);
          for (guint g = 0; g < G; g++)
            {
              MsimTask *t = msim_coll_task (disp, g);
              msim_task_after (t, gate[g]);
              msim_task_submit (t);
            }
        }
      for (guint h = 0; h < G; h++)
        last_exp[h] = serve_layer (sim, h, s, l, keys + h * E, nkeys[h],
                                   disp ? msim_coll_task (disp, h) : gate[h], gates, n_gates);
      for (guint h = 0; h < G; h++)
        for (guint i = 0; i < nkeys[h]; i++)
          sim->key_tokens[keys[h * E + i]] = 0;
      prefetch_point (sim, s, l, gates, n_gates);

      MsimColl *comb = NULL;
      if (G > 1)
        {
          comb = msim_coll_alltoallv (sim->comm, all, G, cbytes, "combine", CAT_COMBINE, l);
          for (guint g = 0; g < G; g++)
            {
              MsimTask *t = msim_coll_task (comb, g);
              msim_task_after (t, last_exp[g]);
              msim_task_submit (t);
            }
        }
      for (guint g = 0; g < G; g++)
        {
          if (nt[g] == 0)
            continue;
          MsimTask *sum = msim_task_kernel (sim->tasks, compute_stream (g),
                                            kernel_ps (sim, MSIM_KERNEL_ELEMENTWISE,
                                                       2.0 * nt[g] * k * m->hidden_size,
                                                       (k + 1.0) * nt[g] * sim->act),
                                            "combine_sum", CAT_COMBINE_SUM, blk);
          if (comb)
            msim_task_after (sum, msim_coll_task (comb, g));
          msim_task_after (sum, last_exp[g]);
          msim_task_submit (sum);
          ready[g] = sim->gpus[g].last_compute = sum;
        }
      l++;
    }
  for (guint g = 0; g < G; g++)
    if (nt[g] > 0)
      sr->last[g] = ready[g];
}

/* ------------------------------------------------------------------ */
/* Results                                                              */
/* ------------------------------------------------------------------ */

typedef struct
{
  guint64 accesses, hits, prefetch_hits, misses, sch_hits, tokens;
  guint64 fetches, prefetches, prefetches_unused;
  double bytes, stall_s;
} Agg;

typedef struct
{
  guint slots;
  double mem_weights, mem_cache, mem_kv, mem_all_resident;
  double compute_busy_s, comm_busy_s, copy_busy_s, stall_s, bytes;
  guint64 fetches;
  char *pcie_link;
  double pcie_link_bytes, pcie_link_capacity;
} GpuRes;

struct _MsimOffloadRun
{
  char *topology, *model, *gpu, *trace;
  MsimOffloadOptions opt;
  MsimOffloadPrefetch prefetch; /* resolved */
  gboolean per_layer;
  guint cache_per_layer; /* per-layer cache: C as run (per GPU) */
  guint sch_cache;       /* cache size of the SCH comparison */
  guint G, E, L, k;
  guint64 seed, offset, prompt_len;
  double expert_bytes;
  MsimNetworkModel network;
  const char *prediction_source; /* static */
  double prediction_recall;      /* NaN without pre-gate prefetch */
  GArray *accesses;              /* MsimOffloadAccess */
  GArray *fetches;               /* MsimOffloadFetch */
  guint S;
  double *step_start, *step_latency, *step_stall;
  guint *step_fetches, *step_misses;
  Agg *agg;          /* [L + 1], the last one for the whole model */
  GpuRes *gpus;      /* [G] */
  double *sch_layer; /* [L] at sch_cache */
  double *sch_curve; /* [E]: model mean of SCH(m, C), C = 1..E */
  double time_s;     /* measured steps */
  char *timeline;
};

void
msim_offload_run_free (MsimOffloadRun *run)
{
  if (run == NULL)
    return;
  g_free (run->topology);
  g_free (run->model);
  g_free (run->gpu);
  g_free (run->trace);
  msim_offload_options_clear (&run->opt);
  if (run->accesses)
    g_array_free (run->accesses, TRUE);
  if (run->fetches)
    g_array_free (run->fetches, TRUE);
  g_free (run->step_start);
  g_free (run->step_latency);
  g_free (run->step_stall);
  g_free (run->step_fetches);
  g_free (run->step_misses);
  g_free (run->agg);
  if (run->gpus)
    for (guint g = 0; g < run->G; g++)
      g_free (run->gpus[g].pcie_link);
  g_free (run->gpus);
  g_free (run->sch_layer);
  g_free (run->sch_curve);
  g_free (run->timeline);
  g_free (run);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                               */
/* ------------------------------------------------------------------ */

/* An error about [offload] @key (or another group's): with the config's
 * file and line when @cfg has an ini. */
static void set_key_error (const MsimRunConfig *cfg, GError **error, const char *group,
                           const char *key, const char *format, ...) G_GNUC_PRINTF (5, 6);

static void
set_key_error (const MsimRunConfig *cfg, GError **error, const char *group, const char *key,
               const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (cfg->ini)
    msim_ini_set_error (cfg->ini, error, group, key, "%s", msg);
  else
    g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "[%s] %s: %s", group, key, msg);
}

static gboolean
check_inputs (const MsimRunConfig *cfg, const MsimOffloadOptions *o, GError **error)
{
  const MsimModelSpec *m = cfg->model;
  const MsimTrace *t = cfg->trace;
  const MsimStepOptions *so = &cfg->options;
  guint G = msim_topology_n_gpus (cfg->topology);
  guint L = (guint)msim_model_spec_n_moe_layers (m), E = (guint)m->experts;
  if (so->scheme != MSIM_SCHEME_BASELINE_EP)
    {
      set_key_error (cfg, error, "engine", "scheme",
                     "offloading is modelled with baseline-ep (tokens stay on their home GPU)");
      return FALSE;
    }
  if (so->microbatches != 1)
    {
      set_key_error (cfg, error, "engine", "microbatches",
                     "offloading decodes each batch as one micro-batch");
      return FALSE;
    }
  if (so->capacity_factor > 0.0)
    {
      set_key_error (cfg, error, "engine", "capacity_factor",
                     "offloading does not drop assignments (decode batches are small)");
      return FALSE;
    }
  if (t->layers != L || t->k != (guint)m->top_k || t->experts > E)
    {
      set_key_error (cfg, error, "workload", "trace",
                     "the trace (%u layers, top-%u, %u experts) does not match model %s (%u MoE "
                     "layers, top-%d, %u experts)",
                     t->layers, t->k, t->experts, m->name, L, m->top_k, E);
      return FALSE;
    }
  const MsimExpertMap *map = cfg->placement;
  if (map->layers != L || map->experts != E)
    {
      set_key_error (cfg, error, "placement", "policy",
                     "the placement covers %u x %u experts, the model has %u x %u", map->layers,
                     map->experts, L, E);
      return FALSE;
    }
  for (guint i = 0; i < L * E; i++)
    {
      if (map->offsets[i + 1] - map->offsets[i] != 1)
        {
          set_key_error (cfg, error, "placement", "policy",
                         "expert %u of MoE layer %u has %u copies; offloading models exactly one "
                         "owner per expert (use at most as many GPUs as experts)",
                         i % E, i / E, map->offsets[i + 1] - map->offsets[i]);
          return FALSE;
        }
      if (map->gpus[map->offsets[i]] >= G)
        {
          set_key_error (cfg, error, "placement", "policy",
                         "expert %u of MoE layer %u is on GPU %u of %u", i % E, i / E,
                         map->gpus[map->offsets[i]], G);
          return FALSE;
        }
    }
  const CachePolicyType *p = policy_lookup (o->policy);
  if (p == NULL)
    {
      g_autofree char *names = g_strjoinv (", ", (char **)policy_name_list);
      set_key_error (cfg, error, "offload", "policy", "unknown policy '%s' (known: %s)",
                     o->policy ? o->policy : "(null)", names);
      return FALSE;
    }
  if (o->prefetch == MSIM_OFFLOAD_PREFETCH_ORACLE && !p->needs_future)
    {
      set_key_error (cfg, error, "offload", "prefetch",
                     "oracle prefetch needs the future: only policy = sch-oracle has it");
      return FALSE;
    }
  if (o->cache_experts_per_layer > 0 && o->cache_bytes > 0.0)
    {
      set_key_error (cfg, error, "offload", "cache_bytes",
                     "give at most one of cache_experts_per_layer and cache_bytes");
      return FALSE;
    }
  if (o->batch < 1 || o->steps < 1 || o->sch_window < 1 || !(o->prediction_accuracy >= 0.0)
      || o->prediction_accuracy > 1.0)
    {
      set_key_error (cfg, error, "offload", "batch",
                     "batch, steps and sch_window must be >= 1 and prediction_accuracy in [0, 1]");
      return FALSE;
    }
  guint64 S = (guint64)o->warmup_steps + o->steps;
  guint64 need = so->token_offset + S * o->batch;
  if (need > t->tokens)
    {
      set_key_error (cfg, error, "offload", "steps",
                     "batch %u x (%u warm-up + %u steps) decodes trace tokens [%" G_GUINT64_FORMAT
                     ", %" G_GUINT64_FORMAT ") but %s has %" G_GSIZE_FORMAT,
                     o->batch, o->warmup_steps, o->steps, so->token_offset, need,
                     cfg->trace_path ? cfg->trace_path : "the trace", t->tokens);
      return FALSE;
    }
  return TRUE;
}

/* Pools, memory and routes of every GPU. */
static gboolean
setup_gpus (Sim *sim, const MsimRunConfig *cfg, GError **error)
{
  const MsimModelSpec *m = sim->model;
  const MsimOffloadOptions *o = sim->o;
  guint G = sim->G, E = sim->E, L = sim->L;
  double dt = m->dtype_bytes;
  /* Everything but routed experts is resident on every GPU. */
  double shared = (double)msim_model_spec_embedding_params (m);
  for (guint b = 0; b < sim->n_blocks; b++)
    {
      shared += (double)msim_model_spec_attention_params (m);
      if (msim_model_spec_is_moe_layer (m, (int)b))
        shared += (double)msim_model_spec_gate_params (m)
                  + (double)msim_model_spec_shared_expert_params (m);
      else
        shared += (double)msim_model_spec_dense_ffn_params (m);
    }
  double kv_seq = (double)msim_model_spec_kv_cache_bytes_per_token (m) * sim->n_blocks
                  * (double)(sim->prompt_len + sim->S);
  guint C = o->cache_experts_per_layer;
  guint budget = 0;
  if (!sim->per_layer)
    {
      double slots = floor (o->cache_bytes / sim->ebytes);
      if (slots < 1.0)
        {
          set_key_error (cfg, error, "offload", "cache_bytes",
                         "%.0f bytes hold no expert of %s (%.0f bytes each)", o->cache_bytes,
                         m->name, sim->ebytes);
          return FALSE;
        }
      budget = (guint)MIN (slots, (double)G_MAXUINT);
    }
  sim->gpus = g_new0 (Gpu, G);
  for (guint g = 0; g < G; g++)
    {
      Gpu *gp = &sim->gpus[g];
      gp->n_pools = sim->per_layer ? L : 1;
      gp->pools = g_new0 (Pool, gp->n_pools);
      for (guint p = 0; p < gp->n_pools; p++)
        gp->pools[p].keys = g_array_new (FALSE, FALSE, sizeof (guint));
      for (guint key = 0; key < L * E; key++)
        if (sim->owner[key] == g)
          {
            g_array_append_val (gp->pools[sim->per_layer ? key / E : 0].keys, key);
            gp->owned++;
          }
      for (guint p = 0; p < gp->n_pools; p++)
        {
          Pool *pl = &gp->pools[p];
          pl->n_slots = sim->per_layer ? MIN (C, pl->keys->len) : MIN (budget, pl->keys->len);
          pl->slot_key = g_new (gint32, MAX (pl->n_slots, 1u));
          pl->slot_fetch = g_new (gint32, MAX (pl->n_slots, 1u));
          pl->slot_last = g_new0 (MsimTask *, MAX (pl->n_slots, 1u));
          pl->slot_fill_step = g_new0 (guint, MAX (pl->n_slots, 1u));
          pl->slot_fresh = g_new0 (guint8, MAX (pl->n_slots, 1u));
          for (guint s = 0; s < pl->n_slots; s++)
            pl->slot_key[s] = pl->slot_fetch[s] = -1;
          gp->slots += pl->n_slots;
        }
      gp->policy_state = sim->policy->state_new (L * E);
      guint host = msim_topology_gpu_host (sim->topo, g);
      gp->host_vertex = msim_topology_host_vertex (sim->topo, host);
      gp->gpu_vertex = msim_topology_gpu_vertex (sim->topo, g);
      MsimRoute route;
      GError *local = NULL;
      if (!msim_topology_route (sim->topo, gp->host_vertex, gp->gpu_vertex, 0, &route, &local))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "GPU %u cannot fetch experts from host memory: %s", g, local->message);
          g_error_free (local);
          return FALSE;
        }
      gp->pcie_link = route.n_links ? route.links[route.n_links - 1] : G_MAXUINT;
      guint seqs = 0;
      for (guint b = 0; b < sim->B; b++)
        seqs += sim->home[b] == g;
      gp->mem_weights = shared * dt;
      gp->mem_cache = gp->slots * sim->ebytes;
      gp->mem_kv = seqs * kv_seq;
      gp->mem_all_resident = gp->mem_weights + gp->owned * sim->ebytes + gp->mem_kv;
      double total = gp->mem_weights + gp->mem_cache + gp->mem_kv;
      if (o->memory_check && total > (double)sim->gpu_spec->hbm_capacity_bytes)
        {
          const char *key = sim->per_layer ? "cache_experts_per_layer" : "cache_bytes";
          g_autofree char *msg = g_strdup_printf (
              "GPU %u needs %.2f GiB (resident weights %.2f GiB, expert cache %u x %.3f GiB = "
              "%.2f GiB, KV cache %.2f GiB) but a %s has %.2f GiB: cache fewer experts, decode a "
              "smaller batch, or set memory_check = false",
              g, total / 1073741824.0, gp->mem_weights / 1073741824.0, gp->slots,
              sim->ebytes / 1073741824.0, gp->mem_cache / 1073741824.0, gp->mem_kv / 1073741824.0,
              sim->gpu_spec->name, (double)sim->gpu_spec->hbm_capacity_bytes / 1073741824.0);
          GError *limit = NULL;
          set_key_error (cfg, &limit, "offload", key, "%s", msg);
          limit->code = MSIM_ERROR_LIMIT;
          g_propagate_error (error, limit);
          return FALSE;
        }
    }
  return TRUE;
}

/* The replayed trace's next-layer experts, each replaced with probability
 * 1 - accuracy by an expert outside the token's real set: the stand-in for
 * a pre-gate when no router predictions are given. */
static MsimTrace *
degrade_predictions (const Sim *sim, double accuracy, guint64 seed, GError **error)
{
  const MsimTrace *t = sim->trace;
  MsimTrace *pred
      = msim_trace_new (t->tokens, t->layers, t->k, t->experts, MSIM_TRACE_DROPS, error);
  if (pred == NULL)
    return NULL;
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, (unsigned long)seed);
  const guint E = t->experts, k = t->k;
  g_autofree guint8 *taken = g_new (guint8, E);
  for (gsize i = 0; i < (gsize)sim->S * sim->B; i++)
    {
      gsize tok = sim->tok[i];
      for (guint l = 0; l < t->layers; l++)
        {
          const MsimExpertId *real = msim_trace_row (t, tok, l);
          MsimExpertId *out = msim_trace_row_mut (pred, tok, l);
          memcpy (out, real, sizeof (MsimExpertId) * k);
          if (l == 0 || accuracy >= 1.0)
            continue;
          memset (taken, 0, E);
          for (guint r = 0; r < k; r++)
            if (real[r] >= 0)
              taken[real[r]] = 1;
          for (guint r = 0; r < k; r++)
            {
              if (real[r] < 0 || gsl_rng_uniform (rng) < accuracy)
                continue;
              guint free_n = 0;
              for (guint e = 0; e < E; e++)
                free_n += !taken[e];
              if (free_n == 0)
                continue;
              guint pick = (guint)gsl_rng_uniform_int (rng, free_n);
              for (guint e = 0; e < E; e++)
                if (!taken[e] && pick-- == 0)
                  {
                    out[r] = (MsimExpertId)e;
                    taken[e] = 1;
                    break;
                  }
            }
        }
    }
  gsl_rng_free (rng);
  return pred;
}

/* Mean over decoded (token, layer >= 1) of |predicted ∩ real| / |real|. */
static double
prediction_recall (const Sim *sim)
{
  double sum = 0.0;
  guint64 n = 0;
  const guint k = sim->k;
  for (gsize i = 0; i < (gsize)sim->S * sim->B; i++)
    for (guint l = 1; l < sim->L; l++)
      {
        const MsimExpertId *real = msim_trace_row (sim->trace, sim->tok[i], l);
        const MsimExpertId *pred = msim_trace_row (sim->pred, sim->tok[i], l);
        guint nr = 0, both = 0;
        for (guint r = 0; r < k; r++)
          {
            if (real[r] < 0)
              continue;
            nr++;
            for (guint q = 0; q < sim->pred->k; q++)
              if (pred[q] == real[r])
                {
                  both++;
                  break;
                }
          }
        if (nr)
          {
            sum += (double)both / nr;
            n++;
          }
      }
  return n ? sum / (double)n : NAN;
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */
/* ------------------------------------------------------------------ */

static gboolean
check_conservation (const Sim *sim, GError **error)
{
  const guint E = sim->E;
  guint64 demand_fetches = 0, misses = 0, tokens = 0, assignments = 0;
  for (guint i = 0; i < sim->accesses->len; i++)
    {
      const AccessRec *a = &g_array_index (sim->accesses, AccessRec, i);
      const FetchRec *f = a->fetch >= 0 ? g_ptr_array_index (sim->fetches, a->fetch) : NULL;
      if (f == NULL || f->key != a->key || f->gpu != a->gpu)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "offload check: expert %u of layer %u ran on GPU %u at step %u without "
                       "its weights having been fetched there",
                       a->key % E, a->key / E, a->gpu, a->step);
          return FALSE;
        }
      MsimTime arrived = msim_task_end_time (f->task);
      MsimTime ks = msim_task_start_time (a->kernel), ke = msim_task_end_time (a->kernel);
      if (arrived < 0 || ks < arrived)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "offload check: expert %u of layer %u on GPU %u (step %u) started at "
                       "%" G_GINT64_FORMAT " ps, before its weights arrived at %" G_GINT64_FORMAT
                       " ps",
                       a->key % E, a->key / E, a->gpu, a->step, ks, arrived);
          return FALSE;
        }
      if (f->next_in_slot >= 0)
        {
          const FetchRec *nf = g_ptr_array_index (sim->fetches, f->next_in_slot);
          if (msim_task_start_time (nf->task) < ke)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                           "offload check: the slot of expert %u of layer %u on GPU %u was "
                           "overwritten at %" G_GINT64_FORMAT
                           " ps while its kernel ran until %" G_GINT64_FORMAT " ps",
                           a->key % E, a->key / E, a->gpu, msim_task_start_time (nf->task), ke);
              return FALSE;
            }
        }
      if (a->outcome == MSIM_OFFLOAD_MISS)
        {
          misses++;
          if (f->prefetch || f->step != a->step)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                           "offload check: a miss of expert %u of layer %u was not served by its "
                           "own demand fetch",
                           a->key % E, a->key / E);
              return FALSE;
            }
        }
      if (a->outcome == MSIM_OFFLOAD_PREFETCH_HIT && !f->prefetch)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "offload check: a prefetch hit of expert %u of layer %u has no prefetch",
                       a->key % E, a->key / E);
          return FALSE;
        }
      tokens += a->tokens;
    }
  double bytes = 0.0;
  for (guint i = 0; i < sim->fetches->len; i++)
    {
      const FetchRec *f = g_ptr_array_index (sim->fetches, i);
      demand_fetches += !f->prefetch;
      bytes += f->bytes;
      if (f->bytes != sim->ebytes)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                       "offload check: fetch %u delivered %.17g bytes, an expert is %.17g", i,
                       f->bytes, sim->ebytes);
          return FALSE;
        }
    }
  if (!msim_float_near (bytes, sim->fetches->len * sim->ebytes, MSIM_REL_EPS))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "offload check: %.17g bytes fetched, %u fetches x %.17g bytes expected", bytes,
                   sim->fetches->len, sim->ebytes);
      return FALSE;
    }
  if (demand_fetches != misses)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "offload check: %" G_GUINT64_FORMAT " demand fetches for %" G_GUINT64_FORMAT
                   " misses",
                   demand_fetches, misses);
      return FALSE;
    }
  for (gsize i = 0; i < (gsize)sim->S * sim->B; i++)
    for (guint l = 0; l < sim->L; l++)
      for (guint r = 0; r < sim->k; r++)
        assignments += msim_trace_expert (sim->trace, sim->tok[i], l, r) >= 0;
  if (tokens != assignments)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "offload check: %" G_GUINT64_FORMAT " assignments served, %" G_GUINT64_FORMAT
                   " routed",
                   tokens, assignments);
      return FALSE;
    }
  MsimNetworkStats st;
  msim_network_get_stats (sim->net, &st);
  if (st.flows_started != st.flows_completed
      || !msim_float_near (st.bytes_started, st.bytes_delivered, MSIM_REL_EPS))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "offload check: the network delivered %.17g of %.17g bytes", st.bytes_delivered,
                   st.bytes_started);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Collecting results                                                   */
/* ------------------------------------------------------------------ */

static double
task_end_s (const MsimTask *t)
{
  return t ? msim_time_to_seconds (msim_task_end_time (t)) : 0.0;
}

static void
collect (MsimOffloadRun *run, const Sim *sim)
{
  const guint E = sim->E, L = sim->L, G = sim->G, S = sim->S, W = sim->o->warmup_steps;
  run->fetches = g_array_sized_new (FALSE, TRUE, sizeof (MsimOffloadFetch), sim->fetches->len);
  for (guint i = 0; i < sim->fetches->len; i++)
    {
      const FetchRec *f = g_ptr_array_index (sim->fetches, i);
      MsimOffloadFetch pf = { 0 };
      pf.step = f->step;
      pf.layer = f->key / E;
      pf.expert = f->key % E;
      pf.gpu = f->gpu;
      pf.slot = f->slot;
      pf.prefetch = f->prefetch;
      pf.used = f->used;
      pf.evicted_layer = f->evicted >= 0 ? (gint)(f->evicted / E) : -1;
      pf.evicted_expert = f->evicted >= 0 ? (gint)(f->evicted % E) : -1;
      pf.bytes = f->bytes;
      pf.start_s = msim_time_to_seconds (msim_task_start_time (f->task));
      pf.end_s = msim_time_to_seconds (msim_task_end_time (f->task));
      g_array_append_val (run->fetches, pf);
    }
  run->S = S;
  run->step_start = g_new0 (double, S);
  run->step_latency = g_new0 (double, S);
  run->step_stall = g_new0 (double, S);
  run->step_fetches = g_new0 (guint, S);
  run->step_misses = g_new0 (guint, S);
  run->agg = g_new0 (Agg, L + 1);
  run->gpus = g_new0 (GpuRes, G);
  g_autofree double *stall_sg = g_new0 (double, (gsize)S *G);

  run->accesses = g_array_sized_new (FALSE, TRUE, sizeof (MsimOffloadAccess), sim->accesses->len);
  for (guint i = 0; i < sim->accesses->len; i++)
    {
      const AccessRec *a = &g_array_index (sim->accesses, AccessRec, i);
      MsimOffloadAccess pa = { 0 };
      pa.step = a->step;
      pa.layer = a->key / E;
      pa.expert = a->key % E;
      pa.gpu = a->gpu;
      pa.tokens = a->tokens;
      pa.outcome = a->outcome;
      pa.sch_hit = a->sch_hit;
      pa.fetch = a->fetch;
      pa.kernel_start_s = msim_time_to_seconds (msim_task_start_time (a->kernel));
      pa.kernel_end_s = task_end_s (a->kernel);
      MsimTime ready = 0;
      if (a->prev)
        ready = MAX (ready, msim_task_end_time (a->prev));
      if (a->dep)
        ready = MAX (ready, msim_task_end_time (a->dep));
      pa.stall_s = msim_time_to_seconds (MAX (msim_task_start_time (a->kernel) - ready, 0));
      g_array_append_val (run->accesses, pa);
      if (a->step < W)
        continue;
      Agg *ags[2] = { &run->agg[pa.layer], &run->agg[L] };
      for (guint j = 0; j < 2; j++)
        {
          ags[j]->accesses++;
          ags[j]->hits += a->outcome == MSIM_OFFLOAD_HIT;
          ags[j]->prefetch_hits += a->outcome == MSIM_OFFLOAD_PREFETCH_HIT;
          ags[j]->misses += a->outcome == MSIM_OFFLOAD_MISS;
          ags[j]->sch_hits += a->sch_hit;
          ags[j]->tokens += a->tokens;
          ags[j]->stall_s += pa.stall_s;
        }
      stall_sg[(gsize)a->step * G + a->gpu] += pa.stall_s;
      run->gpus[a->gpu].stall_s += pa.stall_s;
      run->step_misses[a->step] += a->outcome == MSIM_OFFLOAD_MISS;
    }
  for (guint i = 0; i < run->fetches->len; i++)
    {
      const MsimOffloadFetch *f = &g_array_index (run->fetches, MsimOffloadFetch, i);
      run->gpus[f->gpu].fetches++;
      run->gpus[f->gpu].bytes += f->bytes;
      if (f->step < W)
        continue;
      run->step_fetches[f->step]++;
      Agg *ags[2] = { &run->agg[f->layer], &run->agg[L] };
      for (guint j = 0; j < 2; j++)
        {
          ags[j]->fetches++;
          ags[j]->prefetches += f->prefetch;
          ags[j]->prefetches_unused += f->prefetch && !f->used;
          ags[j]->bytes += f->bytes;
        }
    }
  MsimTime end = 0;
  for (guint s = 0; s < S; s++)
    {
      const StepRec *sr = &sim->steps[s];
      MsimTime st = -1, en = 0;
      for (guint g = 0; g < G; g++)
        {
          if (sr->first[g] && (st < 0 || msim_task_start_time (sr->first[g]) < st))
            st = msim_task_start_time (sr->first[g]);
          if (sr->last[g])
            en = MAX (en, msim_task_end_time (sr->last[g]));
        }
      run->step_start[s] = msim_time_to_seconds (MAX (st, 0));
      run->step_latency[s] = msim_time_to_seconds (en - MAX (st, 0));
      for (guint g = 0; g < G; g++)
        run->step_stall[s] = MAX (run->step_stall[s], stall_sg[(gsize)s * G + g]);
      end = MAX (end, en);
    }
  run->time_s = msim_time_to_seconds (end) - run->step_start[W];
  for (guint g = 0; g < G; g++)
    {
      const Gpu *gp = &sim->gpus[g];
      GpuRes *r = &run->gpus[g];
      r->slots = gp->slots;
      r->mem_weights = gp->mem_weights;
      r->mem_cache = gp->mem_cache;
      r->mem_kv = gp->mem_kv;
      r->mem_all_resident = gp->mem_all_resident;
      r->compute_busy_s
          = msim_time_to_seconds (msim_tasks_stream_busy (sim->tasks, compute_stream (g)));
      r->comm_busy_s
          = msim_time_to_seconds (msim_tasks_stream_busy (sim->tasks, compute_stream (g) + 1));
      r->copy_busy_s = msim_time_to_seconds (msim_tasks_stream_busy (sim->tasks, copy_stream (g)));
      if (gp->pcie_link != G_MAXUINT)
        {
          r->pcie_link = g_strdup (msim_topology_link_name (sim->topo, gp->pcie_link));
          r->pcie_link_bytes = msim_network_link_bytes (sim->net, gp->pcie_link);
          r->pcie_link_capacity = msim_topology_link_effective_capacity (sim->topo, gp->pcie_link);
        }
      else
        r->pcie_link = g_strdup ("");
    }
}

/* SCH of the decoded tokens: each sequence of the batch (or, batching
 * consecutive tokens, the whole decoded range) on its own. */
static void
compute_sch (MsimOffloadRun *run, const Sim *sim)
{
  const guint L = sim->L, E = sim->E, W = sim->o->warmup_steps, B = sim->B;
  const MsimTrace *t = sim->trace;
  guint cap = 0;
  for (guint g = 0; g < sim->G; g++)
    cap += sim->gpus[g].slots;
  /* Per-layer caches: the slots one layer has over all GPUs; one budget:
   * the slots per layer it amounts to. */
  run->sch_cache = CLAMP (cap / L, 1u, E);
  guint n_seq = sim->o->batch_from == MSIM_OFFLOAD_BATCH_STREAMS ? B : 1;
  gsize len
      = sim->o->batch_from == MSIM_OFFLOAD_BATCH_STREAMS ? sim->o->steps : (gsize)sim->o->steps * B;
  g_autofree gsize *first = g_new (gsize, n_seq);
  for (guint q = 0; q < n_seq; q++)
    first[q] = n_seq > 1 ? sim->tok[(gsize)W * B + q] : sim->tok[(gsize)W * B];
  run->sch_layer = g_new (double, L);
  run->sch_curve = g_new0 (double, E);
  g_autofree double *curve = g_new (double, t->experts);
  for (guint l = 0; l < L; l++)
    {
      msim_offload_trace_sch (t, l, first, n_seq, len, sim->m, curve);
      for (guint c = 0; c < E; c++)
        run->sch_curve[c] += (c < t->experts ? curve[c] : 1.0) / L;
      run->sch_layer[l] = run->sch_cache <= t->experts ? curve[run->sch_cache - 1] : 1.0;
    }
}

static char *
make_timeline (const Sim *sim)
{
  static const char *const tracks[STREAMS_PER_GPU] = { "compute", "communication", "copy" };
  MsimTimeline *tl = msim_timeline_new (sim->G, STREAMS_PER_GPU, tracks, cat_names, "layer");
  msim_timeline_add_tasks (tl, sim->tasks);
  return msim_timeline_finish (tl);
}

/* ------------------------------------------------------------------ */
/* Running                                                              */
/* ------------------------------------------------------------------ */

static gboolean
load_predictions (Sim *sim, MsimOffloadRun *run, const MsimRunConfig *cfg, GError **error)
{
  const MsimOffloadOptions *o = sim->o;
  if (o->predicted_trace)
    {
      GError *local = NULL;
      sim->pred_owned = msim_trace_load (o->predicted_trace, &local);
      if (sim->pred_owned == NULL)
        {
          set_key_error (cfg, error, "offload", "predicted_trace", "%s", local->message);
          g_error_free (local);
          return FALSE;
        }
      const MsimTrace *p = sim->pred_owned;
      gsize need = 0;
      for (gsize i = 0; i < (gsize)sim->S * sim->B; i++)
        need = MAX (need, sim->tok[i] + 1);
      if (p->layers != sim->L || p->experts > sim->E || p->tokens < need)
        {
          set_key_error (cfg, error, "offload", "predicted_trace",
                         "%s has %" G_GSIZE_FORMAT " tokens x %u layers over %u experts; the run "
                         "needs %" G_GSIZE_FORMAT " x %u over at most %u (write it with the "
                         "trace it predicts: moesim trace gen -r pregated --predicted FILE)",
                         o->predicted_trace, p->tokens, p->layers, p->experts, need, sim->L,
                         sim->E);
          return FALSE;
        }
      run->prediction_source = "predicted-trace";
    }
  else
    {
      sim->pred_owned = degrade_predictions (sim, o->prediction_accuracy, run->seed, error);
      if (sim->pred_owned == NULL)
        return FALSE;
      run->prediction_source = "trace-degraded";
    }
  sim->pred = sim->pred_owned;
  run->prediction_recall = prediction_recall (sim);
  return TRUE;
}

MsimOffloadRun *
msim_offload_run (MsimRunConfig *cfg, const MsimOffloadOptions *o, GError **error)
{
  g_return_val_if_fail (cfg != NULL && o != NULL, NULL);
  g_return_val_if_fail (cfg->topology && cfg->model && cfg->gpu && cfg->trace && cfg->placement,
                        NULL);
  if (!check_inputs (cfg, o, error))
    return NULL;
  const MsimModelSpec *m = cfg->model;
  g_autoptr (MsimOffloadRun) run = g_new0 (MsimOffloadRun, 1);
  run->opt = *o;
  run->opt.predicted_trace = g_strdup (o->predicted_trace);
  g_autoptr (Sim) sim = g_new0 (Sim, 1);
  sim->topo = cfg->topology;
  sim->model = m;
  sim->gpu_spec = cfg->gpu;
  sim->trace = cfg->trace;
  sim->o = &run->opt;
  sim->policy = policy_lookup (o->policy);
  sim->prefetch
      = o->prefetch == MSIM_OFFLOAD_PREFETCH_AUTO ? sim->policy->auto_prefetch : o->prefetch;
  sim->per_layer = !(o->cache_bytes > 0.0);
  if (sim->per_layer && run->opt.cache_experts_per_layer == 0)
    run->opt.cache_experts_per_layer = 2 * (guint)m->top_k; /* LRC's sweet spot */
  sim->G = msim_topology_n_gpus (cfg->topology);
  sim->E = (guint)m->experts;
  sim->L = (guint)msim_model_spec_n_moe_layers (m);
  sim->k = (guint)m->top_k;
  sim->B = o->batch;
  sim->S = o->warmup_steps + o->steps;
  sim->n_blocks = (guint)m->layers;
  sim->m = o->sch_window;
  sim->prompt_len = cfg->options.prompt_len;
  sim->act = (double)msim_model_spec_activation_bytes_per_token (m);
  sim->ebytes = (double)msim_model_spec_expert_bytes (m);
  sim->eflops = msim_model_spec_expert_flops_per_token (m);
  const guint G = sim->G, E = sim->E, L = sim->L, B = sim->B, S = sim->S;

  run->topology = g_strdup (msim_topology_name (cfg->topology));
  run->model = g_strdup (m->name);
  run->gpu = g_strdup (cfg->gpu->name);
  run->trace = g_strdup (cfg->trace_path ? cfg->trace_path : "");
  run->prefetch = sim->prefetch;
  run->per_layer = sim->per_layer;
  run->cache_per_layer = sim->per_layer ? run->opt.cache_experts_per_layer : 0;
  run->G = G;
  run->E = E;
  run->L = L;
  run->k = sim->k;
  run->seed = cfg->seed;
  run->offset = cfg->options.token_offset;
  run->prompt_len = cfg->options.prompt_len;
  run->expert_bytes = sim->ebytes;
  run->network = cfg->options.network;
  run->prediction_source = "none";
  run->prediction_recall = NAN;

  sim->owner = g_new (guint, L * E);
  for (guint key = 0; key < L * E; key++)
    sim->owner[key] = cfg->placement->gpus[cfg->placement->offsets[key]];
  sim->key_slot = g_new (gint32, L * E);
  for (guint key = 0; key < L * E; key++)
    sim->key_slot[key] = -1;
  sim->key_seen = g_new0 (guint8, L * E);
  sim->protect = g_new0 (guint8, L * E);
  sim->key_tokens = g_new0 (guint, L * E);
  sim->tok = g_new (gsize, (gsize)S * B);
  for (guint s = 0; s < S; s++)
    for (guint b = 0; b < B; b++)
      sim->tok[(gsize)s * B + b]
          = cfg->options.token_offset
            + (o->batch_from == MSIM_OFFLOAD_BATCH_STREAMS ? (gsize)b * S + s : (gsize)s * B + b);
  sim->home = g_new (guint, B);
  for (guint b = 0; b < B; b++)
    sim->home[b] = (guint)((guint64)b * G / B);
  if (sim->policy->needs_future)
    {
      sim->use_prefix = g_new0 (guint32, (gsize)L * E * (S + 1));
      for (guint s = 0; s < S; s++)
        {
          for (guint key = 0; key < L * E; key++)
            sim->use_prefix[(gsize)key * (S + 1) + s + 1]
                = sim->use_prefix[(gsize)key * (S + 1) + s];
          for (guint b = 0; b < B; b++)
            for (guint l = 0; l < L; l++)
              {
                const MsimExpertId *row
                    = msim_trace_row (sim->trace, sim->tok[(gsize)s * B + b], l);
                for (guint r = 0; r < sim->k; r++)
                  if (row[r] >= 0)
                    sim->use_prefix[(gsize)(l * E + row[r]) * (S + 1) + s + 1]++;
              }
        }
    }
  if (!setup_gpus (sim, cfg, error))
    return NULL;
  if (sim->prefetch == MSIM_OFFLOAD_PREFETCH_PREGATE && !load_predictions (sim, run, cfg, error))
    return NULL;

  sim->engine = msim_engine_new ();
  MsimCommParams cp = cfg->options.comm;
  cp.streams_per_gpu = STREAMS_PER_GPU;
  cp.comm_stream = 1;
  /* Achievable bandwidth (line rate x efficiency) and NCCL's p2p channels,
   * as the step engine. */
  guint nl = msim_comm_network_links (cfg->topology, &cp, TRUE, NULL);
  g_autofree double *cap = g_new (double, nl);
  msim_comm_network_links (cfg->topology, &cp, TRUE, cap);
  sim->net = msim_network_new (sim->engine, nl, cap, cfg->options.network);
  msim_network_set_check (sim->net, cfg->options.check, FALSE);
  sim->tasks = msim_tasks_new (sim->engine, STREAMS_PER_GPU * G);
  sim->comm = msim_comm_new (cfg->topology, sim->net, sim->tasks, &cp);
  sim->fetches = g_ptr_array_new_with_free_func (g_free);
  sim->accesses = g_array_new (FALSE, TRUE, sizeof (AccessRec));
  sim->steps = g_new0 (StepRec, S);

  if (sim->prefetch == MSIM_OFFLOAD_PREFETCH_ORACLE)
    for (guint g = 0; g < G; g++)
      oracle_transition (sim, g, 0, 0, NULL, 0, -1);
  g_autofree MsimTask **ready = g_new0 (MsimTask *, G);
  for (guint s = 0; s < S; s++)
    build_step (sim, s, ready);

  MsimStepResult res;
  while ((res = msim_engine_step (sim->engine)) == MSIM_STEP_OK)
    ;
  if (res != MSIM_STEP_IDLE || msim_tasks_pending (sim->tasks) != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "offload: the simulation stopped with %u tasks unfinished (deadlock in the "
                   "task graph)",
                   msim_tasks_pending (sim->tasks));
      return NULL;
    }
  if (o->check && !check_conservation (sim, error))
    return NULL;
  collect (run, sim);
  compute_sch (run, sim);
  if (o->record_timeline)
    run->timeline = make_timeline (sim);
  return g_steal_pointer (&run);
}

/* ------------------------------------------------------------------ */
/* Accessors and reports                                                */
/* ------------------------------------------------------------------ */

const MsimOffloadAccess *
msim_offload_run_accesses (const MsimOffloadRun *run, gsize *n)
{
  *n = run->accesses->len;
  return (const MsimOffloadAccess *)(gconstpointer)run->accesses->data;
}

const MsimOffloadFetch *
msim_offload_run_fetches (const MsimOffloadRun *run, gsize *n)
{
  *n = run->fetches->len;
  return (const MsimOffloadFetch *)(gconstpointer)run->fetches->data;
}

static const Agg *
agg_of (const MsimOffloadRun *run, guint layer)
{
  g_return_val_if_fail (layer == MSIM_OFFLOAD_ALL_LAYERS || layer < run->L, &run->agg[run->L]);
  return &run->agg[layer == MSIM_OFFLOAD_ALL_LAYERS ? run->L : layer];
}

static double
ratio (double a, double b)
{
  return b > 0 ? a / b : NAN;
}

double
msim_offload_run_time_s (const MsimOffloadRun *run)
{
  return run->time_s;
}

double
msim_offload_run_latency_per_token_s (const MsimOffloadRun *run)
{
  double sum = 0.0;
  for (guint s = run->opt.warmup_steps; s < run->S; s++)
    sum += run->step_latency[s];
  return sum / run->opt.steps;
}

double
msim_offload_run_hit_rate (const MsimOffloadRun *run, guint layer)
{
  const Agg *a = agg_of (run, layer);
  return ratio ((double)(a->hits + a->prefetch_hits), (double)a->accesses);
}

double
msim_offload_run_sch_hit_rate (const MsimOffloadRun *run, guint layer)
{
  const Agg *a = agg_of (run, layer);
  return ratio ((double)a->sch_hits, (double)a->accesses);
}

double
msim_offload_run_sch (const MsimOffloadRun *run, guint layer)
{
  if (layer != MSIM_OFFLOAD_ALL_LAYERS)
    {
      g_return_val_if_fail (layer < run->L, NAN);
      return run->sch_layer[layer];
    }
  double sum = 0.0;
  for (guint l = 0; l < run->L; l++)
    sum += run->sch_layer[l];
  return sum / run->L;
}

guint64
msim_offload_run_misses (const MsimOffloadRun *run)
{
  return run->agg[run->L].misses;
}

guint64
msim_offload_run_fetch_count (const MsimOffloadRun *run)
{
  return run->agg[run->L].fetches;
}

double
msim_offload_run_bytes_fetched (const MsimOffloadRun *run)
{
  return run->agg[run->L].bytes;
}

double
msim_offload_run_stall_s (const MsimOffloadRun *run)
{
  return run->agg[run->L].stall_s;
}

double
msim_offload_run_memory_used_bytes (const MsimOffloadRun *run, guint gpu)
{
  g_return_val_if_fail (gpu < run->G, NAN);
  const GpuRes *r = &run->gpus[gpu];
  return r->mem_weights + r->mem_cache + r->mem_kv;
}

static double
max_memory_used (const MsimOffloadRun *run)
{
  double mx = 0.0;
  for (guint g = 0; g < run->G; g++)
    mx = MAX (mx, msim_offload_run_memory_used_bytes (run, g));
  return mx;
}

static double
max_memory_all_resident (const MsimOffloadRun *run)
{
  double mx = 0.0;
  for (guint g = 0; g < run->G; g++)
    mx = MAX (mx, run->gpus[g].mem_all_resident);
  return mx;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Latency percentile over the measured steps (nearest rank). */
static double
latency_percentile (const MsimOffloadRun *run, double p)
{
  guint n = run->opt.steps;
  g_autofree double *v = g_memdup2 (run->step_latency + run->opt.warmup_steps, sizeof (double) * n);
  qsort (v, n, sizeof (double), cmp_double);
  guint idx = (guint)ceil (p * n);
  return v[CLAMP (idx, 1u, n) - 1];
}

/* Mean over measured steps of the largest per-GPU stall of the step. */
static double
stall_per_token (const MsimOffloadRun *run)
{
  double sum = 0.0;
  for (guint s = run->opt.warmup_steps; s < run->S; s++)
    sum += run->step_stall[s];
  return sum / run->opt.steps;
}

static const char *
prefetch_name (MsimOffloadPrefetch p)
{
  return prefetch_names[p];
}

/* JSON numbers: NaN is not JSON, so undefined values are null. */
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
add_int (JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

static void
add_string (JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, v);
}

static void
add_agg (JsonBuilder *b, const Agg *a)
{
  add_int (b, "accesses", (gint64)a->accesses);
  add_int (b, "hits", (gint64)a->hits);
  add_int (b, "prefetch_hits", (gint64)a->prefetch_hits);
  add_int (b, "misses", (gint64)a->misses);
  add_double (b, "hit_rate", ratio ((double)(a->hits + a->prefetch_hits), (double)a->accesses));
  add_double (b, "hit_rate_sch_convention", ratio ((double)a->sch_hits, (double)a->accesses));
  add_double (b, "resident_rate", ratio ((double)a->hits, (double)a->accesses));
  add_int (b, "fetches", (gint64)a->fetches);
  add_int (b, "prefetches", (gint64)a->prefetches);
  add_int (b, "prefetches_unused", (gint64)a->prefetches_unused);
  add_double (b, "bytes_fetched", a->bytes);
  add_double (b, "stall_s", a->stall_s);
}

JsonNode *
msim_offload_run_to_json (const MsimOffloadRun *run)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const MsimOffloadOptions *o = &run->opt;
  const Agg *tot = &run->agg[run->L];
  json_builder_begin_object (b);
  add_string (b, "moesim_version", MSIM_VERSION);

  json_builder_set_member_name (b, "setup");
  json_builder_begin_object (b);
  add_string (b, "topology", run->topology);
  add_string (b, "model", run->model);
  add_string (b, "gpu", run->gpu);
  add_int (b, "gpus", run->G);
  add_string (b, "trace", run->trace);
  add_string (b, "policy", o->policy);
  add_string (b, "prefetch", prefetch_name (run->prefetch));
  add_string (b, "cache", run->per_layer ? "per-layer" : "budget");
  if (run->per_layer)
    add_int (b, "cache_experts_per_layer", run->cache_per_layer);
  else
    add_double (b, "cache_bytes", o->cache_bytes);
  add_double (b, "expert_bytes", run->expert_bytes);
  add_int (b, "batch", o->batch);
  add_string (b, "batch_from", batch_from_names[o->batch_from]);
  add_int (b, "steps", o->steps);
  add_int (b, "warmup_steps", o->warmup_steps);
  add_int (b, "offset", (gint64)run->offset);
  add_int (b, "prompt_len", (gint64)run->prompt_len);
  add_int (b, "sch_window", o->sch_window);
  add_string (b, "prediction_source", run->prediction_source);
  if (run->prefetch == MSIM_OFFLOAD_PREFETCH_PREGATE && !o->predicted_trace)
    add_double (b, "prediction_accuracy", o->prediction_accuracy);
  add_string (b, "network", run->network == MSIM_NETWORK_MAXMIN ? "maxmin" : "analytical");
  add_int (b, "seed", (gint64)run->seed);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "summary");
  json_builder_begin_object (b);
  add_double (b, "time_s", run->time_s);
  add_int (b, "tokens", (gint64)o->batch * o->steps);
  add_double (b, "tokens_per_s", ratio ((double)o->batch * o->steps, run->time_s));
  add_double (b, "latency_per_token_s", msim_offload_run_latency_per_token_s (run));
  add_double (b, "latency_p50_s", latency_percentile (run, 0.5));
  add_double (b, "latency_p99_s", latency_percentile (run, 0.99));
  add_double (b, "latency_max_s", latency_percentile (run, 1.0));
  add_agg (b, tot);
  add_double (b, "stall_per_token_s", stall_per_token (run));
  add_double (b, "prediction_recall", run->prediction_recall);
  add_double (b, "prefetch_precision",
              ratio ((double)(tot->prefetches - tot->prefetches_unused), (double)tot->prefetches));
  add_int (b, "sch_cache", run->sch_cache);
  add_double (b, "sch", msim_offload_run_sch (run, MSIM_OFFLOAD_ALL_LAYERS));
  add_double (b, "memory_used_bytes", max_memory_used (run));
  add_double (b, "memory_all_resident_bytes", max_memory_all_resident (run));
  add_double (b, "memory_saving", ratio (max_memory_all_resident (run), max_memory_used (run)));
  json_builder_set_member_name (b, "sch_by_cache");
  json_builder_begin_array (b);
  for (guint c = 0; c < run->E; c++)
    json_builder_add_double_value (b, run->sch_curve[c]);
  json_builder_end_array (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "layers");
  json_builder_begin_array (b);
  for (guint l = 0; l < run->L; l++)
    {
      json_builder_begin_object (b);
      add_int (b, "layer", l);
      add_agg (b, &run->agg[l]);
      add_double (b, "sch", run->sch_layer[l]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "steps");
  json_builder_begin_array (b);
  for (guint s = 0; s < run->S; s++)
    {
      json_builder_begin_object (b);
      add_int (b, "step", s);
      json_builder_set_member_name (b, "measured");
      json_builder_add_boolean_value (b, s >= o->warmup_steps);
      add_double (b, "start_s", run->step_start[s]);
      add_double (b, "latency_s", run->step_latency[s]);
      add_double (b, "stall_s", run->step_stall[s]);
      add_int (b, "misses", run->step_misses[s]);
      add_int (b, "fetches", run->step_fetches[s]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "gpus");
  json_builder_begin_array (b);
  for (guint g = 0; g < run->G; g++)
    {
      const GpuRes *r = &run->gpus[g];
      json_builder_begin_object (b);
      add_int (b, "gpu", g);
      add_int (b, "cache_slots", r->slots);
      add_double (b, "memory_weights_bytes", r->mem_weights);
      add_double (b, "memory_cache_bytes", r->mem_cache);
      add_double (b, "memory_kv_bytes", r->mem_kv);
      add_double (b, "memory_used_bytes", msim_offload_run_memory_used_bytes (run, g));
      add_double (b, "memory_all_resident_bytes", r->mem_all_resident);
      add_int (b, "fetches", (gint64)r->fetches);
      add_double (b, "bytes_fetched", r->bytes);
      add_double (b, "stall_s", r->stall_s);
      add_double (b, "compute_busy_s", r->compute_busy_s);
      add_double (b, "comm_busy_s", r->comm_busy_s);
      add_double (b, "copy_busy_s", r->copy_busy_s);
      add_string (b, "host_link", r->pcie_link);
      add_double (b, "host_link_bytes", r->pcie_link_bytes);
      double total = run->step_start[run->S - 1] + run->step_latency[run->S - 1];
      add_double (b, "host_link_utilisation",
                  ratio (r->pcie_link_bytes, r->pcie_link_capacity * total));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

char *
msim_offload_run_summary (const MsimOffloadRun *run)
{
  const MsimOffloadOptions *o = &run->opt;
  const Agg *a = &run->agg[run->L];
  GString *s = g_string_new (NULL);
  g_autofree char *cache = run->per_layer
                               ? g_strdup_printf ("%u experts/layer/GPU", run->cache_per_layer)
                               : g_strdup_printf ("%.4g bytes/GPU", o->cache_bytes);
  g_string_append_printf (s, "moesim %s offload: %s on %s (%u GPUs, %s), policy %s, prefetch %s\n",
                          MSIM_VERSION, run->model, run->topology, run->G, run->gpu, o->policy,
                          prefetch_name (run->prefetch));
  g_string_append_printf (s, "  cache %s, batch %u, %u steps (+%u warm-up), m = %u\n", cache,
                          o->batch, o->steps, o->warmup_steps, o->sch_window);
  g_string_append_printf (s, "  %-30s %14.6f ms\n", "latency per token (mean)",
                          1e3 * msim_offload_run_latency_per_token_s (run));
  g_string_append_printf (s, "  %-30s %14.6f ms\n", "latency per token (p99)",
                          1e3 * latency_percentile (run, 0.99));
  g_string_append_printf (s, "  %-30s %14.2f\n", "tokens/s",
                          ratio ((double)o->batch * o->steps, run->time_s));
  g_string_append_printf (s,
                          "  %-30s %14.4f  (%" G_GUINT64_FORMAT " hits, %" G_GUINT64_FORMAT
                          " prefetch hits, %" G_GUINT64_FORMAT " misses)\n",
                          "hit rate", msim_offload_run_hit_rate (run, MSIM_OFFLOAD_ALL_LAYERS),
                          a->hits, a->prefetch_hits, a->misses);
  g_string_append_printf (s, "  %-30s %14.4f\n", "hit rate (SCH convention)",
                          msim_offload_run_sch_hit_rate (run, MSIM_OFFLOAD_ALL_LAYERS));
  g_string_append_printf (s, "  %-30s %14.4f  (m = %u, C = %u)\n", "trace SCH(m, C)",
                          msim_offload_run_sch (run, MSIM_OFFLOAD_ALL_LAYERS), o->sch_window,
                          run->sch_cache);
  g_string_append_printf (s,
                          "  %-30s %14.3f GB  (%" G_GUINT64_FORMAT " fetches, %" G_GUINT64_FORMAT
                          " prefetches, %" G_GUINT64_FORMAT " unused)\n",
                          "bytes fetched", a->bytes / 1e9, a->fetches, a->prefetches,
                          a->prefetches_unused);
  if (isfinite (run->prediction_recall))
    g_string_append_printf (s, "  %-30s %14.4f  (%s)\n", "pre-gate prediction recall",
                            run->prediction_recall, run->prediction_source);
  g_string_append_printf (s, "  %-30s %14.6f ms  (all steps and GPUs: %.6f ms)\n",
                          "stall per token", 1e3 * stall_per_token (run), 1e3 * a->stall_s);
  g_string_append_printf (s, "  %-30s %14.2f GiB  (all experts resident: %.2f GiB)\n",
                          "GPU memory used (max)", max_memory_used (run) / 1073741824.0,
                          max_memory_all_resident (run) / 1073741824.0);
  return g_string_free (s, FALSE);
}

char *
msim_offload_run_layers_csv (const MsimOffloadRun *run)
{
  GString *s = g_string_new ("layer,accesses,hits,prefetch_hits,misses,hit_rate,"
                             "hit_rate_sch_convention,sch,fetches,prefetches,bytes_fetched,"
                             "stall_s\n");
  for (guint l = 0; l <= run->L; l++)
    {
      const Agg *a = &run->agg[l];
      g_autofree char *name = l < run->L ? g_strdup_printf ("%u", l) : g_strdup ("all");
      g_string_append_printf (
          s,
          "%s,%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
          ",%.6f,%.6f,%.6f,%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",%.17g,%.12g\n",
          name, a->accesses, a->hits, a->prefetch_hits, a->misses,
          ratio ((double)(a->hits + a->prefetch_hits), (double)a->accesses),
          ratio ((double)a->sch_hits, (double)a->accesses),
          l < run->L ? run->sch_layer[l] : msim_offload_run_sch (run, MSIM_OFFLOAD_ALL_LAYERS),
          a->fetches, a->prefetches, a->bytes, a->stall_s);
    }
  return g_string_free (s, FALSE);
}

char *
msim_offload_run_steps_csv (const MsimOffloadRun *run)
{
  GString *s = g_string_new ("step,measured,start_s,latency_s,stall_s,misses,fetches\n");
  for (guint i = 0; i < run->S; i++)
    g_string_append_printf (s, "%u,%d,%.12g,%.12g,%.12g,%u,%u\n", i, i >= run->opt.warmup_steps,
                            run->step_start[i], run->step_latency[i], run->step_stall[i],
                            run->step_misses[i], run->step_fetches[i]);
  return g_string_free (s, FALSE);
}

char *
msim_offload_run_timeline (const MsimOffloadRun *run)
{
  return g_strdup (run->timeline);
}
