#include "step.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "msim-error.h"
#include "tasks.h"
#include "timeline.h"

/* Task categories, for metrics and the timeline. */
enum
{
  CAT_ATTENTION,
  CAT_GATE,
  CAT_SHARED,
  CAT_EXPERT,
  CAT_COMBINE_KERNEL,
  CAT_DENSE_FFN,
  CAT_DISPATCH,
  CAT_COMBINE,
  CAT_ALLGATHER,
  N_CATS
};

static const char *const cat_names[N_CATS] = {
  "attention", "gate",     "shared_expert", "expert_ffn", "combine_sum",
  "dense_ffn", "dispatch", "combine",       "allgather",
};

typedef struct
{
  guint step, block, moe_index, mb;
  gboolean moe;
  MsimColl *dispatch, *combine;
  double dispatch_bytes, combine_bytes;
  guint64 assignments, cross_gpu, cross_node, dropped;
  guint64 max_gpu_tokens, total_gpu_tokens; /* expert-FFN tokens: imbalance */
  guint gpus_with_tokens;
  MsimTask **attn;   /* per GPU, may be NULL */
  MsimTask **expert; /* per GPU, may be NULL */
} BlockRec;

typedef struct
{
  MsimTime start, end;
  guint64 tokens;
  MsimColl *allgather;
} StepRec;

typedef struct
{
  MsimTime t;
  double *bytes; /* per link, cumulative */
} LinkSample;

typedef struct
{
  guint32 first;
  /* count - 1 when the count of candidates is a power of two (0 for one),
   * else the count with PICK_MODULO set: a token picks first + (token &
   * mask), or first + token % count. */
  guint32 mask;
} PickCell;

#define PICK_MODULO 0x80000000u

struct _MsimStepRun
{
  const MsimExpertMap *map;
  guint *host_of; /* per GPU */
  /* pick_slow() precomputed: for (layer, GPU, expert) the candidate copies
   * start at pick_pool[first], chosen by token index (PickCell). */
  PickCell *pick_cells;
  guint32 *pick_pool;
  MsimTopology *topo;
  const MsimModelSpec *model;
  const MsimGpuSpec *gpu;
  MsimStepOptions opt;
  guint G, E, k, n_blocks, n_moe;
  MsimEngine *engine;
  MsimNetwork *net;
  MsimTasks *tasks;
  MsimComm *comm;
  GArray *blocks; /* BlockRec */
  GArray *steps;  /* StepRec */
  GArray *samples;
  double *mem_weights, *mem_kv;
  guint64 boundaries, boundary_cross_gpu, boundary_cross_node;
  guint64 tokens_processed;
  double wall_s;
  MsimTime end;
};

const char *
msim_scheme_name (MsimScheme scheme)
{
  return scheme == MSIM_SCHEME_CONTEXT_COHERENT ? "context-coherent" : "baseline-ep";
}

void
msim_step_options_init (MsimStepOptions *o)
{
  memset (o, 0, sizeof *o);
  o->scheme = MSIM_SCHEME_BASELINE_EP;
  o->phase = MSIM_PHASE_PREFILL;
  o->network = MSIM_NETWORK_MAXMIN;
  msim_comm_params_init (&o->comm);
  o->comm.p2p_nvlink_efficiency = MSIM_NCCL_P2P_NVLINK_EFFICIENCY;
  /* AllGathers run as NCCL's tuning model would run them ([engine]
   * nccl_tuning = false restores the plain ring). */
  o->comm.nccl_tuning = TRUE;
  o->microbatches = 1;
  o->tokens = 4096;
  o->steps = 1;
  o->prompt_len = 512;
}

void
msim_step_run_free (MsimStepRun *run)
{
  if (run == NULL)
    return;
  for (guint i = 0; i < run->blocks->len; i++)
    {
      BlockRec *b = &g_array_index (run->blocks, BlockRec, i);
      g_free (b->attn);
      g_free (b->expert);
    }
  g_array_free (run->blocks, TRUE);
  g_array_free (run->steps, TRUE);
  for (guint i = 0; i < run->samples->len; i++)
    g_free (g_array_index (run->samples, LinkSample, i).bytes);
  g_array_free (run->samples, TRUE);
  msim_comm_free (run->comm);
  msim_tasks_free (run->tasks);
  msim_network_free (run->net);
  msim_engine_free (run->engine);
  g_free (run->mem_weights);
  g_free (run->mem_kv);
  g_free (run->host_of);
  g_free (run->pick_cells);
  g_free (run->pick_pool);
  g_free (run);
}

MsimExpertMap *
msim_expert_map_new_single (guint layers, guint experts, const guint *gpu_of)
{
  MsimExpertMap *m = g_new0 (MsimExpertMap, 1);
  guint n = layers * experts;
  m->layers = layers;
  m->experts = experts;
  m->offsets = g_new (guint, n + 1);
  m->gpus = g_memdup2 (gpu_of, sizeof (guint) * n);
  for (guint i = 0; i <= n; i++)
    m->offsets[i] = i;
  return m;
}

MsimExpertMap *
msim_expert_map_new (guint layers, guint experts, GArray *const *lists)
{
  MsimExpertMap *m = g_new0 (MsimExpertMap, 1);
  guint n = layers * experts, total = 0;
  m->layers = layers;
  m->experts = experts;
  m->offsets = g_new (guint, n + 1);
  for (guint i = 0; i < n; i++)
    {
      m->offsets[i] = total;
      total += lists[i]->len;
    }
  m->offsets[n] = total;
  m->gpus = g_new (guint, MAX (total, 1u));
  for (guint i = 0; i < n; i++)
    if (lists[i]->len)
      memcpy (m->gpus + m->offsets[i], lists[i]->data, sizeof (guint) * lists[i]->len);
  return m;
}

void
msim_expert_map_free (MsimExpertMap *map)
{
  if (map == NULL)
    return;
  g_free (map->offsets);
  g_free (map->gpus);
  g_free (map);
}

static MsimTime
kernel_ps (const MsimStepRun *run, MsimKernelClass klass, double flops, double bytes)
{
  double s = msim_gpu_kernel_time_s (run->gpu, klass, flops, bytes);
  MsimTime t = 0;
  if (!msim_time_from_seconds (s, &t))
    t = MSIM_TIME_NEVER / 4;
  return t;
}

/* The GPU whose copy of expert @e of MoE block @l serves @token, which is
 * on GPU @cur: its own GPU's copy, else its host's (split by token), else
 * any (split by token). */
static guint pick_slow (const MsimStepRun *run, guint l, guint e, guint cur, guint64 token);

/* The cells of MoE block @l, or NULL without a table. */
static inline const PickCell *
pick_layer (const MsimStepRun *run, guint l)
{
  return run->pick_cells ? run->pick_cells + (gsize)l * run->E * run->G : NULL;
}

/* A table pick with everything passed in: loops hoist the loads (the
 * compiler cannot, as their counter stores might alias the run's fields). */
static inline guint
pick_fast (const PickCell *cells, const guint32 *pool, guint E, guint e, guint cur,
           guint64 token)
{
  PickCell pc = cells[(gsize)cur * E + e];
  /* One candidate, or a power of two of them, is the common case: a mask
   * instead of the 64-bit division (same result). */
  guint64 j = G_LIKELY (!(pc.mask & PICK_MODULO)) ? token & pc.mask
                                                   : token % (pc.mask & ~PICK_MODULO);
  return pool[pc.first + j];
}

/* The GPU serving expert @e of MoE block @l for @token on GPU @cur: from
 * the block's table @cells (pick_layer(), with the run's pool and E passed
 * in so loops hoist them), or pick_slow() when there is no table. */
static inline guint
pick_at (const MsimStepRun *run, const PickCell *cells, const guint32 *pool, guint E, guint l,
         guint e, guint cur, guint64 token)
{
  return cells ? pick_fast (cells, pool, E, e, cur, token) : pick_slow (run, l, e, cur, token);
}

/* Tabulates pick_slow() for every (layer, expert, GPU) when the table is
 * small enough (the common case): it sits in the innermost routing loop. */
