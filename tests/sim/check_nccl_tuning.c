/* NCCL's tuning model (sim/nccl-tuning.c): latencies and bandwidths of each
 * algorithm and protocol as closed forms of NCCL 2.20's tuning.cc, the
 * sizes where the choice switches, and the choice being the minimum. */
#include <math.h>

#include "msim-check.h"
#include "nccl-tuning.h"

/* One 8-GPU H100 node: NVLink, ring bus bandwidth 18 x 20.6 GB/s. */
static MsimNcclComm
h100 (MsimNcclFunc func, guint n)
{
  MsimNcclComm c = { 0 };
  c.func = func;
  c.n_ranks = n;
  c.n_nodes = 1;
  c.arch = MSIM_GPU_ARCH_HOPPER;
  c.intra_hw = MSIM_NCCL_HW_NVLINK;
  c.ring_busbw_GBps = 370.8;
  return c;
}

START_TEST (test_ring_allreduce_constants)
{
  /* 8 ranks, 14 steps: latency = baseLat + 14 x hwLat[NVLink][Ring];
   * algbw = busbw x 8 / 14 with LL at min(87.7, busbw / 4), LL128 at
   * 0.92 busbw. */
  MsimNcclComm c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  MsimNcclModel m;
  msim_nccl_model_init (&m, &c);
  const int R = MSIM_NCCL_ALGO_RING;
  msim_ck_assert_near (m.latency_us[R][MSIM_NCCL_PROTO_LL], 6.6 + 14 * 0.6, 1e-12);
  msim_ck_assert_near (m.latency_us[R][MSIM_NCCL_PROTO_LL128], 14.0 + 14 * 1.9, 1e-12);
  msim_ck_assert_near (m.latency_us[R][MSIM_NCCL_PROTO_SIMPLE], 8.4 + 14 * 3.4, 1e-12);
  msim_ck_assert_near (m.algbw_GBps[R][MSIM_NCCL_PROTO_LL], 87.7 * 8 / 14, 1e-12);
  msim_ck_assert_near (m.algbw_GBps[R][MSIM_NCCL_PROTO_LL128], 370.8 * 0.92 * 8 / 14, 1e-12);
  msim_ck_assert_near (m.algbw_GBps[R][MSIM_NCCL_PROTO_SIMPLE], 370.8 * 8 / 14, 1e-12);
  /* time = latency + bytes / (1e3 x GB/s) us */
  msim_ck_assert_near (msim_nccl_model_time_us (&m, R, MSIM_NCCL_PROTO_SIMPLE, 1e6),
                       56.0 + 1e6 / (1e3 * 370.8 * 8 / 14), 1e-12);
  /* No NVLS without the topology's nvls; Tree is there (AllReduce). */
  ck_assert (m.algbw_GBps[MSIM_NCCL_ALGO_NVLS][MSIM_NCCL_PROTO_SIMPLE] == 0.0);
  ck_assert (msim_nccl_model_time_us (&m, MSIM_NCCL_ALGO_NVLS, MSIM_NCCL_PROTO_SIMPLE, 1e6) < 0);
  ck_assert (m.algbw_GBps[MSIM_NCCL_ALGO_TREE][MSIM_NCCL_PROTO_SIMPLE] > 0.0);
}
END_TEST

