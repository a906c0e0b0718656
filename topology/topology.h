#pragma once

#include <glib.h>
#include <igraph.h>

#include "ini.h"

G_BEGIN_DECLS

/*
 * MsimTopology: what the cluster is.
 *
 * Vertices are devices (GPUs, switches, NICs, host memory); every physical
 * link is full duplex and appears as two directed links, each with its own
 * capacity in bytes/s and a latency in picoseconds.  GPUs are numbered
 * 0..n_gpus-1 in a stable order (host by host, then local index), and each
 * GPU belongs to a host (a machine), numbered 0..n_hosts-1.
 *
 * Routes are shortest paths by latency between two vertices, as sequences
 * of directed link ids.  With several equal-cost paths:
 *  - MSIM_ROUTING_ECMP picks one deterministically by hashing
 *    (src, dst, flow_id), as switches do per flow;
 *  - MSIM_ROUTING_SPLIT lets the caller split a transfer evenly over all of
 *    them (msim_topology_n_paths / msim_topology_path).
 * Shortest-path structure is computed once per source on demand and cached;
 * a route query then costs O(hops).  Routes are written into caller-owned
 * MsimRoute values.
 *
 * "Shortest" is lexicographic, compared exactly in integers (no epsilons):
 *  1. fewest transits through host-memory vertices (host memory is an
 *     endpoint, never a router, unless nothing else connects two devices);
 *  2. least total latency (picoseconds);
 *  3. fewest hops (so all-zero latencies still give sensible routes);
 *  4. widest bottleneck, decided hop by hop on the paths left by 1-3 (so an
 *     NVLink path beats a PCIe path of equal latency and length).
 * The paths left after these four rules are the "equal-cost" paths.
 *
 * Physical link k (full duplex) is the pair of directed links 2k (a->b, in
 * the order the file or builder gave a and b) and 2k+1 (b->a).
 *
 * A topology is immutable after loading.  Route queries may come from
 * several threads: the per-source cache is filled under a lock and read
 * without one.
 */

typedef struct _MsimTopology MsimTopology;

typedef enum
{
  MSIM_VERTEX_GPU,
  MSIM_VERTEX_SWITCH,
  MSIM_VERTEX_NIC,
  MSIM_VERTEX_HOST, /* host (CPU) memory of a machine; offloaded experts live here */
} MsimVertexKind;

typedef enum
{
  MSIM_ROUTING_ECMP,
  MSIM_ROUTING_SPLIT,
} MsimRoutingMode;

/* GPU generation, as NCCL's tuning model distinguishes them (compute
 * capability 7.0, 8.0, 9.0): it selects the per-generation constants of
 * sim/nccl-tuning.c.  UNKNOWN: NCCL's defaults for other GPUs (no LL128, no
 * NVLink SHARP). */
typedef enum
{
  MSIM_GPU_ARCH_UNKNOWN,
  MSIM_GPU_ARCH_VOLTA,
  MSIM_GPU_ARCH_AMPERE,
  MSIM_GPU_ARCH_HOPPER,
} MsimGpuArch;

/* What a physical link is made of.  Informational: summaries and exports
 * group links by it; routing and capacities do not depend on it. */
typedef enum
{
  MSIM_LINK_OTHER,
  MSIM_LINK_NVLINK,
  MSIM_LINK_PCIE,
  MSIM_LINK_INFINIBAND,
  MSIM_LINK_ETHERNET,
} MsimLinkType;

/* Size limits, checked before anything is allocated.  They are far above
 * any cluster moesim is meant for (the 1024-GPU benchmark uses ~2,300
 * vertices and ~10,000 directed links) and far below what would exhaust
 * memory, so a typo such as gpus = 1e9 fails fast with a clear message. */
#define MSIM_TOPOLOGY_MAX_GPUS     65536
#define MSIM_TOPOLOGY_MAX_VERTICES (1 << 20)
#define MSIM_TOPOLOGY_MAX_LINKS    (1 << 23) /* directed */

#define MSIM_ROUTE_MAX_HOPS 32

typedef struct
{
  guint32 links[MSIM_ROUTE_MAX_HOPS]; /* directed link ids, source to destination */
  guint n_links;
  gint64 latency_ps; /* sum of the links' latencies */
} MsimRoute;

