#include "nccl-tuning.h"

#include <math.h>
#include <string.h>

/*
 * Sources.  Unless stated otherwise every constant is from NVIDIA/nccl
 * src/graph/tuning.cc at commit b6475625 (NCCL 2.20 by its contents, the
 * generation PyTorch 2.2-2.3 ship), "Latencies in us, Bandwidths in GB/s":
 *  [T1] baseLat[algo][proto]
 *  [T2] hwLat[hw][algo][proto]
 *  [T3] llMaxBws[arch or CPU][nodes]
 *  [T4] ncclTopoTuneModel's "model refinements" (protocol factors)
 *  [T5] treeCorrectionFactor and the ring "plateau" in ncclTopoGetAlgoTime
 *  [T6] getNetOverhead (1 us on Intel CPUs, x3 for Simple)
 *  [S1] src/graph/search.cc, same commit: sm90SpeedArrayIntra (the
 *       per-channel bandwidths NCCL's graph search tries on Hopper) and
 *       ncclTopoSearchTryNvls (an NVLS head loads its own GPU's port twice,
 *       every other port once).
 */

/* [T1] Tree, Ring, NVLS x LL, LL128, Simple. */
static const double base_lat_us[MSIM_NCCL_N_ALGOS][MSIM_NCCL_N_PROTOS] = {
  { 6.8, 14.0, 0.0 }, /* Tree */
  { 6.6, 14.0, 8.4 }, /* Ring */
  { 0.0, 0.0, 0.0 },  /* NVLS */
};

/* [T2] NVLink, PCI, network x Tree, Ring, NVLS x LL, LL128, Simple. */
static const double hw_lat_us[MSIM_NCCL_N_HW][MSIM_NCCL_N_ALGOS][MSIM_NCCL_N_PROTOS] = {
  { { 0.6, 1.25, 28.0 }, { 0.6, 1.9, 3.4 }, { 0.0, 0.0, 23.0 } }, /* NVLink */
  { { 1.0, 1.9, 28.0 }, { 1.0, 2.5, 5.7 }, { 0.0, 0.0, 0.0 } },   /* PCI */
  { { 5.0, 8.5, 28.0 }, { 2.7, 4.0, 14.0 }, { 0.0, 0.0, 18.0 } }, /* network */
};

/* [T3] The LL protocol's bandwidth ceiling, GB/s.  One node: by GPU
 * generation (Volta, Ampere, Hopper); several: by CPU vendor (Intel row)
 * and node count (2, more). */
static const double ll_max_one_node[] = { 39.0, 39.0, 87.7, 87.7 }; /* MsimGpuArch order */
static const double ll_max_intel[] = { 39.0, 39.0, 20.4 };          /* 1, 2, >2 nodes */

/* [T5] Tree bandwidth correction by log2(bytes / 64), LL, LL128, Simple. */
#define TREE_CORRECTION_SIZES 23
/* clang-format off */
static const double tree_correction[MSIM_NCCL_N_PROTOS][TREE_CORRECTION_SIZES] = {
  { 1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0,
    1.0 },
  { 1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0,
    1.0 },
  { .9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9 },
};
/* clang-format on */

/* [S1] Hopper per-channel bandwidths of the intra-node graph search. */
static const double sm90_speed_intra[]
    = { 60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 15.0, 12.0, 6.0, 3.0 };

/* [T6] Network post overhead on Intel CPUs, us. */
#define NET_OVERHEAD_US 1.0

/* NCCL's NCCL_MAX_NVLS_ARITY: NVLS runs on at most 8 local GPUs. */
#define NVLS_MAX_ARITY 8

/* The ring "plateau" applies once each rank's share per channel reaches 64
 * bytes; NCCL's channel count is not modelled, so the count of a Hopper or
 * Ampere NVSwitch node (32 after duplication) stands in for it. */
#define PLATEAU_CHANNELS 32