static void
build_pick_table (MsimStepRun *run)
{
  const MsimExpertMap *m = run->map;
  gsize cells = (gsize)m->layers * m->experts * run->G;
  if (cells > ((gsize)1 << 22))
    return; /* too big: pick_slow() scans the copies instead */
  guint ncopies = m->offsets[m->layers * m->experts];
  run->pick_cells = g_new (PickCell, cells);
  run->pick_pool = g_new (guint32, 2 * (gsize)ncopies);
  for (guint le = 0; le < m->layers * m->experts; le++)
    {
      guint off = m->offsets[le], n = m->offsets[le + 1] - off;
      const guint *g = m->gpus + off;
      guint32 *all = run->pick_pool + 2 * (gsize)off; /* copies, in map order */
      guint32 *byhost = all + n;                      /* same, stable by host */
      for (guint i = 0; i < n; i++)
        all[i] = g[i];
      guint k = 0;
      for (guint h = 0; k < n; h++)
        for (guint i = 0; i < n; i++)
          if (run->host_of[g[i]] == h)
            byhost[k++] = g[i];
      for (guint cur = 0; cur < run->G; cur++)
        {
          /* Laid out (layer, GPU, expert): a token's picks share a row. */
          gsize c = ((gsize)(le / m->experts) * run->G + cur) * m->experts + le % m->experts;
          guint32 first = (guint32)(all - run->pick_pool), count = n;
          guint hs = G_MAXUINT, hn = 0;
          for (guint i = 0; i < n; i++)
            if (run->host_of[byhost[i]] == run->host_of[cur])
              {
                if (hs == G_MAXUINT)
                  hs = i;
                hn++;
              }
          for (guint i = 0; i < n; i++)
            if (byhost[i] == cur)
              {
                hs = i;
                hn = 1;
              }
          if (hn > 0)
            {
              first = (guint32)(byhost + hs - run->pick_pool);
              count = hn;
            }
          run->pick_cells[c]
              = (PickCell){ first, (count & (count - 1)) == 0 ? count - 1 : count | PICK_MODULO };
        }
    }
}

static guint
pick_slow (const MsimStepRun *run, guint l, guint e, guint cur, guint64 token)
{
  const MsimExpertMap *m = run->map;
  guint off = m->offsets[l * m->experts + e];
  guint n = m->offsets[l * m->experts + e + 1] - off;
  const guint *g = m->gpus + off;
  if (n == 1)
    return g[0];
  const guint *host_of = run->host_of;
  guint host = host_of[cur], same = 0;
  for (guint i = 0; i < n; i++)
    {
      if (g[i] == cur)
        return cur;
      same += host_of[g[i]] == host;
    }
  if (same > 0)
    {
      guint want = (guint)(token % same);
      for (guint i = 0; i < n; i++)
        if (host_of[g[i]] == host && want-- == 0)
          return g[i];
    }
  return g[token % n];
}

static guint
compute_stream (guint g)
{
  return 2 * g;
}

/* ---------- memory ---------- */

