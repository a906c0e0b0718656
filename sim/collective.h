#pragma once

#include <glib.h>

#include "nccl-tuning.h"
#include "network.h"
#include "tasks.h"
#include "topology.h"

G_BEGIN_DECLS

/*
 * Collectives as flows on the network model plus protocol latencies.
 *
 * A collective involves n ranks (GPUs).  Each rank's part is an external
 * task on that GPU's communication stream (msim_coll_task): the caller
 * makes it depend on whatever produces the data and submits it.  Data moves
 * between two ranks once both have started their part (NCCL's kernels on
 * the two GPUs must both be running), and a rank's part ends when all of
 * its sends and receives have completed.
 *
 * Algorithms:
 *  - AllToAllv direct: one flow per ordered pair with bytes, all at once
 *    (or at most `window` peers in flight per sender, in the order
 *    i+1, i+2, ... as NCCL's grouped send/recv loops do).
 *  - AllToAllv hierarchical (PXN / DeepEP style): a transfer to another host
 *    first crosses NVLink to the GPU of the source host with the
 *    destination's local index, which then sends everything it gathered for
 *    that destination over its own NIC rail in one flow.  Transfers within
 *    a host go direct.
 *  - AllGather, ReduceScatter: ring, n-1 steps of bytes/n per rank; a rank
 *    forwards step s once it has received step s-1.
 *  - AllReduce: ring ReduceScatter then ring AllGather (2(n-1) steps).
 *  - Rings run as `ring_channels` parallel channels, each carrying an equal
 *    share of the buffer, as NCCL's channels do.  On one host every channel
 *    crosses the same links, so channels change nothing but the flow
 *    count; across hosts each channel enters and leaves every host through
 *    a different local GPU (and so through a different NIC rail): host k
 *    visits its GPUs from local index c upwards when k is even and from
 *    c - 1 downwards when k is odd, so channel c leaves host 0 from local
 *    GPU c - 1 and enters host 1 at the same local index, on the same
 *    rail.  With one channel per GPU of a host, every NIC carries one
 *    channel each way, which is how NCCL reaches the sum of the NICs'
 *    bandwidth on rail-optimised DGX clusters.
 *  - Send/recv: one flow.  Barrier: a zero-byte AllReduce.
 * Every flow pays the route latency of the topology plus the per-step
 * protocol latency; every call pays a base latency once.
 *
 * NCCL's send/recv channels and drain (nccl_tuning): an AllToAllv or
 * send/recv transfer between GPUs of one host over NVLink only ends
 * msim_nccl_p2p_drain_s() after its last byte, the receiver's copy-out of
 * NCCL's last chunk; on a network with channel links
 * (msim_comm_network_links) it also goes as NCCL's channels, one sub-flow
 * each through a channel link of the sender.  Neither applies where moesim
 * has no channel rate for the GPU generation
 * (experiments/fidelity/p2p-model.md).
 *
 * NCCL's algorithm and protocol choice (nccl_tuning, sim/nccl-tuning.h).
 * Without it (the default of msim_comm_params_init, so that existing
 * results do not move) AllGather, ReduceScatter and AllReduce are rings at
 * the full link rate that pay base_latency_s per call and the route's
 * latency per step.  With it, each call first evaluates NCCL's tuning
 * model for its size, ranks, nodes and links and runs what NCCL would run:
 *  - Ring with protocol LL, LL128 or Simple.  The call pays NCCL's
 *    baseLat[Ring][proto]; every ring step pays the route's latency plus
 *    hwLat[hw][Ring][proto] - hwLat[hw][Ring][LL], the protocol's latency
 *    above the hardware's (the presets' link latencies are NCCL's LL
 *    hwLat), with hw the step's class (NVLink, PCI, network); and each
 *    step's flow carries bytes / f, where f is the protocol's share of the
 *    Simple ring's bandwidth in NCCL's model (LL 1/4 or 1/3 capped by
 *    NCCL's LL ceiling, LL128 0.92).  On a uniform ring the time is then
 *    NCCL's own prediction, latency + S / algbw.
 *  - NVLS (NVLink SHARP, topology key nvls): every rank sends one flow up
 *    its NVLink port to the NVSwitch and receives one flow down, both at
 *    once and of S x port / algbw(NVLS) bytes, so that a port at its
 *    effective capacity takes exactly NCCL's S / algbw; the call pays
 *    NCCL's NVLS latency (hwLat[NVLink][NVLS][Simple]) plus the port's
 *    link latency.
 * Tree is part of the model (it decides nothing on one node, where a ring
 * always predicts faster) but is not simulated: with nccl_algos including
 * it, a call NCCL would run as Tree runs as the best simulated algorithm
 * and msim_coll_nccl_choice() reports NCCL's own pick.
 *
 * Send/recv-based transfers (AllToAllv, send/recv) whose route is NVLink
 * only move bytes / p2p_nvlink_efficiency on the wire: NCCL's send/recv
 * kernels reach a smaller share of NVLink than its ring kernels (see
 * MSIM_NCCL_P2P_NVLINK_EFFICIENCY).  msim_coll_bytes_moved() still counts
 * the payload; the network's link byte counters count the wire bytes.
 *
 * Reported figures follow nccl-tests (doc/PERFORMANCE.md): algbw = S / t
 * with S the per-rank buffer size (AllReduce: the buffer; AllGather: the
 * gathered output; AllToAll: the bytes a rank sends, its own block
 * included), and busbw = algbw x 2(n-1)/n for AllReduce and x (n-1)/n for
 * AllGather, ReduceScatter and AllToAll.
 */

