/* Check suite for topology/: builders, presets, routes (latency, hop and
 * width tie-breaks, host-memory avoidance), ECMP determinism and spread,
 * split-path enumeration, validation messages, exports, limits. */
#include <glib/gstdio.h>
#include <igraph.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "msim-check.h"
#include "msim-error.h"
#include "topology.h"

static MsimTopology *
load_str (const char *text)
{
  g_autoptr (GError) error = NULL;
  MsimTopology *topo = msim_topology_load_data (text, -1, "t.ini", &error);
  ck_assert_msg (topo != NULL, "load failed: %s", error ? error->message : "?");
  return topo;
}

static MsimTopology *
load_preset (const char *name, const char *override)
{
  const char *ov[] = { override, NULL };
  g_autoptr (GError) error = NULL;
  MsimTopology *topo = msim_topology_load_preset (name, override ? ov : NULL, &error);
  ck_assert_msg (topo != NULL, "preset %s failed: %s", name, error ? error->message : "?");
  return topo;
}

static guint
vtx (const MsimTopology *topo, const char *name)
{
  gint64 v = msim_topology_find_vertex (topo, name);
  ck_assert_msg (v >= 0, "no vertex '%s'", name);
  return (guint)v;
}

/* "a > b > c" for a route from its first link's source. */
static char *
route_string (const MsimTopology *topo, const MsimRoute *r)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < r->n_links; i++)
    {
      if (i == 0)
        g_string_append (
            s, msim_topology_vertex_name (topo, msim_topology_link_src (topo, r->links[0])));
      g_string_append_printf (
          s, " > %s", msim_topology_vertex_name (topo, msim_topology_link_dst (topo, r->links[i])));
    }
  return g_string_free (s, FALSE);
}

static char *
route_by_name (MsimTopology *topo, const char *a, const char *b, guint64 flow, gint64 *latency_ps)
{
  MsimRoute r;
  g_autoptr (GError) error = NULL;
  ck_assert_msg (msim_topology_route (topo, vtx (topo, a), vtx (topo, b), flow, &r, &error),
                 "route %s->%s: %s", a, b, error ? error->message : "?");
  if (latency_ps)
    *latency_ps = r.latency_ps;
  return route_string (topo, &r);
}

/* Counts physical links (even ids) of @type whose capacity is @bw. */
static guint
count_links (const MsimTopology *topo, MsimLinkType type, double bw)
{
  guint n = 0;
  for (guint e = 0; e < msim_topology_n_links (topo); e += 2)
    if (msim_topology_link_type (topo, e) == type && msim_topology_link_capacity (topo, e) == bw)
      n++;
  return n;
}

/* Every directed link and its reverse agree, as full duplex requires. */
static void
check_duplex (const MsimTopology *topo)
{
  for (guint e = 0; e < msim_topology_n_links (topo); e++)
    {
      guint r = msim_topology_link_reverse (topo, e);
      ck_assert_uint_eq (r, e ^ 1u);
      ck_assert_uint_eq (msim_topology_link_src (topo, e), msim_topology_link_dst (topo, r));
      ck_assert_uint_eq (msim_topology_link_dst (topo, e), msim_topology_link_src (topo, r));
      ck_assert (msim_topology_link_capacity (topo, e) == msim_topology_link_capacity (topo, r));
      ck_assert_int_eq (msim_topology_link_latency_ps (topo, e),
                        msim_topology_link_latency_ps (topo, r));
    }
}

/* ------------------------------------------------------------------ */
/* Builders                                                            */

START_TEST (test_builder_nvswitch)
{
  g_autoptr (MsimTopology) t = load_str ("[topology]\nbuilder = nvswitch\ngpus = 8\n"
                                         "gpus_per_host = 4\nnvlink_bandwidth = 300e9\n"
                                         "nvlink_latency = 0.3e-6\npcie_bandwidth = 31.5e9\n"
                                         "pcie_latency = 0.5e-6\n");
  ck_assert_str_eq (msim_topology_name (t), "t");
  ck_assert_uint_eq (msim_topology_n_gpus (t), 8);
  ck_assert_uint_eq (msim_topology_n_hosts (t), 2);
  ck_assert_uint_eq (msim_topology_n_vertices (t), 11);
  ck_assert_uint_eq (msim_topology_n_links (t), 32);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_NVLINK, 300e9), 8);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_PCIE, 31.5e9), 8);
  check_duplex (t);
  /* GPUs are numbered host by host. */
  ck_assert_uint_eq (msim_topology_gpu_host (t, 5), 1);
  ck_assert_str_eq (msim_topology_vertex_name (t, msim_topology_gpu_vertex (t, 5)), "node1.gpu1");
  ck_assert_int_eq (msim_topology_vertex_gpu (t, vtx (t, "node1.gpu1")), 5);
  ck_assert_int_eq (msim_topology_vertex_gpu (t, vtx (t, "nvswitch")), -1);
  ck_assert_int_eq (msim_topology_vertex_host (t, vtx (t, "node1.host")), 1);
  ck_assert_uint_eq (msim_topology_host_vertex (t, 1), vtx (t, "node1.host"));
  guint first = 0, count = 0;
  msim_topology_host_gpus (t, 1, &first, &count);
  ck_assert_uint_eq (first, 4);
  ck_assert_uint_eq (count, 4);
  gint64 lat = 0;
  g_autofree char *r = route_by_name (t, "node0.gpu0", "node1.gpu1", 0, &lat);
  ck_assert_str_eq (r, "node0.gpu0 > nvswitch > node1.gpu1");
  ck_assert_int_eq (lat, 600000);
  ck_assert_str_eq (msim_topology_link_name (t, 0), "node0.gpu0->nvswitch");
  ck_assert_str_eq (msim_topology_link_name (t, 1), "nvswitch->node0.gpu0");
}
END_TEST

START_TEST (test_builder_mesh)
{
  g_autoptr (MsimTopology) t = load_str ("[topology]\nbuilder = nvlink-mesh\ngpus = 4\n"
                                         "nvlink_bandwidth = 100e9\nnvlink_latency = 0.6e-6\n"
                                         "pcie_bandwidth = 31.5e9\n");
  ck_assert_uint_eq (msim_topology_n_vertices (t), 5);
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * (6 + 4));
  ck_assert_uint_eq (count_links (t, MSIM_LINK_NVLINK, 100e9), 6);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_PCIE, 31.5e9), 4);
  gint64 lat = 0;
  g_autofree char *r = route_by_name (t, "node0.gpu0", "node0.gpu3", 0, &lat);
  ck_assert_str_eq (r, "node0.gpu0 > node0.gpu3");
  ck_assert_int_eq (lat, 600000);
  /* Host memory is reached directly, and GPU routes never pass through it
   * even though pcie_latency defaults to 0 here. */
  g_autofree char *h = route_by_name (t, "node0.host", "node0.gpu2", 0, &lat);
  ck_assert_str_eq (h, "node0.host > node0.gpu2");
  ck_assert_int_eq (lat, 0);
}
END_TEST

