#include <math.h>
#include <string.h>

#include "collective.h"
#include "msim-check.h"

#define S(x) ((MsimTime)llround ((x)*1e12))

typedef struct
{
  MsimTopology *topo;
  MsimEngine *engine;
  MsimNetwork *net;
  MsimTasks *tasks;
  MsimComm *comm;
} Rig;

static void
rig_init_params (Rig *r, const char *topo_text, const MsimCommParams *p, gboolean effective)
{
  GError *error = NULL;
  r->topo = msim_topology_load_data (topo_text, -1, "test-topology.ini", &error);
  ck_assert_msg (r->topo != NULL, "%s", error ? error->message : "");
  r->engine = msim_engine_new ();
  guint nl = msim_topology_n_links (r->topo);
  double *cap = g_new (double, nl);
  msim_comm_link_capacities (r->topo, effective, cap);
  r->net = msim_network_new (r->engine, nl, cap, MSIM_NETWORK_MAXMIN);
  msim_network_set_check (r->net, TRUE, FALSE);
  g_free (cap);
  r->tasks = msim_tasks_new (r->engine, 2 * msim_topology_n_gpus (r->topo));
  r->comm = msim_comm_new (r->topo, r->net, r->tasks, p);
}

static void
rig_init (Rig *r, const char *topo_text, double base_latency_s, gboolean hierarchical)
{
  MsimCommParams p;
  msim_comm_params_init (&p);
  p.base_latency_s = base_latency_s;
  p.a2a_hierarchical = hierarchical;
  rig_init_params (r, topo_text, &p, FALSE);
}

static void
rig_clear (Rig *r)
{
  msim_comm_free (r->comm);
  msim_tasks_free (r->tasks);
  msim_network_free (r->net);
  msim_engine_free (r->engine);
  msim_topology_free (r->topo);
}

static void
submit_all (MsimColl *c)
{
  for (guint i = 0; i < msim_coll_n_ranks (c); i++)
    msim_task_submit (msim_coll_task (c, i));
}

static double
total_link_bytes (Rig *r)
{
  double sum = 0.0;
  for (guint l = 0; l < msim_topology_n_links (r->topo); l++)
    sum += msim_network_link_bytes (r->net, l);
  return sum;
}

static const char *ring4 = "[topology]\nname = ring4\nbuilder = ring\ngpus = 4\n"
                           "link_bandwidth = 1e9\nlink_latency = 1e-6\n"
                           "pcie_bandwidth = 1e9\npcie_latency = 1e-6\n";

START_TEST (test_ring_allreduce_closed_form)
{
  /* 2(n-1) steps of S/n bytes at the link rate, each paying the link
   * latency, after the call's base latency. */
  Rig r;
  rig_init (&r, ring4, 5e-6, FALSE);
  guint gpus[] = { 0, 1, 2, 3 };
  double size = 8e6;
  MsimColl *c = msim_coll_ring (r.comm, MSIM_COLL_ALLREDUCE, gpus, 4, size, "allreduce", 0, -1);
  submit_all (c);
  ck_assert_int_eq (msim_engine_run (r.engine), MSIM_STEP_IDLE);
  ck_assert (msim_coll_done (c));
  MsimTime expect = S (5e-6) + 6 * (S (1e-6) + S (size / 4 / 1e9));
  ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c), expect);
  /* busbw = algbw x 2(n-1)/n. */
  double algbw = size / msim_time_to_seconds (expect);
  msim_ck_assert_near (msim_coll_algbw (c), algbw, 1e-12);
  msim_ck_assert_near (msim_coll_busbw (c), algbw * 1.5, 1e-12);
  /* Each of 6 steps moves 4 chunks over one link each. */
  msim_ck_assert_near (total_link_bytes (&r), 6 * 4 * size / 4, 1e-12);
  ck_assert_int_eq (msim_tasks_pending (r.tasks), 0);
  rig_clear (&r);
}
END_TEST

START_TEST (test_ring_allgather)
{
  Rig r;
  rig_init (&r, ring4, 0.0, FALSE);
  guint gpus[] = { 0, 1, 2, 3 };
  MsimColl *c = msim_coll_ring (r.comm, MSIM_COLL_ALLGATHER, gpus, 4, 4e6, "ag", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c), 3 * (S (1e-6) + S (1e-3)));
  msim_ck_assert_near (msim_coll_busbw (c),
                       4e6 / msim_time_to_seconds (3 * (S (1e-6) + S (1e-3))) * 0.75, 1e-12);
  rig_clear (&r);
}
END_TEST