typedef struct
{
  double base_latency_s;     /* once per collective call */
  double step_latency_s;     /* added to every flow's route latency */
  guint a2a_window;          /* max peers in flight per sender, 0 = all */
  gboolean a2a_hierarchical; /* AllToAllv algorithm */
  guint streams_per_gpu; /* stream of GPU g's communication: g * streams_per_gpu + comm_stream */
  guint comm_stream;
  /* Parallel rings of AllGather/ReduceScatter/AllReduce.  0 = automatic:
   * one ring when every rank is on one host, else one per GPU of the
   * largest host (one per NIC rail).  1 = a single ring in the order of
   * the gpus argument.  At most MSIM_COMM_MAX_CHANNELS. */
  guint ring_channels;
  /* Fraction of a link's (effective) capacity that send/recv transfers
   * reach on NVLink-only routes, in (0, 1]; 1 = the same as rings. */
  double p2p_nvlink_efficiency;
  /* AllToAllv flow splitting: each transfer as this many sub-flows hashed
   * independently by ECMP (1 = none), or, with a2a_spray, evenly over all
   * equal-cost paths (ideal spraying). */
  guint a2a_subflows;
  gboolean a2a_spray;
  /* NCCL's algorithm/protocol choice for AllGather, ReduceScatter and
   * AllReduce, and its send/recv drain (see above).  FALSE: rings with the
   * legacy latencies, no drain. */
  gboolean nccl_tuning;
  /* With nccl_tuning: the algorithms (1 << MsimNcclAlgo) and protocols
   * (1 << MsimNcclProto) to choose from, as NCCL_ALGO / NCCL_PROTO restrict
   * NCCL.  Default: Ring and NVLS (the simulated ones), every protocol. */
  guint nccl_algos;
  guint nccl_protos;
} MsimCommParams;

#define MSIM_COMM_MAX_CHANNELS 64

/*
 * Calibrated NCCL constants (see collective.c for the derivations):
 * MSIM_NCCL_BASE_LATENCY_S is the fixed cost of a call (tuning.cc
 * baseLat[Ring][Simple]); MSIM_NCCL_P2P_NVLINK_EFFICIENCY is what NCCL's
 * send/recv reaches on NVLink relative to its rings (nccl-tests #331).
 */
#define MSIM_NCCL_BASE_LATENCY_S        8.4e-6
#define MSIM_NCCL_P2P_NVLINK_EFFICIENCY 0.94

/* NCCL-derived defaults; see collective.c for the sources.  The send/recv
 * efficiency starts at 1 (ideal) so that existing results do not move;
 * callers that want the calibrated value set p2p_nvlink_efficiency =
 * MSIM_NCCL_P2P_NVLINK_EFFICIENCY, as `moesim bench collective` and
 * `moesim fidelity` do. */
void msim_comm_params_init (MsimCommParams *params);

/* Fills @capacity_Bps[0 .. n_links) with the capacities a network model of
 * @topo should use: the links' effective capacities (line rate x
 * efficiency) when @effective, else their line rates.  O(links). */
void msim_comm_link_capacities (const MsimTopology *topo, gboolean effective, double *capacity_Bps);

/* The links a network for the collectives of @params on @topo should have,
 * returned as a count, with their capacities in @capacity_Bps (may be NULL
 * to count; else room for the count): the topology's links
 * (msim_comm_link_capacities), then, when @effective and @params use
 * NCCL's models on a GPU generation with a known p2p channel rate,
 * MSIM_NCCL_P2P_POOL channel links per GPU, each one of NCCL's send/recv
 * channels (a thread block), of that rate in payload bytes.  A comm on a
 * network with these links sends each one-host NVLink transfer of an
 * AllToAllv or send/recv as NCCL's channels for it, one sub-flow per
 * channel through the sender's channel link, which caps a lone send at
 * channels x rate (see experiments/fidelity/p2p-model.md).  Max-min
 * networks only: the analytical mode, which shares nothing, sends each
 * transfer as one flow (with the drain, without the cap). */