START_TEST (test_builder_pcie_tree)
{
  g_autoptr (MsimTopology) t = load_str (
      "[topology]\nbuilder = pcie-tree\ngpus = 8\ngpus_per_switch = 4\npcie_bandwidth = 31.5e9\n"
      "pcie_latency = 0.5e-6\nuplink_bandwidth = 15.75e9\nnvlink_bridges = true\n"
      "nvlink_bandwidth = 56.25e9\nnvlink_latency = 0.6e-6\n");
  ck_assert_uint_eq (msim_topology_n_vertices (t), 1 + 8 + 2);
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * (8 + 2 + 4));
  ck_assert_uint_eq (count_links (t, MSIM_LINK_PCIE, 31.5e9), 8);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_PCIE, 15.75e9), 2);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_NVLINK, 56.25e9), 4);
  gint64 lat = 0;
  g_autofree char *bridge = route_by_name (t, "node0.gpu0", "node0.gpu1", 0, &lat);
  ck_assert_str_eq (bridge, "node0.gpu0 > node0.gpu1");
  g_autofree char *sw = route_by_name (t, "node0.gpu0", "node0.gpu2", 0, &lat);
  ck_assert_str_eq (sw, "node0.gpu0 > node0.pcie0 > node0.gpu2");
  ck_assert_int_eq (lat, 1000000);
  /* Across switches the only way is up through the root (host) vertex. */
  g_autofree char *up = route_by_name (t, "node0.gpu0", "node0.gpu5", 0, &lat);
  ck_assert_str_eq (up, "node0.gpu0 > node0.pcie0 > node0.host > node0.pcie1 > node0.gpu5");
  ck_assert_int_eq (lat, 2000000);
}
END_TEST

START_TEST (test_builder_ring)
{
  g_autoptr (MsimTopology) t = load_str ("[topology]\nbuilder = ring\ngpus = 8\n"
                                         "link_bandwidth = 50e9\nlink_latency = 1e-6\n"
                                         "link_type = nvlink\npcie_bandwidth = 31.5e9\n");
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * (8 + 8));
  ck_assert_uint_eq (count_links (t, MSIM_LINK_NVLINK, 50e9), 8);
  guint g0 = msim_topology_gpu_vertex (t, 0);
  ck_assert_uint_eq (msim_topology_n_paths (t, g0, msim_topology_gpu_vertex (t, 4)), 2);
  ck_assert_uint_eq (msim_topology_n_paths (t, g0, msim_topology_gpu_vertex (t, 3)), 1);
  gint64 lat = 0;
  g_autofree char *r = route_by_name (t, "node0.gpu0", "node0.gpu6", 0, &lat);
  ck_assert_str_eq (r, "node0.gpu0 > node0.gpu7 > node0.gpu6");
  ck_assert_int_eq (lat, 2000000);

  /* A ring of two is one cable, not two parallel ones. */
  g_autoptr (MsimTopology) t2 = load_str ("[topology]\nbuilder = ring\ngpus = 2\n"
                                          "link_bandwidth = 50e9\npcie_bandwidth = 31.5e9\n");
  ck_assert_uint_eq (msim_topology_n_links (t2), 2 * (1 + 2));
}
END_TEST

START_TEST (test_builder_torus)
{
  g_autoptr (MsimTopology) t = load_str ("[topology]\nbuilder = torus2d\nrows = 4\ncols = 4\n"
                                         "gpus_per_host = 4\nlink_bandwidth = 50e9\n"
                                         "pcie_bandwidth = 31.5e9\n");
  ck_assert_uint_eq (msim_topology_n_gpus (t), 16);
  ck_assert_uint_eq (msim_topology_n_hosts (t), 4);
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * (32 + 16));
  /* (0,0) to (2,2): 4 hops; 2 ways round each ring and C(4,2) = 6
   * interleavings give 4 x 6 = 24 equal paths. */
  guint a = msim_topology_gpu_vertex (t, 0), b = msim_topology_gpu_vertex (t, 10);
  ck_assert_uint_eq (msim_topology_n_paths (t, a, b), 24);
  /* (0,0) to (1,1): 2 hops, 2 interleavings. */
  ck_assert_uint_eq (msim_topology_n_paths (t, a, msim_topology_gpu_vertex (t, 5)), 2);
  MsimRoute r;
  ck_assert (msim_topology_route (t, a, b, 0, &r, NULL));
  ck_assert_uint_eq (r.n_links, 4);
}
END_TEST

START_TEST (test_builder_rail)
{
  g_autoptr (MsimTopology) t = load_str (
      "[topology]\nbuilder = rail\nnodes = 2\ngpus_per_node = 4\nnvlink_bandwidth = 450e9\n"
      "pcie_bandwidth = 63e9\nnics_per_node = 2\nnic_bandwidth = 50e9\nspines = 2\n");
  ck_assert_uint_eq (msim_topology_n_vertices (t), 2 * (1 + 4 + 1 + 2) + 2 + 2);
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * (2 * (4 + 4 + 4 + 2 + 2) + 2 * 2));
  ck_assert_uint_eq (count_links (t, MSIM_LINK_NVLINK, 450e9), 8);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_PCIE, 63e9), 2 * (4 + 4 + 2));
  /* NIC-rail links, then rail-spine links of 2 x 50e9 / 2 spines. */
  ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 50e9), 4 + 4);
  check_duplex (t);
  /* NIC 1 serves GPUs 2 and 3 and sits on rail 1. */
  g_autofree char *same_rail = route_by_name (t, "node0.gpu2", "node1.gpu3", 0, NULL);
  ck_assert_str_eq (same_rail, "node0.gpu2 > node0.nic1 > rail1 > node1.nic1 > node1.gpu3");
  /* NIC to its host memory directly. */
  g_autofree char *nic_host = route_by_name (t, "node1.nic0", "node1.host", 0, NULL);
  ck_assert_str_eq (nic_host, "node1.nic0 > node1.host");

  /* Rail-only (no spines): changing rails happens over NVLink, on either
   * side, and both are equal-cost. */
  g_autoptr (MsimTopology) ro = load_str (
      "[topology]\nbuilder = rail\nnodes = 2\ngpus_per_node = 2\nnvlink_bandwidth = 450e9\n"
      "pcie_bandwidth = 63e9\nnics_per_node = 2\nnic_bandwidth = 50e9\n");
  guint a = vtx (ro, "node0.gpu0"), b = vtx (ro, "node1.gpu1");
  ck_assert_uint_eq (msim_topology_n_paths (ro, a, b), 2);
  MsimRoute p0, p1;
  ck_assert (msim_topology_path (ro, a, b, 0, &p0));
  ck_assert (msim_topology_path (ro, a, b, 1, &p1));
  g_autofree char *s0 = route_string (ro, &p0);
  g_autofree char *s1 = route_string (ro, &p1);
  ck_assert_str_eq (s0, "node0.gpu0 > node0.nic0 > rail0 > node1.nic0 > node1.gpu0 > "
                        "node1.nvswitch > node1.gpu1");
  ck_assert_str_eq (s1, "node0.gpu0 > node0.nvswitch > node0.gpu1 > node0.nic1 > rail1 > "
                        "node1.nic1 > node1.gpu1");
}
END_TEST

START_TEST (test_builder_fat_tree)
{
  const char *rest = "nodes = 4\ngpus_per_node = 2\nintra = mesh\n"
                     "nvlink_bandwidth = 100e9\npcie_bandwidth = 31.5e9\nnics_per_node = 1\n"
                     "nic_bandwidth = 25e9\nnodes_per_leaf = 2\nspines = 2\n"
                     "oversubscription = 2\n";
  const char *names[] = { "fat-tree", "leaf-spine" };
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *data = g_strconcat ("[topology]\nbuilder = ", names[i], "\n", rest, NULL);
      g_autoptr (MsimTopology) t = load_str (data);
      ck_assert_uint_eq (msim_topology_n_vertices (t), 4 * (1 + 2 + 1) + 2 + 2);
      ck_assert_uint_eq (msim_topology_n_links (t), 2 * (4 * (1 + 2 + 2 + 1 + 1) + 2 * 2));
      ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 25e9), 4);
      /* Leaf uplink: 2 nodes x 1 NIC x 25 GB/s / (2 x 2 spines). */
      ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 12.5e9), 4);
      g_autofree char *r = route_by_name (t, "node0.gpu1", "node1.gpu0", 0, NULL);
      ck_assert_str_eq (r, "node0.gpu1 > node0.nic0 > leaf0 > node1.nic0 > node1.gpu0");
      ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "node0.gpu0"), vtx (t, "node3.gpu0")),
                         2);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Presets                                                             */

