#pragma once

#include <glib.h>

#include "topology.h"

G_BEGIN_DECLS

/*
 * NCCL's algorithm and protocol selection (its "tuning model").
 *
 * For every collective call NCCL predicts, for each algorithm (Tree, Ring,
 * NVLS) and protocol (LL, LL128, Simple) it may use, a time
 *     t(a, p, S) = latency(a, p) + S / algbw(a, p)
 * and runs the fastest.  latency is a per-call base latency plus a per-step
 * hardware latency times the algorithm's number of steps; algbw is the
 * bandwidth of the algorithm's graph reduced by the protocol's overhead
 * (LL carries 4 bytes of data per 8-byte line, LL128 120 of every 128).
 * This module reproduces that model with NCCL's published constants: the
 * values of src/graph/tuning.cc at commit b6475625 of NVIDIA/nccl (a 2.20
 * release by its contents: MNNVL support, NVLS latency 23 us, which later
 * releases raised to 25), the generation PyTorch 2.2-2.3 ship and so
 * plausibly what the Vidur profiles in experiments/fidelity ran (Vidur does
 * not record it); each constant in nccl-tuning.c names its source.  sim/collective.c uses it to choose, and then to time,
 * the algorithm and protocol of AllGather, ReduceScatter and AllReduce.
 *
 * What is left out, and why: NCCL's per-channel caps (LL128 and Tree
 * bandwidth per channel times the channel count) need the channel count of
 * NCCL's graph search, which moesim does not run; on NVSwitch systems they
 * do not bind (16+ channels of 36.7 GB/s on H100).  The CPU vendor is taken
 * to be Intel (NCCL's multi-node LL ceiling and network overhead differ on
 * AMD).  CollNet and NVLS-Tree (in-network reduction across nodes) need
 * SHARP switches moesim's topologies do not describe.
 */

typedef enum
{
  MSIM_NCCL_ALGO_TREE,
  MSIM_NCCL_ALGO_RING,
  MSIM_NCCL_ALGO_NVLS,
  MSIM_NCCL_N_ALGOS
} MsimNcclAlgo;

typedef enum
{
  MSIM_NCCL_PROTO_LL,
  MSIM_NCCL_PROTO_LL128,
  MSIM_NCCL_PROTO_SIMPLE,
  MSIM_NCCL_N_PROTOS
} MsimNcclProto;

/* The hardware class of a step, NCCL's NCCL_HW_*: it indexes the per-step
 * latencies. */
typedef enum
{
  MSIM_NCCL_HW_NVLINK,
  MSIM_NCCL_HW_PCI,
  MSIM_NCCL_HW_NET,
  MSIM_NCCL_N_HW
} MsimNcclHw;

typedef enum
{
  MSIM_NCCL_FUNC_ALLGATHER,
  MSIM_NCCL_FUNC_REDUCESCATTER,
  MSIM_NCCL_FUNC_ALLREDUCE,
} MsimNcclFunc;

/* Masks of algorithms / protocols (1 << MSIM_NCCL_ALGO_x), as NCCL_ALGO and
 * NCCL_PROTO restrict them. */
#define MSIM_NCCL_ALGOS_ALL  ((1u << MSIM_NCCL_N_ALGOS) - 1)
#define MSIM_NCCL_PROTOS_ALL ((1u << MSIM_NCCL_N_PROTOS) - 1)

/* What NCCL's tuner knows of a communicator. */
typedef struct
{
  MsimNcclFunc func;
  guint n_ranks;
  guint n_nodes;
  MsimGpuArch arch;
  MsimNcclHw intra_hw; /* NVLINK or PCI: how GPUs of one node reach each other */
  /* Bus bandwidth of the ring graph (nChannels x bw in NCCL), GB/s: what
   * each rank of a Simple ring moves per second. */
  double ring_busbw_GBps;
  /* NVLink SHARP usable (single node, NVSwitch gen 3); then the bandwidth
   * of each GPU's NVLink port to the switch fabric, GB/s, per direction. */
  gboolean nvls;
  double nvls_port_GBps;
} MsimNcclComm;

/* NCCL's comm->latencies / comm->bandwidths for one function: latency in
 * microseconds and algorithm bandwidth in GB/s (1e9 B/s) per algorithm and
 * protocol; algbw_GBps 0 = not available. */
typedef struct
{
  MsimNcclComm comm;
  double latency_us[MSIM_NCCL_N_ALGOS][MSIM_NCCL_N_PROTOS];
  double algbw_GBps[MSIM_NCCL_N_ALGOS][MSIM_NCCL_N_PROTOS];
} MsimNcclModel;

/* Fills @model for @comm (ncclTopoTuneModel).  O(1). */
void msim_nccl_model_init (MsimNcclModel *model, const MsimNcclComm *comm);