static const char *const algo_names[] = { "Tree", "Ring", "NVLS" };
static const char *const proto_names[] = { "LL", "LL128", "Simple" };

static guint
log2i (guint64 n)
{
  guint l = 0;
  while (n >>= 1)
    l++;
  return l;
}

double
msim_nccl_nvls_head_GBps (guint n_ranks, double port_GBps)
{
  /* [S1] With n heads each GPU port carries one channel per other head and
   * two for its own: (n + 1) x bw must fit the port. */
  for (gsize i = 0; i < G_N_ELEMENTS (sm90_speed_intra); i++)
    if ((n_ranks + 1) * sm90_speed_intra[i] <= port_GBps)
      return sm90_speed_intra[i];
  return 0.0;
}

static gboolean
ll128_enabled (const MsimNcclComm *c)
{
  /* [T4] "Enable LL128 by default only on Volta/Ampere/Hopper+NVLink": the
   * intra-node path must be NVLink and every GPU of one of those
   * generations.  The inter-node path (PXB, or PXN on Hopper) holds on the
   * rail-optimised clusters moesim's presets describe. */
  return c->intra_hw == MSIM_NCCL_HW_NVLINK && c->arch != MSIM_GPU_ARCH_UNKNOWN;
}

void
msim_nccl_model_init (MsimNcclModel *model, const MsimNcclComm *comm)
{
  g_return_if_fail (model != NULL && comm != NULL);
  memset (model, 0, sizeof *model);
  model->comm = *comm;
  const MsimNcclComm *c = &model->comm;
  guint n = c->n_ranks, nodes = MAX (c->n_nodes, 1u);
  if (n < 2)
    return; /* nothing to move: every algbw stays 0 */
  gboolean ar = c->func == MSIM_NCCL_FUNC_ALLREDUCE;
  guint nsteps = ar ? 2 * (n - 1) : n - 1;
  guint inter_steps = ar ? (nodes > 1 ? 2 * nodes : 0) : nodes - 1;
  double ppn = (double)n / nodes;
  double ll_max = nodes == 1 ? ll_max_one_node[c->arch] : ll_max_intel[MIN (nodes - 1, 2u)];
  MsimNcclHw intra = c->intra_hw;

  for (int a = 0; a < MSIM_NCCL_N_ALGOS; a++)
    for (int p = 0; p < MSIM_NCCL_N_PROTOS; p++)
      {
        double busbw = c->ring_busbw_GBps;
        double ratio;
        double intra_lat = hw_lat_us[intra][a][p];
        double inter_lat = hw_lat_us[MSIM_NCCL_HW_NET][a][p];
        double lat = base_lat_us[a][p];
        switch (a)
          {
            case MSIM_NCCL_ALGO_TREE:
              /* Tree only serves AllReduce [T4]. */
              if (!ar)
                continue;
              busbw *= 0.92;
              if (p == MSIM_NCCL_PROTO_LL)
                busbw = MIN (busbw / 3.8, ll_max);
              else if (p == MSIM_NCCL_PROTO_LL128)
                busbw *= nodes == 1 ? 7.0 / 9.0 : 120.0 / 128.0;
              ratio = 0.5;
              lat += 2.0 * ((double)(n / nodes - 1) * intra_lat + log2i (nodes) * inter_lat);
              break;
            case MSIM_NCCL_ALGO_RING:
              if (p == MSIM_NCCL_PROTO_LL)
                busbw = MIN (ll_max, busbw * (nodes > 1 || ar ? 1.0 / 4.0 : 1.0 / 3.0));
              else if (p == MSIM_NCCL_PROTO_LL128)
                busbw *= ppn < 2.0 ? 0.7 : 0.92;
              ratio = (double)n / nsteps;
              if (nodes > 1)
                /* Inter-node rings still post a network operation per step. */
                intra_lat
                    = MAX (intra_lat, NET_OVERHEAD_US * (p == MSIM_NCCL_PROTO_SIMPLE ? 3.0 : 1.0));
              lat += (nsteps - inter_steps) * intra_lat + inter_steps * inter_lat;
              break;
            default: /* NVLS */
              /* One node of NVSwitch-connected Hopper GPUs, Simple only;
               * across nodes NVLS needs CollNet (SHARP switches). */
              if (p != MSIM_NCCL_PROTO_SIMPLE || !c->nvls || nodes != 1 || n > NVLS_MAX_ARITY
                  || c->arch != MSIM_GPU_ARCH_HOPPER)
                continue;
              busbw = n * msim_nccl_nvls_head_GBps (n, c->nvls_port_GBps);
              ratio = 5.0 / 6.0;
              lat = intra_lat; /* NCCL overrides the base latency here */
              break;
          }
        if (p == MSIM_NCCL_PROTO_LL128 && !ll128_enabled (c))
          continue;
        if (!(busbw > 0.0))
          continue;
        model->algbw_GBps[a][p] = busbw * ratio;
        model->latency_us[a][p] = lat;
      }
}