START_TEST (test_preset_dgx)
{
  g_autoptr (MsimTopology) a = load_preset ("dgx-a100", NULL);
  ck_assert_str_eq (msim_topology_name (a), "dgx-a100");
  ck_assert_uint_eq (msim_topology_n_gpus (a), 8);
  ck_assert_uint_eq (msim_topology_n_hosts (a), 1);
  ck_assert_uint_eq (msim_topology_n_vertices (a), 10);
  ck_assert_uint_eq (msim_topology_n_links (a), 32);
  ck_assert_uint_eq (count_links (a, MSIM_LINK_NVLINK, 300e9), 8);
  ck_assert_uint_eq (count_links (a, MSIM_LINK_PCIE, 31.5e9), 8);
  gint64 lat = 0;
  g_autofree char *r = route_by_name (a, "node0.gpu3", "node0.gpu6", 0, &lat);
  ck_assert_str_eq (r, "node0.gpu3 > nvswitch > node0.gpu6");
  ck_assert_int_eq (lat, 600000);

  g_autoptr (MsimTopology) h = load_preset ("dgx-h100", NULL);
  ck_assert_uint_eq (msim_topology_n_gpus (h), 8);
  ck_assert_uint_eq (msim_topology_n_links (h), 32);
  ck_assert_uint_eq (count_links (h, MSIM_LINK_NVLINK, 450e9), 8);
  ck_assert_uint_eq (count_links (h, MSIM_LINK_PCIE, 63e9), 8);
  g_autofree char *hm = route_by_name (h, "node0.gpu0", "node0.host", 0, &lat);
  ck_assert_str_eq (hm, "node0.gpu0 > node0.host");
  ck_assert_int_eq (lat, 500000);
}
END_TEST

START_TEST (test_preset_wilkes3)
{
  g_autoptr (MsimTopology) t = load_preset ("wilkes3", NULL);
  ck_assert_uint_eq (msim_topology_n_gpus (t), 320);
  ck_assert_uint_eq (msim_topology_n_hosts (t), 80);
  /* 80 x (host + 4 GPUs + 2 NICs) + 8 leaves + 4 spines */
  ck_assert_uint_eq (msim_topology_n_vertices (t), 572);
  /* 80 x (6 mesh + 4 GPU-host + 4 NIC-GPU + 2 NIC-host + 2 NIC-leaf) + 32 */
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * 1472);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_NVLINK, 100e9), 480);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 25e9), 160);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 125e9), 32);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_PCIE, 31.5e9), 800);
  gint64 lat = 0;
  g_autofree char *r = route_by_name (t, "node0.gpu3", "node79.gpu0", 0, &lat);
  /* PCIe 0.5 + NIC 0.6 + 2 x spine 0.25 + NIC 0.6 + PCIe 0.5 = 2.7 us,
   * which is NCCL's network step latency the preset is calibrated to. */
  ck_assert_int_eq (lat, 2700000);
  ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "node0.gpu3"), vtx (t, "node79.gpu0")), 4);
}
END_TEST

START_TEST (test_preset_cluster)
{
  g_autoptr (MsimTopology) t = load_preset ("dgx-h100-cluster", NULL);
  ck_assert_uint_eq (msim_topology_n_gpus (t), 256);
  ck_assert_uint_eq (msim_topology_n_hosts (t), 32);
  ck_assert_uint_eq (msim_topology_n_vertices (t), 32 * 18 + 8 + 4);
  ck_assert_uint_eq (msim_topology_n_links (t), 2 * (32 * 40 + 32));
  ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 50e9), 256);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_INFINIBAND, 32 * 50e9 / 4), 32);

  /* The 1024-GPU version of `moesim bench network`. */
  g_autoptr (MsimTopology) big = load_preset ("dgx-h100-cluster", "nodes=128");
  ck_assert_uint_eq (msim_topology_n_gpus (big), 1024);
  ck_assert_uint_eq (msim_topology_n_hosts (big), 128);
  ck_assert_uint_eq (msim_topology_n_vertices (big), 2316);
  ck_assert_uint_eq (msim_topology_n_links (big), 10304);
  ck_assert_uint_eq (count_links (big, MSIM_LINK_INFINIBAND, 128 * 50e9 / 4), 32);
  check_duplex (big);
  g_autofree char *r = route_by_name (big, "node5.gpu3", "node100.gpu3", 0, NULL);
  ck_assert_str_eq (r, "node5.gpu3 > node5.nic3 > rail3 > node100.nic3 > node100.gpu3");
}
END_TEST

START_TEST (test_preset_all_load)
{
  g_auto (GStrv) names = msim_topology_list_presets ();
  ck_assert_uint_ge (g_strv_length (names), 4);
  for (char **n = names; *n; n++)
    {
      g_autoptr (MsimTopology) t = load_preset (*n, NULL);
      ck_assert_uint_gt (msim_topology_n_gpus (t), 0);
      ck_assert_str_ne (msim_topology_description (t), "");
    }
  g_autoptr (GError) error = NULL;
  ck_assert (msim_topology_load_preset ("no-such-preset", NULL, &error) == NULL);
  ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_INPUT));
  ck_assert_ptr_nonnull (strstr (error->message, "dgx-h100-cluster"));
  g_clear_error (&error);
  ck_assert (msim_topology_load_preset ("../etc/passwd", NULL, &error) == NULL);
  g_clear_error (&error);
  const char *bad[] = { "nodes", NULL };
  ck_assert (msim_topology_load_preset ("wilkes3", bad, &error) == NULL);
  ck_assert_ptr_nonnull (strstr (error->message, "key=value"));
  g_clear_error (&error);
  const char *range[] = { "nodes=0", NULL };
  ck_assert (msim_topology_load_preset ("wilkes3", range, &error) == NULL);
  ck_assert_ptr_nonnull (strstr (error->message, "[topology] nodes"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Routes on hand-checked topologies                                   */

/* g0 and g1 joined by a 2-hop path through s1 and a 3-hop path through s2
 * and s3, plus PCIe links to host memory h.  %s are the six latencies. */
#define DIAMOND                                                                                    \
  "[topology]\n"                                                                                   \
  "[vertex.h]\nkind = host\n"                                                                      \
  "[vertex.g0]\nkind = gpu\nhost = h\n"                                                            \
  "[vertex.g1]\nkind = gpu\nhost = h\n"                                                            \
  "[vertex.s1]\nkind = switch\n[vertex.s2]\nkind = switch\n[vertex.s3]\nkind = switch\n"           \
  "[link.a]\na = g0\nb = s1\nbandwidth = 100e9\nlatency = %s\n"                                    \
  "[link.b]\na = s1\nb = g1\nbandwidth = 100e9\nlatency = %s\n"                                    \
  "[link.c]\na = g0\nb = s2\nbandwidth = 100e9\nlatency = %s\n"                                    \
  "[link.d]\na = s2\nb = s3\nbandwidth = 100e9\nlatency = %s\n"                                    \
  "[link.e]\na = s3\nb = g1\nbandwidth = 100e9\nlatency = %s\n"                                    \
  "[link.hg0]\na = h\nb = g0\nbandwidth = 30e9\ntype = pcie\nlatency = %s\n"                       \
  "[link.hg1]\na = h\nb = g1\nbandwidth = 30e9\ntype = pcie\nlatency = %s\n"

static MsimTopology *
load_diamond (const char *a, const char *b, const char *c, const char *d, const char *e,
              const char *pcie)
{
  g_autofree char *text = g_strdup_printf (DIAMOND, a, b, c, d, e, pcie, pcie);
  return load_str (text);
}

START_TEST (test_route_latency_first)
{
  /* 2 hops at 2 us against 3 hops at 0.6 us: latency wins. */
  g_autoptr (MsimTopology) t = load_diamond ("1e-6", "1e-6", "0.2e-6", "0.2e-6", "0.2e-6", "0");
  MsimRoute r;
  ck_assert (msim_topology_route (t, vtx (t, "g0"), vtx (t, "g1"), 7, &r, NULL));
  ck_assert_uint_eq (r.n_links, 3);
  /* Physical links c, d, e are 2, 3, 4: directed a->b ids 4, 6, 8. */
  ck_assert_uint_eq (r.links[0], 4);
  ck_assert_uint_eq (r.links[1], 6);
  ck_assert_uint_eq (r.links[2], 8);
  ck_assert_int_eq (r.latency_ps, 600000);
  /* The reverse direction uses the reverse links. */
  ck_assert (msim_topology_route (t, vtx (t, "g1"), vtx (t, "g0"), 7, &r, NULL));
  ck_assert_uint_eq (r.links[0], 9);
  ck_assert_uint_eq (r.links[2], 5);
  ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "g0"), vtx (t, "g1")), 1);
  /* src == dst: the empty route. */
  ck_assert (msim_topology_route (t, vtx (t, "g0"), vtx (t, "g0"), 7, &r, NULL));
  ck_assert_uint_eq (r.n_links, 0);
  ck_assert_int_eq (r.latency_ps, 0);
  ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "g0"), vtx (t, "g0")), 1);
}
END_TEST