START_TEST (test_protocol_switch_sizes)
{
  /* The choice switches where two predicted lines cross:
   * S = (L_b - L_a) / (1 / bw_a - 1 / bw_b) (us x GB/s x 1e3 = bytes).
   * 8-rank H100 AllReduce: LL up to ~1.73 MB, LL128 up to ~37.5 MB, then
   * Simple (Vidur's profile steps up at 2 MiB, where LL gives way). */
  MsimNcclComm c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  MsimNcclModel m;
  msim_nccl_model_init (&m, &c);
  const int R = MSIM_NCCL_ALGO_RING;
  const MsimNcclProto seq[] = { MSIM_NCCL_PROTO_LL, MSIM_NCCL_PROTO_LL128, MSIM_NCCL_PROTO_SIMPLE };
  const double expect_bytes[] = { 1.7275e6, 37.525e6 };
  guint ring_only = 1u << R;
  for (guint i = 0; i < 2; i++)
    {
      MsimNcclProto a = seq[i], b = seq[i + 1];
      double s = (m.latency_us[R][b] - m.latency_us[R][a])
                 / (1.0 / m.algbw_GBps[R][a] - 1.0 / m.algbw_GBps[R][b]) * 1e3;
      msim_ck_assert_near (s, expect_bytes[i], 2e-3);
      MsimNcclAlgo algo;
      MsimNcclProto proto;
      ck_assert (msim_nccl_model_select (&m, s * (1 - 1e-6), ring_only, MSIM_NCCL_PROTOS_ALL, &algo,
                                         &proto, NULL));
      ck_assert_int_eq (algo, R);
      ck_assert_int_eq (proto, a);
      ck_assert (msim_nccl_model_select (&m, s * (1 + 1e-6), ring_only, MSIM_NCCL_PROTOS_ALL, &algo,
                                         &proto, NULL));
      ck_assert_int_eq (proto, b);
    }
  /* 4 ranks: LL128 gives way to Simple near 9.67 MB, so 16 MiB is Simple. */
  MsimNcclComm c4 = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 4);
  msim_nccl_model_init (&m, &c4);
  double s4 = (m.latency_us[R][MSIM_NCCL_PROTO_SIMPLE] - m.latency_us[R][MSIM_NCCL_PROTO_LL128])
              / (1.0 / m.algbw_GBps[R][MSIM_NCCL_PROTO_LL128]
                 - 1.0 / m.algbw_GBps[R][MSIM_NCCL_PROTO_SIMPLE])
              * 1e3;
  msim_ck_assert_near (s4, 9.666e6, 2e-3);
}
END_TEST

START_TEST (test_protocol_fractions)
{
  /* LL: 4 payload bytes per 8-byte line and NCCL's accounting of 1/4 for
   * AllReduce (or across nodes), 1/3 otherwise, capped at the LL ceiling;
   * LL128: 0.92, 0.7 with one GPU per node. */
  MsimNcclModel m;
  MsimNcclComm c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  c.ring_busbw_GBps = 100.0; /* below the 87.7 GB/s LL ceiling x 4 */
  msim_nccl_model_init (&m, &c);
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL), 0.25, 1e-12);
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL128), 0.92, 1e-12);
  ck_assert (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_SIMPLE) == 1.0);
  c.func = MSIM_NCCL_FUNC_ALLGATHER;
  msim_nccl_model_init (&m, &c);
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL), 1.0 / 3.0, 1e-12);
  /* The ceiling binds on a full H100 port: 87.7 of 370.8. */
  c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  msim_nccl_model_init (&m, &c);
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL), 87.7 / 370.8, 1e-12);
  /* Across 8 nodes, one GPU each: LL128 at 0.7, LL at 1/4 (under the
   * Intel many-node ceiling of 20.4 GB/s). */
  c.n_nodes = 8;
  c.ring_busbw_GBps = 48.5;
  msim_nccl_model_init (&m, &c);
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL128), 0.7, 1e-12);
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL), 0.25, 1e-12);
  /* LL128 is off on PCIe and on GPUs of no known generation. */
  c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  c.intra_hw = MSIM_NCCL_HW_PCI;
  msim_nccl_model_init (&m, &c);
  ck_assert (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL128) == 0.0);
  c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  c.arch = MSIM_GPU_ARCH_UNKNOWN;
  msim_nccl_model_init (&m, &c);
  ck_assert (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL128) == 0.0);
  /* ... and its LL ceiling is Volta's 39 GB/s. */
  msim_ck_assert_near (msim_nccl_model_ring_fraction (&m, MSIM_NCCL_PROTO_LL), 39.0 / 370.8, 1e-12);
}
END_TEST

