#include "collective.h"

#include <math.h>
#include <string.h>

/*
 * A collective is planned as a set of transfers ("xfers"), each one flow on
 * the network, with prerequisites: the two ranks must have started their
 * parts, and some transfers wait for others (a ring step waits for the
 * chunk it forwards; a PXN forward waits for the data it gathers).  When a
 * transfer's prerequisites are met, its flow starts; when the flow ends,
 * its dependents may start, and each rank whose transfers are all done
 * finishes its task.
 */

typedef struct Xfer Xfer;

struct Xfer
{
  MsimColl *coll;
  guint src, dst; /* ranks */
  double bytes;
  guint waiting;   /* unmet prerequisites */
  guint parts;     /* sub-flows still in flight (flow splitting) */
  GPtrArray *next; /* transfers waiting for this one */
  guint link;      /* G_MAXUINT: routed from src to dst; else this one link (NVLS) */
  MsimTime drain;  /* after its last byte, until the receiver has it (NCCL p2p) */
};

typedef struct
{
  MsimColl *coll;
  guint rank;
} RankRef;

/* A rank's transfers (a plain vector: two appends per transfer are on the
 * planning path of every all-to-all). */
typedef struct
{
  Xfer **v;
  guint len, cap;
} XferList;

static inline void
xfer_list_add (XferList *l, Xfer *x)
{
  if (G_UNLIKELY (l->len == l->cap))
    {
      l->cap = MAX (8u, 2u * l->cap);
      l->v = g_renew (Xfer *, l->v, l->cap);
    }
  l->v[l->len++] = x;
}

struct _MsimColl
{
  MsimComm *comm;
  RankRef *refs; /* per rank, the data of its task's callbacks */
  MsimCollKind kind;
  guint n;
  guint *gpus;
  MsimTask **tasks;
  XferList *rank_xfers;   /* per rank: transfers it sends or receives */
  guint *rank_pending;    /* per rank: its transfers not yet done */
  guint ranks_done;
  double size, moved;
  MsimTime start, end;
  /* How the call runs (see collective.h, "NCCL's algorithm and protocol
   * choice"): its fixed cost, each ring step's latency above the route's
   * per hardware class, and wire bytes per payload byte. */
  MsimTime base_latency;
  MsimTime step_extra[MSIM_NCCL_N_HW];
  double wire_factor;
  MsimNcclAlgo algo; /* MSIM_NCCL_N_ALGOS for AllToAll and send/recv */
  MsimNcclProto proto;
  gboolean tuned; /* chosen by NCCL's model */
  gboolean one_host; /* every rank on one host (NCCL's one-node p2p rules) */
  MsimTime drain_max; /* the longest drain a transfer paid */
  double predicted_s;
  MsimNcclAlgo best_algo; /* NCCL's unrestricted choice */
  MsimNcclProto best_proto;
  double best_s;
  char label[32];
};

struct _MsimComm
{
  MsimTopology *topo;
  MsimNetwork *net;
  MsimTasks *tasks;
  MsimCommParams p;
  MsimTime base_latency, step_latency;
  GPtrArray *colls;
  guint64 flow_counter; /* ECMP hash input, unique per transfer */
  /* First of the GPUs' p2p channel links (msim_comm_network_links), or
   * G_MAXUINT when the network has none. */
  guint chan_base;
  /* Every transfer of every collective, in blocks of XFER_BLOCK: a step
   * plans ~10^5 of them, and one allocation each cost more than planning
   * them (measured with callgrind on bench step). */
  GPtrArray *xfer_blocks;
  guint xfer_used; /* in the last block */
};

#define XFER_BLOCK 4096u

void
msim_comm_params_init (MsimCommParams *params)
{
  /* NCCL src/graph/tuning.cc, baseLat[Ring][Simple] = 8.4 us: the fixed
   * cost of a collective call with the Simple protocol used for large
   * messages.  The per-step protocol overhead on top of the hardware
   * latency already in the topology's links is taken as zero: NCCL's
   * hwLat values include the hardware, which the routes charge.  (NCCL's
   * Simple-protocol hwLat of 3.4 us per NVLink ring step is a chunk
   * latency for its additive tuning model; with chunks pipelined it is
   * mostly hidden at the sizes where bandwidth matters, which the
   * fidelity table's 64 MiB AllReduce confirms: charging it would add
   * 14 x 2.8 us = 39 us to a 322 us measurement.) */
  params->base_latency_s = MSIM_NCCL_BASE_LATENCY_S;
  params->step_latency_s = 0.0;
  params->a2a_window = 0;
  params->a2a_subflows = 1;
  params->a2a_spray = FALSE;
  params->a2a_hierarchical = FALSE;
  params->streams_per_gpu = 2;
  params->comm_stream = 1;
  params->ring_channels = 0;
  /* Ideal by default; MSIM_NCCL_P2P_NVLINK_EFFICIENCY is the calibrated
   * value.  Derivation: nccl-tests issue 331 measures sendrecv_perf between
   * two A100-SXM4 joined by 4 NVLink3 links (100 GB/s line rate) at 71-73
   * GB/s; NCCL's ring collectives reach 230 of 300 GB/s on the same GPU
   * (nccl-tests issue 149, the nvlink_efficiency of 0.767 in the A100
   * presets), i.e. 76.7 GB/s on that pair.  72 / 76.7 = 0.94: send/recv
   * kernels reach 94 % of what ring kernels reach.  The same NCCL code
   * drives H100, so the ratio is carried over; the 4xH100 AllToAll row of
   * experiments/fidelity checks it. */
  params->p2p_nvlink_efficiency = 1.0;
  /* NCCL's algorithm selection is off by default for the same reason; the
   * calibrated callers (bench, fidelity, the step engine) turn it on. */
  params->nccl_tuning = FALSE;
  params->nccl_algos = (1u << MSIM_NCCL_ALGO_RING) | (1u << MSIM_NCCL_ALGO_NVLS);
  params->nccl_protos = MSIM_NCCL_PROTOS_ALL;
}