static gboolean
check_memory (MsimStepRun *run, GError **error)
{
  const MsimModelSpec *m = run->model;
  double dt = m->dtype_bytes;
  /* Everything but routed experts is replicated on every GPU. */
  double shared_params = (double)msim_model_spec_embedding_params (m);
  for (guint b = 0; b < run->n_blocks; b++)
    {
      shared_params += (double)msim_model_spec_attention_params (m);
      if (msim_model_spec_is_moe_layer (m, (int)b))
        shared_params += (double)msim_model_spec_gate_params (m)
                         + (double)msim_model_spec_shared_expert_params (m);
      else
        shared_params += (double)msim_model_spec_dense_ffn_params (m);
    }
  double kv_tok = (double)msim_model_spec_kv_cache_bytes_per_token (m) * run->n_blocks;
  const MsimStepOptions *o = &run->opt;
  double ctx_tokens = o->phase == MSIM_PHASE_PREFILL
                          ? (double)o->tokens
                          : (double)o->tokens * (o->prompt_len + o->steps);
  for (guint g = 0; g < run->G; g++)
    {
      double experts = 0;
      guint ncopies = run->map->offsets[run->n_moe * run->E];
      for (guint i = 0; i < ncopies; i++)
        experts += run->map->gpus[i] == g;
      run->mem_weights[g] = shared_params * dt + experts * (double)msim_model_spec_expert_bytes (m);
      /* Baseline: each GPU holds the KV of its own sequences; context-coherent
       * replicates every sequence's context on every GPU. */
      double share = o->scheme == MSIM_SCHEME_CONTEXT_COHERENT ? 1.0 : 1.0 / run->G;
      run->mem_kv[g] = ctx_tokens * share * kv_tok;
      double total = run->mem_weights[g] + run->mem_kv[g];
      if (total > (double)run->gpu->hbm_capacity_bytes)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                       "GPU %u needs %.2f GiB (weights %.2f GiB, KV cache %.2f GiB, scheme %s) "
                       "but a %s has %.2f GiB: use more GPUs, fewer tokens, or another placement",
                       g, total / 1073741824.0, run->mem_weights[g] / 1073741824.0,
                       run->mem_kv[g] / 1073741824.0, msim_scheme_name (o->scheme), run->gpu->name,
                       (double)run->gpu->hbm_capacity_bytes / 1073741824.0);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---------- building one step ---------- */

typedef struct
{
  MsimTask *a, *b; /* what the next attention of (gpu, mb) waits for */
} Ready;

static void
sample_links (MsimTask *task, gpointer data)
{
  MsimStepRun *run = data;
  LinkSample s;
  guint nl = msim_topology_n_links (run->topo);
  s.t = msim_engine_now (run->engine);
  s.bytes = g_new (double, nl);
  for (guint l = 0; l < nl; l++)
    s.bytes[l] = msim_network_link_bytes (run->net, l);
  g_array_append_val (run->samples, s);
}

static MsimColl *
submit_a2a (MsimStepRun *run, const guint *all, double *bytes, const char *name, guint cat,
            gint64 arg, MsimTask *const *after_a, MsimTask *const *after_b)
{
  MsimColl *c = msim_coll_alltoallv (run->comm, all, run->G, bytes, name, cat, arg);
  for (guint g = 0; g < run->G; g++)
    {
      MsimTask *t = msim_coll_task (c, g);
      if (after_a)
        msim_task_after (t, after_a[g]);
      if (after_b)
        msim_task_after (t, after_b[g]);
      if (g == 0 && run->opt.record_timeline)
        msim_task_on_end (t, sample_links, run);
      msim_task_submit (t);
    }
  return c;
}

/* ---------- routing: a producer of per-block routing results ----------
 *
 * Routing a step (which GPU serves each token's experts, capacity drops,
 * the all-to-all byte matrices, where outputs are combined, context-
 * coherent token moves) depends only on the trace, the placement and the
 * options, never on simulated times.  So it runs ahead of the graph
 * builder: on its own thread when the matrices are small enough to keep a
 * few blocks in flight, the builder consuming blocks in order (the results
 * are the same either way, and deterministic).  The routing thread also
 * computes the boundary metric while the main thread simulates.
 */

/* One micro-batch of one MoE block. */
typedef struct
{
  double *dbytes, *cbytes; /* G x G: dispatch and combine all-to-all bytes */
  guint32 *etok;           /* G x E: assignments each GPU's copy of each expert serves */
  guint64 *here;           /* G: tokens whose output is summed on each GPU */
  guint64 nmb, dropped, assignments, cross_gpu, cross_node;
  double dispatch_bytes, combine_bytes;
} MbRoute;

typedef struct
{
  guint64 *cnt; /* G x M: tokens per (GPU, micro-batch) at the block's start */
  MbRoute *mbs; /* M of them when the block is an MoE block */
} BlockRoute;

#define ROUTE_SLOTS 4

typedef struct
{
  const MsimStepRun *run;
  const MsimTrace *trace;
  guint G, E, k, M;
  double act;
  gboolean cc;
  /* Current step. */
  guint s, moe_l;
  guint64 first, n;
  guint *seq_loc; /* carried across decode steps (context-coherent) */
  guint *mb, *loc, *newloc, *served;
  guint8 *dropped;
  guint32 *dcnt, *ccnt;
  guint64 *cap_used;
  guint64 n_alloc;
  /* Boundary metric, summed over steps. */
  guint64 boundaries, boundary_cross_gpu, boundary_cross_node;
  /* Results: a ring of blocks.  Without a thread only slot 0 is used. */
  BlockRoute slots[ROUTE_SLOTS];
  guint nslots;
  GThread *thread;
  GMutex lock;
  GCond cond;
  guint64 produced, consumed; /* blocks */
} Router;

static void
block_route_init (BlockRoute *b, guint G, guint E, guint M)
{
  b->cnt = g_new (guint64, (gsize)G * M);
  b->mbs = g_new0 (MbRoute, M);
  for (guint i = 0; i < M; i++)
    {
      b->mbs[i].dbytes = g_new (double, (gsize)G * G);
      b->mbs[i].cbytes = g_new (double, (gsize)G * G);
      b->mbs[i].etok = g_new (guint32, (gsize)G * E);
      b->mbs[i].here = g_new (guint64, G);
    }
}

static void
block_route_clear (BlockRoute *b, guint M)
{
  if (b->mbs)
    for (guint i = 0; i < M; i++)
      {
        g_free (b->mbs[i].dbytes);
        g_free (b->mbs[i].cbytes);
        g_free (b->mbs[i].etok);
        g_free (b->mbs[i].here);
      }
  g_free (b->mbs);
  g_free (b->cnt);
}

/* Sets up step @s over trace tokens [first, first + n): homes are
 * contiguous blocks of the batch per GPU (data-parallel attention), and
 * micro-batches split every GPU's tokens evenly. */
static void
router_begin_step (Router *r, guint s, guint64 first, guint64 n)
{
  guint G = r->G, M = r->M;
  r->s = s;
  r->first = first;
  r->n = n;
  r->moe_l = 0;
  if (n > r->n_alloc)
    {
      r->mb = g_renew (guint, r->mb, n);
      r->loc = g_renew (guint, r->loc, n);
      r->newloc = g_renew (guint, r->newloc, n);
      r->served = g_renew (guint, r->served, n * r->k);
      r->dropped = g_renew (guint8, r->dropped, n * r->k);
      r->n_alloc = n;
    }
  g_autofree guint64 *per_gpu = g_new0 (guint64, G);
  g_autofree guint64 *seen = g_new0 (guint64, G);
  for (guint64 t = 0; t < n; t++)
    per_gpu[t * G / n]++;
  gboolean carry = r->run->opt.phase == MSIM_PHASE_DECODE && r->cc;
  for (guint64 t = 0; t < n; t++)
    {
      guint g = (guint)(t * G / n);
      r->mb[t] = (guint)(seen[g]++ * M / per_gpu[g]);
      r->loc[t] = carry ? r->seq_loc[t] : g;
    }
}

/* Serves one assignment of expert @e for a token on GPU @lt: the copy
 * that serves it (pick_at()), counted per (GPU, expert) and per GPU pair. */
static inline guint
serve_one (const MsimStepRun *run, const PickCell *cells, const guint32 *pool, guint E, guint G,
           guint moe_l, guint e, guint lt, guint64 token, guint32 *etok, guint32 *dcnt)
{
  guint h = pick_at (run, cells, pool, E, moe_l, e, lt, token);
  etok[h * E + e]++;
  dcnt[lt * G + h]++;
  return h;
}

/* Routes micro-batch @b of the current MoE block into @out. */
static void
route_mb (Router *r, guint blk, guint b, MbRoute *out)
{
  const MsimStepRun *run = r->run;
  const MsimStepOptions *o = &run->opt;
  guint G = r->G, E = r->E, k = r->k;
  guint64 n = r->n, first = r->first;
  const guint *mb = r->mb;
  guint *loc = r->loc, *newloc = r->newloc, *served = r->served;
  guint8 *dropped = r->dropped;
  guint32 *dcnt = r->dcnt, *ccnt = r->ccnt, *etok = out->etok;
  guint64 *cap_used = r->cap_used;
  double act = r->act;
  gboolean cc = r->cc;
  guint moe_l = r->moe_l;

  /* The loops count assignments per (source, destination) GPU pair, diagonal
   * included (no branch on "crosses GPUs", which real routing makes
   * unpredictable); bytes and cross-GPU/node counts come from the counts.
   * act is a whole number of bytes, so count x act is exactly the sum of
   * the activations. */
  out->nmb = out->dropped = out->assignments = out->cross_gpu = out->cross_node = 0;
  out->dispatch_bytes = out->combine_bytes = 0.0;
  memset (dcnt, 0, sizeof (guint32) * G * G);
  if (cc)
    memset (ccnt, 0, sizeof (guint32) * G * G);
  memset (etok, 0, sizeof (guint32) * G * E);
  memset (cap_used, 0, sizeof (guint64) * E);
  gboolean limited = o->capacity_factor > 0.0;
  const MsimExpertId *ids = msim_trace_row (r->trace, first, moe_l); /* tokens are contiguous */
  const PickCell *cells = pick_layer (run, moe_l);
  const guint32 *pool = run->pick_pool;
  guint64 nmb = 0;
  memset (out->here, 0, sizeof (guint64) * G);
  if (!limited)
    {
      /* No capacity: no assignment depends on another, so one pass token
       * by token.  An assignment's output is combined back home
       * (baseline) or on the top-1 expert's GPU (context-coherent). */
      for (guint64 t = 0; t < n; t++)
        {
          if (mb[t] != b)
            continue;
          nmb++;
          guint lt = loc[t], dest = lt;
          for (guint rk = 0; rk < k; rk++)
            {
              int e = ids[t * k + rk];
              dropped[t * k + rk] = e < 0;
              if (G_UNLIKELY (e < 0))
                {
                  out->dropped++;
                  continue;
                }
              guint h = serve_one (run, cells, pool, E, G, moe_l, (guint)e, lt, first + t, etok,
                                   dcnt);
              served[t * k + rk] = h;
              if (cc)
                {
                  if (rk == 0)
                    dest = h;
                  ccnt[h * G + dest]++;
                }
            }
          out->here[dest]++;
          newloc[t] = dest;
        }
    }
  else
    {
      /* Capacity: first choices of every token before second choices, one
       * pass per rank; the combine as above (rank 0 is known first). */
      for (guint64 t = 0; t < n; t++)
        nmb += mb[t] == b;
      guint64 capacity = (guint64)ceil ((double)nmb * k / E * o->capacity_factor);
      for (guint rk = 0; rk < k; rk++)
        for (guint64 t = 0; t < n; t++)
          {
            if (mb[t] != b)
              continue;
            int e = ids[t * k + rk];
            guint8 *dr = &dropped[t * k + rk];
            *dr = e < 0 || cap_used[e] >= capacity;
            if (*dr)
              {
                out->dropped++;
                continue;
              }
            cap_used[e]++;
            guint lt = loc[t];
            guint h = serve_one (run, cells, pool, E, G, moe_l, (guint)e, lt, first + t, etok,
                                   dcnt);
            served[t * k + rk] = h;
            if (cc)
              ccnt[h * G + (!dropped[t * k] ? served[t * k] : lt)]++;
          }
      for (guint64 t = 0; t < n; t++)
        {
          if (mb[t] != b)
            continue;
          guint dest = cc && !dropped[t * k] ? served[t * k] : loc[t];
          out->here[dest]++;
          newloc[t] = dest;
        }
    }
  out->nmb = nmb;
  /* Baseline: every output goes back home, so the combine is the
   * transpose of the dispatch. */
  if (!cc)
    for (guint i = 0; i < G; i++)
      for (guint j = 0; j < G; j++)
        ccnt[j * G + i] = dcnt[i * G + j];
  for (guint i = 0; i < G; i++)
    for (guint j = 0; j < G; j++)
      {
        guint64 d = dcnt[i * G + j], c = i == j ? 0 : ccnt[i * G + j];
        out->assignments += d;
        if (i == j)
          d = 0;
        out->cross_gpu += d;
        if (run->host_of[i] != run->host_of[j])
          out->cross_node += d;
        out->dbytes[i * G + j] = (double)d * act;
        out->cbytes[i * G + j] = (double)c * act;
        out->dispatch_bytes += out->dbytes[i * G + j];
        out->combine_bytes += out->cbytes[i * G + j];
      }
  /* Every assignment is served by one expert or counted as dropped, and the
   * dispatch carries one activation per cross-GPU assignment. */
  if (out->assignments + out->dropped != nmb * k
      || out->dispatch_bytes != (double)out->cross_gpu * act)
    g_error ("step %u block %u micro-batch %u: token conservation violated (%" G_GUINT64_FORMAT
             " tokens x %u = %" G_GUINT64_FORMAT " served + %" G_GUINT64_FORMAT " dropped)",
             r->s, blk, b, nmb, k, out->assignments, out->dropped);
  guint64 summed = 0;
  for (guint g = 0; g < G; g++)
    summed += out->here[g];
  if (summed != nmb)
    g_error ("step %u block %u micro-batch %u: %" G_GUINT64_FORMAT
             " tokens combined, %" G_GUINT64_FORMAT " in the micro-batch",
             r->s, blk, b, summed, nmb);
  if (cc)
    for (guint64 t = 0; t < n; t++)
      if (mb[t] == b)
        loc[t] = newloc[t];
}

/* Routes block @blk of the current step into @out. */
static void
router_block (Router *r, guint blk, BlockRoute *out)
{
  guint M = r->M;
  memset (out->cnt, 0, sizeof (guint64) * r->G * M);
  for (guint64 t = 0; t < r->n; t++)
    out->cnt[r->loc[t] * M + r->mb[t]]++;
  if (!msim_model_spec_is_moe_layer (r->run->model, (int)blk))
    return;
  for (guint b = 0; b < M; b++)
    route_mb (r, blk, b, &out->mbs[b]);
  r->moe_l++;
}

/* DESIGN.md section 4: (token, layer boundary) pairs whose top-1 expert
 * changes GPU (node) between consecutive MoE layers.  Block by block: the
 * trace is stored block-major (sums, so the order does not matter). */
static void
boundary_metric (Router *r)
{
  const MsimStepRun *run = r->run;
  const MsimTrace *trace = r->trace;
  guint64 first = r->first, n = r->n;
  const guint k = trace->k, *host_of = run->host_of, G = run->G, E = run->E;
  const guint32 *pool = run->pick_pool;
  guint64 pairs = 0, cross_gpu = 0, cross_node = 0;
  for (guint l = 0; l + 1 < run->n_moe; l++)
    {
      const MsimExpertId *ia = msim_trace_row (trace, first, l);
      const MsimExpertId *ib = msim_trace_row (trace, first, l + 1);
      const PickCell *ca = pick_layer (run, l), *cb = pick_layer (run, l + 1);
      for (guint64 t = 0; t < n; t++)
        {
          int a = ia[t * k], b = ib[t * k];
          if (a < 0 || b < 0)
            continue;
          guint home = (guint)(t * G / n);
          guint ga = pick_at (run, ca, pool, E, l, (guint)a, home, first + t);
          guint gb = pick_at (run, cb, pool, E, l + 1, (guint)b, ga, first + t);
          pairs++;
          cross_gpu += ga != gb;
          cross_node += host_of[ga] != host_of[gb];
        }
    }
  r->boundaries += pairs;
  r->boundary_cross_gpu += cross_gpu;
  r->boundary_cross_node += cross_node;
}

static void
router_end_step (Router *r)
{
  boundary_metric (r);
  if (r->cc && r->run->opt.phase == MSIM_PHASE_DECODE)
    memcpy (r->seq_loc, r->loc, sizeof (guint) * r->n);
}

static gpointer
router_thread (gpointer data)
{
  Router *r = data;
  const MsimStepOptions *o = &r->run->opt;
  guint64 per_step = o->tokens;
  for (guint s = 0; s < o->steps; s++)
    {
      router_begin_step (r, s, o->token_offset + (guint64)s * per_step, per_step);
      for (guint blk = 0; blk < r->run->n_blocks; blk++)
        {
          g_mutex_lock (&r->lock);
          while (r->produced - r->consumed >= r->nslots)
            g_cond_wait (&r->cond, &r->lock);
          g_mutex_unlock (&r->lock);
          router_block (r, blk, &r->slots[r->produced % r->nslots]);
          g_mutex_lock (&r->lock);
          r->produced++;
          g_cond_broadcast (&r->cond);
          g_mutex_unlock (&r->lock);
        }
      router_end_step (r);
    }
  return NULL;
}

/* Bytes of one ring slot: per micro-batch, G x G dispatch and combine
 * counts and bytes, per-expert counts and per-GPU totals. */
static double
route_slot_bytes (guint G, guint E, guint M)
{
  return (double)M * G * (16.0 * G + 4.0 * E + 8.0);
}

/* Whether the routing runs on its own thread.  It pays off when a block's
 * routing is large, and the ring must stay small: a few blocks of G x G
 * matrices, at most 64 MB unless the thread is forced on. */
static gboolean
route_threaded (int mode, guint64 tokens, double slot_bytes, guint processors)
{
  return mode == MSIM_ROUTE_THREAD_ON
         || (mode == MSIM_ROUTE_THREAD_AUTO && processors > 1 && tokens >= 4096
             && slot_bytes * ROUTE_SLOTS <= 64.0 * 1048576.0);
}

static void
router_init (Router *r, const MsimStepRun *run, const MsimTrace *trace, guint *seq_loc)
{
  memset (r, 0, sizeof *r);
  r->run = run;
  r->trace = trace;
  r->G = run->G;
  r->E = run->E;
  r->k = run->k;
  r->M = run->opt.microbatches;
  r->act = (double)msim_model_spec_activation_bytes_per_token (run->model);
  r->cc = run->opt.scheme == MSIM_SCHEME_CONTEXT_COHERENT;
  r->seq_loc = seq_loc;
  r->dcnt = g_new (guint32, (gsize)r->G * r->G);
  r->ccnt = g_new (guint32, (gsize)r->G * r->G);
  r->cap_used = g_new (guint64, r->E);
  gboolean threaded = route_threaded (run->opt.route_thread, run->opt.tokens,
                                      route_slot_bytes (r->G, r->E, r->M),
                                      g_get_num_processors ());
  r->nslots = threaded ? ROUTE_SLOTS : 1;
  for (guint i = 0; i < r->nslots; i++)
    block_route_init (&r->slots[i], r->G, r->E, r->M);
  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  if (threaded)
    r->thread = g_thread_new ("moesim-route", router_thread, r);
}

/* The next block's routing (in order); router_release() when done with it. */
static BlockRoute *
router_get (Router *r, guint blk)
{
  if (r->thread == NULL)
    {
      router_block (r, blk, &r->slots[0]);
      return &r->slots[0];
    }
  g_mutex_lock (&r->lock);
  while (r->produced == r->consumed)
    g_cond_wait (&r->cond, &r->lock);
  g_mutex_unlock (&r->lock);
  return &r->slots[r->consumed % r->nslots];
}

static void
router_release (Router *r)
{
  if (r->thread == NULL)
    return;
  g_mutex_lock (&r->lock);
  r->consumed++;
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);
}

