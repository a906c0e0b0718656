#pragma once

/* Internals shared by the files of topology/: the struct body, the builder
 * interface used while a topology is being assembled, and the routing
 * cache.  Nothing here is API. */

#include "topology.h"

G_BEGIN_DECLS

/* Number of MsimLinkType values (kept out of the public enum so that
 * switches over it stay exhaustive). */
#define MSIM_N_LINK_TYPES (MSIM_LINK_ETHERNET + 1)

/* One physical (full-duplex) link while the topology is assembled. */
typedef struct
{
  guint32 a, b;
  double capacity_Bps; /* per direction */
  gint64 latency_ps;
  MsimLinkType type;
  double efficiency; /* achievable fraction of capacity_Bps; 0 = the type's default */
} MsimPhysLink;

/* Per-source shortest-path structure (see topology-routing.c).  Predecessor
 * links of vertex v on the equal-cost paths from the source are
 * pred_link[pred_off[v] .. pred_off[v+1]).  hops is G_MAXUINT16 for an
 * unreachable vertex and saturates at G_MAXUINT16 - 1; n_paths saturates at
 * MSIM_TOPOLOGY_MAX_PATHS. */
typedef struct
{
  guint32 *pred_off; /* n_vertices + 1 */
  guint32 *pred_link;
  guint16 *hops;
  guint8 *n_paths;
  /* Routes to the vertices reached by a single path (no ECMP choice), laid
   * out: single_link[single_off[v] .. + hops[v]), NO_SINGLE otherwise. */
  guint32 *single_off;
  guint32 *single_link;
} MsimSourceTree;

#define MSIM_NO_SINGLE G_MAXUINT32

#define MSIM_HOPS_UNREACHABLE G_MAXUINT16

struct _MsimTopology
{
  char *name;
  char *description;
  char *origin; /* file the topology came from, for messages */
  MsimRoutingMode routing;
  /* [topology] <type>_efficiency, per MsimLinkType (1 when not set). */
  double type_efficiency[MSIM_N_LINK_TYPES];
  /* [topology] gpu_arch and nvls: what NCCL's tuning model needs to know of
   * the GPUs and of the NVSwitch fabric (see msim_topology_gpu_arch()). */
  MsimGpuArch gpu_arch;
  gboolean nvls;

  /* Vertices, indexed by vertex id. */
  GPtrArray *vertex_names;    /* char *, owned */
  GArray *vertex_kinds;       /* MsimVertexKind */
  GArray *vertex_hosts;       /* gint32: host index of GPUs and host vertices, else -1 */
  GPtrArray *vertex_groups;   /* char * (owned) key-file group that defined it, or NULL */
  GHashTable *vertex_by_name; /* name (borrowed from vertex_names) -> id + 1 */
  GArray *phys;               /* MsimPhysLink */
  GPtrArray *phys_groups;     /* char * (owned) group of each physical link, or NULL */
  guint hosts_added;          /* host-memory vertices so far = next host index */

  /* Filled by msim_topology_finalize(). */
  guint n_vertices;
  guint n_links;
  guint32 *link_src, *link_dst;
  double *link_capacity;
  double *link_efficiency;
  gint64 *link_latency_ps;
  guint8 *link_type;
  char **link_names;
  guint n_gpus, n_hosts;
  guint *gpu_vertex, *gpu_host;
  gint32 *vertex_gpu; /* vertex -> gpu index or -1 */
  guint *host_vertex;
  guint *host_first_gpu, *host_n_gpus;
  igraph_t graph;
  gboolean have_graph;

  /* Routing: Dijkstra weights and adjacency in CSR form (link ids). */
  double *weights;
  guint32 *out_off, *out_link, *in_off, *in_link;
  MsimSourceTree **trees; /* per source vertex, NULL until first queried */
  GMutex tree_lock;
};

/* Assembly (topology.c). */
MsimTopology *msim_topology_alloc (const char *origin);
/* Adds a vertex; host is the host index for GPUs (see msim_topology_add_host)
 * and -1 otherwise.  @group is the key-file group to blame in messages (may
 * be NULL).  Returns the vertex id, or -1 with @error for a duplicate name or
 * too many vertices. */
gint64 msim_topology_add_vertex (MsimTopology *topo, const char *name, MsimVertexKind kind,
                                 gint32 host, const char *group, const MsimIni *ini,
                                 GError **error);
/* Adds a host-memory vertex and returns its vertex id (or -1, as above);
 * *host_index receives the new host's index. */
gint64 msim_topology_add_host (MsimTopology *topo, const char *name, const char *group,
                               const MsimIni *ini, guint *host_index, GError **error);
gboolean msim_topology_add_link (MsimTopology *topo, guint a, guint b, double capacity_Bps,
                                 gint64 latency_ps, MsimLinkType type, const char *group,
                                 const MsimIni *ini, GError **error);
/* Numbers GPUs and hosts, builds the igraph graph and the routing arrays,
 * and validates connectivity.  Errors point at @ini locations. */
gboolean msim_topology_finalize (MsimTopology *topo, const MsimIni *ini, GError **error);

/* Builders (topology-builders.c): adds the builder's vertices and links
 * according to the [topology] keys. */
gboolean msim_topology_run_builder (MsimTopology *topo, const MsimIni *ini, const char *builder,
                                    GError **error);
/* The [topology] keys the builder accepts (NULL-terminated, static), or NULL
 * for an unknown builder. */
const char *const *msim_topology_builder_keys (const char *builder);
/* Names of all builders, NULL-terminated (static). */
const char *const *msim_topology_builder_names (void);

/* Routing (topology-routing.c). */
gboolean msim_topology_prepare_routing (MsimTopology *topo, const MsimIni *ini, GError **error);
void msim_topology_clear_routing (MsimTopology *topo);

/* Key readers shared by explicit groups and builders (topology-load.c):
 * a bandwidth is required, finite, > 0 and at most 1 PB/s; a latency is in
 * seconds, optional (default 0), 0..1 s, returned in picoseconds. */
gboolean msim_topology_get_bandwidth (const MsimIni *ini, const char *group, const char *key,
                                      double *out, GError **error);
gboolean msim_topology_get_latency (const MsimIni *ini, const char *group, const char *key,
                                    gint64 *out_ps, GError **error);

/* igraph as packaged here is built without thread safety
 * (IGRAPH_THREAD_SAFE 0: its error-cleanup stack is a global), so every
 * igraph call in this module runs under one process-wide lock, also across
 * different topologies.  Lock order: a topology's tree_lock, then this. */
void msim_topology_igraph_lock (void);
void msim_topology_igraph_unlock (void);

/* Converts seconds (validated: finite, 0..1) to picoseconds. */
gint64 msim_topology_seconds_to_ps (double seconds);

G_END_DECLS