void
msim_comm_link_capacities (const MsimTopology *topo, gboolean effective, double *capacity_Bps)
{
  guint nl = msim_topology_n_links (topo);
  for (guint l = 0; l < nl; l++)
    capacity_Bps[l] = effective ? msim_topology_link_effective_capacity (topo, l)
                                : msim_topology_link_capacity (topo, l);
}

/* Channel capacity on the wire: a channel moves payload at NCCL's rate,
 * and send/recv wire bytes are payload / p2p_nvlink_efficiency. */
static double
p2p_channel_Bps (const MsimTopology *topo, const MsimCommParams *params)
{
  if (!params->nccl_tuning)
    return 0.0;
  double eff = params->p2p_nvlink_efficiency > 0.0 ? params->p2p_nvlink_efficiency : 1.0;
  return msim_nccl_p2p_channel_GBps (msim_topology_gpu_arch (topo)) * 1e9 / eff;
}

guint
msim_comm_network_links (const MsimTopology *topo, const MsimCommParams *params,
                         gboolean effective, double *capacity_Bps)
{
  guint nl = msim_topology_n_links (topo);
  double ch = effective ? p2p_channel_Bps (topo, params) : 0.0;
  guint n = nl + (ch > 0.0 ? msim_topology_n_gpus (topo) * MSIM_NCCL_P2P_POOL : 0);
  if (capacity_Bps != NULL)
    {
      msim_comm_link_capacities (topo, effective, capacity_Bps);
      for (guint l = nl; l < n; l++)
        capacity_Bps[l] = ch;
    }
  return n;
}

/* A zeroed transfer from the comm's blocks. */
static Xfer *
xfer_alloc (MsimComm *comm)
{
  if (comm->xfer_blocks->len == 0 || comm->xfer_used == XFER_BLOCK)
    {
      g_ptr_array_add (comm->xfer_blocks, g_new (Xfer, XFER_BLOCK));
      comm->xfer_used = 0;
    }
  Xfer *x = (Xfer *)g_ptr_array_index (comm->xfer_blocks, comm->xfer_blocks->len - 1)
            + comm->xfer_used++;
  *x = (Xfer){ 0 };
  return x;
}

static void
coll_free (gpointer p)
{
  MsimColl *c = p;
  for (guint r = 0; r < c->n; r++)
    g_free (c->rank_xfers[r].v);
  g_free (c->rank_xfers);
  g_free (c->rank_pending);
  g_free (c->gpus);
  g_free (c->tasks);
  g_free (c->refs);
  g_free (c);
}

MsimComm *
msim_comm_new (MsimTopology *topo, MsimNetwork *net, MsimTasks *tasks, const MsimCommParams *params)
{
  MsimComm *c = g_new0 (MsimComm, 1);
  c->topo = topo;
  c->net = net;
  c->tasks = tasks;
  c->p = *params;
  if (!msim_time_from_seconds (params->base_latency_s, &c->base_latency))
    c->base_latency = 0;
  if (!msim_time_from_seconds (params->step_latency_s, &c->step_latency))
    c->step_latency = 0;
  c->chan_base = G_MAXUINT;
  guint nl = msim_topology_n_links (topo);
  /* Channels share their links with max-min only: the analytical mode
   * gives every flow its route's bottleneck, so the sub-flows of one
   * transfer would each get the whole link. */
  if (p2p_channel_Bps (topo, params) > 0.0 && msim_network_model (net) == MSIM_NETWORK_MAXMIN
      && msim_network_n_links (net) >= nl + msim_topology_n_gpus (topo) * MSIM_NCCL_P2P_POOL)
    c->chan_base = nl;
  c->colls = g_ptr_array_new_with_free_func (coll_free);
  c->xfer_blocks = g_ptr_array_new_with_free_func (g_free);
  return c;
}

void
msim_comm_free (MsimComm *comm)
{
  if (comm == NULL)
    return;
  g_ptr_array_free (comm->colls, TRUE);
  for (guint b = 0; b < comm->xfer_blocks->len; b++)
    {
      Xfer *xs = g_ptr_array_index (comm->xfer_blocks, b);
      guint used = b + 1 == comm->xfer_blocks->len ? comm->xfer_used : XFER_BLOCK;
      for (guint i = 0; i < used; i++)
        if (xs[i].next)
          g_ptr_array_free (xs[i].next, TRUE);
    }
  g_ptr_array_free (comm->xfer_blocks, TRUE);
  g_free (comm);
}

static void rank_started (MsimTask *task, gpointer data);

