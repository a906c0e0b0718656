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

struct _MsimStepRun
{
  const MsimExpertMap *map;
  guint *host_of; /* per GPU */
  /* pick() precomputed: for (layer, expert, GPU) the candidate copies are
   * pick_pool[first .. first + count), chosen by token index. */
  guint32 *pick_first, *pick_count, *pick_pool;
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
  g_free (run->pick_first);
  g_free (run->pick_count);
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

static inline guint
pick (const MsimStepRun *run, guint l, guint e, guint cur, guint64 token)
{
  if (run->pick_first == NULL)
    return pick_slow (run, l, e, cur, token);
  gsize i = ((gsize)l * run->E + e) * run->G + cur;
  guint32 c = run->pick_count[i];
  /* One candidate is the common case: skip the 64-bit division. */
  return run->pick_pool[run->pick_first[i] + (c == 1 ? 0 : token % c)];
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
  run->pick_first = g_new (guint32, cells);
  run->pick_count = g_new (guint32, cells);
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
          gsize c = (gsize)le * run->G + cur;
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
          run->pick_first[c] = first;
          run->pick_count[c] = count;
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

/* Simulates step @s over trace tokens [first, first + n).  @loc holds each
 * sequence's current GPU (context-coherent decode carries it over). */
static void
build_step (MsimStepRun *run, const MsimTrace *trace, guint s, guint64 first, guint64 n,
            guint *seq_loc, Ready *ready)
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

  /* Homes: contiguous blocks of the batch per GPU (data-parallel
   * attention); micro-batches split every GPU's tokens evenly. */
  g_autofree guint *home = g_new (guint, n);
  g_autofree guint *mb = g_new (guint, n);
  g_autofree guint *loc = g_new (guint, n);
  g_autofree guint64 *per_gpu = g_new0 (guint64, G);
  for (guint64 t = 0; t < n; t++)
    {
      home[t] = (guint)(t * G / n);
      per_gpu[home[t]]++;
    }
  {
    g_autofree guint64 *seen = g_new0 (guint64, G);
    for (guint64 t = 0; t < n; t++)
      {
        guint g = home[t];
        mb[t] = (guint)(seen[g]++ * M / per_gpu[g]);
        loc[t] = o->phase == MSIM_PHASE_DECODE && cc ? seq_loc[t] : g;
      }
  }

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
  g_autofree guint64 *cnt = g_new (guint64, (gsize)G * M);
  g_autofree double *dbytes = g_new (double, (gsize)G *G);
  g_autofree double *cbytes = g_new (double, (gsize)G *G);
  g_autofree guint64 *etok = g_new (guint64, (gsize)G * E);
  g_autofree guint64 *cap_used = g_new (guint64, E);
  g_autofree guint8 *dropped = g_new (guint8, n * k);
  g_autofree guint *served = g_new (guint, n * k); /* GPU serving each assignment */
  g_autofree guint *newloc = g_new (guint, n);
  g_autofree guint64 *here = g_new (guint64, G);
  g_autofree MsimTask **gate = g_new (MsimTask *, G);

  for (guint blk = 0; blk < run->n_blocks; blk++)
    {
      gboolean moe = msim_model_spec_is_moe_layer (m, (int)blk);
      /* Tokens per (GPU, micro-batch) at their current location. */
      memset (cnt, 0, sizeof (guint64) * G * M);
      for (guint64 t = 0; t < n; t++)
        cnt[loc[t] * M + mb[t]]++;

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

          /* Routing of this micro-batch: capacity (first choices of every
           * token before second choices), dispatch bytes and counters. */
          memset (dbytes, 0, sizeof (double) * G * G);
          memset (cbytes, 0, sizeof (double) * G * G);
          memset (etok, 0, sizeof (guint64) * G * E);
          memset (cap_used, 0, sizeof (guint64) * E);
          guint64 nmb = 0;
          for (guint64 t = 0; t < n; t++)
            nmb += mb[t] == b;
          guint64 capacity = G_MAXUINT64;
          if (o->capacity_factor > 0.0)
            capacity = (guint64)ceil ((double)nmb * k / E * o->capacity_factor);
          for (guint r = 0; r < k; r++)
            for (guint64 t = 0; t < n; t++)
              {
                if (mb[t] != b)
                  continue;
                int e = msim_trace_expert (trace, first + t, moe_l, r);
                guint8 *dr = &dropped[t * k + r];
                *dr = e < 0 || cap_used[e] >= capacity;
                if (*dr)
                  {
                    br.dropped++;
                    continue;
                  }
                cap_used[e]++;
                guint h = served[t * k + r] = pick (run, moe_l, (guint)e, loc[t], first + t);
                etok[h * E + (guint)e]++;
                br.assignments++;
                if (h != loc[t])
                  {
                    br.cross_gpu++;
                    dbytes[loc[t] * G + h] += act;
                    if (run->host_of[h] != run->host_of[loc[t]])
                      br.cross_node++;
                  }
              }
          /* Where each token's output is combined. */
          for (guint64 t = 0; t < n; t++)
            {
              if (mb[t] != b)
                continue;
              guint dest = loc[t];
              if (cc && !dropped[t * k])
                dest = served[t * k];
              for (guint r = 0; r < k; r++)
                {
                  if (dropped[t * k + r])
                    continue;
                  guint h = served[t * k + r];
                  if (h != dest)
                    cbytes[h * G + dest] += act;
                }
              newloc[t] = dest;
            }
          for (guint i = 0; i < G * G; i++)
            {
              br.dispatch_bytes += dbytes[i];
              br.combine_bytes += cbytes[i];
            }

          /* Dispatch, after each GPU's gate. */
          br.dispatch = submit_a2a (run, all, dbytes, "dispatch", CAT_DISPATCH, blk, gate, NULL);

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
          /* Token conservation (always checked: it is O(G) here): every
           * assignment of the micro-batch is served by one expert or counted
           * as dropped, the expert FFNs process exactly the served ones, and
           * the dispatch carries one activation per cross-GPU assignment. */
          if (br.assignments + br.dropped != nmb * k || br.total_gpu_tokens != br.assignments
              || br.dispatch_bytes != (double)br.cross_gpu * act)
            g_error ("step %u block %u micro-batch %u: token conservation violated (%" G_GUINT64_FORMAT
                     " tokens x %u = %" G_GUINT64_FORMAT " served + %" G_GUINT64_FORMAT
                     " dropped; experts processed %" G_GUINT64_FORMAT ")",
                     s, blk, b, nmb, k, br.assignments, br.dropped, br.total_gpu_tokens);

          /* Combine: back home (baseline), or the other experts' partial
           * outputs to the top-1 expert's GPU (context-coherent). */
          br.combine = submit_a2a (run, all, cbytes, cc ? "partials" : "combine", CAT_COMBINE, blk,
                                   br.expert, NULL);
          /* Tokens whose output is summed on each GPU. */
          memset (here, 0, sizeof (guint64) * G);
          for (guint64 t = 0; t < n; t++)
            if (mb[t] == b)
              here[newloc[t]]++;
          guint64 summed = 0;
          for (guint g = 0; g < G; g++)
            summed += here[g];
          if (summed != nmb)
            g_error ("step %u block %u micro-batch %u: %" G_GUINT64_FORMAT
                     " tokens combined, %" G_GUINT64_FORMAT " in the micro-batch",
                     s, blk, b, summed, nmb);
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
          for (guint64 t = 0; t < n; t++)
            if (mb[t] == b && cc)
              loc[t] = newloc[t];
          g_array_append_val (run->blocks, br);
        }
      if (moe)
        moe_l++;
    }
  if (cc && o->phase == MSIM_PHASE_DECODE)
    memcpy (seq_loc, loc, sizeof (guint) * n);
  g_array_append_val (run->steps, sr);
}