/* Waits for the routing thread (boundary metric included) and frees. */
static void
router_finish (Router *r)
{
  if (r->thread)
    g_thread_join (r->thread);
  r->thread = NULL;
  for (guint i = 0; i < r->nslots; i++)
    block_route_clear (&r->slots[i], r->M);
  g_free (r->mb);
  g_free (r->loc);
  g_free (r->newloc);
  g_free (r->served);
  g_free (r->dropped);
  g_free (r->dcnt);
  g_free (r->ccnt);
  g_free (r->cap_used);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
}

/* ---------- the step graph ---------- */

/* Builds the graph of step @s over trace tokens [first, first + n), with
 * the routing from @r. */
static void
build_step (MsimStepRun *run, Router *r, guint s, guint64 first, guint64 n, Ready *ready)
{
  const MsimModelSpec *m = run->model;
  const MsimStepOptions *o = &run->opt;
  guint G = run->G, E = run->E, k = run->k, M = o->microbatches;
  double act = (double)msim_model_spec_activation_bytes_per_token (m);
  double dtb = m->dtype_bytes;
  gboolean cc = o->scheme == MSIM_SCHEME_CONTEXT_COHERENT;
  g_autofree guint *all = g_new (guint, G);
  for (guint g = 0; g < G; g++)
    all[g] = g;
  if (r->thread == NULL)
    router_begin_step (r, s, first, n);

  StepRec sr = { -1, -1, n, NULL };
  if (cc)
    {
      /* Replicate the new tokens everywhere: prompts (token ids, 4 bytes)
       * at prefill, the new tokens' hidden states at each decode step. */
      double per_rank = o->phase == MSIM_PHASE_PREFILL ? 4.0 * n : act * n;
      sr.allgather = msim_coll_ring (run->comm, MSIM_COLL_ALLGATHER, all, G, per_rank, "allgather",
                                     CAT_ALLGATHER, s);
      for (guint g = 0; g < G; g++)
        {
          MsimTask *t = msim_coll_task (sr.allgather, g);
          for (guint b = 0; b < M; b++)
            {
              msim_task_after (t, ready[g * M + b].a);
              msim_task_after (t, ready[g * M + b].b);
            }
          msim_task_submit (t);
          for (guint b = 0; b < M; b++)
            ready[g * M + b] = (Ready){ t, NULL };
        }
    }

  double ctx
      = o->phase == MSIM_PHASE_PREFILL ? (o->prompt_len + 1) / 2.0 : (double)o->prompt_len + s + 1;
  double attn_w = (double)msim_model_spec_attention_params (m) * dtb;
  double kv_tok = (double)msim_model_spec_kv_cache_bytes_per_token (m);
  guint moe_l = 0;
  g_autofree MsimTask **gate = g_new (MsimTask *, G);

  for (guint blk = 0; blk < run->n_blocks; blk++)
    {
      gboolean moe = msim_model_spec_is_moe_layer (m, (int)blk);
      BlockRoute *route = router_get (r, blk);
      /* Tokens per (GPU, micro-batch) at their current location. */
      const guint64 *cnt = route->cnt;

      for (guint b = 0; b < M; b++)
        {
          BlockRec br = { 0 };
          br.step = s;
          br.block = blk;
          br.mb = b;
          br.moe = moe;
          br.moe_index = moe_l;
          br.attn = g_new0 (MsimTask *, G);
          br.expert = g_new0 (MsimTask *, G);
          memset (gate, 0, sizeof (MsimTask *) * G);

          /* Attention (+ gate, shared experts / dense FFN) on every GPU. */
          for (guint g = 0; g < G; g++)
            {
              guint64 nt = cnt[g * M + b];
              Ready *rd = &ready[g * M + b];
              if (nt == 0)
                continue;
              double kv_read = o->phase == MSIM_PHASE_DECODE ? nt * ctx * kv_tok : 0.0;
              MsimTask *a = msim_task_kernel (
                  run->tasks, compute_stream (g),
                  kernel_ps (run, MSIM_KERNEL_ATTENTION,
                             nt * msim_model_spec_attention_flops_per_token (m, ctx),
                             attn_w + kv_read + 2.0 * nt * act),
                  "attention", CAT_ATTENTION, blk);
              msim_task_after (a, rd->a);
              msim_task_after (a, rd->b);
              msim_task_submit (a);
              br.attn[g] = a;
              MsimTask *last = a;
              if (moe)
                {
                  last = gate[g] = msim_task_kernel (
                      run->tasks, compute_stream (g),
                      kernel_ps (run, MSIM_KERNEL_GEMM,
                                 nt * msim_model_spec_gate_flops_per_token (m),
                                 (double)msim_model_spec_gate_params (m) * dtb + nt * act),
                      "gate", CAT_GATE, blk);
                  msim_task_submit (gate[g]);
                  if (m->shared_experts > 0)
                    {
                      last = msim_task_kernel (
                          run->tasks, compute_stream (g),
                          kernel_ps (run, MSIM_KERNEL_GEMM,
                                     nt * msim_model_spec_shared_expert_flops_per_token (m),
                                     (double)msim_model_spec_shared_expert_params (m) * dtb
                                         + 2.0 * nt * act),
                          "shared_expert", CAT_SHARED, blk);
                      msim_task_submit (last);
                    }
                }
              else
                {
                  last = msim_task_kernel (
                      run->tasks, compute_stream (g),
                      kernel_ps (
                          run, MSIM_KERNEL_GEMM, nt * msim_model_spec_dense_ffn_flops_per_token (m),
                          (double)msim_model_spec_dense_ffn_params (m) * dtb + 2.0 * nt * act),
                      "dense_ffn", CAT_DENSE_FFN, blk);
                  msim_task_submit (last);
                }
              *rd = (Ready){ last, NULL };
            }
          if (!moe)
            {
              g_array_append_val (run->blocks, br);
              continue;
            }

          /* This micro-batch's routing. */
          const MbRoute *mr = &route->mbs[b];
          const guint32 *etok = mr->etok;
          const guint64 *here = mr->here;
          guint64 nmb = mr->nmb;
          br.dropped = mr->dropped;
          br.assignments = mr->assignments;
          br.cross_gpu = mr->cross_gpu;
          br.cross_node = mr->cross_node;
          br.dispatch_bytes = mr->dispatch_bytes;
          br.combine_bytes = mr->combine_bytes;

          /* Dispatch, after each GPU's gate. */
          br.dispatch
              = submit_a2a (run, all, mr->dbytes, "dispatch", CAT_DISPATCH, blk, gate, NULL);

          /* Expert FFN on every GPU that received tokens. */
          double ebytes = (double)msim_model_spec_expert_bytes (m);
          double eflops = msim_model_spec_expert_flops_per_token (m);
          for (guint h = 0; h < G; h++)
            {
              guint64 toks = 0, active = 0;
              for (guint e = 0; e < E; e++)
                {
                  toks += etok[h * E + e];
                  active += etok[h * E + e] > 0;
                }
              br.max_gpu_tokens = MAX (br.max_gpu_tokens, toks);
              br.total_gpu_tokens += toks;
              if (toks == 0)
                continue;
              br.gpus_with_tokens++;
              MsimTask *x
                  = msim_task_kernel (run->tasks, compute_stream (h),
                                      kernel_ps (run, MSIM_KERNEL_GROUPED_GEMM, toks * eflops,
                                                 active * ebytes + 2.0 * toks * act),
                                      "expert_ffn", CAT_EXPERT, blk);
              msim_task_after (x, msim_coll_task (br.dispatch, h));
              msim_task_submit (x);
              br.expert[h] = x;
            }
          /* Token conservation (always checked: it is O(G) here; the router
           * checked the rest): every assignment of the micro-batch is served
           * by one expert or counted as dropped, the expert FFNs process
           * exactly the served ones, and the dispatch carries one activation
           * per cross-GPU assignment. */
          if (br.assignments + br.dropped != nmb * k || br.total_gpu_tokens != br.assignments
              || br.dispatch_bytes != (double)br.cross_gpu * act)
            g_error ("step %u block %u micro-batch %u: token conservation violated (%" G_GUINT64_FORMAT
                     " tokens x %u = %" G_GUINT64_FORMAT " served + %" G_GUINT64_FORMAT
                     " dropped; experts processed %" G_GUINT64_FORMAT ")",
                     s, blk, b, nmb, k, br.assignments, br.dropped, br.total_gpu_tokens);

          /* Combine: back home (baseline), or the other experts' partial
           * outputs to the top-1 expert's GPU (context-coherent). */
          br.combine = submit_a2a (run, all, mr->cbytes, cc ? "partials" : "combine", CAT_COMBINE,
                                   blk, br.expert, NULL);
          for (guint g = 0; g < G; g++)
            {
              Ready *rd = &ready[g * M + b];
              if (here[g] == 0)
                {
                  *rd = (Ready){ msim_coll_task (br.combine, g), br.expert[g] };
                  continue;
                }
              MsimTask *sum = msim_task_kernel (run->tasks, compute_stream (g),
                                                kernel_ps (run, MSIM_KERNEL_ELEMENTWISE,
                                                           2.0 * here[g] * k * m->hidden_size,
                                                           (k + 1.0) * here[g] * act),
                                                "combine_sum", CAT_COMBINE_KERNEL, blk);
              msim_task_after (sum, msim_coll_task (br.combine, g));
              msim_task_after (sum, br.expert[g]);
              msim_task_submit (sum);
              *rd = (Ready){ sum, NULL };
            }
          g_array_append_val (run->blocks, br);
        }
      router_release (r);
      if (moe)
        moe_l++;
    }
  if (r->thread == NULL)
    router_end_step (r);
  g_array_append_val (run->steps, sr);
}