static MsimColl *
coll_new (MsimComm *comm, MsimCollKind kind, const guint *gpus, guint n, const char *name,
          guint category, gint64 arg)
{
  MsimColl *c = g_new0 (MsimColl, 1);
  c->comm = comm;
  c->kind = kind;
  c->n = n;
  c->gpus = g_memdup2 (gpus, n * sizeof (guint));
  c->tasks = g_new0 (MsimTask *, n);
  c->refs = g_new (RankRef, n);
  c->rank_xfers = g_new0 (XferList, n);
  c->rank_pending = g_new0 (guint, n);
  c->start = c->end = -1;
  c->base_latency = comm->base_latency;
  c->wire_factor = 1.0;
  gboolean ring_class = kind == MSIM_COLL_ALLGATHER || kind == MSIM_COLL_REDUCESCATTER
                        || kind == MSIM_COLL_ALLREDUCE;
  c->algo = ring_class ? MSIM_NCCL_ALGO_RING : MSIM_NCCL_N_ALGOS;
  c->proto = MSIM_NCCL_PROTO_SIMPLE;
  c->predicted_s = c->best_s = -1.0;
  c->one_host = TRUE;
  for (guint r = 0; r < n; r++)
    {
      g_return_val_if_fail (gpus[r] < msim_topology_n_gpus (comm->topo), NULL);
      c->one_host = c->one_host
                    && msim_topology_gpu_host (comm->topo, gpus[r])
                           == msim_topology_gpu_host (comm->topo, gpus[0]);
      guint stream = gpus[r] * comm->p.streams_per_gpu + comm->p.comm_stream;
      c->refs[r] = (RankRef){ c, r };
      c->tasks[r] = msim_task_external (comm->tasks, stream, name, category, arg, rank_started,
                                        &c->refs[r]);
    }
  g_ptr_array_add (comm->colls, c);
  return c;
}

/* A transfer from rank @src to rank @dst; it waits for both ranks to start
 * and for @extra more prerequisites. */
static Xfer *
xfer_add (MsimColl *c, guint src, guint dst, double bytes, guint extra)
{
  Xfer *x = xfer_alloc (c->comm);
  x->coll = c;
  x->src = src;
  x->dst = dst;
  x->bytes = bytes;
  x->waiting = 2 + extra;
  x->link = G_MAXUINT;
  xfer_list_add (&c->rank_xfers[src], x);
  xfer_list_add (&c->rank_xfers[dst], x);
  c->rank_pending[src]++;
  c->rank_pending[dst]++;
  c->moved += bytes;
  return x;
}

static void
xfer_then (Xfer *before, Xfer *after)
{
  if (before->next == NULL)
    before->next = g_ptr_array_new ();
  g_ptr_array_add (before->next, after);
}

static void xfer_ready (Xfer *x);

static void
rank_finish_one (MsimColl *c, guint r)
{
  g_assert (c->rank_pending[r] > 0);
  if (--c->rank_pending[r] == 0)
    {
      msim_task_finish (c->tasks[r]);
      c->ranks_done++;
      c->end = MAX (c->end, msim_task_end_time (c->tasks[r]));
    }
}

static void xfer_complete (Xfer *x);

static void
xfer_drained (MsimEngine *engine, gpointer data)
{
  xfer_complete (data);
}

static void
xfer_flow_done (MsimNetwork *net, const MsimFlowInfo *info, gpointer data)
{
  Xfer *x = data;
  if (--x->parts > 0)
    return; /* other sub-flows of this transfer are still moving */
  if (x->drain > 0)
    msim_engine_schedule_in (msim_tasks_engine (x->coll->comm->tasks), x->drain, xfer_drained, x);
  else
    xfer_complete (x);
}

/* @x has arrived: release what waits for it. */
static void
xfer_complete (Xfer *x)
{
  MsimColl *c = x->coll;
  if (x->next)
    for (guint i = 0; i < x->next->len; i++)
      xfer_ready (g_ptr_array_index (x->next, i));
  rank_finish_one (c, x->src);
  rank_finish_one (c, x->dst);
}

/* TRUE for a non-empty route made of NVLink links only: where NCCL's
 * send/recv kernels, not a NIC's DMA engine, set the pace. */
static gboolean
route_is_nvlink (const MsimTopology *topo, const MsimRoute *route)
{
  for (guint i = 0; i < route->n_links; i++)
    if (msim_topology_link_type (topo, route->links[i]) != MSIM_LINK_NVLINK)
      return FALSE;
  return route->n_links > 0;
}

/* NCCL's hardware class of a step over @route: network if it crosses a
 * NIC link, NVLink if it is NVLink only, else PCI (NCCL's fallback for
 * everything else, "other" links included). */
static MsimNcclHw
route_hw (const MsimTopology *topo, const MsimRoute *route)
{
  gboolean nvlink = route->n_links > 0;
  for (guint i = 0; i < route->n_links; i++)
    {
      MsimLinkType t = msim_topology_link_type (topo, route->links[i]);
      if (t == MSIM_LINK_INFINIBAND || t == MSIM_LINK_ETHERNET)
        return MSIM_NCCL_HW_NET;
      nvlink = nvlink && t == MSIM_LINK_NVLINK;
    }
  return nvlink ? MSIM_NCCL_HW_NVLINK : MSIM_NCCL_HW_PCI;
}

/* The receiver's copy-out of the last chunk of a one-host NVLink send/recv
 * transfer (with NCCL's models), else 0. */
static MsimTime
p2p_drain (MsimColl *c, const Xfer *x, gboolean p2p_nvlink)
{
  MsimTime drain = 0;
  if (p2p_nvlink && c->comm->p.nccl_tuning && c->one_host
      && !msim_time_from_seconds (
          msim_nccl_p2p_drain_s (x->bytes, c->n, msim_topology_gpu_arch (c->comm->topo)), &drain))
    drain = 0;
  c->drain_max = MAX (c->drain_max, drain);
  return drain;
}

/* Whether @x goes as NCCL's channels: a one-host send/recv transfer with
 * bytes over NVLink only, on a network with channel links.  Fills @route
 * with the transfer's route (ECMP input: the comm's next flow number, which
 * send_on_channels() then takes). */