double
msim_nccl_model_time_us (const MsimNcclModel *model, MsimNcclAlgo algo, MsimNcclProto proto,
                         double bytes)
{
  g_return_val_if_fail (algo < MSIM_NCCL_N_ALGOS && proto < MSIM_NCCL_N_PROTOS, -1.0);
  double bw = model->algbw_GBps[algo][proto];
  double lat = model->latency_us[algo][proto];
  if (!(bw > 0.0))
    return -1.0;
  guint log_size = log2i ((guint64)MAX (bytes, 0.0) >> 6);
  if (algo == MSIM_NCCL_ALGO_TREE && log_size < TREE_CORRECTION_SIZES)
    bw *= tree_correction[proto][log_size];
  const MsimNcclComm *c = &model->comm;
  if (algo == MSIM_NCCL_ALGO_RING && proto == MSIM_NCCL_PROTO_SIMPLE && c->n_nodes > 1
      && c->func == MSIM_NCCL_FUNC_ALLREDUCE
      && bytes / ((double)PLATEAU_CHANNELS * c->n_ranks) >= 64.0)
    lat *= c->arch == MSIM_GPU_ARCH_VOLTA ? 1.9 : 1.4; /* [T5] plateau effect of rings */
  return lat + bytes / (1e3 * bw);
}

gboolean
msim_nccl_model_select (const MsimNcclModel *model, double bytes, guint algo_mask, guint proto_mask,
                        MsimNcclAlgo *algo, MsimNcclProto *proto, double *time_us)
{
  double best = -1.0;
  int ba = -1, bp = -1;
  for (int a = 0; a < MSIM_NCCL_N_ALGOS; a++)
    for (int p = 0; p < MSIM_NCCL_N_PROTOS; p++)
      {
        if (!(algo_mask & (1u << a)) || !(proto_mask & (1u << p)))
          continue;
        double t = msim_nccl_model_time_us (model, (MsimNcclAlgo)a, (MsimNcclProto)p, bytes);
        if (t >= 0.0 && (best < 0.0 || t < best))
          {
            best = t;
            ba = a;
            bp = p;
          }
      }
  if (ba < 0)
    return FALSE;
  *algo = (MsimNcclAlgo)ba;
  *proto = (MsimNcclProto)bp;
  if (time_us)
    *time_us = best;
  return TRUE;
}

double
msim_nccl_base_latency_us (MsimNcclAlgo algo, MsimNcclProto proto)
{
  g_return_val_if_fail (algo < MSIM_NCCL_N_ALGOS && proto < MSIM_NCCL_N_PROTOS, 0.0);
  return base_lat_us[algo][proto];
}