static void
progress (MsimStepRun *run, guint64 done, guint64 total, gboolean final)
{
  if (!isatty (STDERR_FILENO))
    return;
  fprintf (stderr,
           "\rmoesim: simulating... %3.0f%% (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
           " tasks)%s",
           total ? 100.0 * done / total : 100.0, done, total, final ? "\n" : "");
}

MsimStepRun *
msim_step_run (MsimTopology *topo, const MsimModelSpec *model, const MsimGpuSpec *gpu,
               const MsimTrace *trace, const MsimExpertMap *map, const MsimStepOptions *options,
               GError **error)
{
  g_return_val_if_fail (options->microbatches >= 1, NULL);
  guint G = msim_topology_n_gpus (topo);
  int n_moe = msim_model_spec_n_moe_layers (model);
  if ((guint)n_moe != trace->layers)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the trace has %u layers but model %s has %d MoE layers", trace->layers,
                   model->name, n_moe);
      return NULL;
    }
  if ((guint)model->top_k != trace->k)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the trace routes each token to %u experts but model %s has top_k = %d",
                   trace->k, model->name, model->top_k);
      return NULL;
    }
  if (trace->experts > (guint)model->experts)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the trace uses %u experts but model %s has %d", trace->experts, model->name,
                   model->experts);
      return NULL;
    }
  guint64 need = options->token_offset + options->tokens * options->steps;
  if (options->tokens == 0 || need > trace->tokens)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the run needs trace tokens [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   ") but the trace has %" G_GSIZE_FORMAT " tokens",
                   options->token_offset, need, trace->tokens);
      return NULL;
    }
  if (options->tokens > G_MAXUINT32 / MAX (model->top_k, 1))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%" G_GUINT64_FORMAT " tokens per step x top_k %d is beyond the step engine's "
                   "limit of 2^32 assignments per step",
                   options->tokens, model->top_k);
      return NULL;
    }
  if (options->tokens < G)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%" G_GUINT64_FORMAT " tokens per step cannot give each of %u GPUs a token",
                   options->tokens, G);
      return NULL;
    }
  if (map->layers != (guint)n_moe || map->experts != (guint)model->experts)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the placement covers %u layers x %u experts but model %s has %d x %d",
                   map->layers, map->experts, model->name, n_moe, model->experts);
      return NULL;
    }
  for (guint i = 0; i < map->layers * map->experts; i++)
    {
      if (map->offsets[i + 1] <= map->offsets[i])
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "the placement gives expert %u of MoE layer %u no GPU", i % map->experts,
                       i / map->experts);
          return NULL;
        }
      for (guint j = map->offsets[i]; j < map->offsets[i + 1]; j++)
        if (map->gpus[j] >= G)
          {
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "placement puts expert %u of MoE layer %u on GPU %u, but the topology "
                         "has %u GPUs",
                         i % map->experts, i / map->experts, map->gpus[j], G);
            return NULL;
          }
    }

  /* The whole step graph is built before it runs: estimate its memory and
   * refuse what would not fit, before allocating anything.  Per block and
   * micro-batch: about 8 tasks per GPU (~200 bytes each with their
   * dependency lists) and two all-to-alls of up to min(G^2, k tokens)
   * transfers (~96 bytes), plus the G x G byte matrices built for them,
   * and the routing's ring of blocks (counted as if there were a second
   * core, so the answer does not depend on the machine). */
  if (G > 4096)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "the step engine handles up to 4096 GPUs (its all-to-all matrices grow as the "
                   "square), the topology has %u",
                   G);
      return NULL;
    }
  {
    double per_block
        = 8.0 * G * 200.0
          + 2.0 * MIN ((double) G * G, (double) options->tokens * model->top_k) * 96.0;
    double slot = route_slot_bytes (G, (guint)model->experts, options->microbatches);
    double ring = slot * (route_threaded (options->route_thread, options->tokens, slot, 2)
                              ? ROUTE_SLOTS
                              : 1)
                  + 8.0 * (double)G * G;
    double est = per_block * model->layers * options->microbatches * options->steps
                 + 4.0 * (double) G * G * 8.0 + (double) options->tokens * 64.0 + ring;
    double limit = (double) msim_trace_get_memory_limit ();
    if (est > limit)
      {
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                     "the run would need about %.1f GiB of working memory (%u steps x %d blocks "
                     "x %u micro-batches on %u GPUs), beyond the limit of %.1f GiB "
                     "([workload] memory_limit_gib); simulate fewer steps per run",
                     est / 1073741824.0, options->steps, model->layers, options->microbatches, G,
                     limit / 1073741824.0);
        return NULL;
      }
  }

  g_autoptr (MsimStepRun) run = g_new0 (MsimStepRun, 1);
  run->map = map;
  run->topo = topo;
  run->model = model;
  run->gpu = gpu;
  run->opt = *options;
  run->G = G;
  run->E = (guint)model->experts;
  run->k = (guint)model->top_k;
  run->n_blocks = (guint)model->layers;
  run->n_moe = (guint)n_moe;
  run->blocks = g_array_new (FALSE, TRUE, sizeof (BlockRec));
  run->steps = g_array_new (FALSE, TRUE, sizeof (StepRec));
  run->samples = g_array_new (FALSE, TRUE, sizeof (LinkSample));
  run->host_of = g_new (guint, G);
  for (guint g = 0; g < G; g++)
    run->host_of[g] = msim_topology_gpu_host (topo, g);
  run->mem_weights = g_new0 (double, G);
  run->mem_kv = g_new0 (double, G);
  run->engine = msim_engine_new ();
  /* Achievable bandwidth (line rate x the preset's protocol efficiency),
   * as calibrated in experiments/fidelity, and NCCL's p2p channels. */
  guint nl = msim_comm_network_links (topo, &options->comm, TRUE, NULL);
  g_autofree double *cap = g_new (double, nl);
  msim_comm_network_links (topo, &options->comm, TRUE, cap);
  run->net = msim_network_new (run->engine, nl, cap, options->network);
  msim_network_set_check (run->net, options->check, FALSE);
  run->tasks = msim_tasks_new (run->engine, 2 * G);
  run->comm = msim_comm_new (topo, run->net, run->tasks, &options->comm);

  if (!check_memory (run, error))
    return NULL;
  build_pick_table (run);

  gint64 t0 = g_get_monotonic_time ();
  guint M = options->microbatches;
  g_autofree Ready *ready = g_new0 (Ready, (gsize)G * M);
  g_autofree guint *seq_loc = g_new (guint, options->tokens);
  for (guint64 t = 0; t < options->tokens; t++)
    seq_loc[t] = (guint)(t * G / options->tokens);
  guint64 per_step_tokens = options->tokens;
  Router router;
  router_init (&router, run, trace, seq_loc);
  for (guint s = 0; s < options->steps; s++)
    {
      guint64 first = options->token_offset + (guint64)s * per_step_tokens;
      build_step (run, &router, s, first, per_step_tokens, ready);
      run->tokens_processed += per_step_tokens;
    }

  /* Run, with progress on a terminal. */
  guint64 total_tasks = msim_tasks_pending (run->tasks);
  guint64 iter = 0;
  MsimStepResult res;
  while ((res = msim_engine_step (run->engine)) == MSIM_STEP_OK)
    if ((++iter & 0xffff) == 0)
      progress (run, total_tasks - msim_tasks_pending (run->tasks), total_tasks, FALSE);
  if (iter > 0xffff)
    progress (run, total_tasks, total_tasks, TRUE);
  /* The routing thread computed the boundary metric meanwhile. */
  router_finish (&router);
  run->boundaries = router.boundaries;
  run->boundary_cross_gpu = router.boundary_cross_gpu;
  run->boundary_cross_node = router.boundary_cross_node;
  if (res != MSIM_STEP_IDLE || msim_tasks_pending (run->tasks) != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "the simulation stopped with %u tasks unfinished (deadlock in the task graph)",
                   msim_tasks_pending (run->tasks));
      return NULL;
    }
  run->map = NULL; /* borrowed for the build only */
  run->end = msim_engine_now (run->engine);
  run->wall_s = (double)(g_get_monotonic_time () - t0) / 1e6;

  /* Step boundaries: first and last task of each step. */
  for (guint i = 0; i < run->blocks->len; i++)
    {
      BlockRec *b = &g_array_index (run->blocks, BlockRec, i);
      StepRec *sr = &g_array_index (run->steps, StepRec, b->step);
      for (guint g = 0; g < G; g++)
        if (b->attn[g])
          {
            MsimTime st = msim_task_start_time (b->attn[g]);
            if (sr->start < 0 || st < sr->start)
              sr->start = st;
          }
    }
  for (guint s = 0; s < run->steps->len; s++)
    {
      StepRec *sr = &g_array_index (run->steps, StepRec, s);
      if (sr->allgather)
        sr->start = MIN (sr->start, msim_coll_start (sr->allgather));
      MsimTime next
          = s + 1 < run->steps->len ? g_array_index (run->steps, StepRec, s + 1).start : run->end;
      sr->end = next;
    }
  return g_steal_pointer (&run);
}