static gboolean
p2p_channels_apply (MsimColl *c, const Xfer *x, guint sv, guint dv, MsimRoute *route)
{
  MsimComm *comm = c->comm;
  if (comm->chan_base == G_MAXUINT || !c->one_host || x->bytes <= 0.0 || sv == dv
      || (c->kind != MSIM_COLL_ALLTOALLV && c->kind != MSIM_COLL_SENDRECV))
    return FALSE;
  if (!msim_topology_route (comm->topo, sv, dv, comm->flow_counter, route, NULL))
    return FALSE;
  return route_is_nvlink (comm->topo, route);
}

/* Sends @x over @route as NCCL does on one host: msim_nccl_p2p_channels()
 * parts, part p on channel (d x channels_min + p) mod pool of the sender, d
 * the peer's distance (its round), each through that channel's link then
 * the route, each ending with the drain of its last chunk. */
static void
send_on_channels (MsimColl *c, Xfer *x, const MsimRoute *route)
{
  MsimComm *comm = c->comm;
  MsimEngine *engine = msim_tasks_engine (comm->tasks);
  comm->flow_counter++; /* the number p2p_channels_apply() routed with */
  guint nch = msim_nccl_p2p_channels (x->bytes, c->n);
  guint d = (x->dst + c->n - x->src) % c->n;
  guint base = d * msim_nccl_p2p_channels_min (c->n);
  double wire_bytes = x->bytes / nch;
  if (comm->p.p2p_nvlink_efficiency < 1.0)
    wire_bytes /= comm->p.p2p_nvlink_efficiency;
  MsimTime latency = route->latency_ps + comm->step_latency;
  x->drain = p2p_drain (c, x, TRUE);
  guint32 links[1 + MSIM_ROUTE_MAX_HOPS];
  memcpy (links + 1, route->links, route->n_links * sizeof (guint32));
  x->parts = nch;
  for (guint p = 0; p < nch; p++)
    {
      links[0] = comm->chan_base + c->gpus[x->src] * MSIM_NCCL_P2P_POOL
                 + (base + p) % MSIM_NCCL_P2P_POOL;
      msim_network_start_flow (comm->net, msim_engine_now (engine), links, route->n_links + 1,
                               latency, wire_bytes, xfer_flow_done, x);
    }
}

/* One prerequisite of @x is met; start its flow when none are left. */
static void
xfer_ready (Xfer *x)
{
  g_assert (x->waiting > 0);
  if (--x->waiting > 0)
    return;
  MsimColl *c = x->coll;
  MsimComm *comm = c->comm;
  g_autoptr (GError) error = NULL;
  guint sv = msim_topology_gpu_vertex (comm->topo, c->gpus[x->src]);
  guint dv = msim_topology_gpu_vertex (comm->topo, c->gpus[x->dst]);
  MsimEngine *engine = msim_tasks_engine (comm->tasks);
  if (x->link != G_MAXUINT)
    {
      /* A flow over one given link (NVLS: a GPU's port to the switch). */
      x->parts = 1;
      guint l = x->link;
      msim_network_start_flow (comm->net, msim_engine_now (engine), &l, 1,
                               msim_topology_link_latency_ps (comm->topo, l) + comm->step_latency,
                               x->bytes, xfer_flow_done, x);
      return;
    }
  gboolean ring = c->algo != MSIM_NCCL_N_ALGOS; /* set for ring-class kinds only */
  /* Flow splitting (AllToAllv): `spray` divides the transfer evenly over
   * every equal-cost path, as ideal packet spraying would; `subflows = k`
   * sends k sub-flows that ECMP hashes independently, as an application
   * splitting its flows would.  Otherwise one flow, hashed by ECMP. */
  gboolean a2a = c->kind == MSIM_COLL_ALLTOALLV;
  guint parts = 1;
  if (a2a && comm->p.a2a_spray)
    parts = MAX (msim_topology_n_paths (comm->topo, sv, dv), 1u);
  else if (a2a && comm->p.a2a_subflows > 1)
    parts = comm->p.a2a_subflows;
  else
    {
      MsimRoute route;
      if (p2p_channels_apply (c, x, sv, dv, &route))
        {
          send_on_channels (c, x, &route);
          return;
        }
    }
  x->parts = parts;
  for (guint k = 0; k < parts; k++)
    {
      MsimRoute route;
      if (a2a && comm->p.a2a_spray)
        {
          if (!msim_topology_path (comm->topo, sv, dv, k, &route))
            g_error ("collective: no path %u between GPUs", k);
        }
      else if (!msim_topology_route (comm->topo, sv, dv, comm->flow_counter++, &route, &error))
        g_error ("collective: %s", error->message); /* topologies are validated connected */
      double wire_bytes = x->bytes / parts;
      MsimTime latency = route.latency_ps + comm->step_latency;
      gboolean p2p_nvlink
          = (a2a || c->kind == MSIM_COLL_SENDRECV) && route_is_nvlink (comm->topo, &route);
      if (p2p_nvlink && comm->p.p2p_nvlink_efficiency < 1.0)
        wire_bytes /= comm->p.p2p_nvlink_efficiency;
      if (k == 0)
        x->drain = p2p_drain (c, x, p2p_nvlink);
      if (ring)
        {
          /* The protocol's share of the link and its latency per step. */
          wire_bytes *= c->wire_factor;
          latency += c->step_extra[route_hw (comm->topo, &route)];
        }
      msim_network_start_flow (comm->net, msim_engine_now (engine), route.links, route.n_links,
                               latency, wire_bytes, xfer_flow_done, x);
    }
}

