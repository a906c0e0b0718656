/* Builders: common cluster shapes from a few [topology] keys.
 *
 * Conventions shared by every builder (documented in topology/README.md):
 *  - a machine is "nodeN"; its host memory is "nodeN.host", its GPUs
 *    "nodeN.gpuI", its NICs "nodeN.nicJ", its NVSwitch "nodeN.nvswitch";
 *  - every GPU has a PCIe link to its host memory (offloaded experts move
 *    over it), except in pcie-tree where the GPUs reach host memory through
 *    their PCIe switch, which is the point of that builder;
 *  - NICs attach where they do physically, on PCIe: each NIC has a PCIe link
 *    to the GPU(s) it serves (GPUDirect RDMA through their shared PCIe
 *    switch) and one to host memory;
 *  - bandwidths are bytes/s per direction, latencies seconds (default 0);
 *    bandwidth keys have no defaults: the hardware must be stated, by the
 *    user or by a preset that cites its sources;
 *  - one graph link may stand for several cables (e.g. the 12 NVLinks of an
 *    A100 to the six NVSwitch chips of a DGX are one GPU-to-"nvswitch" link
 *    of 300 GB/s); the NVSwitch fabric is non-blocking, so this loses
 *    nothing at flow level.
 * Sizes are checked against the MSIM_TOPOLOGY_MAX_* limits before any
 * vertex is created. */
#include "topology-private.h"

#include <math.h>
#include <string.h>

#include "msim-error.h"

#define G "topology"

typedef struct
{
  MsimTopology *topo;
  const MsimIni *ini;
  GError **error;
} Ctx;

static gint64 G_GNUC_PRINTF (4, 5)
    vertex (Ctx *c, MsimVertexKind kind, gint32 host, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *name = g_strdup_vprintf (format, ap);
  va_end (ap);
  return msim_topology_add_vertex (c->topo, name, kind, host, NULL, c->ini, c->error);
}

static gint64
host_vertex (Ctx *c, guint node)
{
  g_autofree char *name = g_strdup_printf ("node%u.host", node);
  return msim_topology_add_host (c->topo, name, NULL, c->ini, NULL, c->error);
}

static gboolean
add_link (Ctx *c, guint a, guint b, double bw, gint64 lat, MsimLinkType type)
{
  return msim_topology_add_link (c->topo, a, b, bw, lat, type, NULL, c->ini, c->error);
}

static gboolean
count (Ctx *c, const char *key, gboolean required, gint64 def, gint64 min, gint64 max, gint64 *out)
{
  return msim_ini_get_int64 (c->ini, G, key, required, def, min, max, out, c->error);
}

static gboolean
bandwidth (Ctx *c, const char *key, double *out)
{
  return msim_topology_get_bandwidth (c->ini, G, key, out, c->error);
}

/* An optional bandwidth that defaults to another one. */
static gboolean
bandwidth_or (Ctx *c, const char *key, double def, double *out)
{
  if (!msim_ini_has_key (c->ini, G, key))
    {
      *out = def;
      return TRUE;
    }
  return bandwidth (c, key, out);
}

static gboolean
latency (Ctx *c, const char *key, gint64 *out)
{
  return msim_topology_get_latency (c->ini, G, key, out, c->error);
}

static gboolean
latency_or (Ctx *c, const char *key, gint64 def, gint64 *out)
{
  if (!msim_ini_has_key (c->ini, G, key))
    {
      *out = def;
      return TRUE;
    }
  return latency (c, key, out);
}