/* ---------- results ---------- */

double
msim_step_run_time_s (const MsimStepRun *run)
{
  return msim_time_to_seconds (run->end);
}

double
msim_step_run_tokens_per_s (const MsimStepRun *run)
{
  double t = msim_step_run_time_s (run);
  return t > 0 ? run->tokens_processed / t : 0.0;
}

static double
coll_time (const MsimColl *c)
{
  if (c == NULL || msim_coll_start (c) < 0)
    return 0.0;
  return msim_time_to_seconds (msim_coll_end (c) - msim_coll_start (c));
}

double
msim_step_run_a2a_time_s (const MsimStepRun *run)
{
  double sum = 0.0;
  for (guint i = 0; i < run->blocks->len; i++)
    {
      const BlockRec *b = &g_array_index (run->blocks, BlockRec, i);
      sum += coll_time (b->dispatch) + coll_time (b->combine);
    }
  return sum;
}

#define SUM_FIELD(fn, field, type)                                                                 \
  type fn (const MsimStepRun *run)                                                                 \
  {                                                                                                \
    type sum = 0;                                                                                  \
    for (guint i = 0; i < run->blocks->len; i++)                                                   \
      sum += g_array_index (run->blocks, BlockRec, i).field;                                       \
    return sum;                                                                                    \
  }