static void
rank_ready_event (MsimEngine *engine, gpointer data)
{
  RankRef *ref = data;
  MsimColl *c = ref->coll;
  guint r = ref->rank;
  if (c->start < 0 || msim_task_start_time (c->tasks[r]) < c->start)
    c->start = msim_task_start_time (c->tasks[r]);
  if (c->rank_pending[r] == 0)
    {
      /* Nothing to send or receive: done after the call's fixed cost. */
      msim_task_finish (c->tasks[r]);
      c->ranks_done++;
      c->end = MAX (c->end, msim_task_end_time (c->tasks[r]));
      return;
    }
  const XferList *xs = &c->rank_xfers[r];
  for (guint i = 0; i < xs->len; i++)
    xfer_ready (xs->v[i]);
}

/* A rank's task started: it can move data after the call's base latency. */
static void
rank_started (MsimTask *task, gpointer data)
{
  RankRef *ref = data;
  MsimEngine *engine = msim_tasks_engine (ref->coll->comm->tasks);
  msim_engine_schedule_in (engine, ref->coll->base_latency, rank_ready_event, ref);
}

MsimColl *
msim_coll_alltoallv (MsimComm *comm, const guint *gpus, guint n, const double *bytes,
                     const char *name, guint category, gint64 arg)
{
  MsimColl *c = coll_new (comm, MSIM_COLL_ALLTOALLV, gpus, n, name, category, arg);
  /* S of nccl-tests: the bytes a rank sends, its own block included; with
   * uneven rows, the mean over ranks. */
  double total = 0.0;
  for (guint i = 0; i < n * n; i++)
    total += bytes[i];
  c->size = n ? total / n : 0.0;

  if (!comm->p.a2a_hierarchical)
    {
      /* Each rank's list holds its non-empty row and column: size it once. */
      for (guint i = 0; i < n; i++)
        {
          guint cnt = 0;
          for (guint j = 0; j < n; j++)
            cnt += (j != i && bytes[i * n + j] > 0.0) + (j != i && bytes[j * n + i] > 0.0);
          XferList *l = &c->rank_xfers[i];
          l->cap = MAX (cnt, 1u);
          l->v = g_renew (Xfer *, l->v, l->cap);
        }
      guint w = comm->p.a2a_window;
      for (guint i = 0; i < n; i++)
        {
          Xfer *prev[64] = { NULL };
          guint k = 0;
          for (guint off = 1; off < n; off++)
            {
              guint j = (i + off) % n;
              if (bytes[i * n + j] <= 0.0)
                continue;
              /* With a window of w, the k-th peer waits for the (k-w)-th. */
              gboolean gated = w > 0 && w <= 64 && k >= w;
              Xfer *x = xfer_add (c, i, j, bytes[i * n + j], gated ? 1 : 0);
              if (gated)
                xfer_then (prev[k % w], x);
              if (w > 0 && w <= 64)
                prev[k % w] = x;
              k++;
            }
        }
      return c;
    }

  /* Hierarchical: local index of each rank within its host. */
  g_autofree guint *host = g_new (guint, n);
  g_autofree guint *local = g_new (guint, n);
  for (guint r = 0; r < n; r++)
    {
      host[r] = msim_topology_gpu_host (comm->topo, gpus[r]);
      local[r] = 0;
      for (guint q = 0; q < r; q++)
        local[r] += host[q] == host[r];
    }
  /* proxy[h * n + l]: the rank on host h with local index l, or G_MAXUINT. */
  guint nh = msim_topology_n_hosts (comm->topo);
  g_autofree guint *proxy = g_new (guint, (gsize)nh * n);
  for (gsize i = 0; i < (gsize)nh * n; i++)
    proxy[i] = G_MAXUINT;
  for (guint r = 0; r < n; r++)
    proxy[(gsize)host[r] * n + local[r]] = r;

  /* fwd[i * n + p]: bytes i hands to proxy p; out[p * n + j]: bytes proxy p
   * sends to j over the network. */
  g_autofree double *fwd = g_new0 (double, (gsize)n *n);
  g_autofree double *out = g_new0 (double, (gsize)n *n);
  for (guint i = 0; i < n; i++)
    for (guint j = 0; j < n; j++)
      {
        double b = bytes[(gsize)i * n + j];
        if (i == j || b <= 0.0)
          continue;
        guint p = host[i] == host[j] ? j : proxy[(gsize)host[i] * n + local[j]];
        if (p == G_MAXUINT)
          p = i; /* no GPU with that local index here: send directly */
        if (p != i)
          fwd[(gsize)i * n + p] += b;
        if (p != j)
          out[(gsize)p * n + j] += b;
      }
  g_autofree Xfer **fx = g_new0 (Xfer *, (gsize)n * n);
  for (guint i = 0; i < n; i++)
    for (guint p = 0; p < n; p++)
      if (fwd[(gsize)i * n + p] > 0.0)
        fx[(gsize)i * n + p] = xfer_add (c, i, p, fwd[(gsize)i * n + p], 0);
  for (guint p = 0; p < n; p++)
    for (guint j = 0; j < n; j++)
      {
        double b = out[(gsize)p * n + j];
        if (b <= 0.0)
          continue;
        /* Wait for every source on p's host that hands p data for j. */
        guint deps = 0;
        for (guint i = 0; i < n; i++)
          if (i != p && host[i] == host[p] && fx[(gsize)i * n + p] && bytes[(gsize)i * n + j] > 0.0)
            deps++;
        Xfer *x = xfer_add (c, p, j, b, deps);
        for (guint i = 0; i < n; i++)
          if (i != p && host[i] == host[p] && fx[(gsize)i * n + p] && bytes[(gsize)i * n + j] > 0.0)
            xfer_then (fx[(gsize)i * n + p], x);
      }
  return c;
}

/* Fills order[ch * n + p] with the rank at position p of ring channel ch
 * and returns the number of channels (see collective.h for the layout). */