START_TEST (test_nvls_model)
{
  /* NCCL's NVLS graph: n heads, each at the fastest Hopper search speed s
   * with (n + 1) s within a GPU's port; busbw = n s, algbw = 5/6 of it;
   * latency hwLat[NVLink][NVLS][Simple] = 23 us, no base latency. */
  ck_assert (msim_nccl_nvls_head_GBps (8, 370.8) == 40.0);
  ck_assert (msim_nccl_nvls_head_GBps (4, 370.8) == 60.0);
  ck_assert (msim_nccl_nvls_head_GBps (8, 300.0) == 30.0);
  ck_assert (msim_nccl_nvls_head_GBps (8, 20.0) == 0.0);
  MsimNcclComm c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  c.nvls = TRUE;
  c.nvls_port_GBps = 370.8;
  MsimNcclModel m;
  msim_nccl_model_init (&m, &c);
  const int N = MSIM_NCCL_ALGO_NVLS;
  msim_ck_assert_near (m.algbw_GBps[N][MSIM_NCCL_PROTO_SIMPLE], 5.0 / 6.0 * 8 * 40.0, 1e-12);
  msim_ck_assert_near (m.latency_us[N][MSIM_NCCL_PROTO_SIMPLE], 23.0, 1e-12);
  ck_assert (m.algbw_GBps[N][MSIM_NCCL_PROTO_LL] == 0.0);
  ck_assert (m.algbw_GBps[N][MSIM_NCCL_PROTO_LL128] == 0.0);
  /* busbw as nccl-tests reports it, ~467 GB/s: S. Jeaugey's "~480". */
  msim_ck_assert_near (m.algbw_GBps[N][MSIM_NCCL_PROTO_SIMPLE] * 14 / 8, 466.67, 1e-4);
  /* With NVLS, AllReduce leaves LL for NVLS above ~0.49 MB. */
  MsimNcclAlgo algo;
  MsimNcclProto proto;
  ck_assert (msim_nccl_model_select (&m, 256e3, MSIM_NCCL_ALGOS_ALL, MSIM_NCCL_PROTOS_ALL, &algo,
                                     &proto, NULL));
  ck_assert_int_eq (algo, MSIM_NCCL_ALGO_RING);
  ck_assert_int_eq (proto, MSIM_NCCL_PROTO_LL);
  ck_assert (msim_nccl_model_select (&m, 1e6, MSIM_NCCL_ALGOS_ALL, MSIM_NCCL_PROTOS_ALL, &algo,
                                     &proto, NULL));
  ck_assert_int_eq (algo, N);
  ck_assert_int_eq (proto, MSIM_NCCL_PROTO_SIMPLE);
  /* Not on Ampere, not across nodes, not beyond 8 ranks. */
  MsimNcclComm a = c;
  a.arch = MSIM_GPU_ARCH_AMPERE;
  msim_nccl_model_init (&m, &a);
  ck_assert (m.algbw_GBps[N][MSIM_NCCL_PROTO_SIMPLE] == 0.0);
  a = c;
  a.n_nodes = 2;
  msim_nccl_model_init (&m, &a);
  ck_assert (m.algbw_GBps[N][MSIM_NCCL_PROTO_SIMPLE] == 0.0);
  a = c;
  a.n_ranks = 16;
  msim_nccl_model_init (&m, &a);
  ck_assert (m.algbw_GBps[N][MSIM_NCCL_PROTO_SIMPLE] == 0.0);
}
END_TEST