static gboolean fail (Ctx *c, const char *key, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (Ctx *c, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  msim_ini_set_error (c->ini, c->error, G, key, "%s", msg);
  return FALSE;
}

/* Checks the totals a builder is about to create against the limits, in
 * double precision so that products of large counts cannot overflow. */
static gboolean
check_size (Ctx *c, const char *key, double gpus, double vertices, double phys_links)
{
  if (gpus > MSIM_TOPOLOGY_MAX_GPUS)
    return fail (c, key, "this builds %.0f GPUs, more than the limit of %d", gpus,
                 MSIM_TOPOLOGY_MAX_GPUS);
  if (vertices > MSIM_TOPOLOGY_MAX_VERTICES)
    return fail (c, key, "this builds %.0f vertices, more than the limit of %d", vertices,
                 MSIM_TOPOLOGY_MAX_VERTICES);
  if (2 * phys_links > MSIM_TOPOLOGY_MAX_LINKS)
    return fail (c, key, "this builds %.0f directed links, more than the limit of %d",
                 2 * phys_links, MSIM_TOPOLOGY_MAX_LINKS);
  return TRUE;
}

/* "gpus_per_host" for the single-switch shapes: defaults to all GPUs in one
 * host, must divide the GPU count. */
static gboolean
gpus_per_host (Ctx *c, gint64 gpus, gint64 *out)
{
  if (!count (c, "gpus_per_host", FALSE, gpus, 1, gpus, out))
    return FALSE;
  if (gpus % *out != 0)
    return fail (c, "gpus_per_host",
                 "%" G_GINT64_FORMAT " GPUs cannot be split evenly into hosts "
                 "of %" G_GINT64_FORMAT,
                 gpus, *out);
  return TRUE;
}

/* Creates hosts and GPUs "nodeH.gpuI" for @gpus GPUs, @gph per host, in GPU
 * order; fills gpu_v[] and host_v[]. */
static gboolean
hosts_and_gpus (Ctx *c, guint gpus, guint gph, guint *gpu_v, guint *host_v)
{
  for (guint h = 0; h < gpus / gph; h++)
    {
      gint64 hv = host_vertex (c, h);
      if (hv < 0)
        return FALSE;
      host_v[h] = (guint)hv;
      for (guint i = 0; i < gph; i++)
        {
          gint64 gv = vertex (c, MSIM_VERTEX_GPU, (gint32)h, "node%u.gpu%u", h, i);
          if (gv < 0)
            return FALSE;
          gpu_v[h * gph + i] = (guint)gv;
        }
    }
  return TRUE;
}

static gboolean
host_links (Ctx *c, guint gpus, guint gph, const guint *gpu_v, const guint *host_v, double bw,
            gint64 lat)
{
  for (guint g = 0; g < gpus; g++)
    if (!add_link (c, gpu_v[g], host_v[g / gph], bw, lat, MSIM_LINK_PCIE))
      return FALSE;
  return TRUE;
}

/* ---- nvswitch: N GPUs, one NVLink link each to a shared NVSwitch. ---- */

static const char *const nvswitch_keys[] = {
  "gpus", "gpus_per_host", "nvlink_bandwidth", "nvlink_latency", "pcie_bandwidth", "pcie_latency",
  NULL
};

static gboolean
build_nvswitch (Ctx *c)
{
  gint64 gpus, gph, nvl_lat, pcie_lat;
  double nvl_bw, pcie_bw;
  if (!count (c, "gpus", TRUE, 0, 1, MSIM_TOPOLOGY_MAX_GPUS, &gpus)
      || !gpus_per_host (c, gpus, &gph) || !bandwidth (c, "nvlink_bandwidth", &nvl_bw)
      || !latency (c, "nvlink_latency", &nvl_lat) || !bandwidth (c, "pcie_bandwidth", &pcie_bw)
      || !latency (c, "pcie_latency", &pcie_lat))
    return FALSE;
  g_autofree guint *gpu_v = g_new (guint, gpus);
  g_autofree guint *host_v = g_new (guint, gpus / gph);
  if (!hosts_and_gpus (c, gpus, gph, gpu_v, host_v))
    return FALSE;
  gint64 sw = vertex (c, MSIM_VERTEX_SWITCH, -1, "nvswitch");
  if (sw < 0)
    return FALSE;
  for (guint g = 0; g < gpus; g++)
    if (!add_link (c, gpu_v[g], sw, nvl_bw, nvl_lat, MSIM_LINK_NVLINK))
      return FALSE;
  return host_links (c, gpus, gph, gpu_v, host_v, pcie_bw, pcie_lat);
}

/* ---- nvlink-mesh: direct NVLink links between every GPU pair. ---- */

static const char *const mesh_keys[]
    = { "gpus", "nvlink_bandwidth", "nvlink_latency", "pcie_bandwidth", "pcie_latency", NULL };

/* A full mesh is a board-level shape (HGX A100 4-GPU: 4 GPUs); beyond 64
 * GPUs its n^2/2 links stop describing any machine. */
#define MESH_MAX_GPUS 64

static gboolean
build_nvlink_mesh (Ctx *c)
{
  gint64 gpus, nvl_lat, pcie_lat;
  double nvl_bw, pcie_bw;
  if (!count (c, "gpus", TRUE, 0, 2, MESH_MAX_GPUS, &gpus)
      || !bandwidth (c, "nvlink_bandwidth", &nvl_bw) || !latency (c, "nvlink_latency", &nvl_lat)
      || !bandwidth (c, "pcie_bandwidth", &pcie_bw) || !latency (c, "pcie_latency", &pcie_lat))
    return FALSE;
  guint gpu_v[MESH_MAX_GPUS], host_v[1];
  if (!hosts_and_gpus (c, gpus, gpus, gpu_v, host_v))
    return FALSE;
  for (guint i = 0; i < gpus; i++)
    for (guint j = i + 1; j < gpus; j++)
      if (!add_link (c, gpu_v[i], gpu_v[j], nvl_bw, nvl_lat, MSIM_LINK_NVLINK))
        return FALSE;
  return host_links (c, gpus, gpus, gpu_v, host_v, pcie_bw, pcie_lat);
}

/* ---- pcie-tree: GPUs behind PCIe switches, optional NVLink bridges. ---- */

static const char *const pcie_tree_keys[] = {
  "gpus",           "gpus_per_switch", "pcie_bandwidth",   "pcie_latency",   "uplink_bandwidth",
  "uplink_latency", "nvlink_bridges",  "nvlink_bandwidth", "nvlink_latency", NULL
};

static gboolean
build_pcie_tree (Ctx *c)
{
  gint64 gpus, gps, pcie_lat, up_lat, nvl_lat = 0;
  double pcie_bw, up_bw, nvl_bw = 0;
  gboolean bridges = FALSE;
  if (!count (c, "gpus", TRUE, 0, 1, 1024, &gpus)
      || !count (c, "gpus_per_switch", TRUE, 0, 1, gpus, &gps)
      || !bandwidth (c, "pcie_bandwidth", &pcie_bw) || !latency (c, "pcie_latency", &pcie_lat)
      || !bandwidth_or (c, "uplink_bandwidth", pcie_bw, &up_bw)
      || !latency_or (c, "uplink_latency", pcie_lat, &up_lat)
      || !msim_ini_get_bool (c->ini, G, "nvlink_bridges", FALSE, FALSE, &bridges, c->error))
    return FALSE;
  if (bridges)
    {
      if (!bandwidth (c, "nvlink_bandwidth", &nvl_bw) || !latency (c, "nvlink_latency", &nvl_lat))
        return FALSE;
    }
  else
    {
      static const char *const bridge_only[] = { "nvlink_bandwidth", "nvlink_latency" };
      for (guint i = 0; i < G_N_ELEMENTS (bridge_only); i++)
        if (msim_ini_has_key (c->ini, G, bridge_only[i]))
          return fail (c, bridge_only[i], "set, but nvlink_bridges is false");
    }
  guint n_sw = (guint)((gpus + gps - 1) / gps);
  g_autofree guint *gpu_v = g_new (guint, gpus);
  guint host_v[1];
  if (!hosts_and_gpus (c, gpus, gpus, gpu_v, host_v))
    return FALSE;
  g_autofree guint *sw_v = g_new (guint, n_sw);
  for (guint s = 0; s < n_sw; s++)
    {
      gint64 v = vertex (c, MSIM_VERTEX_SWITCH, -1, "node0.pcie%u", s);
      if (v < 0)
        return FALSE;
      sw_v[s] = (guint)v;
    }
  for (guint g = 0; g < gpus; g++)
    if (!add_link (c, gpu_v[g], sw_v[g / gps], pcie_bw, pcie_lat, MSIM_LINK_PCIE))
      return FALSE;
  /* The host-memory vertex stands for the CPU root complex as well: GPUs
   * under different switches meet there, which is where their traffic goes
   * (root-complex P2P or staging through host memory; same links). */
  for (guint s = 0; s < n_sw; s++)
    if (!add_link (c, sw_v[s], host_v[0], up_bw, up_lat, MSIM_LINK_PCIE))
      return FALSE;
  if (bridges)
    for (guint g = 0; g + 1 < gpus; g += 2)
      if (!add_link (c, gpu_v[g], gpu_v[g + 1], nvl_bw, nvl_lat, MSIM_LINK_NVLINK))
        return FALSE;
  return TRUE;
}

/* ---- ring and torus2d: GPU-to-GPU links only, GPUs forward. ---- */

static const char *const link_type_names[]
    = { "other", "nvlink", "pcie", "infiniband", "ethernet", NULL };

static const char *const ring_keys[]
    = { "gpus",      "gpus_per_host",  "link_bandwidth", "link_latency",
        "link_type", "pcie_bandwidth", "pcie_latency",   NULL };
static const char *const torus_keys[] = { "rows",           "cols",         "gpus_per_host",
                                          "link_bandwidth", "link_latency", "link_type",
                                          "pcie_bandwidth", "pcie_latency", NULL };

/* The longest shortest path of a ring of n is n/2 hops; MsimRoute holds 32. */
#define RING_MAX_GPUS (2 * MSIM_ROUTE_MAX_HOPS)

static gboolean
grid_link_keys (Ctx *c, double *bw, gint64 *lat, int *type, double *pcie_bw, gint64 *pcie_lat)
{
  return bandwidth (c, "link_bandwidth", bw) && latency (c, "link_latency", lat)
         && msim_ini_get_choice (c->ini, G, "link_type", FALSE, MSIM_LINK_OTHER, link_type_names,
                                 type, c->error)
         && bandwidth (c, "pcie_bandwidth", pcie_bw) && latency (c, "pcie_latency", pcie_lat);
}

/* Links i -> i+1 around a cycle of @n vertices taken from @v with stride
 * @stride: none for n = 1, one for n = 2 (a 2-cycle is a single cable). */
static gboolean
cycle (Ctx *c, const guint *v, guint n, guint stride, double bw, gint64 lat, MsimLinkType type)
{
  guint m = n == 1 ? 0 : n == 2 ? 1 : n;
  for (guint i = 0; i < m; i++)
    if (!add_link (c, v[i * stride], v[((i + 1) % n) * stride], bw, lat, type))
      return FALSE;
  return TRUE;
}

static gboolean
build_ring (Ctx *c)
{
  gint64 gpus, gph, lat, pcie_lat;
  double bw, pcie_bw;
  int type;
  if (!count (c, "gpus", TRUE, 0, 2, RING_MAX_GPUS, &gpus) || !gpus_per_host (c, gpus, &gph)
      || !grid_link_keys (c, &bw, &lat, &type, &pcie_bw, &pcie_lat))
    return FALSE;
  g_autofree guint *gpu_v = g_new (guint, gpus);
  g_autofree guint *host_v = g_new (guint, gpus / gph);
  if (!hosts_and_gpus (c, gpus, gph, gpu_v, host_v)
      || !cycle (c, gpu_v, gpus, 1, bw, lat, (MsimLinkType)type))
    return FALSE;
  return host_links (c, gpus, gph, gpu_v, host_v, pcie_bw, pcie_lat);
}

static gboolean
build_torus2d (Ctx *c)
{
  gint64 rows, cols, gph, lat, pcie_lat;
  double bw, pcie_bw;
  int type;
  if (!count (c, "rows", TRUE, 0, 1, RING_MAX_GPUS, &rows)
      || !count (c, "cols", TRUE, 0, 1, RING_MAX_GPUS, &cols))
    return FALSE;
  if (rows * cols < 2)
    return fail (c, "cols", "a torus needs at least 2 GPUs");
  if (rows / 2 + cols / 2 > MSIM_ROUTE_MAX_HOPS)
    return fail (c, "cols",
                 "a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " torus has routes of %" G_GINT64_FORMAT
                 " hops, more than the %d a route can hold",
                 rows, cols, rows / 2 + cols / 2, MSIM_ROUTE_MAX_HOPS);
  gint64 gpus = rows * cols;
  if (!gpus_per_host (c, gpus, &gph) || !grid_link_keys (c, &bw, &lat, &type, &pcie_bw, &pcie_lat))
    return FALSE;
  g_autofree guint *gpu_v = g_new (guint, gpus);
  g_autofree guint *host_v = g_new (guint, gpus / gph);
  if (!hosts_and_gpus (c, gpus, gph, gpu_v, host_v))
    return FALSE;
  /* GPU r * cols + c sits at row r, column c. */
  for (guint r = 0; r < rows; r++)
    if (!cycle (c, gpu_v + r * cols, cols, 1, bw, lat, (MsimLinkType)type))
      return FALSE;
  for (guint col = 0; col < cols; col++)
    if (!cycle (c, gpu_v + col, rows, cols, bw, lat, (MsimLinkType)type))
      return FALSE;
  return host_links (c, gpus, gph, gpu_v, host_v, pcie_bw, pcie_lat);
}

/* ---- multi-node: rail-optimised and two-tier fat-tree / leaf-spine. ---- */

static const char *const intra_names[] = { "nvswitch", "mesh", NULL };
static const char *const nic_type_names[] = { "infiniband", "ethernet", NULL };

#define NODE_KEYS                                                                                  \
  "nodes", "gpus_per_node", "intra", "nvlink_bandwidth", "nvlink_latency", "pcie_bandwidth",       \
      "pcie_latency", "nics_per_node", "nic_bandwidth", "nic_latency", "nic_type", "spines",       \
      "spine_latency", "oversubscription"

static const char *const rail_keys[] = { NODE_KEYS, NULL };
static const char *const fat_tree_keys[] = { NODE_KEYS, "nodes_per_leaf", NULL };

typedef struct
{
  gint64 nodes, gpn, nics, spines;
  int intra;
  MsimLinkType nic_type;
  double nvl_bw, pcie_bw, nic_bw, oversub;
  gint64 nvl_lat, pcie_lat, nic_lat, spine_lat;
} NodeSpec;

static gboolean
read_node_spec (Ctx *c, NodeSpec *s)
{
  int nic_type = 0;
  if (!count (c, "nodes", TRUE, 0, 1, MSIM_TOPOLOGY_MAX_GPUS, &s->nodes)
      || !count (c, "gpus_per_node", TRUE, 0, 1, 64, &s->gpn)
      || !msim_ini_get_choice (c->ini, G, "intra", FALSE, 0, intra_names, &s->intra, c->error)
      || !bandwidth (c, "nvlink_bandwidth", &s->nvl_bw)
      || !latency (c, "nvlink_latency", &s->nvl_lat)
      || !bandwidth (c, "pcie_bandwidth", &s->pcie_bw) || !latency (c, "pcie_latency", &s->pcie_lat)
      || !count (c, "nics_per_node", TRUE, 0, 1, s->gpn, &s->nics)
      || !bandwidth (c, "nic_bandwidth", &s->nic_bw) || !latency (c, "nic_latency", &s->nic_lat)
      || !msim_ini_get_choice (c->ini, G, "nic_type", FALSE, 0, nic_type_names, &nic_type, c->error)
      || !count (c, "spines", FALSE, 0, 0, 4096, &s->spines)
      || !latency (c, "spine_latency", &s->spine_lat)
      || !msim_ini_get_double (c->ini, G, "oversubscription", FALSE, 1.0, 1e-3, 1e3, &s->oversub,
                               c->error))
    return FALSE;
  s->nic_type = nic_type == 0 ? MSIM_LINK_INFINIBAND : MSIM_LINK_ETHERNET;
  if (s->gpn % s->nics != 0)
    return fail (c, "nics_per_node",
                 "%" G_GINT64_FORMAT " GPUs per node cannot be shared evenly by %" G_GINT64_FORMAT
                 " NICs (use one NIC per GPU, per GPU pair, ...)",
                 s->gpn, s->nics);
  return TRUE;
}

/* Per node: host memory, GPUs, the NVLink domain (NVSwitch or full mesh),
 * NICs; then GPU-host, NIC-GPU and NIC-host PCIe links.  NIC j serves GPUs
 * j*gpn/nics .. (j+1)*gpn/nics - 1.  nic_v receives nodes x nics NIC ids. */
static gboolean
build_nodes (Ctx *c, const NodeSpec *s, guint *nic_v)
{
  guint gpn = (guint)s->gpn, nics = (guint)s->nics, per_nic = gpn / nics;
  g_autofree guint *gpu_v = g_new (guint, gpn);
  for (guint n = 0; n < s->nodes; n++)
    {
      gint64 hv = host_vertex (c, n);
      if (hv < 0)
        return FALSE;
      for (guint i = 0; i < gpn; i++)
        {
          gint64 gv = vertex (c, MSIM_VERTEX_GPU, (gint32)n, "node%u.gpu%u", n, i);
          if (gv < 0)
            return FALSE;
          gpu_v[i] = (guint)gv;
        }
      if (s->intra == 0)
        {
          gint64 sw = vertex (c, MSIM_VERTEX_SWITCH, -1, "node%u.nvswitch", n);
          if (sw < 0)
            return FALSE;
          for (guint i = 0; i < gpn; i++)
            if (!add_link (c, gpu_v[i], sw, s->nvl_bw, s->nvl_lat, MSIM_LINK_NVLINK))
              return FALSE;
        }
      else
        for (guint i = 0; i < gpn; i++)
          for (guint j = i + 1; j < gpn; j++)
            if (!add_link (c, gpu_v[i], gpu_v[j], s->nvl_bw, s->nvl_lat, MSIM_LINK_NVLINK))
              return FALSE;
      for (guint i = 0; i < gpn; i++)
        if (!add_link (c, gpu_v[i], hv, s->pcie_bw, s->pcie_lat, MSIM_LINK_PCIE))
          return FALSE;
      for (guint j = 0; j < nics; j++)
        {
          gint64 nv = vertex (c, MSIM_VERTEX_NIC, -1, "node%u.nic%u", n, j);
          if (nv < 0)
            return FALSE;
          nic_v[n * nics + j] = (guint)nv;
          for (guint i = j * per_nic; i < (j + 1) * per_nic; i++)
            if (!add_link (c, gpu_v[i], nv, s->pcie_bw, s->pcie_lat, MSIM_LINK_PCIE))
              return FALSE;
          if (!add_link (c, nv, hv, s->pcie_bw, s->pcie_lat, MSIM_LINK_PCIE))
            return FALSE;
        }
    }
  return TRUE;
}

static double
node_links (const NodeSpec *s)
{
  double intra = s->intra == 0 ? s->gpn : s->gpn * (s->gpn - 1) / 2.0;
  /* intra + GPU-host + NIC-GPU + NIC-host + NIC-fabric */
  return intra + 2.0 * s->gpn + 2.0 * s->nics;
}

/* Spine switches joined to each of @n_tors top-of-rack/rail switches by one
 * aggregated link, sized so that each ToR's uplink capacity is its downlink
 * capacity @down_bw divided by the oversubscription ratio. */
static gboolean
spines (Ctx *c, const NodeSpec *s, const guint *tor_v, guint n_tors, double down_bw)
{
  if (s->spines == 0)
    return TRUE;
  double up_bw = down_bw / (s->oversub * (double)s->spines);
  g_autofree guint *spine_v = g_new (guint, s->spines);
  for (guint k = 0; k < s->spines; k++)
    {
      gint64 v = vertex (c, MSIM_VERTEX_SWITCH, -1, "spine%u", k);
      if (v < 0)
        return FALSE;
      spine_v[k] = (guint)v;
    }
  for (guint t = 0; t < n_tors; t++)
    for (guint k = 0; k < s->spines; k++)
      if (!add_link (c, tor_v[t], spine_v[k], up_bw, s->spine_lat, s->nic_type))
        return FALSE;
  return TRUE;
}

/* rail: NIC j of every node on rail switch j; rail switches joined by
 * spines (or not at all, spines = 0: a rail-only network where traffic
 * changes rails over NVLink inside a node).  One rail switch per rail is a
 * logical, non-blocking switch; at scale it stands for a leaf group. */
static gboolean
build_rail (Ctx *c)
{
  NodeSpec s;
  if (!read_node_spec (c, &s))
    return FALSE;
  double vertices = s.nodes * (2.0 + s.gpn + s.nics + (s.intra == 0)) + s.nics + s.spines;
  if (!check_size (c, "nodes", (double)s.nodes * s.gpn, vertices,
                   s.nodes * node_links (&s) + (double)s.nics * s.spines))
    return FALSE;
  g_autofree guint *nic_v = g_new (guint, s.nodes * s.nics);
  if (!build_nodes (c, &s, nic_v))
    return FALSE;
  g_autofree guint *rail_v = g_new (guint, s.nics);
  for (guint j = 0; j < s.nics; j++)
    {
      gint64 v = vertex (c, MSIM_VERTEX_SWITCH, -1, "rail%u", j);
      if (v < 0)
        return FALSE;
      rail_v[j] = (guint)v;
      for (guint n = 0; n < s.nodes; n++)
        if (!add_link (c, nic_v[n * s.nics + j], rail_v[j], s.nic_bw, s.nic_lat, s.nic_type))
          return FALSE;
    }
  return spines (c, &s, rail_v, s.nics, (double)s.nodes * s.nic_bw);
}

/* fat-tree / leaf-spine: nodes_per_leaf consecutive nodes under each leaf
 * (all their NICs), every leaf joined to every spine.  Uplinks are sized
 * for a full leaf, as cabling is, even if the last leaf is partly empty. */
static gboolean
build_fat_tree (Ctx *c)
{
  NodeSpec s;
  gint64 npl;
  if (!read_node_spec (c, &s)
      || !count (c, "nodes_per_leaf", TRUE, 0, 1, MSIM_TOPOLOGY_MAX_GPUS, &npl))
    return FALSE;
  guint leaves = (guint)((s.nodes + npl - 1) / npl);
  if (leaves > 1 && s.spines == 0)
    return fail (c, "spines", "%u leaves need at least one spine to reach each other", leaves);
  double vertices = s.nodes * (2.0 + s.gpn + s.nics + (s.intra == 0)) + leaves + s.spines;
  if (!check_size (c, "nodes", (double)s.nodes * s.gpn, vertices,
                   s.nodes * node_links (&s) + (double)leaves * s.spines))
    return FALSE;
  g_autofree guint *nic_v = g_new (guint, s.nodes * s.nics);
  if (!build_nodes (c, &s, nic_v))
    return FALSE;
  g_autofree guint *leaf_v = g_new (guint, leaves);
  for (guint l = 0; l < leaves; l++)
    {
      gint64 v = vertex (c, MSIM_VERTEX_SWITCH, -1, "leaf%u", l);
      if (v < 0)
        return FALSE;
      leaf_v[l] = (guint)v;
    }
  for (guint n = 0; n < s.nodes; n++)
    for (guint j = 0; j < s.nics; j++)
      if (!add_link (c, nic_v[n * s.nics + j], leaf_v[n / npl], s.nic_bw, s.nic_lat, s.nic_type))
        return FALSE;
  return spines (c, &s, leaf_v, leaves, (double)npl * s.nics * s.nic_bw);
}

/* ---- registry ---- */

typedef struct
{
  const char *name;
  const char *const *keys;
  gboolean (*build) (Ctx *c);
} Builder;

static const Builder builders[] = {
  { "nvswitch", nvswitch_keys, build_nvswitch },
  { "nvlink-mesh", mesh_keys, build_nvlink_mesh },
  { "pcie-tree", pcie_tree_keys, build_pcie_tree },
  { "rail", rail_keys, build_rail },
  { "fat-tree", fat_tree_keys, build_fat_tree },
  { "leaf-spine", fat_tree_keys, build_fat_tree },
  { "ring", ring_keys, build_ring },
  { "torus2d", torus_keys, build_torus2d },
};

static const char *const builder_names[]
    = { "nvswitch",   "nvlink-mesh", "pcie-tree", "rail", "fat-tree",
        "leaf-spine", "ring",        "torus2d",   NULL };
G_STATIC_ASSERT (G_N_ELEMENTS (builder_names) == G_N_ELEMENTS (builders) + 1);

const char *const *
msim_topology_builder_names (void)
{
  return builder_names;
}

static const Builder *
find_builder (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (builders); i++)
    if (g_strcmp0 (builders[i].name, name) == 0)
      return &builders[i];
  return NULL;
}

const char *const *
msim_topology_builder_keys (const char *builder)
{
  const Builder *b = find_builder (builder);
  return b ? b->keys : NULL;
}

gboolean
msim_topology_run_builder (MsimTopology *topo, const MsimIni *ini, const char *builder,
                           GError **error)
{
  const Builder *b = find_builder (builder);
  g_return_val_if_fail (b != NULL, FALSE);
  Ctx c = { topo, ini, error };
  return b->build (&c);
}
