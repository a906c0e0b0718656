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

/* Builds from a parsed key file; @ini must hold a [topology] group. */
MsimTopology *msim_topology_new_from_ini (const MsimIni *ini, GError **error);

void msim_topology_free (MsimTopology *topo);

const char *msim_topology_name (const MsimTopology *topo);

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

double msim_topology_link_capacity (const MsimTopology *topo, guint link); /* bytes/s */
gint64 msim_topology_link_latency_ps (const MsimTopology *topo, guint link);
guint msim_topology_link_src (const MsimTopology *topo, guint link);
guint msim_topology_link_dst (const MsimTopology *topo, guint link);
/* Human-readable "a->b" name. */
const char *msim_topology_link_name (const MsimTopology *topo, guint link);

MsimRoutingMode msim_topology_routing_mode (const MsimTopology *topo);

/* Route from vertex @src to vertex @dst for flow @flow_id (ECMP hash input).
 * src == dst gives an empty route with zero latency.  FALSE with @error if
 * the vertices are not connected. */
gboolean msim_topology_route (MsimTopology *topo, guint src, guint dst, guint64 flow_id,
                              MsimRoute *out, GError **error);

/* Equal-cost paths between two vertices (at least 1 if connected; capped at
 * MSIM_TOPOLOGY_MAX_PATHS) and the k-th of them. */
#define MSIM_TOPOLOGY_MAX_PATHS 64
guint msim_topology_n_paths (MsimTopology *topo, guint src, guint dst);
gboolean msim_topology_path (MsimTopology *topo, guint src, guint dst, guint k, MsimRoute *out);

/* The underlying directed igraph graph: vertex ids as above, edge ids equal
 * to link ids, vertex attribute "name", edge attributes "capacity" and
 * "latency" (seconds). (transfer none) */
const igraph_t *msim_topology_graph (const MsimTopology *topo);

/* Writes the graph as "graphml" or "dot" to @path (atomically). */
gboolean msim_topology_export (const MsimTopology *topo, const char *format, const char *path,
                               GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimTopology, msim_topology_free)

G_END_DECLS