static guint
ring_orders (MsimComm *comm, const guint *gpus, guint n, guint *order)
{
  /* Hosts in order of first appearance; each host's ranks in gpus order. */
  g_autofree guint *host_of = g_new (guint, n);
  g_autofree guint *host_rank = g_new (guint, n); /* ranks grouped by host */
  g_autofree guint *host_first = g_new0 (guint, n + 1);
  guint n_hosts = 0, widest = 0;
  for (guint r = 0; r < n; r++)
    {
      guint h = msim_topology_gpu_host (comm->topo, gpus[r]);
      guint k = 0;
      while (k < n_hosts && host_of[k] != h)
        k++;
      if (k == n_hosts)
        host_of[n_hosts++] = h;
    }
  for (guint k = 0, pos = 0; k < n_hosts; k++)
    {
      host_first[k] = pos;
      for (guint r = 0; r < n; r++)
        if (msim_topology_gpu_host (comm->topo, gpus[r]) == host_of[k])
          host_rank[pos++] = r;
      host_first[k + 1] = pos;
      widest = MAX (widest, pos - host_first[k]);
    }
  guint channels = comm->p.ring_channels;
  if (channels == 0)
    channels = n_hosts > 1 ? widest : 1;
  channels = CLAMP (channels, 1, MSIM_COMM_MAX_CHANNELS);
  if (comm->p.ring_channels == 1 || (n_hosts == 1 && channels == 1))
    {
      for (guint r = 0; r < n; r++)
        order[r] = r;
      return 1;
    }
  for (guint ch = 0; ch < channels; ch++)
    {
      guint *ring = order + (gsize)ch * n;
      guint pos = 0;
      for (guint k = 0; k < n_hosts; k++)
        {
          const guint *local = host_rank + host_first[k];
          guint len = host_first[k + 1] - host_first[k];
          /* Even hosts: local c, c+1, ...; odd hosts: c-1, c-2, ...  The
           * exit GPU of one host and the entry GPU of the next then share
           * a local index, so the hop between them stays on one rail. */
          for (guint i = 0; i < len; i++)
            {
              guint l = k % 2 == 0 ? (ch + i) % len : (ch + 2 * len - 1 - i) % len;
              ring[pos++] = local[l];
            }
        }
    }
  return channels;
}

/* What NCCL's tuner would see of the ring collective of @gpus laid out as
 * @order (@channels rings): ranks, nodes, the class of intra-node hops, the
 * ring's bus bandwidth and whether NVLS can run.  For NVLS, @up / @down get
 * each rank's NVLink port to the switch and back.  O(channels x n x route
 * length) plus one pass over the links. */
static void
nccl_view (MsimComm *comm, MsimCollKind kind, const guint *gpus, guint n, const guint *order,
           guint channels, MsimNcclComm *view, guint *up, guint *down)
{
  MsimTopology *topo = comm->topo;
  memset (view, 0, sizeof *view);
  view->func = kind == MSIM_COLL_ALLREDUCE       ? MSIM_NCCL_FUNC_ALLREDUCE
               : kind == MSIM_COLL_REDUCESCATTER ? MSIM_NCCL_FUNC_REDUCESCATTER
                                                 : MSIM_NCCL_FUNC_ALLGATHER;
  view->n_ranks = n;
  view->arch = msim_topology_gpu_arch (topo);
  /* Nodes: hosts among the ranks. */
  g_autofree guint *hosts = g_new (guint, n);
  for (guint r = 0; r < n; r++)
    {
      guint h = msim_topology_gpu_host (topo, gpus[r]);
      guint k = 0;
      while (k < view->n_nodes && hosts[k] != h)
        k++;
      if (k == view->n_nodes)
        hosts[view->n_nodes++] = h;
    }
  /* The ring graph's bus bandwidth: every channel moves at the rate of the
   * most loaded link it crosses (effective capacity over the ring hops that
   * share it), the rings side by side.  NCCL's graph search reaches the
   * same figure on the NVSwitch and rail systems of the presets (e.g. 18 x
   * 20.6 = 370.8 GB/s per H100). */
  guint nl = msim_topology_n_links (topo);
  g_autofree guint *uses = g_new0 (guint, MAX (nl, 1));
  gboolean intra_nvlink = TRUE;
  for (int pass = 0; pass < 2; pass++)
    {
      double slowest = G_MAXDOUBLE;
      for (guint ch = 0; ch < channels; ch++)
        for (guint p = 0; p < n; p++)
          {
            guint a = order[(gsize)ch * n + p], b = order[(gsize)ch * n + (p + 1) % n];
            MsimRoute route;
            if (!msim_topology_route (topo, msim_topology_gpu_vertex (topo, gpus[a]),
                                      msim_topology_gpu_vertex (topo, gpus[b]), 0, &route, NULL))
              continue;
            if (pass == 0)
              {
                for (guint i = 0; i < route.n_links; i++)
                  uses[route.links[i]]++;
                if (route_hw (topo, &route) == MSIM_NCCL_HW_PCI)
                  intra_nvlink = FALSE;
              }
            else
              for (guint i = 0; i < route.n_links; i++)
                slowest = MIN (slowest, msim_topology_link_effective_capacity (topo, route.links[i])
                                            / uses[route.links[i]]);
          }
      if (pass == 1 && slowest < G_MAXDOUBLE)
        view->ring_busbw_GBps = channels * slowest / 1e9;
    }
  view->intra_hw = intra_nvlink ? MSIM_NCCL_HW_NVLINK : MSIM_NCCL_HW_PCI;

  /* NVLS: one node, every rank one NVLink hop from a common switch. */
  if (!msim_topology_nvls (topo) || view->n_nodes != 1)
    return;
  double port = G_MAXDOUBLE;
  guint sw = G_MAXUINT;
  for (guint r = 0; r < n; r++)
    {
      MsimRoute route;
      guint v = msim_topology_gpu_vertex (topo, gpus[r]);
      guint w = msim_topology_gpu_vertex (topo, gpus[(r + 1) % n]);
      if (!msim_topology_route (topo, v, w, 0, &route, NULL) || route.n_links != 2
          || route_hw (topo, &route) != MSIM_NCCL_HW_NVLINK)
        return;
      guint mid = msim_topology_link_dst (topo, route.links[0]);
      if (sw != G_MAXUINT && mid != sw)
        return;
      sw = mid;
      up[r] = route.links[0];
      down[(r + 1) % n] = route.links[1];
    }
  for (guint r = 0; r < n; r++)
    port = MIN (port, MIN (msim_topology_link_effective_capacity (topo, up[r]),
                           msim_topology_link_effective_capacity (topo, down[r])));
  view->nvls = TRUE;
  view->nvls_port_GBps = port / 1e9;
}