SUM_FIELD (msim_step_run_dispatch_bytes, dispatch_bytes, double)
SUM_FIELD (msim_step_run_combine_bytes, combine_bytes, double)
SUM_FIELD (msim_step_run_dropped, dropped, guint64)
SUM_FIELD (msim_step_run_assignments, assignments, guint64)

double
msim_step_run_max_link_load_s (const MsimStepRun *run)
{
  double worst = 0.0;
  guint nl = msim_topology_n_links (run->topo);
  g_autofree double *cap = g_new (double, nl);
  msim_comm_link_capacities (run->topo, TRUE, cap);
  for (guint l = 0; l < nl; l++)
    worst = MAX (worst, msim_network_link_bytes (run->net, l) / cap[l]);
  return worst;
}

double
msim_step_run_cross_gpu_fraction (const MsimStepRun *run)
{
  return run->boundaries ? (double)run->boundary_cross_gpu / run->boundaries : 0.0;
}

double
msim_step_run_cross_node_fraction (const MsimStepRun *run)
{
  return run->boundaries ? (double)run->boundary_cross_node / run->boundaries : 0.0;
}

static double
task_dur (const MsimTask *t)
{
  return t ? msim_time_to_seconds (msim_task_end_time (t) - msim_task_start_time (t)) : 0.0;
}

typedef struct
{
  double busy[N_CATS];
} CatSum;

static void
sum_categories (const char *name, guint stream, guint category, gint64 arg, MsimTime start,
                MsimTime end, gpointer data)
{
  CatSum *c = data;
  c[stream].busy[category] += msim_time_to_seconds (end - start);
}

JsonNode *
msim_step_run_to_json (const MsimStepRun *run)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const MsimStepOptions *o = &run->opt;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "moesim_version");
  json_builder_add_string_value (b, MSIM_VERSION);

  json_builder_set_member_name (b, "setup");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "topology");
  json_builder_add_string_value (b, msim_topology_name (run->topo));
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, run->model->name);
  json_builder_set_member_name (b, "gpu");
  json_builder_add_string_value (b, run->gpu->name);
  json_builder_set_member_name (b, "gpus");
  json_builder_add_int_value (b, run->G);
  json_builder_set_member_name (b, "scheme");
  json_builder_add_string_value (b, msim_scheme_name (o->scheme));
  json_builder_set_member_name (b, "phase");
  json_builder_add_string_value (b, o->phase == MSIM_PHASE_PREFILL ? "prefill" : "decode");
  json_builder_set_member_name (b, "network");
  json_builder_add_string_value (b, o->network == MSIM_NETWORK_MAXMIN ? "maxmin" : "analytical");
  json_builder_set_member_name (b, "alltoall");
  json_builder_add_string_value (b, o->comm.a2a_hierarchical ? "hierarchical" : "direct");
  json_builder_set_member_name (b, "microbatches");
  json_builder_add_int_value (b, o->microbatches);
  json_builder_set_member_name (b, "capacity_factor");
  json_builder_add_double_value (b, o->capacity_factor);
  json_builder_set_member_name (b, "tokens_per_step");
  json_builder_add_int_value (b, (gint64)o->tokens);
  json_builder_set_member_name (b, "steps");
  json_builder_add_int_value (b, o->steps);
  json_builder_set_member_name (b, "prompt_len");
  json_builder_add_int_value (b, (gint64)o->prompt_len);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "summary");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "time_s");
  json_builder_add_double_value (b, msim_step_run_time_s (run));
  json_builder_set_member_name (b, "tokens_per_s");
  json_builder_add_double_value (b, msim_step_run_tokens_per_s (run));
  json_builder_set_member_name (b, "alltoall_time_s");
  json_builder_add_double_value (b, msim_step_run_a2a_time_s (run));
  json_builder_set_member_name (b, "dispatch_bytes");
  json_builder_add_double_value (b, msim_step_run_dispatch_bytes (run));
  json_builder_set_member_name (b, "combine_bytes");
  json_builder_add_double_value (b, msim_step_run_combine_bytes (run));
  json_builder_set_member_name (b, "cross_gpu_fraction");
  json_builder_add_double_value (b, msim_step_run_cross_gpu_fraction (run));
  json_builder_set_member_name (b, "cross_node_fraction");
  json_builder_add_double_value (b, msim_step_run_cross_node_fraction (run));
  json_builder_set_member_name (b, "assignments");
  json_builder_add_int_value (b, (gint64)msim_step_run_assignments (run));
  json_builder_set_member_name (b, "dropped");
  json_builder_add_int_value (b, (gint64)msim_step_run_dropped (run));
  json_builder_set_member_name (b, "max_link_load_s");
  json_builder_add_double_value (b, msim_step_run_max_link_load_s (run));
  json_builder_end_object (b);

  json_builder_set_member_name (b, "steps");
  json_builder_begin_array (b);
  for (guint s = 0; s < run->steps->len; s++)
    {
      const StepRec *sr = &g_array_index (run->steps, StepRec, s);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "step");
      json_builder_add_int_value (b, s);
      json_builder_set_member_name (b, "start_s");
      json_builder_add_double_value (b, msim_time_to_seconds (sr->start));
      json_builder_set_member_name (b, "latency_s");
      json_builder_add_double_value (b, msim_time_to_seconds (sr->end - sr->start));
      json_builder_set_member_name (b, "tokens");
      json_builder_add_int_value (b, (gint64)sr->tokens);
      json_builder_set_member_name (b, "allgather_time_s");
      json_builder_add_double_value (b, coll_time (sr->allgather));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "blocks");
  json_builder_begin_array (b);
  for (guint i = 0; i < run->blocks->len; i++)
    {
      const BlockRec *br = &g_array_index (run->blocks, BlockRec, i);
      double attn = 0, exp = 0;
      for (guint g = 0; g < run->G; g++)
        {
          attn = MAX (attn, task_dur (br->attn[g]));
          exp = MAX (exp, task_dur (br->expert[g]));
        }
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "step");
      json_builder_add_int_value (b, br->step);
      json_builder_set_member_name (b, "block");
      json_builder_add_int_value (b, br->block);
      json_builder_set_member_name (b, "microbatch");
      json_builder_add_int_value (b, br->mb);
      json_builder_set_member_name (b, "moe");
      json_builder_add_boolean_value (b, br->moe);
      json_builder_set_member_name (b, "attention_time_s");
      json_builder_add_double_value (b, attn);
      json_builder_set_member_name (b, "expert_time_s");
      json_builder_add_double_value (b, exp);
      json_builder_set_member_name (b, "dispatch_time_s");
      json_builder_add_double_value (b, coll_time (br->dispatch));
      json_builder_set_member_name (b, "combine_time_s");
      json_builder_add_double_value (b, coll_time (br->combine));
      json_builder_set_member_name (b, "dispatch_bytes");
      json_builder_add_double_value (b, br->dispatch_bytes);
      json_builder_set_member_name (b, "combine_bytes");
      json_builder_add_double_value (b, br->combine_bytes);
      json_builder_set_member_name (b, "assignments");
      json_builder_add_int_value (b, (gint64)br->assignments);
      json_builder_set_member_name (b, "cross_gpu_assignments");
      json_builder_add_int_value (b, (gint64)br->cross_gpu);
      json_builder_set_member_name (b, "cross_node_assignments");
      json_builder_add_int_value (b, (gint64)br->cross_node);
      json_builder_set_member_name (b, "dropped");
      json_builder_add_int_value (b, (gint64)br->dropped);
      json_builder_set_member_name (b, "load_imbalance");
      json_builder_add_double_value (
          b, br->total_gpu_tokens ? br->max_gpu_tokens / ((double)br->total_gpu_tokens / run->G)
                                  : 0.0);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  g_autofree CatSum *cats = g_new0 (CatSum, 2 * run->G);
  msim_tasks_foreach (run->tasks, sum_categories, cats);
  double total = msim_step_run_time_s (run);
  json_builder_set_member_name (b, "gpus");
  json_builder_begin_array (b);
  for (guint g = 0; g < run->G; g++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "gpu");
      json_builder_add_int_value (b, g);
      json_builder_set_member_name (b, "host");
      json_builder_add_int_value (b, msim_topology_gpu_host (run->topo, g));
      double busy = msim_time_to_seconds (msim_tasks_stream_busy (run->tasks, compute_stream (g)));
      json_builder_set_member_name (b, "compute_busy_s");
      json_builder_add_double_value (b, busy);
      json_builder_set_member_name (b, "compute_idle_s");
      json_builder_add_double_value (b, MAX (total - busy, 0.0));
      json_builder_set_member_name (b, "comm_busy_s");
      json_builder_add_double_value (
          b, msim_time_to_seconds (msim_tasks_stream_busy (run->tasks, compute_stream (g) + 1)));
      for (guint c = 0; c < N_CATS; c++)
        {
          g_autofree char *key = g_strdup_printf ("%s_s", cat_names[c]);
          json_builder_set_member_name (b, key);
          json_builder_add_double_value (b, cats[compute_stream (g)].busy[c]
                                                + cats[compute_stream (g) + 1].busy[c]);
        }
      json_builder_set_member_name (b, "memory_weights_bytes");
      json_builder_add_double_value (b, run->mem_weights[g]);
      json_builder_set_member_name (b, "memory_kv_bytes");
      json_builder_add_double_value (b, run->mem_kv[g]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "links");
  json_builder_begin_array (b);
  for (guint l = 0; l < msim_topology_n_links (run->topo); l++)
    {
      double bytes = msim_network_link_bytes (run->net, l);
      if (bytes <= 0.0)
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "link");
      json_builder_add_string_value (b, msim_topology_link_name (run->topo, l));
      json_builder_set_member_name (b, "bytes");
      json_builder_add_double_value (b, bytes);
      json_builder_set_member_name (b, "utilisation");
      json_builder_add_double_value (
          b, total > 0 ? bytes / (msim_topology_link_capacity (run->topo, l) * total) : 0.0);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