START_TEST (test_route_hops_tie_break)
{
  /* All latencies zero: fewest hops, and the equally short path through
   * host memory is not taken. */
  g_autoptr (MsimTopology) t = load_diamond ("0", "0", "0", "0", "0", "0");
  gint64 lat = -1;
  g_autofree char *r = route_by_name (t, "g0", "g1", 0, &lat);
  ck_assert_str_eq (r, "g0 > s1 > g1");
  ck_assert_int_eq (lat, 0);
  ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "g0"), vtx (t, "g1")), 1);
}
END_TEST

START_TEST (test_route_avoids_host_memory)
{
  /* Through host memory is 2 x 0.1 us, through s1 2 x 1 us: the longer
   * route wins because host memory is not a router.  Host memory itself is
   * still reached directly. */
  g_autoptr (MsimTopology) t = load_diamond ("1e-6", "1e-6", "0.5", "0.5", "0.5", "0.1e-6");
  gint64 lat = 0;
  g_autofree char *r = route_by_name (t, "g0", "g1", 0, &lat);
  ck_assert_str_eq (r, "g0 > s1 > g1");
  ck_assert_int_eq (lat, 2000000);
  g_autofree char *h = route_by_name (t, "g1", "h", 0, &lat);
  ck_assert_str_eq (h, "g1 > h");
  g_autofree char *from_h = route_by_name (t, "h", "s2", 0, &lat);
  ck_assert_str_eq (from_h, "h > g0 > s2");
  ck_assert_int_eq (lat, G_GINT64_CONSTANT (500000100000));

  /* When host memory is the only connection, it is used. */
  g_autoptr (MsimTopology) only
      = load_str ("[topology]\n[vertex.h]\nkind = host\n[vertex.g0]\nkind = gpu\nhost = h\n"
                  "[vertex.g1]\nkind = gpu\nhost = h\n"
                  "[link.x]\na = g0\nb = h\nbandwidth = 1e9\n"
                  "[link.y]\na = h\nb = g1\nbandwidth = 1e9\n");
  g_autofree char *o = route_by_name (only, "g0", "g1", 0, NULL);
  ck_assert_str_eq (o, "g0 > h > g1");
}
END_TEST

START_TEST (test_route_width_tie_break)
{
  /* Two 2-hop zero-latency paths: NVLink through a switch, PCIe through a
   * NIC.  The wider one is the only equal-cost path. */
  g_autoptr (MsimTopology) t
      = load_str ("[topology]\n[vertex.h]\nkind = host\n"
                  "[vertex.g0]\nkind = gpu\nhost = h\n[vertex.g1]\nkind = gpu\nhost = h\n"
                  "[vertex.nic]\nkind = nic\n[vertex.nvs]\nkind = switch\n"
                  "[link.p0]\na = g0\nb = nic\nbandwidth = 63e9\ntype = pcie\n"
                  "[link.p1]\na = nic\nb = g1\nbandwidth = 63e9\ntype = pcie\n"
                  "[link.n0]\na = g0\nb = nvs\nbandwidth = 450e9\ntype = nvlink\n"
                  "[link.n1]\na = nvs\nb = g1\nbandwidth = 450e9\ntype = nvlink\n"
                  "[link.h0]\na = h\nb = g0\nbandwidth = 63e9\n"
                  "[link.h1]\na = h\nb = g1\nbandwidth = 63e9\n");
  g_autofree char *r = route_by_name (t, "g0", "g1", 0, NULL);
  ck_assert_str_eq (r, "g0 > nvs > g1");
  ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "g0"), vtx (t, "g1")), 1);
  /* The NIC is still reachable, over PCIe. */
  g_autofree char *n = route_by_name (t, "g1", "nic", 0, NULL);
  ck_assert_str_eq (n, "g1 > nic");
}
END_TEST

START_TEST (test_route_too_long)
{
  /* A chain of 40 switches between two GPUs: 41 hops. */
  g_autoptr (GString) s = g_string_new ("[topology]\n[vertex.h]\nkind = host\n"
                                        "[vertex.g0]\nkind = gpu\nhost = h\n"
                                        "[vertex.g1]\nkind = gpu\nhost = h\n"
                                        "[link.h0]\na = h\nb = g0\nbandwidth = 1e9\n");
  for (int i = 0; i < 40; i++)
    g_string_append_printf (s, "[vertex.s%d]\nkind = switch\n", i);
  for (int i = 0; i <= 40; i++)
    g_string_append_printf (s, "[link.c%d]\na = %s%d\nb = %s%d\nbandwidth = 1e9\n", i,
                            i == 0 ? "g" : "s", i == 0 ? 0 : i - 1, i == 40 ? "g" : "s",
                            i == 40 ? 1 : i);
  g_autoptr (MsimTopology) t = load_str (s->str);
  MsimRoute r;
  g_autoptr (GError) error = NULL;
  ck_assert (!msim_topology_route (t, vtx (t, "g0"), vtx (t, "g1"), 0, &r, &error));
  ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_LIMIT));
  ck_assert_ptr_nonnull (strstr (error->message, "41 hops"));
  ck_assert_uint_eq (msim_topology_n_paths (t, vtx (t, "g0"), vtx (t, "g1")), 1);
  ck_assert (!msim_topology_path (t, vtx (t, "g0"), vtx (t, "g1"), 0, &r));
  /* 32 hops is still fine. */
  ck_assert (msim_topology_route (t, vtx (t, "g0"), vtx (t, "s31"), 0, &r, NULL));
  ck_assert_uint_eq (r.n_links, 32);
}
END_TEST

/* ------------------------------------------------------------------ */
/* ECMP and split                                                      */

static const char *ecmp_fat_tree
    = "[topology]\nbuilder = fat-tree\nnodes = 2\ngpus_per_node = 1\nintra = mesh\n"
      "nvlink_bandwidth = 100e9\npcie_bandwidth = 31.5e9\nnics_per_node = 1\n"
      "nic_bandwidth = 25e9\nnodes_per_leaf = 1\nspines = 4\n";