static const char *switch4 = "[topology]\nname = sw4\nbuilder = nvswitch\ngpus = 4\n"
                             "nvlink_bandwidth = 100e9\nnvlink_latency = 0.5e-6\n"
                             "pcie_bandwidth = 10e9\npcie_latency = 1e-6\n";

START_TEST (test_alltoall_switch_closed_form)
{
  /* On an ideal switch each GPU's uplink carries n-1 equal flows:
   * t = base + route latency + (n-1) b / B = (n-1)/n S / B + latencies. */
  Rig r;
  rig_init (&r, switch4, 2e-6, FALSE);
  guint gpus[] = { 0, 1, 2, 3 };
  double b = 1e6;
  double bytes[16];
  for (int i = 0; i < 16; i++)
    bytes[i] = b;
  MsimColl *c = msim_coll_alltoallv (r.comm, gpus, 4, bytes, "a2a", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  MsimTime expect = S (2e-6) + S (1e-6) + S (3 * b / 100e9);
  ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c), expect);
  msim_ck_assert_near (msim_coll_size (c), 4 * b, 1e-12);
  msim_ck_assert_near (msim_coll_busbw (c), 4 * b / msim_time_to_seconds (expect) * 0.75, 1e-12);
  /* Conservation: 12 flows of b bytes over 2 links each. */
  msim_ck_assert_near (msim_coll_bytes_moved (c), 12 * b, 1e-12);
  msim_ck_assert_near (total_link_bytes (&r), 24 * b, 1e-12);
  rig_clear (&r);
}
END_TEST