char *
msim_step_run_to_csv (const MsimStepRun *run)
{
  GString *s = g_string_new ("step,block,microbatch,moe,attention_time_s,expert_time_s,"
                             "dispatch_time_s,combine_time_s,dispatch_bytes,combine_bytes,"
                             "assignments,cross_gpu_assignments,cross_node_assignments,dropped\n");
  for (guint i = 0; i < run->blocks->len; i++)
    {
      const BlockRec *br = &g_array_index (run->blocks, BlockRec, i);
      double attn = 0, exp = 0;
      for (guint g = 0; g < run->G; g++)
        {
          attn = MAX (attn, task_dur (br->attn[g]));
          exp = MAX (exp, task_dur (br->expert[g]));
        }
      g_string_append_printf (
          s,
          "%u,%u,%u,%d,%.12g,%.12g,%.12g,%.12g,%.17g,%.17g,%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
          ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "\n",
          br->step, br->block, br->mb, br->moe, attn, exp, coll_time (br->dispatch),
          coll_time (br->combine), br->dispatch_bytes, br->combine_bytes, br->assignments,
          br->cross_gpu, br->cross_node, br->dropped);
    }
  return g_string_free (s, FALSE);
}

char *
msim_step_run_timeline (const MsimStepRun *run)
{
  static const char *const streams[2] = { "compute", "communication" };
  MsimTimeline *tl = msim_timeline_new (run->G, 2, streams, cat_names, "block");
  msim_timeline_add_tasks (tl, run->tasks);
  /* Links: one counter track each, the utilisation between samples. */
  guint links_pid = run->G;
  msim_timeline_add_event (tl,
                           "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,"
                           "\"args\":{\"name\":\"links\"}}",
                           links_pid);
  for (guint i = 0; i < run->samples->len; i++)
    {
      const LinkSample *cur = &g_array_index (run->samples, LinkSample, i);
      const LinkSample *prev = i ? &g_array_index (run->samples, LinkSample, i - 1) : NULL;
      MsimTime t0 = prev ? prev->t : 0;
      if (cur->t <= t0)
        continue;
      for (guint l = 0; l < msim_topology_n_links (run->topo); l++)
        {
          double delta = cur->bytes[l] - (prev ? prev->bytes[l] : 0.0);
          if (delta <= 0.0 && (prev == NULL || i + 1 == run->samples->len))
            continue;
          double util
              = delta
                / (msim_topology_link_capacity (run->topo, l) * msim_time_to_seconds (cur->t - t0));
          msim_timeline_add_event (
              tl,
              "{\"name\":\"%s\",\"ph\":\"C\",\"pid\":%u,\"ts\":%" G_GINT64_FORMAT
              ".%06" G_GINT64_FORMAT ",\"args\":{\"utilisation\":%.6f}}",
              msim_topology_link_name (run->topo, l), links_pid, t0 / 1000000, t0 % 1000000, util);
        }
    }
  return msim_timeline_finish (tl);
}

char *
msim_step_run_summary (const MsimStepRun *run)
{
  GString *s = g_string_new (NULL);
  const MsimStepOptions *o = &run->opt;
  g_string_append_printf (s, "moesim %s: %s on %s (%u GPUs, %s), %s, %s\n", MSIM_VERSION,
                          run->model->name, msim_topology_name (run->topo), run->G, run->gpu->name,
                          msim_scheme_name (o->scheme),
                          o->phase == MSIM_PHASE_PREFILL ? "prefill" : "decode");
  g_string_append_printf (s, "  %-28s %14.6f ms\n", "simulated time",
                          1e3 * msim_step_run_time_s (run));
  g_string_append_printf (s, "  %-28s %14.0f\n", "tokens/s", msim_step_run_tokens_per_s (run));
  g_string_append_printf (s, "  %-28s %14.6f ms\n", "all-to-all time (sum)",
                          1e3 * msim_step_run_a2a_time_s (run));
  g_string_append_printf (s, "  %-28s %14.3f MB\n", "dispatch bytes",
                          msim_step_run_dispatch_bytes (run) / 1e6);
  g_string_append_printf (s, "  %-28s %14.3f MB\n", "combine bytes",
                          msim_step_run_combine_bytes (run) / 1e6);
  g_string_append_printf (s, "  %-28s %14.4f\n", "cross-GPU fraction (top-1)",
                          msim_step_run_cross_gpu_fraction (run));
  g_string_append_printf (s, "  %-28s %14.4f\n", "cross-node fraction (top-1)",
                          msim_step_run_cross_node_fraction (run));
  g_string_append_printf (s, "  %-28s %14" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT "\n",
                          "dropped assignments", msim_step_run_dropped (run),
                          msim_step_run_dropped (run) + msim_step_run_assignments (run));
  g_string_append_printf (s, "  %-28s %14.3f s\n", "wall time", run->wall_s);
  return g_string_free (s, FALSE);
}