START_TEST (test_ecmp_spread)
{
  g_autoptr (MsimTopology) t = load_str (ecmp_fat_tree);
  g_autoptr (MsimTopology) t2 = load_str (ecmp_fat_tree);
  guint a = vtx (t, "node0.gpu0"), b = vtx (t, "node1.gpu0");
  ck_assert_uint_eq (msim_topology_n_paths (t, a, b), 4);
  guint per_spine[4] = { 0 };
  const guint flows = 4000;
  for (guint64 f = 0; f < flows; f++)
    {
      MsimRoute r, again, other;
      ck_assert (msim_topology_route (t, a, b, f, &r, NULL));
      ck_assert (msim_topology_route (t, a, b, f, &again, NULL));
      ck_assert (msim_topology_route (t2, a, b, f, &other, NULL));
      ck_assert_uint_eq (r.n_links, 6);
      ck_assert_mem_eq (r.links, again.links, sizeof (guint32) * r.n_links);
      ck_assert_mem_eq (r.links, other.links, sizeof (guint32) * r.n_links);
      const char *spine = msim_topology_vertex_name (t, msim_topology_link_dst (t, r.links[2]));
      ck_assert (g_str_has_prefix (spine, "spine"));
      per_spine[spine[5] - '0']++;
    }
  /* Binomial(4000, 1/4): sd ~ 27, so +-150 is more than 5 sd. */
  for (int k = 0; k < 4; k++)
    ck_assert_msg (per_spine[k] > 850 && per_spine[k] < 1150, "spine%d got %u of %u flows", k,
                   per_spine[k], flows);
}
END_TEST

START_TEST (test_ecmp_uniform_over_paths)
{
  /* On a torus the equal-cost paths share prefixes unevenly; weighting the
   * per-hop choice by path counts still makes all 24 paths equally likely. */
  g_autoptr (MsimTopology) t = load_str ("[topology]\nbuilder = torus2d\nrows = 4\ncols = 4\n"
                                         "link_bandwidth = 50e9\npcie_bandwidth = 31.5e9\n");
  guint a = msim_topology_gpu_vertex (t, 0), b = msim_topology_gpu_vertex (t, 10);
  guint n = msim_topology_n_paths (t, a, b);
  ck_assert_uint_eq (n, 24);
  g_autoptr (GHashTable) index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint k = 0; k < n; k++)
    {
      MsimRoute p;
      ck_assert (msim_topology_path (t, a, b, k, &p));
      char *key = route_string (t, &p);
      ck_assert_msg (!g_hash_table_contains (index, key), "path %u repeats %s", k, key);
      g_hash_table_insert (index, key, GUINT_TO_POINTER (k));
    }
  guint hits[24] = { 0 };
  const guint flows = 24000;
  for (guint64 f = 0; f < flows; f++)
    {
      MsimRoute r;
      ck_assert (msim_topology_route (t, a, b, f, &r, NULL));
      g_autofree char *key = route_string (t, &r);
      gpointer k = NULL;
      ck_assert_msg (g_hash_table_lookup_extended (index, key, NULL, &k), "ECMP chose %s", key);
      hits[GPOINTER_TO_UINT (k)]++;
    }
  /* Binomial(24000, 1/24): mean 1000, sd ~ 31. */
  for (guint k = 0; k < n; k++)
    ck_assert_msg (hits[k] > 830 && hits[k] < 1170, "path %u got %u of %u flows", k, hits[k],
                   flows);
}
END_TEST

START_TEST (test_split_paths)
{
  g_autofree char *text = g_strconcat (ecmp_fat_tree, "routing = split\n", NULL);
  g_autoptr (MsimTopology) t = load_str (text);
  ck_assert_int_eq (msim_topology_routing_mode (t), MSIM_ROUTING_SPLIT);
  guint a = vtx (t, "node0.gpu0"), b = vtx (t, "node1.gpu0");
  guint n = msim_topology_n_paths (t, a, b);
  ck_assert_uint_eq (n, 4);
  gboolean seen[4] = { FALSE };
  for (guint k = 0; k < n; k++)
    {
      MsimRoute p, q;
      ck_assert (msim_topology_path (t, a, b, k, &p));
      ck_assert (msim_topology_path (t, a, b, k, &q));
      ck_assert_mem_eq (p.links, q.links, sizeof (guint32) * p.n_links);
      ck_assert_uint_eq (p.n_links, 6);
      const char *spine = msim_topology_vertex_name (t, msim_topology_link_dst (t, p.links[2]));
      /* Paths are numbered in link order: spine k is path k. */
      ck_assert_int_eq (spine[5] - '0', (int)k);
      seen[k] = TRUE;
    }
  ck_assert (seen[0] && seen[1] && seen[2] && seen[3]);
  MsimRoute r;
  ck_assert (!msim_topology_path (t, a, b, 4, &r));

  /* More equal paths than the cap: an 8x8 torus, (0,0) to (4,4), has
   * 2 x 2 x C(8,4) = 280; 64 distinct ones are enumerated. */
  g_autoptr (MsimTopology) big = load_str ("[topology]\nbuilder = torus2d\nrows = 8\ncols = 8\n"
                                           "link_bandwidth = 50e9\npcie_bandwidth = 31.5e9\n");
  guint s = msim_topology_gpu_vertex (big, 0), d = msim_topology_gpu_vertex (big, 36);
  ck_assert_uint_eq (msim_topology_n_paths (big, s, d), MSIM_TOPOLOGY_MAX_PATHS);
  g_autoptr (GHashTable) distinct = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint k = 0; k < MSIM_TOPOLOGY_MAX_PATHS; k++)
    {
      MsimRoute p;
      ck_assert (msim_topology_path (big, s, d, k, &p));
      ck_assert_uint_eq (p.n_links, 8);
      g_hash_table_add (distinct, route_string (big, &p));
    }
  ck_assert_uint_eq (g_hash_table_size (distinct), MSIM_TOPOLOGY_MAX_PATHS);
  ck_assert (!msim_topology_path (big, s, d, MSIM_TOPOLOGY_MAX_PATHS, &r));
  /* ECMP still uses links beyond the first 64 paths: over many flows every
   * first hop (right, left, down, up) appears. */
  g_autoptr (GHashTable) first = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (guint64 f = 0; f < 1000; f++)
    {
      ck_assert (msim_topology_route (big, s, d, f, &r, NULL));
      g_hash_table_add (first, GUINT_TO_POINTER (r.links[0] + 1));
    }
  ck_assert_uint_eq (g_hash_table_size (first), 4);
}
END_TEST

/* Route queries from several threads at once build each source's cache
 * exactly once and agree with a single-threaded run. */
typedef struct
{
  MsimTopology *topo;
  guint64 checksum;
} ThreadJob;

static gpointer
route_all_pairs (gpointer data)
{
  ThreadJob *job = data;
  guint n = msim_topology_n_gpus (job->topo);
  guint64 sum = 0;
  for (guint s = 0; s < n; s++)
    for (guint d = 0; d < n; d++)
      {
        MsimRoute r;
        g_assert (msim_topology_route (job->topo, msim_topology_gpu_vertex (job->topo, s),
                                       msim_topology_gpu_vertex (job->topo, d), s * 131 + d, &r,
                                       NULL));
        for (guint i = 0; i < r.n_links; i++)
          sum = sum * 1000003 + r.links[i];
      }
  job->checksum = sum;
  return NULL;
}

START_TEST (test_route_threads)
{
  g_autoptr (MsimTopology) serial = load_preset ("wilkes3", "nodes=20");
  ThreadJob ref = { serial, 0 };
  route_all_pairs (&ref);
  g_autoptr (MsimTopology) shared = load_preset ("wilkes3", "nodes=20");
  ThreadJob jobs[4];
  GThread *threads[4];
  for (int i = 0; i < 4; i++)
    {
      jobs[i] = (ThreadJob){ shared, 0 };
      threads[i] = g_thread_new ("routes", route_all_pairs, &jobs[i]);
    }
  for (int i = 0; i < 4; i++)
    {
      g_thread_join (threads[i]);
      ck_assert_uint_eq (jobs[i].checksum, ref.checksum);
    }
}
END_TEST

/* All routes between the 1024 GPUs of the benchmark cluster, including the
 * lazy per-source computation.  Under valgrind the cluster is smaller. */