START_TEST (test_alltoallv_zero_row)
{
  Rig r;
  rig_init (&r, switch4, 0.0, FALSE);
  guint gpus[] = { 0, 1, 2, 3 };
  double bytes[16] = { 0 };
  for (int i = 1; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (i != j)
        bytes[i * 4 + j] = 1e6 * (i + j);
  MsimColl *c = msim_coll_alltoallv (r.comm, gpus, 4, bytes, "a2av", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  ck_assert (msim_coll_done (c));
  /* GPU 0's uplink (its first hop) carried nothing, its downlink the sum. */
  double up0 = 0.0, down0 = 0.0;
  guint v0 = msim_topology_gpu_vertex (r.topo, 0);
  for (guint l = 0; l < msim_topology_n_links (r.topo); l++)
    {
      if (msim_topology_link_src (r.topo, l) == v0)
        up0 += msim_network_link_bytes (r.net, l);
      if (msim_topology_link_dst (r.topo, l) == v0)
        down0 += msim_network_link_bytes (r.net, l);
    }
  ck_assert (up0 == 0.0);
  msim_ck_assert_near (down0, 1e6 * (1 + 2 + 3), 1e-12);
  rig_clear (&r);
}
END_TEST

START_TEST (test_alltoall_hierarchical_conserves)
{
  /* Two hosts of two GPUs on a rail fabric: the hierarchical algorithm
   * delivers the same bytes, with inter-host data crossing NVLink first. */
  const char *rail = "[topology]\nname = rail2x2\nbuilder = rail\nnodes = 2\ngpus_per_node = 2\n"
                     "intra = nvswitch\nnvlink_bandwidth = 100e9\nnvlink_latency = 0\n"
                     "pcie_bandwidth = 50e9\npcie_latency = 0\nnics_per_node = 2\n"
                     "nic_bandwidth = 10e9\nnic_latency = 0\nspines = 1\nspine_latency = 0\n"
                     "oversubscription = 1\n";
  for (int h = 0; h < 2; h++)
    {
      Rig r;
      rig_init (&r, rail, 0.0, h);
      guint gpus[] = { 0, 1, 2, 3 };
      double bytes[16];
      for (int i = 0; i < 16; i++)
        bytes[i] = (i % 5 == 0) ? 0.0 : 1e6;
      MsimColl *c = msim_coll_alltoallv (r.comm, gpus, 4, bytes, "a2a", 0, -1);
      submit_all (c);
      msim_engine_run (r.engine);
      ck_assert (msim_coll_done (c));
      MsimNetworkStats st;
      msim_network_get_stats (r.net, &st);
      msim_ck_assert_near (st.bytes_delivered, msim_coll_bytes_moved (c), 1e-12);
      if (h)
        {
          /* GPU0 -> GPU3 (other host, local index 1) goes through GPU1:
           * moved bytes exceed the payload by the forwarded part. */
          ck_assert (msim_coll_bytes_moved (c) > 12e6 - 1.0);
        }
      else
        msim_ck_assert_near (msim_coll_bytes_moved (c), 12e6, 1e-12);
      rig_clear (&r);
    }
}
END_TEST

/* Two hosts of two GPUs; every link (NVLink, PCIe, NIC) at 1 GB/s and no
 * latency, one NIC per GPU on its own rail, no spines. */
static const char *rail2x2 = "[topology]\nname = rail2x2\nbuilder = rail\nnodes = 2\n"
                             "gpus_per_node = 2\nintra = nvswitch\nnvlink_bandwidth = 1e9\n"
                             "pcie_bandwidth = 1e9\nnics_per_node = 2\nnic_bandwidth = 1e9\n"
                             "spines = 0\n";

START_TEST (test_ring_channels_across_hosts)
{
  /* Automatic channels: one per GPU of a host, here 2.  Channel 0 runs
   * h0g0 -> h0g1 -> h1g1 -> h1g0 -> h0g0, channel 1 the same hosts the
   * other way round, so every directed link carries at most one flow per
   * step and each step moves S / (n x channels) at the link rate:
   * t = steps x S / 8 / B, half the single ring's steps x S / 4 / B. */
  double size = 8e6, B = 1e9;
  MsimTime t_auto = 0;
  for (guint ch = 0; ch <= 1; ch++)
    {
      Rig r;
      MsimCommParams p;
      msim_comm_params_init (&p);
      p.base_latency_s = 0.0;
      p.ring_channels = ch; /* 0 = automatic (2 here), 1 = one ring */
      rig_init_params (&r, rail2x2, &p, FALSE);
      guint gpus[] = { 0, 1, 2, 3 };
      MsimColl *c = msim_coll_ring (r.comm, MSIM_COLL_ALLREDUCE, gpus, 4, size, "ar", 0, -1);
      submit_all (c);
      msim_engine_run (r.engine);
      ck_assert (msim_coll_done (c));
      /* Payload: 6 steps x 4 ranks x S / 4, whatever the channel count. */
      msim_ck_assert_near (msim_coll_bytes_moved (c), 6 * size, 1e-12);
      MsimTime t = msim_coll_end (c) - msim_coll_start (c);
      if (ch == 0)
        {
          double chunk = size / 4 / 2;
          ck_assert_int_eq (t, 6 * S (chunk / B));
          /* Per channel and step: two NVLink hops of 2 links and two
           * rail hops of 4 links (GPU-NIC, NIC-rail, rail-NIC, NIC-GPU). */
          msim_ck_assert_near (total_link_bytes (&r), 2 * 6 * (2 * 2 + 2 * 4) * chunk, 1e-12);
          t_auto = t;
        }
      else
        {
          /* One ring in rank order changes rails between hosts, through
           * another GPU's links: at least the single ring's closed form,
           * and slower than the rail-aligned channels. */
          ck_assert (t >= 6 * S (size / 4 / B));
          ck_assert (t > t_auto);
        }
      rig_clear (&r);
    }
}
END_TEST

START_TEST (test_ring_channels_one_host_unchanged)
{
  /* On one host, channels only split the same links: any channel count
   * gives the single ring's closed form. */
  for (guint ch = 1; ch <= 4; ch++)
    {
      Rig r;
      MsimCommParams p;
      msim_comm_params_init (&p);
      p.base_latency_s = 2e-6;
      p.ring_channels = ch;
      rig_init_params (&r, switch4, &p, FALSE);
      guint gpus[] = { 0, 1, 2, 3 };
      MsimColl *c = msim_coll_ring (r.comm, MSIM_COLL_ALLGATHER, gpus, 4, 4e6, "ag", 0, -1);
      submit_all (c);
      msim_engine_run (r.engine);
      ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c),
                        S (2e-6) + 3 * (S (1e-6) + S (1e6 / 100e9)));
      rig_clear (&r);
    }
}
END_TEST