static MsimTime
us_to_time (double us)
{
  MsimTime t;
  return msim_time_from_seconds (MAX (us, 0.0) * 1e-6, &t) ? t : 0;
}

MsimColl *
msim_coll_ring (MsimComm *comm, MsimCollKind kind, const guint *gpus, guint n, double bytes,
                const char *name, guint category, gint64 arg)
{
  g_return_val_if_fail (kind == MSIM_COLL_ALLGATHER || kind == MSIM_COLL_REDUCESCATTER
                            || kind == MSIM_COLL_ALLREDUCE,
                        NULL);
  MsimColl *c = coll_new (comm, kind, gpus, n, name, category, arg);
  c->size = bytes;
  g_snprintf (c->label, sizeof c->label, "Ring/Simple");
  if (n < 2 || bytes <= 0.0)
    return c;
  g_autofree guint *order = g_new (guint, (gsize)MSIM_COMM_MAX_CHANNELS * n);
  guint channels = ring_orders (comm, gpus, n, order);
  guint steps = kind == MSIM_COLL_ALLREDUCE ? 2 * (n - 1) : n - 1;

  if (comm->p.nccl_tuning)
    {
      MsimNcclComm view;
      g_autofree guint *up = g_new (guint, n);
      g_autofree guint *down = g_new (guint, n);
      nccl_view (comm, kind, gpus, n, order, channels, &view, up, down);
      MsimNcclModel model;
      msim_nccl_model_init (&model, &view);
      guint simulated = (1u << MSIM_NCCL_ALGO_RING) | (1u << MSIM_NCCL_ALGO_NVLS);
      double t_us = -1.0, best_us = -1.0;
      gboolean have_best
          = msim_nccl_model_select (&model, bytes, MSIM_NCCL_ALGOS_ALL, MSIM_NCCL_PROTOS_ALL,
                                    &c->best_algo, &c->best_proto, &best_us);
      if (!msim_nccl_model_select (&model, bytes, comm->p.nccl_algos & simulated,
                                   comm->p.nccl_protos, &c->algo, &c->proto, &t_us))
        {
          /* Nothing allowed is available (e.g. NCCL_ALGO=NVLS without
           * NVLS): NCCL falls back to its ring; so does moesim. */
          c->algo = MSIM_NCCL_ALGO_RING;
          c->proto = MSIM_NCCL_PROTO_SIMPLE;
          t_us = msim_nccl_model_time_us (&model, c->algo, c->proto, bytes);
        }
      c->tuned = t_us >= 0.0;
      c->predicted_s = t_us >= 0.0 ? t_us * 1e-6 : -1.0;
      if (have_best)
        c->best_s = best_us * 1e-6;
      else
        {
          c->best_algo = c->algo;
          c->best_proto = c->proto;
          c->best_s = c->predicted_s;
        }
      g_snprintf (c->label, sizeof c->label, "%s/%s", msim_nccl_algo_name (c->algo),
                  msim_nccl_proto_name (c->proto));
      if (c->algo == MSIM_NCCL_ALGO_NVLS)
        {
          /* Every port carries S x port / algbw each way: at the port's
           * effective capacity that takes NCCL's S / algbw.  The call's
           * fixed cost is NCCL's NVLS latency. */
          double algbw = model.algbw_GBps[MSIM_NCCL_ALGO_NVLS][MSIM_NCCL_PROTO_SIMPLE] * 1e9;
          double wire = bytes * view.nvls_port_GBps * 1e9 / algbw;
          c->base_latency = us_to_time (model.latency_us[MSIM_NCCL_ALGO_NVLS][c->proto]);
          for (guint r = 0; r < n; r++)
            {
              Xfer *x = xfer_add (c, r, r, wire, 0);
              x->link = up[r];
              x = xfer_add (c, r, r, wire, 0);
              x->link = down[r];
            }
          /* Payload: each rank's input up the port, its output down (the
           * whole buffer, or its 1/n share for ReduceScatter's output and
           * AllGather's input). */
          double in = kind == MSIM_COLL_ALLGATHER ? bytes / n : bytes;
          double out = kind == MSIM_COLL_REDUCESCATTER ? bytes / n : bytes;
          c->moved = n * (in + out);
          return c;
        }
      /* Ring with c->proto: NCCL's base latency (with its multi-node
       * "plateau" factor, which scales the whole latency), the protocol's
       * latency above the hardware's per step, and its share of the
       * bandwidth. */
      double lat = model.latency_us[MSIM_NCCL_ALGO_RING][c->proto];
      double plateau = 0.0;
      if (c->tuned)
        plateau = c->predicted_s * 1e6
                  - bytes / (1e3 * model.algbw_GBps[MSIM_NCCL_ALGO_RING][c->proto]) - lat;
      c->base_latency
          = us_to_time (msim_nccl_base_latency_us (MSIM_NCCL_ALGO_RING, c->proto) + plateau);
      for (int hw = 0; hw < MSIM_NCCL_N_HW; hw++)
        {
          double step = msim_nccl_hw_latency_us ((MsimNcclHw)hw, MSIM_NCCL_ALGO_RING, c->proto);
          /* Across nodes NCCL charges intra-node steps at least its
           * network post overhead (1 us, 3 us for Simple). */
          if (view.n_nodes > 1 && hw != MSIM_NCCL_HW_NET)
            step = MAX (step, c->proto == MSIM_NCCL_PROTO_SIMPLE ? 3.0 : 1.0);
          c->step_extra[hw] = us_to_time (
              step - msim_nccl_hw_latency_us ((MsimNcclHw)hw, MSIM_NCCL_ALGO_RING,
                                              MSIM_NCCL_PROTO_LL));
        }
      double fraction = msim_nccl_model_ring_fraction (&model, c->proto);
      c->wire_factor = fraction > 0.0 ? 1.0 / fraction : 1.0;
    }

  double chunk = bytes / n / channels;
  /* prev[p]: the transfer into ring position p of the previous step. */
  g_autofree Xfer **prev = g_new0 (Xfer *, n);
  g_autofree Xfer **cur = g_new0 (Xfer *, n);
  for (guint ch = 0; ch < channels; ch++)
    {
      const guint *ring = order + (gsize)ch * n;
      for (guint s = 0; s < steps; s++)
        {
          for (guint p = 0; p < n; p++)
            {
              guint q = (p + 1) % n;
              /* Step s of position p forwards what it received at s-1. */
              cur[q] = xfer_add (c, ring[p], ring[q], chunk, s > 0 ? 1 : 0);
              if (s > 0)
                xfer_then (prev[p], cur[q]);
            }
          Xfer **t = prev;
          prev = cur;
          cur = t;
        }
    }
  return c;
}