/* Predicted time in microseconds of @bytes (the per-rank buffer size as
 * nccl-tests counts it) with @algo / @proto (ncclTopoGetAlgoTime), or -1
 * when the combination is not available. */
double msim_nccl_model_time_us (const MsimNcclModel *model, MsimNcclAlgo algo, MsimNcclProto proto,
                                double bytes);

/* The fastest available combination for @bytes among the algorithms in
 * @algo_mask and protocols in @proto_mask; ties go to the lower algorithm
 * then protocol index, as NCCL's loop does.  FALSE when none is available
 * (the outputs are then untouched).  @time_us may be NULL. */
gboolean msim_nccl_model_select (const MsimNcclModel *model, double bytes, guint algo_mask,
                                 guint proto_mask, MsimNcclAlgo *algo, MsimNcclProto *proto,
                                 double *time_us);

/* NCCL's constants, for the simulation and the tests: the per-call base
 * latency and the per-step hardware latency of an algorithm and protocol,
 * in microseconds. */
double msim_nccl_base_latency_us (MsimNcclAlgo algo, MsimNcclProto proto);
double msim_nccl_hw_latency_us (MsimNcclHw hw, MsimNcclAlgo algo, MsimNcclProto proto);

/* The share of the Simple ring's bandwidth that @proto reaches on the ring
 * of @model (LL: 1/4 or 1/3 capped by NCCL's LL ceiling; LL128: 0.92 or
 * 0.7), or 0 when @proto is not available. */
double msim_nccl_model_ring_fraction (const MsimNcclModel *model, MsimNcclProto proto);

/* NVLS: the bandwidth each NVLS channel ("head") gets in NCCL's graph
 * search, GB/s (0 when NVLS is not available). */
double msim_nccl_nvls_head_GBps (guint n_ranks, double port_GBps);

const char *msim_nccl_algo_name (MsimNcclAlgo algo);    /* "Tree", "Ring", "NVLS" */
const char *msim_nccl_proto_name (MsimNcclProto proto); /* "LL", "LL128", "Simple" */
/* Case-insensitive name to index, -1 if unknown. */
int msim_nccl_algo_from_name (const char *name);
int msim_nccl_proto_from_name (const char *name);

/*
 * NCCL's send/recv (AllToAll, send/recv) between GPUs of one node, which
 * its tuning model does not cover (experiments/fidelity/p2p-model.md has
 * the derivation).  NCCL splits each send to a peer over channels, one
 * thread block each: it starts from the per-peer maximum of a 32-channel
 * pool halved until channels x ranks fit the pool (4 on 8 ranks, 16 on 2),
 * takes no more than one channel per 64 KiB, and doubles the count while a
 * channel's part would exceed 32 chunks of 512 KiB (src/enqueue.cc,
 * scheduleP2pTasksToPlan and addP2pToPlan; P2P_NVL_CHUNKSIZE and the
 * "32 p2p channels, 32 p2p channels per peer" of an 8 x H100 node,
 * src/graph/paths.cc).  A chunk is written into the peer's buffer and then
 * copied out by the receiver, so a transfer ends one chunk's copy after
 * its last byte crossed the link: the pipeline's drain.
 */

/* NCCL's NVLink p2p chunk, bytes (P2P_NVL_CHUNKSIZE default). */
#define MSIM_NCCL_P2P_CHUNK_BYTES (512u * 1024u)

/* NCCL's p2p channel pool on one node, channels (thread blocks) per GPU. */
#define MSIM_NCCL_P2P_POOL 32u

/* Channels NCCL starts a send to one peer from on a one-node communicator
 * of @n_ranks ranks: the pool's share of one peer (4 on 8 ranks). */
guint msim_nccl_p2p_channels_min (guint n_ranks);

/* Channels NCCL gives one send of @bytes to one peer on a one-node
 * communicator of @n_ranks ranks (>= 1; 0 for 0 bytes). */
guint msim_nccl_p2p_channels (double bytes, guint n_ranks);

/* One channel's copy rate in GB/s for @arch, or 0 where moesim has no
 * measurement (then no drain is charged).  Hopper: 21.1, from nccl-tests
 * sendrecv_perf on 8 x H100, where 4 channels move 32 MiB more in 397 us
 * more between 32 and 64 MiB per rank (fidelity cases h100x8-sendrecv-32M
 * and -64M). */
double msim_nccl_p2p_channel_GBps (MsimGpuArch arch);

/* The drain of a send of @bytes on a one-node communicator of @n_ranks
 * ranks: its last chunk (a channel's part when smaller than a chunk)
 * copied at one channel's rate, in seconds; 0 where the rate is unknown. */
double msim_nccl_p2p_drain_s (double bytes, guint n_ranks, MsimGpuArch arch);

G_END_DECLS
