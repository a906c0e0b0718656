#pragma once

#include <glib.h>

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
 *  - Send/recv: one flow.  Barrier: a zero-byte AllReduce.
 * Every flow pays the route latency of the topology plus the per-step
 * protocol latency; every call pays a base latency once.
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
  guint streams_per_gpu;     /* stream of GPU g's communication: g * streams_per_gpu + comm_stream */
  guint comm_stream;
} MsimCommParams;

/* NCCL-derived defaults; see collective.c for the sources. */
void msim_comm_params_init (MsimCommParams *params);

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

/* Ring collectives; @bytes is the per-rank buffer size in nccl-tests terms
 * (AllGather: the gathered output; ReduceScatter: the input). */
MsimColl *msim_coll_ring (MsimComm *comm, MsimCollKind kind, const guint *gpus, guint n,
                          double bytes, const char *name, guint category, gint64 arg);

MsimColl *msim_coll_sendrecv (MsimComm *comm, guint src_gpu, guint dst_gpu, double bytes,
                              const char *name, guint category, gint64 arg);

/* The task of rank @rank (transfer none): set its dependencies, submit it. */
MsimTask *msim_coll_task (MsimColl *coll, guint rank);
guint msim_coll_n_ranks (const MsimColl *coll);

gboolean msim_coll_done (const MsimColl *coll);
MsimTime msim_coll_start (const MsimColl *coll); /* first rank's start */
MsimTime msim_coll_end (const MsimColl *coll);   /* last rank's end */
double msim_coll_bytes_moved (const MsimColl *coll); /* over the network */
double msim_coll_size (const MsimColl *coll);        /* S of nccl-tests */
double msim_coll_algbw (const MsimColl *coll);       /* bytes/s */
double msim_coll_busbw (const MsimColl *coll);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimComm, msim_comm_free)

G_END_DECLS