MsimColl *
msim_coll_sendrecv (MsimComm *comm, guint src_gpu, guint dst_gpu, double bytes, const char *name,
                    guint category, gint64 arg)
{
  guint gpus[2] = { src_gpu, dst_gpu };
  MsimColl *c
      = coll_new (comm, MSIM_COLL_SENDRECV, gpus, src_gpu == dst_gpu ? 1 : 2, name, category, arg);
  c->size = bytes;
  if (src_gpu != dst_gpu && bytes > 0.0)
    xfer_add (c, 0, 1, bytes, 0);
  return c;
}

MsimTask *
msim_coll_task (MsimColl *coll, guint rank)
{
  g_return_val_if_fail (rank < coll->n, NULL);
  return coll->tasks[rank];
}

guint
msim_coll_n_ranks (const MsimColl *coll)
{
  return coll->n;
}

gboolean
msim_coll_done (const MsimColl *coll)
{
  return coll->ranks_done == coll->n;
}

MsimTime
msim_coll_start (const MsimColl *coll)
{
  return coll->start;
}

MsimTime
msim_coll_end (const MsimColl *coll)
{
  return coll->end;
}

double
msim_coll_bytes_moved (const MsimColl *coll)
{
  return coll->moved;
}

double
msim_coll_drain_s (const MsimColl *coll)
{
  return msim_time_to_seconds (coll->drain_max);
}

double
msim_coll_size (const MsimColl *coll)
{
  return coll->size;
}

double
msim_coll_algbw (const MsimColl *coll)
{
  if (!msim_coll_done (coll) || coll->end <= coll->start)
    return 0.0;
  return coll->size / msim_time_to_seconds (coll->end - coll->start);
}

MsimNcclAlgo
msim_coll_nccl_algo (const MsimColl *coll)
{
  return coll->algo;
}

MsimNcclProto
msim_coll_nccl_proto (const MsimColl *coll)
{
  return coll->proto;
}

gboolean
msim_coll_nccl_prediction (const MsimColl *coll, double *predicted_s)
{
  if (predicted_s)
    *predicted_s = coll->predicted_s;
  return coll->tuned;
}

gboolean
msim_coll_nccl_choice (const MsimColl *coll, MsimNcclAlgo *algo, MsimNcclProto *proto,
                       double *predicted_s)
{
  if (algo)
    *algo = coll->best_algo;
  if (proto)
    *proto = coll->best_proto;
  if (predicted_s)
    *predicted_s = coll->best_s;
  return coll->tuned;
}

const char *
msim_coll_algorithm_label (const MsimColl *coll)
{
  switch (coll->kind)
    {
      case MSIM_COLL_ALLTOALLV:
        return coll->comm->p.a2a_hierarchical ? "hierarchical" : "direct";
      case MSIM_COLL_SENDRECV:
        return "p2p";
      default:
        return coll->label;
    }
}

double
msim_coll_busbw (const MsimColl *coll)
{
  double n = coll->n;
  double f = 1.0;
  switch (coll->kind)
    {
      case MSIM_COLL_ALLREDUCE:
        f = 2.0 * (n - 1.0) / n;
        break;
      case MSIM_COLL_ALLGATHER:
      case MSIM_COLL_REDUCESCATTER:
      case MSIM_COLL_ALLTOALLV:
        f = (n - 1.0) / n;
        break;
      case MSIM_COLL_SENDRECV:
        f = 1.0;
        break;
    }
  return msim_coll_algbw (coll) * f;
}