double
msim_nccl_hw_latency_us (MsimNcclHw hw, MsimNcclAlgo algo, MsimNcclProto proto)
{
  g_return_val_if_fail (
      hw < MSIM_NCCL_N_HW && algo < MSIM_NCCL_N_ALGOS && proto < MSIM_NCCL_N_PROTOS, 0.0);
  return hw_lat_us[hw][algo][proto];
}

double
msim_nccl_model_ring_fraction (const MsimNcclModel *model, MsimNcclProto proto)
{
  g_return_val_if_fail (proto < MSIM_NCCL_N_PROTOS, 0.0);
  double simple = model->algbw_GBps[MSIM_NCCL_ALGO_RING][MSIM_NCCL_PROTO_SIMPLE];
  return simple > 0.0 ? model->algbw_GBps[MSIM_NCCL_ALGO_RING][proto] / simple : 0.0;
}

const char *
msim_nccl_algo_name (MsimNcclAlgo algo)
{
  return algo < MSIM_NCCL_N_ALGOS ? algo_names[algo] : "?";
}

const char *
msim_nccl_proto_name (MsimNcclProto proto)
{
  return proto < MSIM_NCCL_N_PROTOS ? proto_names[proto] : "?";
}

/* Index of @name among @n @names, case-insensitive, or -1. */
static int
name_index (const char *const *names, int n, const char *name)
{
  for (int i = 0; i < n; i++)
    if (name && g_ascii_strcasecmp (name, names[i]) == 0)
      return i;
  return -1;
}

int
msim_nccl_algo_from_name (const char *name)
{
  return name_index (algo_names, MSIM_NCCL_N_ALGOS, name);
}

int
msim_nccl_proto_from_name (const char *name)
{
  return name_index (proto_names, MSIM_NCCL_N_PROTOS, name);
}

/* 32-channel pool, 32 per peer: an 8 x H100 NVSwitch node (24 collective
 * channels, rounded up to a power of two; NCCL's INIT log on p5.48xlarge). */
#define P2P_POOL     MSIM_NCCL_P2P_POOL
#define P2P_PER_PEER 32u

guint
msim_nccl_p2p_channels_min (guint n_ranks)
{
  guint n_min = P2P_PER_PEER;
  while (n_min * MAX (n_ranks, 1u) > P2P_POOL && n_min > 1)
    n_min /= 2;
  return n_min;
}

guint
msim_nccl_p2p_channels (double bytes, guint n_ranks)
{
  if (!(bytes > 0.0))
    return 0;
  const double min_part = MSIM_NCCL_P2P_CHUNK_BYTES / 8.0, max_part = MSIM_NCCL_P2P_CHUNK_BYTES * 32.0;
  guint n_min = msim_nccl_p2p_channels_min (n_ranks);
  guint nch = (guint)MIN ((double)n_min, ceil (bytes / min_part));
  double part = MAX (min_part, ceil (bytes / nch));
  while (part > max_part && nch <= P2P_PER_PEER / 2)
    {
      nch *= 2;
      part = ceil (bytes / nch);
    }
  return nch;
}

double
msim_nccl_p2p_channel_GBps (MsimGpuArch arch)
{
  /* 4 channels x b = 32 MiB / (818 - 421 us): nccl-tests sendrecv_perf,
   * 8 x H100, NCCL 2.28.7 / 2.29.2 (xxrjun/nccl-tests-cluster). */
  return arch == MSIM_GPU_ARCH_HOPPER ? 33554432.0 / 4.0 / 397e-6 / 1e9 : 0.0;
}

double
msim_nccl_p2p_drain_s (double bytes, guint n_ranks, MsimGpuArch arch)
{
  double rate = msim_nccl_p2p_channel_GBps (arch);
  guint nch = msim_nccl_p2p_channels (bytes, n_ranks);
  if (rate <= 0.0 || nch == 0)
    return 0.0;
  double chunk = MIN ((double)MSIM_NCCL_P2P_CHUNK_BYTES, ceil (bytes / nch));
  return chunk / (rate * 1e9);
}