guint msim_comm_network_links (const MsimTopology *topo, const MsimCommParams *params,
                               gboolean effective, double *capacity_Bps);

typedef struct _MsimComm MsimComm;
typedef struct _MsimColl MsimColl;

typedef enum
{
  MSIM_COLL_ALLTOALLV,
  MSIM_COLL_ALLGATHER,
  MSIM_COLL_REDUCESCATTER,
  MSIM_COLL_ALLREDUCE,
  MSIM_COLL_SENDRECV,
} MsimCollKind;

/* All arguments (transfer none) must outlive the MsimComm.  The collectives
 * it creates are freed with it. */
MsimComm *msim_comm_new (MsimTopology *topo, MsimNetwork *net, MsimTasks *tasks,
                         const MsimCommParams *params);
void msim_comm_free (MsimComm *comm);

/* AllToAllv among @gpus[0..n): @bytes[i * n + j] goes from rank i to rank j
 * (the diagonal stays local and moves nothing).  @name and @arg label the
 * ranks' tasks. */
MsimColl *msim_coll_alltoallv (MsimComm *comm, const guint *gpus, guint n, const double *bytes,
                               const char *name, guint category, gint64 arg);

/* AllGather, ReduceScatter, AllReduce; @bytes is the per-rank buffer size in
 * nccl-tests terms (AllGather: the gathered output; ReduceScatter: the
 * input).  A ring, or with nccl_tuning whatever NCCL's model picks among
 * the simulated algorithms (see msim_coll_nccl_algo()).  Planning is
 * O(channels x n x route length). */
MsimColl *msim_coll_ring (MsimComm *comm, MsimCollKind kind, const guint *gpus, guint n,
                          double bytes, const char *name, guint category, gint64 arg);

MsimColl *msim_coll_sendrecv (MsimComm *comm, guint src_gpu, guint dst_gpu, double bytes,
                              const char *name, guint category, gint64 arg);

/* The task of rank @rank (transfer none): set its dependencies, submit it. */
MsimTask *msim_coll_task (MsimColl *coll, guint rank);
guint msim_coll_n_ranks (const MsimColl *coll);

gboolean msim_coll_done (const MsimColl *coll);
MsimTime msim_coll_start (const MsimColl *coll);     /* first rank's start */
MsimTime msim_coll_end (const MsimColl *coll);       /* last rank's end */
double msim_coll_bytes_moved (const MsimColl *coll); /* over the network */
/* The longest NCCL p2p drain one of its transfers paid after its last byte
 * (0 if none): what a timing of the sending rank alone leaves out. */
double msim_coll_drain_s (const MsimColl *coll);
double msim_coll_size (const MsimColl *coll);        /* S of nccl-tests */
double msim_coll_algbw (const MsimColl *coll);       /* bytes/s */
double msim_coll_busbw (const MsimColl *coll);

/* Algorithm and protocol the collective runs: for AllGather, ReduceScatter
 * and AllReduce the NCCL algorithm (Ring without nccl_tuning) and protocol
 * (Simple without nccl_tuning); for AllToAll and send/recv
 * MSIM_NCCL_N_ALGOS and MSIM_NCCL_PROTO_SIMPLE (NCCL's send/recv is not
 * tuned by the model). */
MsimNcclAlgo msim_coll_nccl_algo (const MsimColl *coll);
MsimNcclProto msim_coll_nccl_proto (const MsimColl *coll);
/* With nccl_tuning: NCCL's predicted time of the chosen combination in
 * seconds, and NCCL's unrestricted choice (every algorithm of the model,
 * Tree included, every protocol) with its predicted time; FALSE without
 * nccl_tuning or for AllToAll / send/recv.  Any output may be NULL. */
gboolean msim_coll_nccl_prediction (const MsimColl *coll, double *predicted_s);
gboolean msim_coll_nccl_choice (const MsimColl *coll, MsimNcclAlgo *algo, MsimNcclProto *proto,
                                double *predicted_s);
/* "Ring/LL128", "NVLS/Simple", "direct", "hierarchical", "p2p". */
const char *msim_coll_algorithm_label (const MsimColl *coll);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimComm, msim_comm_free)

G_END_DECLS