START_TEST (test_route_speed)
{
  gboolean slow = g_getenv ("MSIM_UNDER_VALGRIND") != NULL;
  g_autoptr (MsimTopology) t = load_preset ("dgx-h100-cluster", slow ? "nodes=4" : "nodes=128");
  guint n = msim_topology_n_gpus (t);
  gint64 t0 = g_get_monotonic_time ();
  guint64 hops = 0;
  guint failed = 0;
  /* No ck_assert inside the loop: Check records every passing assertion
   * (a write to its pipe in fork mode), which would be timed too. */
  for (guint s = 0; s < n; s++)
    for (guint d = 0; d < n; d++)
      if (s != d)
        {
          MsimRoute r;
          failed += !msim_topology_route (t, msim_topology_gpu_vertex (t, s),
                                          msim_topology_gpu_vertex (t, d), d, &r, NULL);
          hops += r.n_links;
        }
  double seconds = (double)(g_get_monotonic_time () - t0) / 1e6;
  ck_assert_uint_eq (failed, 0);
  /* Same node: 2 hops; same rail: 4; other rail via a spine: 6. */
  guint64 per_src = 7 * 2 + (guint64)(n / 8 - 1) * (4 + 7 * 6);
  ck_assert_uint_eq (hops, per_src * n);
  /* The time limit holds for optimised builds without sanitizers (about
   * 0.35 s on a 2-core machine); other builds only check the hops. */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
  if (!slow)
    ck_assert_msg (seconds < 3.0, "%u x %u routes took %.2f s", n, n - 1, seconds);
#endif
  if (g_getenv ("MSIM_VERBOSE_TIMING") != NULL)
    g_printerr ("%u x %u GPU routes: %.3f s\n", n, n - 1, seconds);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Validation                                                          */

typedef struct
{
  const char *text;
  const char *expect[3]; /* substrings of the message */
} BadCase;

#define HOSTED "[vertex.h]\nkind = host\n[vertex.g0]\nkind = gpu\nhost = h\n"
#define LINK_H "[link.h0]\na = h\nb = g0\nbandwidth = 1e9\n"
#define NVS    "builder = nvswitch\ngpus = 2\nnvlink_bandwidth = 1e9\npcie_bandwidth = 1e9\n"

static const BadCase bad_cases[] = {
  /* unknown keys and groups */
  { "[topology]\nbogus = 1\n", { "t.ini:2: [topology] bogus", "unknown key" } },
  { "[topology]\n" NVS "[switches]\n", { "t.ini:6: [switches]", "unknown group" } },
  { "[topology]\n" HOSTED "color = red\n", { "t.ini:7: [vertex.g0] color", "unknown key" } },
  { "[topology]\n" NVS "rows = 2\n", { "t.ini:6: [topology] rows", "unknown key" } },
  { "[topology]\nbuilder = hypercube\n",
    { "t.ini:2: [topology] builder", "unknown builder 'hypercube'", "rail" } },
  { "[topology]\nrouting = random\n" NVS, { "t.ini:2: [topology] routing", "ecmp" } },
  { "# nothing here\n", { "t.ini", "no [topology] group" } },
  { "[model]\nexperts = 8\n[topology]\n" NVS, { "t.ini:1: [model]", "unknown group" } },
  /* links to nowhere */
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = nope\nbandwidth = 1e9\n",
    { "t.ini:9: [link.l] b", "unknown vertex 'nope'" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nbandwidth = 1e9\n",
    { "t.ini:7: [link.l]", "missing required key 'b'" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = g0\nbandwidth = 1e9\n",
    { "t.ini:9: [link.l] b", "to itself" } },
  /* bandwidth and latency */
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = 0\n",
    { "t.ini:10: [link.l] bandwidth", "positive" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = -5e9\n",
    { "t.ini:10: [link.l] bandwidth", "positive" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = nan\n",
    { "t.ini:10: [link.l] bandwidth", "finite number" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = 400e12e3\n",
    { "t.ini:10: [link.l] bandwidth" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = 4e18\n",
    { "t.ini:10: [link.l] bandwidth", "not bits" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = 1e9\nlatency = -1e-6\n",
    { "t.ini:11: [link.l] latency", "negative" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = 1e9\nlatency = 5\n",
    { "t.ini:11: [link.l] latency", "seconds" } },
  { "[topology]\n" HOSTED "[link.l]\na = g0\nb = h\nbandwidth = 1e9\ntype = copper\n",
    { "t.ini:11: [link.l] type", "nvlink" } },
  { "[topology]\n" NVS "pcie_latency = inf\n", { "t.ini:6: [topology] pcie_latency" } },
  /* names */
  { "[topology]\n" NVS "[vertex.node0.gpu0]\nkind = gpu\nhost = node0.host\n",
    { "t.ini:6: [vertex.node0.gpu0]", "duplicate vertex name 'node0.gpu0'", "builder" } },
  { "[topology]\n" HOSTED "[vertex.g0]\nkind = gpu\nhost = h\n",
    { "t.ini:7:", "duplicate group [vertex.g0]" } },
  { "[topology]\n" HOSTED "[vertex.bad name]\nkind = switch\n",
    { "[vertex.bad name]", "invalid vertex name" } },
  { "[topology]\n[vertex.g0]\nkind = gpu\nhost = nowhere\n",
    { "t.ini:4: [vertex.g0] host", "unknown host 'nowhere'" } },
  { "[topology]\n[vertex.s]\nkind = switch\n[vertex.g0]\nkind = gpu\nhost = s\n",
    { "t.ini:6: [vertex.g0] host", "is a switch, not a host" } },
  { "[topology]\n" HOSTED "[vertex.s]\nkind = switch\nhost = h\n",
    { "t.ini:9: [vertex.s] host", "only GPUs" } },
  { "[topology]\n[vertex.g0]\nkind = gpu\n", { "t.ini:2: [vertex.g0]", "'host'" } },
  { "[topology]\n[vertex.x]\nkind = tpu\n", { "t.ini:3: [vertex.x] kind", "gpu, switch" } },
  /* connectivity */
  { "[topology]\n" HOSTED LINK_H "[vertex.g1]\nkind = gpu\nhost = h\n",
    { "t.ini:12: [vertex.g1] kind", "GPUs 'g1' and 'g0' are not connected" } },
  { "[topology]\n" HOSTED LINK_H "[vertex.s]\nkind = switch\n",
    { "t.ini:12: [vertex.s] kind", "switch 's' is not connected" } },
  { "[topology]\n[vertex.s]\nkind = switch\n", { "t.ini:1: [topology]", "no GPUs" } },
  { "[topology]\nbuilder = fat-tree\nnodes = 4\ngpus_per_node = 1\nnvlink_bandwidth = 1e9\n"
    "pcie_bandwidth = 1e9\nnics_per_node = 1\nnic_bandwidth = 1e9\nnodes_per_leaf = 2\n",
    { "t.ini:1: [topology]", "spines", "2 leaves" } },
  /* builder keys and sizes */
  { "[topology]\nbuilder = nvswitch\ngpus = 8\npcie_bandwidth = 1e9\n",
    { "t.ini:1: [topology]", "missing required key 'nvlink_bandwidth'" } },
  { "[topology]\nbuilder = nvswitch\ngpus = 1e9\n",
    { "t.ini:3: [topology] gpus", "out of range", "65536" } },
  { "[topology]\nbuilder = rail\nnodes = 60000\ngpus_per_node = 8\nnvlink_bandwidth = 1e9\n"
    "pcie_bandwidth = 1e9\nnics_per_node = 8\nnic_bandwidth = 1e9\n",
    { "t.ini:3: [topology] nodes", "480000 GPUs", "limit" } },
  { "[topology]\nbuilder = nvswitch\ngpus = 8\ngpus_per_host = 3\nnvlink_bandwidth = 1e9\n"
    "pcie_bandwidth = 1e9\n",
    { "t.ini:4: [topology] gpus_per_host", "evenly" } },
  { "[topology]\nbuilder = rail\nnodes = 2\ngpus_per_node = 8\nnvlink_bandwidth = 1e9\n"
    "pcie_bandwidth = 1e9\nnics_per_node = 3\nnic_bandwidth = 1e9\n",
    { "t.ini:7: [topology] nics_per_node", "evenly" } },
  { "[topology]\nbuilder = pcie-tree\ngpus = 4\ngpus_per_switch = 2\npcie_bandwidth = 1e9\n"
    "nvlink_bandwidth = 1e9\n",
    { "t.ini:6: [topology] nvlink_bandwidth", "nvlink_bridges is false" } },
  { "[topology]\nbuilder = ring\ngpus = 100\nlink_bandwidth = 1e9\npcie_bandwidth = 1e9\n",
    { "t.ini:3: [topology] gpus", "out of range" } },
  { "[topology]\nbuilder = torus2d\nrows = 40\ncols = 40\nlink_bandwidth = 1e9\n"
    "pcie_bandwidth = 1e9\n",
    { "t.ini:4: [topology] cols", "40 hops" } },
  /* link efficiencies: fractions in [0.05, 1] */
  { "[topology]\n" NVS "nvlink_efficiency = 82\n",
    { "t.ini:6: [topology] nvlink_efficiency", "fraction" } },
  { "[topology]\n" NVS "pcie_efficiency = 0\n",
    { "t.ini:6: [topology] pcie_efficiency", "got 0" } },
  { "[topology]\n" HOSTED LINK_H "efficiency = 1.5\n",
    { "t.ini:11: [link.h0] efficiency", "got 1.5" } },
  { "[topology]\n" NVS "nvlink_efficency = 0.8\n",
    { "t.ini:6: [topology] nvlink_efficency", "unknown key" } },
  /* NCCL tuning keys: a known GPU generation; NVLS needs Hopper */
  { "[topology]\n" NVS "gpu_arch = blackwell\n",
    { "t.ini:6: [topology] gpu_arch", "blackwell" } },
  { "[topology]\n" NVS "nvls = true\n", { "t.ini:6: [topology] nvls", "gpu_arch = hopper" } },
  { "[topology]\n" NVS "gpu_arch = ampere\nnvls = true\n",
    { "[topology] nvls", "got gpu_arch = ampere" } },
};

START_TEST (test_validation)
{
  const BadCase *c = &bad_cases[_i];
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimTopology) t = msim_topology_load_data (c->text, -1, "t.ini", &error);
  ck_assert_msg (t == NULL, "case %d loaded:\n%s", _i, c->text);
  ck_assert_msg (error != NULL && error->domain == MSIM_ERROR, "case %d: no MSIM_ERROR", _i);
  ck_assert_msg (error->code == MSIM_ERROR_INPUT, "case %d: code %d (%s)", _i, error->code,
                 error->message);
  for (int k = 0; k < 3 && c->expect[k]; k++)
    ck_assert_msg (strstr (error->message, c->expect[k]) != NULL,
                   "case %d: '%s' not in message '%s'", _i, c->expect[k], error->message);
}
END_TEST

/* gpu_arch and nvls: unknown / false unless set; the presets state them. */
START_TEST (test_nccl_keys)
{
  g_autoptr (MsimTopology) t = load_str ("[topology]\n" NVS);
  ck_assert_int_eq (msim_topology_gpu_arch (t), MSIM_GPU_ARCH_UNKNOWN);
  ck_assert (!msim_topology_nvls (t));
  g_autoptr (MsimTopology) h = load_str ("[topology]\n" NVS "gpu_arch = hopper\nnvls = true\n");
  ck_assert_int_eq (msim_topology_gpu_arch (h), MSIM_GPU_ARCH_HOPPER);
  ck_assert (msim_topology_nvls (h));
  const char *presets[] = { "dgx-a100", "wilkes3", "dgx-h100", "dgx-h100-cluster" };
  const MsimGpuArch archs[] = { MSIM_GPU_ARCH_AMPERE, MSIM_GPU_ARCH_AMPERE, MSIM_GPU_ARCH_HOPPER,
                                MSIM_GPU_ARCH_HOPPER };
  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    {
      const char *small[] = { "nodes=2", NULL };
      g_autoptr (GError) error = NULL;
      g_autoptr (MsimTopology) p = msim_topology_load_preset (
          presets[i], g_str_has_suffix (presets[i], "cluster") ? small : NULL, &error);
      ck_assert_msg (p != NULL, "%s: %s", presets[i], error ? error->message : "");
      ck_assert_int_eq (msim_topology_gpu_arch (p), archs[i]);
      ck_assert (!msim_topology_nvls (p));
    }
}
END_TEST

/* Link efficiency: 1 unless set; the [topology] key of a link type applies
 * to every link of that type; an explicit link's `efficiency` wins; the
 * line rate (routing's width) is unchanged. */
START_TEST (test_link_efficiency)
{
  g_autoptr (MsimTopology) t = load_str ("[topology]\n" NVS "nvlink_efficiency = 0.824\n"
                                         "[link.extra]\na = node0.gpu0\nb = node0.gpu1\n"
                                         "bandwidth = 2e9\ntype = nvlink\nefficiency = 0.5\n");
  guint nvl = 0, pcie = 0, extra = 0;
  for (guint e = 0; e < msim_topology_n_links (t); e++)
    {
      double eff = msim_topology_link_efficiency (t, e);
      double cap = msim_topology_link_capacity (t, e);
      msim_ck_assert_near (msim_topology_link_effective_capacity (t, e), cap * eff, 1e-15);
      if (msim_topology_link_type (t, e) == MSIM_LINK_PCIE)
        {
          ck_assert (eff == 1.0);
          pcie++;
        }
      else if (cap == 2e9)
        {
          ck_assert (eff == 0.5);
          extra++;
        }
      else
        {
          ck_assert (msim_topology_link_type (t, e) == MSIM_LINK_NVLINK);
          ck_assert (eff == 0.824 && cap == 1e9);
          nvl++;
        }
    }
  ck_assert_uint_eq (nvl, 4);   /* two GPU-switch links, both directions */
  ck_assert_uint_eq (extra, 2); /* the explicit link, both directions */
  ck_assert_uint_eq (pcie, 4);

  /* Presets state an efficiency for every link type they use. */
  g_auto (GStrv) names = msim_topology_list_presets ();
  for (char **n = names; *n; n++)
    {
      g_autofree char *path = msim_topology_preset_path (*n);
      g_autoptr (MsimTopology) p = msim_topology_load (path, NULL);
      ck_assert_msg (p != NULL, "preset %s", *n);
      for (guint e = 0; e < msim_topology_n_links (p); e++)
        {
          double eff = msim_topology_link_efficiency (p, e);
          ck_assert_msg (eff > 0.5 && eff < 1.0, "preset %s link %s: efficiency %g", *n,
                         msim_topology_link_name (p, e), eff);
        }
    }
}
END_TEST

START_TEST (test_load_file_and_include)
{
  g_autofree char *dir = g_dir_make_tmp ("msim-topo-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "small.ini", NULL);
  /* A file that includes a preset, overrides its size and adds a direct
   * cable between two nodes (a heterogeneous extra link). */
  const char *text = "[topology]\ninclude = topology/presets/wilkes3.ini\nname = mini\n"
                     "nodes = 2\n"
                     "[link.cable]\na = node0.gpu0\nb = node1.gpu0\nbandwidth = 12.5e9\n"
                     "latency = 1e-6\ntype = ethernet\n";
  ck_assert (g_file_set_contents (path, text, -1, NULL));
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimTopology) t = msim_topology_load (path, &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  ck_assert_str_eq (msim_topology_name (t), "mini");
  ck_assert_uint_eq (msim_topology_n_gpus (t), 8);
  ck_assert_uint_eq (count_links (t, MSIM_LINK_ETHERNET, 12.5e9), 1);
  gint64 lat = 0;
  g_autofree char *r = route_by_name (t, "node0.gpu0", "node1.gpu0", 0, &lat);
  ck_assert_str_eq (r, "node0.gpu0 > node1.gpu0");
  ck_assert_int_eq (lat, 1000000);
  ck_assert_str_eq (msim_topology_origin (t), path);
  g_unlink (path);

  /* Errors in a missing file are I/O errors. */
  ck_assert (msim_topology_load (path, &error) == NULL);
  ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_IO));
  g_rmdir (dir);

  /* new_from_ini leaves unknown groups to the caller (a full config). */
  const char *cfg = "[model]\nx = 1\n[topology]\n" NVS;
  g_autoptr (MsimIni) ini = msim_ini_load_data (cfg, strlen (cfg), "cfg.ini", NULL);
  ck_assert_ptr_nonnull (ini);
  g_autoptr (MsimTopology) fromini = msim_topology_new_from_ini (ini, &error);
  ck_assert_msg (fromini != NULL, "%s", error ? error->message : "");
  ck_assert_uint_eq (msim_topology_n_gpus (fromini), 2);
  const char *const *groups = msim_topology_ini_groups ();
  ck_assert_str_eq (groups[0], "topology");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Export                                                              */

START_TEST (test_export)
{
  g_autoptr (MsimTopology) t = load_preset ("wilkes3", "nodes=4");
  g_autofree char *dir = g_dir_make_tmp ("msim-topo-XXXXXX", NULL);
  g_autofree char *gml = g_build_filename (dir, "t.graphml", NULL);
  g_autofree char *dot = g_build_filename (dir, "t.dot", NULL);
  g_autoptr (GError) error = NULL;
  ck_assert_msg (msim_topology_export (t, "graphml", gml, &error), "%s",
                 error ? error->message : "");
  ck_assert_msg (msim_topology_export (t, "dot", dot, &error), "%s", error ? error->message : "");

  igraph_set_error_handler (igraph_error_handler_printignore);
  FILE *f = fopen (gml, "r");
  ck_assert_ptr_nonnull (f);
  igraph_t g;
  ck_assert_int_eq (igraph_read_graph_graphml (&g, f, 0), IGRAPH_SUCCESS);
  fclose (f);
  ck_assert_int_eq (igraph_vcount (&g), msim_topology_n_vertices (t));
  ck_assert_int_eq (igraph_ecount (&g), msim_topology_n_links (t));
  ck_assert (igraph_is_directed (&g));
  ck_assert_str_eq (VAS (&g, "name", 1), msim_topology_vertex_name (t, 1));
  msim_ck_assert_near (EAN (&g, "capacity", 0), msim_topology_link_capacity (t, 0), 1e-12);
  msim_ck_assert_near (EAN (&g, "latency", 0), msim_topology_link_latency_ps (t, 0) * 1e-12, 1e-12);
  igraph_destroy (&g);

  g_autofree char *dot_text = NULL;
  ck_assert (g_file_get_contents (dot, &dot_text, NULL, NULL));
  ck_assert (g_str_has_prefix (dot_text, "/*") || g_str_has_prefix (dot_text, "digraph"));
  ck_assert_ptr_nonnull (strstr (dot_text, "digraph"));
  ck_assert_ptr_nonnull (strstr (dot_text, "label=\"node0.gpu0\""));

  /* Atomic writes leave no temporary files behind. */
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint entries = 0;
  while (g_dir_read_name (d) != NULL)
    entries++;
  ck_assert_uint_eq (entries, 2);

  /* Failures write nothing. */
  g_autofree char *bad = g_build_filename (dir, "t.json", NULL);
  ck_assert (!msim_topology_export (t, "json", bad, &error));
  ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_INPUT));
  g_clear_error (&error);
  ck_assert (!g_file_test (bad, G_FILE_TEST_EXISTS));
  g_autofree char *nodir = g_build_filename (dir, "missing", "t.graphml", NULL);
  ck_assert (!msim_topology_export (t, "graphml", nodir, &error));
  ck_assert (g_error_matches (error, MSIM_ERROR, MSIM_ERROR_IO));

  g_unlink (gml);
  g_unlink (dot);
  g_rmdir (dir);
}
END_TEST

START_TEST (test_graph_attributes)
{
  g_autoptr (MsimTopology) t = load_preset ("dgx-h100", NULL);
  const igraph_t *g = msim_topology_graph (t);
  ck_assert_int_eq (igraph_vcount (g), msim_topology_n_vertices (t));
  ck_assert_int_eq (igraph_ecount (g), msim_topology_n_links (t));
  for (guint e = 0; e < msim_topology_n_links (t); e++)
    {
      igraph_integer_t from, to;
      igraph_edge (g, e, &from, &to);
      ck_assert_int_eq (from, msim_topology_link_src (t, e));
      ck_assert_int_eq (to, msim_topology_link_dst (t, e));
      ck_assert (EAN (g, "capacity", e) == msim_topology_link_capacity (t, e));
      ck_assert_str_eq (EAS (g, "type", e), msim_link_type_name (msim_topology_link_type (t, e)));
    }
  ck_assert_str_eq (VAS (g, "kind", msim_topology_gpu_vertex (t, 0)), "gpu");
  ck_assert (VAN (g, "host", msim_topology_host_vertex (t, 0)) == 0);
  ck_assert (VAN (g, "host", (igraph_integer_t)vtx (t, "nvswitch")) == -1);
}
END_TEST

static Suite *
topology_suite (void)
{
  Suite *s = suite_create ("topology");

  TCase *tc = tcase_create ("builders");
  tcase_add_test (tc, test_builder_nvswitch);
  tcase_add_test (tc, test_builder_mesh);
  tcase_add_test (tc, test_builder_pcie_tree);
  tcase_add_test (tc, test_builder_ring);
  tcase_add_test (tc, test_builder_torus);
  tcase_add_test (tc, test_builder_rail);
  tcase_add_test (tc, test_builder_fat_tree);
  suite_add_tcase (s, tc);

  tc = tcase_create ("presets");
  tcase_add_test (tc, test_preset_dgx);
  tcase_add_test (tc, test_preset_wilkes3);
  tcase_add_test (tc, test_preset_cluster);
  tcase_add_test (tc, test_preset_all_load);
  suite_add_tcase (s, tc);

  tc = tcase_create ("routes");
  tcase_add_test (tc, test_route_latency_first);
  tcase_add_test (tc, test_route_hops_tie_break);
  tcase_add_test (tc, test_route_avoids_host_memory);
  tcase_add_test (tc, test_route_width_tie_break);
  tcase_add_test (tc, test_route_too_long);
  tcase_add_test (tc, test_route_threads);
  tcase_add_test (tc, test_route_speed);
  suite_add_tcase (s, tc);

  tc = tcase_create ("ecmp-split");
  tcase_add_test (tc, test_ecmp_spread);
  tcase_add_test (tc, test_ecmp_uniform_over_paths);
  tcase_add_test (tc, test_split_paths);
  suite_add_tcase (s, tc);

  tc = tcase_create ("validation");
  tcase_add_loop_test (tc, test_validation, 0, G_N_ELEMENTS (bad_cases));
  tcase_add_test (tc, test_load_file_and_include);
  tcase_add_test (tc, test_link_efficiency);
  tcase_add_test (tc, test_nccl_keys);
  suite_add_tcase (s, tc);

  tc = tcase_create ("export");
  tcase_add_test (tc, test_export);
  tcase_add_test (tc, test_graph_attributes);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (topology_suite)