START_TEST (test_tree_multinode)
{
  /* Tree (AllReduce only): latency = baseLat + 2 ((n / nodes - 1) intra +
   * log2(nodes) net); busbw 0.92 x ring (LL: / 3.8 under the LL ceiling;
   * LL128: x 120/128 across nodes), algbw half of it, then NCCL's size
   * correction (Simple at 1 MiB: 1 MiB / 64 = 2^14, factor 0.5). */
  MsimNcclComm c = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 32);
  c.n_nodes = 4;
  MsimNcclModel m;
  msim_nccl_model_init (&m, &c);
  const int T = MSIM_NCCL_ALGO_TREE;
  msim_ck_assert_near (m.latency_us[T][MSIM_NCCL_PROTO_LL], 6.8 + 2 * (7 * 0.6 + 2 * 5.0), 1e-12);
  msim_ck_assert_near (m.latency_us[T][MSIM_NCCL_PROTO_SIMPLE], 0.0 + 2 * (7 * 28.0 + 2 * 28.0),
                       1e-12);
  msim_ck_assert_near (m.algbw_GBps[T][MSIM_NCCL_PROTO_SIMPLE], 370.8 * 0.92 * 0.5, 1e-12);
  msim_ck_assert_near (m.algbw_GBps[T][MSIM_NCCL_PROTO_LL], MIN (370.8 * 0.92 / 3.8, 20.4) * 0.5,
                       1e-12);
  msim_ck_assert_near (m.algbw_GBps[T][MSIM_NCCL_PROTO_LL128], 370.8 * 0.92 * 120 / 128 * 0.5,
                       1e-12);
  double S = 1048576.0;
  msim_ck_assert_near (msim_nccl_model_time_us (&m, T, MSIM_NCCL_PROTO_SIMPLE, S),
                       m.latency_us[T][MSIM_NCCL_PROTO_SIMPLE]
                           + S / (1e3 * m.algbw_GBps[T][MSIM_NCCL_PROTO_SIMPLE] * 0.5),
                       1e-12);
  /* Rings across nodes: 2 x nodes network steps at hwLat[NET], the rest
   * at max(hwLat[NVLink], net overhead: 1 us, 3 us for Simple). */
  const int R = MSIM_NCCL_ALGO_RING;
  msim_ck_assert_near (m.latency_us[R][MSIM_NCCL_PROTO_LL], 6.6 + (62 - 8) * 1.0 + 8 * 2.7, 1e-12);
  msim_ck_assert_near (m.latency_us[R][MSIM_NCCL_PROTO_SIMPLE], 8.4 + (62 - 8) * 3.4 + 8 * 14.0,
                       1e-12);
  /* ... and the plateau: x1.4 on Simple AllReduce latency at large sizes. */
  msim_ck_assert_near (msim_nccl_model_time_us (&m, R, MSIM_NCCL_PROTO_SIMPLE, 1e9),
                       1.4 * m.latency_us[R][MSIM_NCCL_PROTO_SIMPLE]
                           + 1e9 / (1e3 * m.algbw_GBps[R][MSIM_NCCL_PROTO_SIMPLE]),
                       1e-12);
  /* On one node a ring always beats the tree. */
  MsimNcclComm one = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  msim_nccl_model_init (&m, &one);
  for (double s = 1; s < 2e10; s *= 2)
    {
      MsimNcclAlgo algo;
      MsimNcclProto proto;
      ck_assert (msim_nccl_model_select (&m, s, MSIM_NCCL_ALGOS_ALL, MSIM_NCCL_PROTOS_ALL, &algo,
                                         &proto, NULL));
      ck_assert_int_eq (algo, MSIM_NCCL_ALGO_RING);
    }
  /* No Tree for AllGather / ReduceScatter. */
  one.func = MSIM_NCCL_FUNC_ALLGATHER;
  msim_nccl_model_init (&m, &one);
  for (int p = 0; p < MSIM_NCCL_N_PROTOS; p++)
    ck_assert (m.algbw_GBps[T][p] == 0.0);
}
END_TEST