/* Loads a topology file (see README "Topology files").  Errors name the file,
 * line and key. (transfer full) */
MsimTopology *msim_topology_load (const char *path, GError **error);

/* Builds from a parsed key file; @ini must hold a [topology] group.  Only the
 * groups of msim_topology_ini_groups() are read; other groups are left to
 * the caller (a full experiment config holds [model], [workload], ...), so
 * the caller checks for unknown groups. */
MsimTopology *msim_topology_new_from_ini (const MsimIni *ini, GError **error);

/* Loads a topology from key-file text in memory.  @name is used in messages
 * and to resolve `include = FILE` relative to its directory (then to the
 * data directory).  Unknown groups are errors, as in msim_topology_load().
 * (transfer full) */
MsimTopology *msim_topology_load_data (const char *data, gssize length, const char *name,
                                       GError **error);

/* Loads preset @preset (a name such as "dgx-h100-cluster", looked up as
 * topology/presets/NAME.ini in the data directory) with [topology] keys
 * replaced by @overrides, a NULL-terminated list of "key=value" strings
 * (NULL for none).  Example, the 1024-GPU cluster of `moesim bench network`:
 *   const char *ov[] = { "nodes=128", NULL };
 *   msim_topology_load_preset ("dgx-h100-cluster", ov, &error);
 * (transfer full) */
MsimTopology *msim_topology_load_preset (const char *preset, const char *const *overrides,
                                         GError **error);

/* Path of preset @preset in the data directory, or NULL if there is no such
 * preset. (transfer full) */
char *msim_topology_preset_path (const char *preset);

/* Names of the presets in the data directory, sorted. (transfer full, free
 * with g_strfreev) */
char **msim_topology_list_presets (void);

/* The key-file groups a topology reads: "topology", "vertex.*", "link.*"
 * (patterns as in msim_ini_check_groups).  NULL-terminated, static. */
const char *const *msim_topology_ini_groups (void);

void msim_topology_free (MsimTopology *topo);

const char *msim_topology_name (const MsimTopology *topo);
/* The [topology] description key, or "" (transfer none). */
const char *msim_topology_description (const MsimTopology *topo);
/* The file the topology was loaded from (transfer none). */
const char *msim_topology_origin (const MsimTopology *topo);

guint msim_topology_n_vertices (const MsimTopology *topo);
guint msim_topology_n_links (const MsimTopology *topo); /* directed links */
guint msim_topology_n_gpus (const MsimTopology *topo);
guint msim_topology_n_hosts (const MsimTopology *topo);

MsimVertexKind msim_topology_vertex_kind (const MsimTopology *topo, guint vertex);
const char *msim_topology_vertex_name (const MsimTopology *topo, guint vertex);
/* Vertex id by name, or -1. */
gint64 msim_topology_find_vertex (const MsimTopology *topo, const char *name);

guint msim_topology_gpu_vertex (const MsimTopology *topo, guint gpu);
guint msim_topology_gpu_host (const MsimTopology *topo, guint gpu);
/* The host-memory vertex of @host (every host has one). */
guint msim_topology_host_vertex (const MsimTopology *topo, guint host);

/* GPU index of @vertex, or -1 if it is not a GPU.  O(1). */
gint64 msim_topology_vertex_gpu (const MsimTopology *topo, guint vertex);
/* Host index of a GPU or host-memory @vertex, or -1 for switches and NICs. */
gint64 msim_topology_vertex_host (const MsimTopology *topo, guint vertex);
/* The GPUs of @host are @first .. @first + @count - 1 (GPUs are numbered
 * host by host).  @count may be 0 for a host without GPUs. */
void msim_topology_host_gpus (const MsimTopology *topo, guint host, guint *first, guint *count);

const char *msim_vertex_kind_name (MsimVertexKind kind); /* "gpu", "switch", ... */
const char *msim_link_type_name (MsimLinkType type);     /* "nvlink", "pcie", ... */

double msim_topology_link_capacity (const MsimTopology *topo, guint link); /* bytes/s */
/* Achievable fraction of the line rate on @link, in (0, 1]: the data rate a
 * transfer reaches after protocol overhead (packet headers, flow control).
 * Set per link type with the [topology] keys <type>_efficiency and per
 * explicit link with `efficiency`; 1 when neither is set.  Routing ignores
 * it (routes compare line rates). */