START_TEST (test_p2p_nvlink_efficiency)
{
  /* Send/recv transfers over NVLink-only routes move bytes / e on the
   * wire: the AllToAll closed form with B replaced by e B.  The payload
   * count is unchanged; the links carry the wire bytes.  Rings are not
   * affected. */
  Rig r;
  MsimCommParams p;
  msim_comm_params_init (&p);
  ck_assert (p.p2p_nvlink_efficiency == 1.0); /* ideal unless asked */
  p.base_latency_s = 2e-6;
  p.p2p_nvlink_efficiency = 0.5;
  rig_init_params (&r, switch4, &p, FALSE);
  guint gpus[] = { 0, 1, 2, 3 };
  double b = 1e6, bytes[16];
  for (int i = 0; i < 16; i++)
    bytes[i] = b;
  MsimColl *c = msim_coll_alltoallv (r.comm, gpus, 4, bytes, "a2a", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c),
                    S (2e-6) + S (1e-6) + S (3 * b / (0.5 * 100e9)));
  msim_ck_assert_near (msim_coll_bytes_moved (c), 12 * b, 1e-12);
  msim_ck_assert_near (total_link_bytes (&r), 24 * b / 0.5, 1e-12);
  MsimTime t0 = msim_engine_now (r.engine);
  MsimColl *ag = msim_coll_ring (r.comm, MSIM_COLL_ALLGATHER, gpus, 4, 4e6, "ag", 0, -1);
  submit_all (ag);
  msim_engine_run (r.engine);
  ck_assert_int_eq (msim_coll_end (ag) - msim_coll_start (ag),
                    S (2e-6) + 3 * (S (1e-6) + S (1e6 / 100e9)));
  ck_assert (msim_coll_start (ag) >= t0);
  rig_clear (&r);

  /* A route that is not all NVLink (the ring builder's links are "other")
   * is paced by its NIC or switch, not by NCCL's send/recv kernels. */
  rig_init_params (&r, ring4, &p, FALSE);
  MsimColl *sr = msim_coll_sendrecv (r.comm, 0, 1, 1e6, "sr", 0, -1);
  submit_all (sr);
  msim_engine_run (r.engine);
  ck_assert_int_eq (msim_coll_end (sr) - msim_coll_start (sr), S (2e-6) + S (1e-6) + S (1e-3));
  rig_clear (&r);
}
END_TEST

START_TEST (test_effective_capacities)
{
  /* The network of a topology with link efficiencies runs at line rate x
   * efficiency: a send/recv across the switch at 0.8 x 100 GB/s. */
  g_autofree char *text = g_strconcat (switch4, "nvlink_efficiency = 0.8\n", NULL);
  Rig r;
  MsimCommParams p;
  msim_comm_params_init (&p);
  p.base_latency_s = 0.0;
  rig_init_params (&r, text, &p, TRUE);
  for (guint l = 0; l < msim_topology_n_links (r.topo); l++)
    if (msim_topology_link_type (r.topo, l) == MSIM_LINK_NVLINK)
      ck_assert (msim_topology_link_effective_capacity (r.topo, l) == 0.8 * 100e9);
  MsimColl *c = msim_coll_sendrecv (r.comm, 0, 3, 8e6, "sr", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c), S (1e-6) + S (8e6 / 80e9));
  msim_ck_assert_near (msim_coll_busbw (c), 8e6 / msim_time_to_seconds (S (1e-6) + S (1e-4)),
                       1e-12);
  rig_clear (&r);
}
END_TEST

START_TEST (test_tasks_overlap)
{
  /* Compute on one stream overlaps communication on the other; a
   * dependency serialises them. */
  g_autoptr (MsimEngine) e = msim_engine_new ();
  g_autoptr (MsimTasks) ts = msim_tasks_new (e, 2);
  MsimTask *a = msim_task_kernel (ts, 0, 100, "a", 0, -1);
  MsimTask *b = msim_task_kernel (ts, 1, 70, "b", 0, -1);
  MsimTask *c = msim_task_kernel (ts, 0, 10, "c", 0, -1);
  MsimTask *d = msim_task_kernel (ts, 1, 5, "d", 0, -1);
  msim_task_after (d, a); /* d waits for a although its stream is idle at 70 */
  msim_task_submit (a);
  msim_task_submit (b);
  msim_task_submit (c);
  msim_task_submit (d);
  msim_engine_run (e);
  ck_assert_int_eq (msim_task_end_time (a), 100);
  ck_assert_int_eq (msim_task_end_time (b), 70);
  ck_assert_int_eq (msim_task_start_time (c), 100);
  ck_assert_int_eq (msim_task_start_time (d), 100);
  ck_assert_int_eq (msim_task_end_time (d), 105);
  ck_assert_int_eq (msim_tasks_stream_busy (ts, 0), 110);
  ck_assert_int_eq (msim_tasks_stream_busy (ts, 1), 75);
  ck_assert_int_eq (msim_tasks_pending (ts), 0);
}
END_TEST


/* 8 H100-like GPUs on one NVSwitch, no link efficiency (line rate = what
 * NCCL's model sees); a ring step crosses two 0.3 us links, NCCL's LL
 * hwLat on NVLink. */