START_TEST (test_select_is_minimum)
{
  /* Over sizes from 1 B to 16 GiB, communicators and masks: the choice is
   * available, allowed, and no allowed combination predicts less. */
  MsimNcclComm comms[6];
  comms[0] = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  comms[1] = h100 (MSIM_NCCL_FUNC_ALLGATHER, 8);
  comms[2] = h100 (MSIM_NCCL_FUNC_REDUCESCATTER, 4);
  comms[3] = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  comms[3].nvls = TRUE;
  comms[3].nvls_port_GBps = 370.8;
  comms[4] = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 64);
  comms[4].n_nodes = 8;
  comms[5] = h100 (MSIM_NCCL_FUNC_ALLREDUCE, 8);
  comms[5].arch = MSIM_GPU_ARCH_AMPERE;
  comms[5].ring_busbw_GBps = 230.0;
  const guint algo_masks[] = { MSIM_NCCL_ALGOS_ALL, 1u << MSIM_NCCL_ALGO_RING,
                               (1u << MSIM_NCCL_ALGO_RING) | (1u << MSIM_NCCL_ALGO_NVLS) };
  const guint proto_masks[] = { MSIM_NCCL_PROTOS_ALL, 1u << MSIM_NCCL_PROTO_SIMPLE,
                                (1u << MSIM_NCCL_PROTO_LL) | (1u << MSIM_NCCL_PROTO_LL128) };
  guint checked = 0;
  for (guint i = 0; i < G_N_ELEMENTS (comms); i++)
    {
      MsimNcclModel m;
      msim_nccl_model_init (&m, &comms[i]);
      for (guint am = 0; am < G_N_ELEMENTS (algo_masks); am++)
        for (guint pm = 0; pm < G_N_ELEMENTS (proto_masks); pm++)
          for (double s = 1; s <= 17179869184.0; s *= 2)
            {
              MsimNcclAlgo algo;
              MsimNcclProto proto;
              double t;
              ck_assert (msim_nccl_model_select (&m, s, algo_masks[am], proto_masks[pm], &algo,
                                                 &proto, &t));
              ck_assert (algo_masks[am] & (1u << algo));
              ck_assert (proto_masks[pm] & (1u << proto));
              ck_assert (t == msim_nccl_model_time_us (&m, algo, proto, s));
              for (int a = 0; a < MSIM_NCCL_N_ALGOS; a++)
                for (int p = 0; p < MSIM_NCCL_N_PROTOS; p++)
                  {
                    double u = msim_nccl_model_time_us (&m, a, p, s);
                    if (u >= 0 && (algo_masks[am] & (1u << a)) && (proto_masks[pm] & (1u << p)))
                      ck_assert_msg (t <= u, "%s/%s %g us beats the choice %g us at %g B",
                                     msim_nccl_algo_name (a), msim_nccl_proto_name (p), u, t, s);
                  }
              checked++;
            }
    }
  ck_assert_uint_eq (checked, 6 * 3 * 3 * 35);
  /* Nothing allowed: FALSE (NVLS only, without NVLS). */
  MsimNcclModel m;
  msim_nccl_model_init (&m, &comms[0]);
  MsimNcclAlgo algo = MSIM_NCCL_ALGO_TREE;
  MsimNcclProto proto = MSIM_NCCL_PROTO_LL;
  ck_assert (!msim_nccl_model_select (&m, 1e6, 1u << MSIM_NCCL_ALGO_NVLS, MSIM_NCCL_PROTOS_ALL,
                                      &algo, &proto, NULL));
  ck_assert_int_eq (algo, MSIM_NCCL_ALGO_TREE); /* untouched */
  /* Names. */
  ck_assert_int_eq (msim_nccl_algo_from_name ("nvls"), MSIM_NCCL_ALGO_NVLS);
  ck_assert_int_eq (msim_nccl_proto_from_name ("LL128"), MSIM_NCCL_PROTO_LL128);
  ck_assert_int_eq (msim_nccl_proto_from_name ("ll64"), -1);
}
END_TEST

/* NCCL's channels per peer for send/recv on one node (enqueue.cc): from a
 * 32-channel pool, 4 per peer on 8 ranks, 16 on 2, 32 on 1; at most one
 * per 64 KiB; doubled while a channel's part exceeds 16 MiB, up to 32. */