double msim_topology_link_efficiency (const MsimTopology *topo, guint link);
/* capacity x efficiency, in bytes/s: what a flow model should use as the
 * link's capacity to reproduce measured bandwidths. */
double msim_topology_link_effective_capacity (const MsimTopology *topo, guint link);
gint64 msim_topology_link_latency_ps (const MsimTopology *topo, guint link);
guint msim_topology_link_src (const MsimTopology *topo, guint link);
guint msim_topology_link_dst (const MsimTopology *topo, guint link);
/* Human-readable "a->b" name. */
const char *msim_topology_link_name (const MsimTopology *topo, guint link);
/* The other direction of the same physical link (link ^ 1). */
guint msim_topology_link_reverse (const MsimTopology *topo, guint link);
MsimLinkType msim_topology_link_type (const MsimTopology *topo, guint link);

MsimRoutingMode msim_topology_routing_mode (const MsimTopology *topo);
/* [topology] gpu_arch (default unknown) and nvls (default false: NVLink
 * SHARP, in-switch reduction on third-generation NVSwitch, usable by NCCL;
 * it needs the hardware and CUDA >= 12.1, NCCL >= 2.17 and the fabric
 * manager's multicast support, so a preset states whether the systems it
 * models had it). */
MsimGpuArch msim_topology_gpu_arch (const MsimTopology *topo);
gboolean msim_topology_nvls (const MsimTopology *topo);

/* Route from vertex @src to vertex @dst for flow @flow_id (ECMP hash input).
 * src == dst gives an empty route with zero latency.  FALSE with @error if
 * the vertices are not connected or the route is longer than
 * MSIM_ROUTE_MAX_HOPS.
 *
 * ECMP walks the equal-cost paths back from @dst; at each vertex with several
 * predecessors it picks one by a hash of (src, dst, flow_id, vertex),
 * weighted by the number of equal-cost paths through each, so flow ids are
 * spread uniformly over all equal-cost paths (as long as there are at most
 * MSIM_TOPOLOGY_MAX_PATHS of them; beyond that, still over every link of
 * them).  The result depends only on the topology and the arguments.
 *
 * Cost: the first query from a source runs Dijkstra (igraph) plus two linear
 * passes, O(E log V), and keeps O(V) bytes for that source (GPU sources are
 * computed in blocks of 64 GPUs, one igraph call per block); later queries
 * are O(hops x equal-cost fan-in) and allocate nothing.  All 1024 x 1023 GPU
 * routes of the 128-node dgx-h100-cluster take about 0.35 s in total. */
gboolean msim_topology_route (MsimTopology *topo, guint src, guint dst, guint64 flow_id,
                              MsimRoute *out, GError **error);

/* Equal-cost paths between two vertices (at least 1 if connected; capped at
 * MSIM_TOPOLOGY_MAX_PATHS) and the k-th of them.  n_paths is 0 if @dst is
 * unreachable and 1 for src == dst (the empty path).  The k-th path is the
 * same on every call; FALSE if k >= n_paths or the path is longer than
 * MSIM_ROUTE_MAX_HOPS. */
#define MSIM_TOPOLOGY_MAX_PATHS 64
guint msim_topology_n_paths (MsimTopology *topo, guint src, guint dst);
gboolean msim_topology_path (MsimTopology *topo, guint src, guint dst, guint k, MsimRoute *out);

/* The underlying directed igraph graph: vertex ids as above, edge ids equal
 * to link ids, vertex attribute "name", edge attributes "capacity" and
 * "latency" (seconds).  Also: vertex "kind" (string) and "host" (host index
 * or -1), edge "type" (string).  igraph as packaged is not thread-safe:
 * do not call igraph on it while other threads query new route sources.
 * (transfer none) */
const igraph_t *msim_topology_graph (const MsimTopology *topo);

/* Writes the graph as "graphml" or "dot" to @path (atomically: the file is
 * either complete or untouched).  Uses igraph's writers; DOT output also
 * carries a "label" per vertex so Graphviz shows names. */
gboolean msim_topology_export (const MsimTopology *topo, const char *format, const char *path,
                               GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimTopology, msim_topology_free)

G_END_DECLS