static char *
sw8 (double nvlink_Bps, gboolean nvls)
{
  return g_strdup_printf ("[topology]\nname = sw8\nbuilder = nvswitch\ngpus = 8\n"
                          "nvlink_bandwidth = %.17g\nnvlink_latency = 0.3e-6\n"
                          "pcie_bandwidth = 10e9\npcie_latency = 1e-6\ngpu_arch = hopper\n"
                          "nvls = %s\n",
                          nvlink_Bps, nvls ? "true" : "false");
}

static MsimColl *
run_tuned (Rig *r, const char *topo, guint protos, MsimCollKind kind, double bytes)
{
  MsimCommParams p;
  msim_comm_params_init (&p);
  p.nccl_tuning = TRUE;
  p.nccl_protos = protos;
  rig_init_params (r, topo, &p, TRUE);
  guint gpus[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
  MsimColl *c = msim_coll_ring (r->comm, kind, gpus, 8, bytes, "coll", 0, -1);
  submit_all (c);
  ck_assert_int_eq (msim_engine_run (r->engine), MSIM_STEP_IDLE);
  ck_assert (msim_coll_done (c));
  return c;
}

START_TEST (test_nccl_ring_protocols)
{
  /* AllReduce of size on 8 ranks at B = 100 GB/s, one protocol at a time:
   * t = baseLat + 14 (0.6 us + hwLat[NVLink][Ring][p] - 0.6 us + size/8 / (f B))
   * with f = 1/4 for LL (25 GB/s, under the 87.7 GB/s LL ceiling), 0.92 for
   * LL128, 1 for Simple; that is NCCL's own prediction.  The links carry
   * the wire bytes size/8 / f per step and hop. */
  g_autofree char *topo = sw8 (100e9, FALSE);
  const double base_us[] = { 6.6, 14.0, 8.4 }, step_us[] = { 0.6, 1.9, 3.4 };
  const double frac[] = { 0.25, 0.92, 1.0 };
  const char *labels[] = { "Ring/LL", "Ring/LL128", "Ring/Simple" };
  double size = 8e6;
  for (int p = 0; p < MSIM_NCCL_N_PROTOS; p++)
    {
      Rig r;
      MsimColl *c = run_tuned (&r, topo, 1u << p, MSIM_COLL_ALLREDUCE, size);
      ck_assert_int_eq (msim_coll_nccl_algo (c), MSIM_NCCL_ALGO_RING);
      ck_assert_int_eq (msim_coll_nccl_proto (c), p);
      ck_assert_str_eq (msim_coll_algorithm_label (c), labels[p]);
      MsimTime t = msim_coll_end (c) - msim_coll_start (c);
      MsimTime expect = S (base_us[p] * 1e-6)
                        + 14 * (S (step_us[p] * 1e-6) + S (size / 8 / (frac[p] * 100e9)));
      ck_assert_msg (llabs (t - expect) <= 14,
                     "%s: %" G_GINT64_FORMAT " ps, expected %" G_GINT64_FORMAT, labels[p], t,
                     expect);
      double pred;
      ck_assert (msim_coll_nccl_prediction (c, &pred));
      msim_ck_assert_near (msim_time_to_seconds (t), pred, 1e-6);
      /* Payload vs wire: 14 steps x 8 hops of size/8, two links per hop. */
      msim_ck_assert_near (msim_coll_bytes_moved (c), 14 * size, 1e-12);
      msim_ck_assert_near (total_link_bytes (&r), 14 * 8 * 2 * (size / 8) / frac[p], 1e-6);
      rig_clear (&r);
    }
}
END_TEST

START_TEST (test_nccl_protocol_switch)
{
  /* At 18 x 20.6 GB/s per port NCCL's model switches an 8-rank AllReduce
   * from LL to LL128 at size* = (40.6 - 15.0) us / (1 / 50.11 - 1 / 194.93)
   * GB/s: the simulation runs LL just below and LL128 just above, and
   * takes NCCL's predicted time in both. */
  g_autofree char *topo = sw8 (370.8e9, FALSE);
  double bw_ll = 87.7 * 8 / 14, bw_128 = 370.8 * 0.92 * 8 / 14;
  double star = (40.6 - 15.0) / (1 / bw_ll - 1 / bw_128) * 1e3;
  for (int side = 0; side < 2; side++)
    {
      Rig r;
      double size = star * (side ? 1.001 : 0.999);
      MsimColl *c = run_tuned (&r, topo, MSIM_NCCL_PROTOS_ALL, MSIM_COLL_ALLREDUCE, size);
      ck_assert_int_eq (msim_coll_nccl_proto (c),
                        side ? MSIM_NCCL_PROTO_LL128 : MSIM_NCCL_PROTO_LL);
      double pred;
      ck_assert (msim_coll_nccl_prediction (c, &pred));
      msim_ck_assert_near (msim_time_to_seconds (msim_coll_end (c) - msim_coll_start (c)), pred,
                           1e-6);
      rig_clear (&r);
    }
}
END_TEST

START_TEST (test_nccl_nvls_closed_form)
{
  /* NVLS on 8 ranks with 370.8 GB/s ports: NCCL's graph gives 8 heads of
   * 40 GB/s, algbw = 5/6 x 320 GB/s.  Every port carries
   * W = size x 370.8 / algbw up and down at once, so
   * t = 23 us (NCCL's NVLS latency) + 0.3 us (the port) + size / algbw. */
  g_autofree char *topo = sw8 (370.8e9, TRUE);
  Rig r;
  double size = 64.0 * 1048576;
  MsimColl *c = run_tuned (&r, topo, MSIM_NCCL_PROTOS_ALL, MSIM_COLL_ALLREDUCE, size);
  ck_assert_int_eq (msim_coll_nccl_algo (c), MSIM_NCCL_ALGO_NVLS);
  ck_assert_str_eq (msim_coll_algorithm_label (c), "NVLS/Simple");
  double algbw = 5.0 / 6.0 * 8 * 40e9;
  double W = size * 370.8e9 / algbw;
  MsimTime t = msim_coll_end (c) - msim_coll_start (c);
  MsimTime expect = S (23e-6) + S (0.3e-6) + S (W / 370.8e9);
  ck_assert_msg (llabs (t - expect) <= 2, "%" G_GINT64_FORMAT " vs %" G_GINT64_FORMAT, t, expect);
  msim_ck_assert_near (total_link_bytes (&r), 16 * W, 1e-12);
  msim_ck_assert_near (msim_coll_busbw (c), size / msim_time_to_seconds (t) * 14 / 8, 1e-12);
  rig_clear (&r);
  /* Small messages stay on the ring's LL protocol; NVLS off in the
   * parameters (NCCL_ALGO=Ring) gives the ring at any size. */
  c = run_tuned (&r, topo, MSIM_NCCL_PROTOS_ALL, MSIM_COLL_ALLREDUCE, 65536);
  ck_assert_str_eq (msim_coll_algorithm_label (c), "Ring/LL");
  rig_clear (&r);
  MsimCommParams p;
  msim_comm_params_init (&p);
  p.nccl_tuning = TRUE;
  p.nccl_algos = 1u << MSIM_NCCL_ALGO_RING;
  rig_init_params (&r, topo, &p, TRUE);
  guint gpus[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
  c = msim_coll_ring (r.comm, MSIM_COLL_ALLREDUCE, gpus, 8, size, "ar", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  ck_assert_str_eq (msim_coll_algorithm_label (c), "Ring/Simple");
  MsimNcclAlgo best;
  ck_assert (msim_coll_nccl_choice (c, &best, NULL, NULL));
  ck_assert_int_eq (best, MSIM_NCCL_ALGO_NVLS); /* what NCCL itself would run */
  rig_clear (&r);
}
END_TEST

START_TEST (test_nccl_legacy_default)
{
  /* Without nccl_tuning (the default) nothing is predicted and the ring
   * runs as Simple. */
  Rig r;
  rig_init (&r, ring4, 5e-6, FALSE);
  guint gpus[] = { 0, 1, 2, 3 };
  MsimColl *c = msim_coll_ring (r.comm, MSIM_COLL_ALLGATHER, gpus, 4, 4e6, "ag", 0, -1);
  submit_all (c);
  msim_engine_run (r.engine);
  ck_assert (!msim_coll_nccl_prediction (c, NULL));
  ck_assert_str_eq (msim_coll_algorithm_label (c), "Ring/Simple");
  guint two[] = { 0, 1 };
  double b[4] = { 0, 1e3, 1e3, 0 };
  MsimColl *a = msim_coll_alltoallv (r.comm, two, 2, b, "a2a", 0, -1);
  ck_assert_str_eq (msim_coll_algorithm_label (a), "direct");
  ck_assert_int_eq (msim_coll_nccl_algo (a), MSIM_NCCL_N_ALGOS);
  submit_all (a);
  msim_engine_run (r.engine);
  rig_clear (&r);
}
END_TEST

/* With NCCL's model on a one-host Hopper node, every NVLink send/recv of an
 * AllToAll ends one chunk's drain after its last byte: on an ideal switch
 * t = base + route latency + (n-1) b / B + drain(b, n), closed form;
 * without the model, no drain. */
START_TEST (test_alltoall_p2p_drain)
{
  for (int tuned = 0; tuned < 2; tuned++)
    {
      g_autofree char *topo = sw8 (100e9, FALSE);
      MsimCommParams p;
      msim_comm_params_init (&p);
      p.base_latency_s = 2e-6;
      p.nccl_tuning = tuned;
      Rig r;
      rig_init_params (&r, topo, &p, FALSE);
      guint gpus[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
      double b = 3e6, bytes[64];
      for (int i = 0; i < 64; i++)
        bytes[i] = i % 9 == 0 ? 0.0 : b; /* nothing to itself */
      MsimColl *c = msim_coll_alltoallv (r.comm, gpus, 8, bytes, "a2a", 0, -1);
      submit_all (c);
      msim_engine_run (r.engine);
      double drain = tuned ? msim_nccl_p2p_drain_s (b, 8, MSIM_GPU_ARCH_HOPPER) : 0.0;
      ck_assert (!tuned || drain > 0.0);
      MsimTime expect = S (2e-6) + S (0.6e-6) + S (7 * b / 100e9) + S (drain);
      ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c), expect);
      msim_ck_assert_near (total_link_bytes (&r), 2 * 56 * b, 1e-12); /* bytes unchanged */
      rig_clear (&r);
    }
}
END_TEST

/* With channel links (msim_comm_network_links on a Hopper node), a send is
 * NCCL's channels, each capped at the channel rate b: a lone send of 8 MiB
 * on a 2-rank communicator is 16 parts; on a 1000 GB/s switch the channels
 * bind (t = base + latency + drain + (B/16)/b), on a 100 GB/s one the link
 * does (t = ... + B/100e9).  On 8 ranks, every rank sending 64 MiB to the
 * next gets 4 channels: t = ... + (B/4)/b. */
START_TEST (test_p2p_channel_caps)
{
  const double b = msim_nccl_p2p_channel_GBps (MSIM_GPU_ARCH_HOPPER) * 1e9;
  const double MiB = 1048576.0;
  for (int fast = 0; fast < 2; fast++)
    for (int ring8 = 0; ring8 < 2; ring8++)
      {
        g_autofree char *topo = sw8 (fast ? 1000e9 : 100e9, FALSE);
        MsimCommParams p;
        msim_comm_params_init (&p);
        p.base_latency_s = 2e-6;
        p.nccl_tuning = TRUE;
        Rig r = { 0 };
        GError *error = NULL;
        r.topo = msim_topology_load_data (topo, -1, "test-topology.ini", &error);
        ck_assert_msg (r.topo != NULL, "%s", error ? error->message : "");
        r.engine = msim_engine_new ();
        guint nl = msim_comm_network_links (r.topo, &p, TRUE, NULL);
        ck_assert_uint_eq (nl, msim_topology_n_links (r.topo) + 8 * MSIM_NCCL_P2P_POOL);
        g_autofree double *cap = g_new (double, nl);
        msim_comm_network_links (r.topo, &p, TRUE, cap);
        msim_ck_assert_near (cap[nl - 1], b, 1e-12);
        r.net = msim_network_new (r.engine, nl, cap, MSIM_NETWORK_MAXMIN);
        msim_network_set_check (r.net, TRUE, TRUE);
        r.tasks = msim_tasks_new (r.engine, 16);
        r.comm = msim_comm_new (r.topo, r.net, r.tasks, &p);
        double B = ring8 ? 64 * MiB : 8 * MiB;
        guint n = ring8 ? 8 : 2;
        MsimColl *c;
        if (ring8)
          {
            guint gpus[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
            double m[64] = { 0 };
            for (guint i = 0; i < 8; i++)
              m[i * 8 + (i + 1) % 8] = B;
            c = msim_coll_alltoallv (r.comm, gpus, 8, m, "ring", 0, -1);
          }
        else
          c = msim_coll_sendrecv (r.comm, 0, 5, B, "send", 0, -1);
        submit_all (c);
        msim_engine_run (r.engine);
        guint nch = msim_nccl_p2p_channels (B, n);
        ck_assert_uint_eq (nch, ring8 ? 4 : 16);
        double rate = MIN (nch * b, fast ? 1000e9 : 100e9);
        MsimTime expect = S (2e-6) + S (0.6e-6) + S (msim_nccl_p2p_drain_s (B, n, MSIM_GPU_ARCH_HOPPER))
                          + S (B / rate);
        /* Sub-flows end together up to a picosecond of rounding each. */
        MsimTime got = msim_coll_end (c) - msim_coll_start (c);
        ck_assert_msg (llabs (got - expect) <= 2, "got %" G_GINT64_FORMAT " expected %" G_GINT64_FORMAT,
                       got, expect);
        msim_ck_assert_near (total_link_bytes (&r), 2 * B * (ring8 ? 8 : 1), 1e-12);
        rig_clear (&r);
      }
}
END_TEST

/* No channel links without a channel rate (A100), without NCCL's models,
 * or for line rates; on an analytical network a Hopper send is one flow
 * with the drain and no cap. */
START_TEST (test_p2p_channels_where_not)
{
  MsimCommParams p;
  msim_comm_params_init (&p);
  p.nccl_tuning = TRUE;
  GError *error = NULL;
  g_autofree char *hopper = sw8 (1000e9, FALSE);
  g_autoptr (MsimTopology) h = msim_topology_load_data (hopper, -1, "h.ini", &error);
  ck_assert_msg (h != NULL, "%s", error ? error->message : "");
  guint nl = msim_topology_n_links (h);
  ck_assert_uint_eq (msim_comm_network_links (h, &p, FALSE, NULL), nl); /* line rates */
  g_autofree char *ampere = g_strdup (hopper);
  char *arch = strstr (ampere, "gpu_arch = hopper");
  ck_assert_ptr_nonnull (arch);
  memcpy (arch, "gpu_arch = ampere", strlen ("gpu_arch = ampere"));
  g_autoptr (MsimTopology) a = msim_topology_load_data (ampere, -1, "a.ini", &error);
  ck_assert_msg (a != NULL, "%s", error ? error->message : "");
  ck_assert_uint_eq (msim_comm_network_links (a, &p, TRUE, NULL), nl);
  p.nccl_tuning = FALSE;
  ck_assert_uint_eq (msim_comm_network_links (h, &p, TRUE, NULL), nl);

  /* Analytical: the lone 8 MiB send runs at the link's 1000 GB/s. */
  p.nccl_tuning = TRUE;
  p.base_latency_s = 2e-6;
  guint n = msim_comm_network_links (h, &p, TRUE, NULL);
  g_autofree double *cap = g_new (double, n);
  msim_comm_network_links (h, &p, TRUE, cap);
  g_autoptr (MsimEngine) engine = msim_engine_new ();
  g_autoptr (MsimNetwork) net = msim_network_new (engine, n, cap, MSIM_NETWORK_ANALYTICAL);
  MsimTasks *tasks = msim_tasks_new (engine, 16);
  MsimComm *comm = msim_comm_new (h, net, tasks, &p);
  double B = 8 * 1048576.0;
  MsimColl *c = msim_coll_sendrecv (comm, 0, 5, B, "send", 0, -1);
  submit_all (c);
  msim_engine_run (engine);
  MsimTime expect = S (2e-6) + S (0.6e-6) + S (msim_nccl_p2p_drain_s (B, 2, MSIM_GPU_ARCH_HOPPER))
                    + S (B / 1000e9);
  ck_assert_int_eq (msim_coll_end (c) - msim_coll_start (c), expect);
  msim_comm_free (comm);
  msim_tasks_free (tasks);
}
END_TEST

static Suite *
collective_suite (void)
{
  Suite *s = suite_create ("collective");
  TCase *tc = tcase_create ("tasks");
  tcase_add_test (tc, test_tasks_overlap);
  suite_add_tcase (s, tc);
  tc = tcase_create ("ring");
  tcase_add_test (tc, test_ring_allreduce_closed_form);
  tcase_add_test (tc, test_ring_allgather);
  tcase_add_test (tc, test_ring_channels_across_hosts);
  tcase_add_test (tc, test_ring_channels_one_host_unchanged);
  suite_add_tcase (s, tc);
  tc = tcase_create ("calibration");
  tcase_add_test (tc, test_p2p_nvlink_efficiency);
  tcase_add_test (tc, test_effective_capacities);
  suite_add_tcase (s, tc);
  tc = tcase_create ("nccl");
  tcase_add_test (tc, test_nccl_ring_protocols);
  tcase_add_test (tc, test_nccl_protocol_switch);
  tcase_add_test (tc, test_nccl_nvls_closed_form);
  tcase_add_test (tc, test_nccl_legacy_default);
  tcase_add_test (tc, test_alltoall_p2p_drain);
  tcase_add_test (tc, test_p2p_channel_caps);
  tcase_add_test (tc, test_p2p_channels_where_not);
  suite_add_tcase (s, tc);
  tc = tcase_create ("alltoall");
  tcase_add_test (tc, test_alltoall_switch_closed_form);
  tcase_add_test (tc, test_alltoallv_zero_row);
  tcase_add_test (tc, test_alltoall_hierarchical_conserves);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (collective_suite)