START_TEST (test_p2p_channels)
{
  const double KiB = 1024.0, MiB = 1048576.0;
  ck_assert_uint_eq (msim_nccl_p2p_channels (0, 8), 0);
  ck_assert_uint_eq (msim_nccl_p2p_channels (1, 8), 1);
  ck_assert_uint_eq (msim_nccl_p2p_channels (64 * KiB, 8), 1);
  ck_assert_uint_eq (msim_nccl_p2p_channels (64 * KiB + 1, 8), 2);
  ck_assert_uint_eq (msim_nccl_p2p_channels (200 * KiB, 8), 4);
  ck_assert_uint_eq (msim_nccl_p2p_channels (64 * MiB, 8), 4);       /* parts of 16 MiB */
  ck_assert_uint_eq (msim_nccl_p2p_channels (64 * MiB + 4096, 8), 8); /* one byte over */
  ck_assert_uint_eq (msim_nccl_p2p_channels (128 * MiB, 8), 8);
  ck_assert_uint_eq (msim_nccl_p2p_channels (256 * MiB, 8), 16);
  ck_assert_uint_eq (msim_nccl_p2p_channels (512 * MiB, 8), 32);
  ck_assert_uint_eq (msim_nccl_p2p_channels (16384 * MiB, 8), 32); /* the cap */
  ck_assert_uint_eq (msim_nccl_p2p_channels (8 * MiB, 2), 16);
  ck_assert_uint_eq (msim_nccl_p2p_channels (8 * MiB, 4), 8);
  ck_assert_uint_eq (msim_nccl_p2p_channels (8 * MiB, 1), 32);
  ck_assert_uint_eq (msim_nccl_p2p_channels (8 * MiB, 64), 1);

  /* The drain: one chunk (or a smaller part) at one channel's rate, 4
   * channels moving 32 MiB in 397 us on Hopper; nothing elsewhere. */
  double rate = 33554432.0 / 4.0 / 397e-6;
  msim_ck_assert_near (msim_nccl_p2p_channel_GBps (MSIM_GPU_ARCH_HOPPER), rate / 1e9, 1e-12);
  msim_ck_assert_near (msim_nccl_p2p_drain_s (8 * MiB, 8, MSIM_GPU_ARCH_HOPPER), 512 * KiB / rate,
                       1e-12);
  /* 100 KiB over 2 channels: parts of 50 KiB, smaller than a chunk. */
  msim_ck_assert_near (msim_nccl_p2p_drain_s (100 * KiB, 8, MSIM_GPU_ARCH_HOPPER), 50 * KiB / rate,
                       1e-12);
  ck_assert (msim_nccl_p2p_drain_s (8 * MiB, 8, MSIM_GPU_ARCH_AMPERE) == 0.0);
  ck_assert (msim_nccl_p2p_drain_s (0, 8, MSIM_GPU_ARCH_HOPPER) == 0.0);
}
END_TEST

static Suite *
nccl_tuning_suite (void)
{
  Suite *s = suite_create ("nccl-tuning");
  TCase *tc = tcase_create ("ring");
  tcase_add_test (tc, test_ring_allreduce_constants);
  tcase_add_test (tc, test_protocol_switch_sizes);
  tcase_add_test (tc, test_protocol_fractions);
  suite_add_tcase (s, tc);
  tc = tcase_create ("nvls");
  tcase_add_test (tc, test_nvls_model);
  suite_add_tcase (s, tc);
  tc = tcase_create ("tree");
  tcase_add_test (tc, test_tree_multinode);
  suite_add_tcase (s, tc);
  tc = tcase_create ("p2p");
  tcase_add_test (tc, test_p2p_channels);
  suite_add_tcase (s, tc);
  tc = tcase_create ("selection");
  tcase_add_test (tc, test_select_is_minimum);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (nccl_tuning_suite)