/* DESIGN.md section 4: (token, layer boundary) pairs whose top-1 expert
 * changes GPU (node) between consecutive MoE layers. */
static void
boundary_metric (MsimStepRun *run, const MsimTrace *trace, guint64 first, guint64 n)
{
  for (guint64 t = 0; t < n; t++)
    for (guint l = 0; l + 1 < run->n_moe; l++)
      {
        int a = msim_trace_expert (trace, first + t, l, 0);
        int b = msim_trace_expert (trace, first + t, l + 1, 0);
        if (a < 0 || b < 0)
          continue;
        guint home = (guint)((t)*run->G / n);
        guint ga = pick (run, l, (guint)a, home, first + t);
        guint gb = pick (run, l + 1, (guint)b, ga, first + t);
        run->boundaries++;
        run->boundary_cross_gpu += ga != gb;
        run->boundary_cross_node += run->host_of[ga] != run->host_of[gb];
      }
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
   * transfers (~96 bytes), plus the G x G byte matrices built for them. */
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
    double est = per_block * model->layers * options->microbatches * options->steps
                 + 4.0 * (double) G * G * 8.0 + (double) options->tokens * 64.0;
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
  guint nl = msim_topology_n_links (topo);
  g_autofree double *cap = g_new (double, nl);
  /* Achievable bandwidth (line rate x the preset's protocol efficiency),
   * as calibrated in experiments/fidelity. */
  msim_comm_link_capacities (topo, TRUE, cap);
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
  for (guint s = 0; s < options->steps; s++)
    {
      guint64 first = options->token_offset + (guint64)s * per_step_tokens;
      guint before = run->blocks->len;
      build_step (run, trace, s, first, per_step_tokens, seq_loc, ready);
      boundary_metric (run, trace, first, per_step_tokens);
      run->tokens_processed += per_step_tokens;
      (void)before;
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
