/* MsimTopology: the assembled cluster graph and its accessors.
 *
 * A topology is built in two phases.  Builders and the key-file reader add
 * vertices and physical links to growable arrays (cheap, order-preserving,
 * with duplicate-name checks); msim_topology_finalize() then freezes them
 * into flat per-directed-link arrays, numbers GPUs host by host, creates the
 * igraph graph with its attributes and checks that everything is connected.
 * Accessors read the flat arrays, so the hot path (the network model asking
 * for a link's capacity) is an array load. */
#include "topology-private.h"

#include <math.h>
#include <string.h>

#include "msim-error.h"

/* igraph keeps one process-wide attribute handler.  Installing it inside
 * g_once makes concurrent first loads safe; installing it on every load
 * would race with graphs being built in other threads. */
static gpointer
install_attribute_table (gpointer data)
{
  igraph_set_attribute_table (&igraph_cattribute_table);
  return NULL;
}

static void
ensure_attribute_table (void)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, install_attribute_table, NULL);
}

static GMutex igraph_mutex;

void
msim_topology_igraph_lock (void)
{
  g_mutex_lock (&igraph_mutex);
}

void
msim_topology_igraph_unlock (void)
{
  g_mutex_unlock (&igraph_mutex);
}

const char *
msim_vertex_kind_name (MsimVertexKind kind)
{
  switch (kind)
    {
      case MSIM_VERTEX_GPU:
        return "gpu";
      case MSIM_VERTEX_SWITCH:
        return "switch";
      case MSIM_VERTEX_NIC:
        return "nic";
      case MSIM_VERTEX_HOST:
        return "host";
    }
  return "unknown";
}

const char *
msim_link_type_name (MsimLinkType type)
{
  switch (type)
    {
      case MSIM_LINK_OTHER:
        return "other";
      case MSIM_LINK_NVLINK:
        return "nvlink";
      case MSIM_LINK_PCIE:
        return "pcie";
      case MSIM_LINK_INFINIBAND:
        return "infiniband";
      case MSIM_LINK_ETHERNET:
        return "ethernet";
    }
  return "unknown";
}

gint64
msim_topology_seconds_to_ps (double seconds)
{
  return (gint64)llround (seconds * 1e12);
}

MsimTopology *
msim_topology_alloc (const char *origin)
{
  MsimTopology *topo = g_new0 (MsimTopology, 1);
  topo->origin = g_strdup (origin ? origin : "<topology>");
  topo->vertex_names = g_ptr_array_new_with_free_func (g_free);
  topo->vertex_kinds = g_array_new (FALSE, FALSE, sizeof (MsimVertexKind));
  topo->vertex_hosts = g_array_new (FALSE, FALSE, sizeof (gint32));
  topo->vertex_groups = g_ptr_array_new_with_free_func (g_free);
  topo->vertex_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  topo->phys = g_array_new (FALSE, FALSE, sizeof (MsimPhysLink));
  for (guint t = 0; t < MSIM_N_LINK_TYPES; t++)
    topo->type_efficiency[t] = 1.0;
  topo->phys_groups = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&topo->tree_lock);
  return topo;
}

void
msim_topology_free (MsimTopology *topo)
{
  if (topo == NULL)
    return;
  msim_topology_clear_routing (topo);
  g_mutex_clear (&topo->tree_lock);
  if (topo->have_graph)
    {
      msim_topology_igraph_lock ();
      igraph_destroy (&topo->graph);
      msim_topology_igraph_unlock ();
    }
  if (topo->link_names != NULL)
    for (guint i = 0; i < topo->n_links; i++)
      g_free (topo->link_names[i]);
  g_free (topo->link_names);
  g_free (topo->link_src);
  g_free (topo->link_dst);
  g_free (topo->link_capacity);
  g_free (topo->link_latency_ps);
  g_free (topo->link_type);
  g_free (topo->link_efficiency);
  g_free (topo->gpu_vertex);
  g_free (topo->gpu_host);
  g_free (topo->vertex_gpu);
  g_free (topo->host_vertex);
  g_free (topo->host_first_gpu);
  g_free (topo->host_n_gpus);
  g_hash_table_destroy (topo->vertex_by_name);
  g_ptr_array_free (topo->vertex_names, TRUE);
  g_array_free (topo->vertex_kinds, TRUE);
  g_array_free (topo->vertex_hosts, TRUE);
  g_ptr_array_free (topo->vertex_groups, TRUE);
  g_array_free (topo->phys, TRUE);
  g_ptr_array_free (topo->phys_groups, TRUE);
  g_free (topo->name);
  g_free (topo->description);
  g_free (topo->origin);
  g_free (topo);
}

/* Reports a problem at @group/@key of @ini, or at the topology's origin when
 * there is no key file (programmatic construction). */
static void G_GNUC_PRINTF (6, 7)
    topo_error (const MsimTopology *topo, const MsimIni *ini, GError **error, const char *group,
                const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (ini != NULL)
    msim_ini_set_error (ini, error, group ? group : "topology", group ? key : "builder", "%s", msg);
  else
    g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: %s", topo->origin, msg);
}

/* Vertex names appear in link endpoints, DOT and GraphML output and CLI
 * arguments; a restricted alphabet keeps all of those unambiguous without
 * quoting rules. */
static gboolean
valid_vertex_name (const char *name)
{
  if (name == NULL || *name == '\0' || strlen (name) > 200)
    return FALSE;
  for (const char *c = name; *c; c++)
    if (!g_ascii_isalnum (*c) && strchr ("_-.:/+@", *c) == NULL)
      return FALSE;
  return TRUE;
}

gint64
msim_topology_add_vertex (MsimTopology *topo, const char *name, MsimVertexKind kind, gint32 host,
                          const char *group, const MsimIni *ini, GError **error)
{
  if (!valid_vertex_name (name))
    {
      topo_error (topo, ini, error, group, NULL,
                  "invalid vertex name '%s' (use 1-200 letters, digits and _-.:/+@)", name);
      return -1;
    }
  if (topo->vertex_names->len >= MSIM_TOPOLOGY_MAX_VERTICES)
    {
      topo_error (topo, ini, error, group, NULL, "more than %d vertices",
                  MSIM_TOPOLOGY_MAX_VERTICES);
      return -1;
    }
  gpointer prev = g_hash_table_lookup (topo->vertex_by_name, name);
  if (prev != NULL)
    {
      guint pid = GPOINTER_TO_UINT (prev) - 1;
      const char *pgroup = g_ptr_array_index (topo->vertex_groups, pid);
      topo_error (topo, ini, error, group, NULL,
                  "duplicate vertex name '%s' (already defined by %s%s%s)", name,
                  pgroup ? "[" : "the builder", pgroup ? pgroup : "", pgroup ? "]" : "");
      return -1;
    }
  guint id = topo->vertex_names->len;
  char *copy = g_strdup (name);
  g_ptr_array_add (topo->vertex_names, copy);
  g_array_append_val (topo->vertex_kinds, kind);
  g_array_append_val (topo->vertex_hosts, host);
  g_ptr_array_add (topo->vertex_groups, g_strdup (group));
  g_hash_table_insert (topo->vertex_by_name, copy, GUINT_TO_POINTER (id + 1));
  return id;
}

gint64
msim_topology_add_host (MsimTopology *topo, const char *name, const char *group, const MsimIni *ini,
                        guint *host_index, GError **error)
{
  guint host = topo->hosts_added;
  gint64 id
      = msim_topology_add_vertex (topo, name, MSIM_VERTEX_HOST, (gint32)host, group, ini, error);
  if (id < 0)
    return -1;
  topo->hosts_added++;
  if (host_index != NULL)
    *host_index = host;
  return id;
}

gboolean
msim_topology_add_link (MsimTopology *topo, guint a, guint b, double capacity_Bps,
                        gint64 latency_ps, MsimLinkType type, const char *group, const MsimIni *ini,
                        GError **error)
{
  g_return_val_if_fail (a < topo->vertex_names->len && b < topo->vertex_names->len, FALSE);
  if (a == b)
    {
      topo_error (topo, ini, error, group, group ? "b" : NULL,
                  "link connects vertex '%s' to itself", (char *)topo->vertex_names->pdata[a]);
      return FALSE;
    }
  if (!(capacity_Bps > 0) || !isfinite (capacity_Bps))
    {
      topo_error (topo, ini, error, group, "bandwidth",
                  "bandwidth must be a positive number of bytes/s, got %g", capacity_Bps);
      return FALSE;
    }
  if (latency_ps < 0)
    {
      topo_error (topo, ini, error, group, "latency", "latency must not be negative");
      return FALSE;
    }
  if (2 * (gint64)topo->phys->len + 2 > MSIM_TOPOLOGY_MAX_LINKS)
    {
      topo_error (topo, ini, error, group, NULL, "more than %d directed links",
                  MSIM_TOPOLOGY_MAX_LINKS);
      return FALSE;
    }
  MsimPhysLink l = { a, b, capacity_Bps, latency_ps, type, 0.0 };
  g_array_append_val (topo->phys, l);
  g_ptr_array_add (topo->phys_groups, g_strdup (group));
  return TRUE;
}

static igraph_error_t
build_graph (MsimTopology *topo)
{
  ensure_attribute_table ();
  igraph_vector_int_t edges;
  IGRAPH_CHECK (igraph_vector_int_init (&edges, 2 * (igraph_integer_t)topo->n_links));
  IGRAPH_FINALLY (igraph_vector_int_destroy, &edges);
  for (guint e = 0; e < topo->n_links; e++)
    {
      VECTOR (edges)[2 * e] = topo->link_src[e];
      VECTOR (edges)[2 * e + 1] = topo->link_dst[e];
    }
  IGRAPH_CHECK (igraph_create (&topo->graph, &edges, topo->n_vertices, IGRAPH_DIRECTED));
  igraph_vector_int_destroy (&edges);
  IGRAPH_FINALLY_CLEAN (1);
  topo->have_graph = TRUE;

  igraph_strvector_t names, kinds, types;
  igraph_vector_t hosts, caps, lats;
  IGRAPH_CHECK (igraph_strvector_init (&names, topo->n_vertices));
  IGRAPH_FINALLY (igraph_strvector_destroy, &names);
  IGRAPH_CHECK (igraph_strvector_init (&kinds, topo->n_vertices));
  IGRAPH_FINALLY (igraph_strvector_destroy, &kinds);
  IGRAPH_CHECK (igraph_strvector_init (&types, topo->n_links));
  IGRAPH_FINALLY (igraph_strvector_destroy, &types);
  IGRAPH_VECTOR_INIT_FINALLY (&hosts, topo->n_vertices);
  IGRAPH_VECTOR_INIT_FINALLY (&caps, topo->n_links);
  IGRAPH_VECTOR_INIT_FINALLY (&lats, topo->n_links);
  for (guint v = 0; v < topo->n_vertices; v++)
    {
      IGRAPH_CHECK (igraph_strvector_set (&names, v, topo->vertex_names->pdata[v]));
      IGRAPH_CHECK (igraph_strvector_set (
          &kinds, v,
          msim_vertex_kind_name (g_array_index (topo->vertex_kinds, MsimVertexKind, v))));
      VECTOR (hosts)[v] = g_array_index (topo->vertex_hosts, gint32, v);
    }
  for (guint e = 0; e < topo->n_links; e++)
    {
      IGRAPH_CHECK (igraph_strvector_set (&types, e, msim_link_type_name (topo->link_type[e])));
      VECTOR (caps)[e] = topo->link_capacity[e];
      VECTOR (lats)[e] = (double)topo->link_latency_ps[e] * 1e-12;
    }
  IGRAPH_CHECK (SETVASV (&topo->graph, "name", &names));
  IGRAPH_CHECK (SETVASV (&topo->graph, "kind", &kinds));
  IGRAPH_CHECK (SETVANV (&topo->graph, "host", &hosts));
  IGRAPH_CHECK (SETEANV (&topo->graph, "capacity", &caps));
  IGRAPH_CHECK (SETEANV (&topo->graph, "latency", &lats));
  IGRAPH_CHECK (SETEASV (&topo->graph, "type", &types));
  igraph_vector_destroy (&lats);
  igraph_vector_destroy (&caps);
  igraph_vector_destroy (&hosts);
  igraph_strvector_destroy (&types);
  igraph_strvector_destroy (&kinds);
  igraph_strvector_destroy (&names);
  IGRAPH_FINALLY_CLEAN (6);
  return IGRAPH_SUCCESS;
}

/* Every link is full duplex, so weak components are the strong ones: one
 * igraph call decides whether every GPU can reach every other GPU and its
 * host memory.  A stray switch or NIC is reported too, because a vertex
 * that nothing can reach is almost always a misspelt link endpoint. */
static gboolean
check_connected (MsimTopology *topo, const MsimIni *ini, GError **error)
{
  igraph_vector_int_t membership;
  igraph_integer_t n_components = 0;
  msim_topology_igraph_lock ();
  if (igraph_vector_int_init (&membership, 0) != IGRAPH_SUCCESS)
    g_error ("out of memory");
  igraph_error_t rc
      = igraph_connected_components (&topo->graph, &membership, NULL, &n_components, IGRAPH_WEAK);
  msim_topology_igraph_unlock ();
  if (rc != IGRAPH_SUCCESS)
    {
      igraph_vector_int_destroy (&membership);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "%s: igraph failed to compute connected components", topo->origin);
      return FALSE;
    }
  gboolean ok = TRUE;
  if (n_components > 1)
    {
      guint g0 = topo->gpu_vertex[0];
      igraph_integer_t c0 = VECTOR (membership)[g0];
      /* Prefer naming a GPU: "GPUs a and b are not connected" is what the
       * user needs to fix.  Otherwise name the first stray vertex. */
      gint64 bad = -1;
      for (guint g = 1; g < topo->n_gpus && bad < 0; g++)
        if (VECTOR (membership)[topo->gpu_vertex[g]] != c0)
          bad = topo->gpu_vertex[g];
      for (guint v = 0; v < topo->n_vertices && bad < 0; v++)
        if (VECTOR (membership)[v] != c0)
          bad = v;
      const char *bname = topo->vertex_names->pdata[bad];
      const char *group = topo->vertex_groups->pdata[bad];
      MsimVertexKind bkind = g_array_index (topo->vertex_kinds, MsimVertexKind, bad);
      if (bkind == MSIM_VERTEX_GPU)
        topo_error (topo, ini, error, group, group ? "kind" : NULL,
                    "GPUs '%s' and '%s' are not connected (no path of links joins them)", bname,
                    (char *)topo->vertex_names->pdata[g0]);
      else
        topo_error (topo, ini, error, group, group ? "kind" : NULL,
                    "%s '%s' is not connected to the GPUs (no path of links joins it to '%s')",
                    msim_vertex_kind_name (bkind), bname, (char *)topo->vertex_names->pdata[g0]);
      ok = FALSE;
    }
  igraph_vector_int_destroy (&membership);
  return ok;
}

gboolean
msim_topology_finalize (MsimTopology *topo, const MsimIni *ini, GError **error)
{
  g_return_val_if_fail (!topo->have_graph, FALSE);
  topo->n_vertices = topo->vertex_names->len;
  const MsimVertexKind *kinds = (const MsimVertexKind *)topo->vertex_kinds->data;
  const gint32 *vhost = (const gint32 *)topo->vertex_hosts->data;

  /* Hosts in creation order; GPUs numbered host by host, then in creation
   * order within a host (counting sort, stable). */
  topo->n_hosts = 0;
  topo->n_gpus = 0;
  for (guint v = 0; v < topo->n_vertices; v++)
    {
      topo->n_hosts += kinds[v] == MSIM_VERTEX_HOST;
      topo->n_gpus += kinds[v] == MSIM_VERTEX_GPU;
    }
  if (topo->n_gpus == 0)
    {
      topo_error (topo, ini, error, "topology", NULL,
                  "the topology has no GPUs (use a builder or [vertex.NAME] groups with kind = "
                  "gpu)");
      return FALSE;
    }
  if (topo->n_gpus > MSIM_TOPOLOGY_MAX_GPUS)
    {
      topo_error (topo, ini, error, "topology", NULL, "%u GPUs is more than the limit of %d",
                  topo->n_gpus, MSIM_TOPOLOGY_MAX_GPUS);
      return FALSE;
    }
  topo->host_vertex = g_new (guint, MAX (topo->n_hosts, 1));
  topo->host_first_gpu = g_new0 (guint, MAX (topo->n_hosts, 1));
  topo->host_n_gpus = g_new0 (guint, MAX (topo->n_hosts, 1));
  for (guint v = 0; v < topo->n_vertices; v++)
    if (kinds[v] == MSIM_VERTEX_HOST)
      topo->host_vertex[vhost[v]] = v;
    else if (kinds[v] == MSIM_VERTEX_GPU)
      topo->host_n_gpus[vhost[v]]++;
  for (guint h = 1; h < topo->n_hosts; h++)
    topo->host_first_gpu[h] = topo->host_first_gpu[h - 1] + topo->host_n_gpus[h - 1];
  topo->gpu_vertex = g_new (guint, topo->n_gpus);
  topo->gpu_host = g_new (guint, topo->n_gpus);
  topo->vertex_gpu = g_new (gint32, topo->n_vertices);
  g_autofree guint *fill = g_new0 (guint, MAX (topo->n_hosts, 1));
  for (guint v = 0; v < topo->n_vertices; v++)
    {
      topo->vertex_gpu[v] = -1;
      if (kinds[v] != MSIM_VERTEX_GPU)
        continue;
      guint h = (guint)vhost[v];
      guint g = topo->host_first_gpu[h] + fill[h]++;
      topo->gpu_vertex[g] = v;
      topo->gpu_host[g] = h;
      topo->vertex_gpu[v] = (gint32)g;
    }

  /* Directed links: 2k = a->b, 2k+1 = b->a. */
  guint n_phys = topo->phys->len;
  topo->n_links = 2 * n_phys;
  topo->link_src = g_new (guint32, MAX (topo->n_links, 1));
  topo->link_dst = g_new (guint32, MAX (topo->n_links, 1));
  topo->link_capacity = g_new (double, MAX (topo->n_links, 1));
  topo->link_latency_ps = g_new (gint64, MAX (topo->n_links, 1));
  topo->link_type = g_new (guint8, MAX (topo->n_links, 1));
  topo->link_efficiency = g_new (double, MAX (topo->n_links, 1));
  topo->link_names = g_new0 (char *, MAX (topo->n_links, 1));
  for (guint k = 0; k < n_phys; k++)
    {
      const MsimPhysLink *l = &g_array_index (topo->phys, MsimPhysLink, k);
      for (guint d = 0; d < 2; d++)
        {
          guint e = 2 * k + d;
          topo->link_src[e] = d ? l->b : l->a;
          topo->link_dst[e] = d ? l->a : l->b;
          topo->link_capacity[e] = l->capacity_Bps;
          topo->link_latency_ps[e] = l->latency_ps;
          topo->link_type[e] = (guint8)l->type;
          topo->link_efficiency[e]
              = l->efficiency > 0.0 ? l->efficiency : topo->type_efficiency[l->type];
          topo->link_names[e]
              = g_strdup_printf ("%s->%s", (char *)topo->vertex_names->pdata[topo->link_src[e]],
                                 (char *)topo->vertex_names->pdata[topo->link_dst[e]]);
        }
    }

  msim_topology_igraph_lock ();
  igraph_error_t built = build_graph (topo);
  msim_topology_igraph_unlock ();
  if (built != IGRAPH_SUCCESS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME, "%s: igraph failed to build the graph",
                   topo->origin);
      return FALSE;
    }
  if (!check_connected (topo, ini, error))
    return FALSE;
  return msim_topology_prepare_routing (topo, ini, error);
}

/* Accessors.  Out-of-range ids are programmer errors. */

const char *
msim_topology_name (const MsimTopology *topo)
{
  return topo->name;
}

const char *
msim_topology_description (const MsimTopology *topo)
{
  return topo->description ? topo->description : "";
}

const char *
msim_topology_origin (const MsimTopology *topo)
{
  return topo->origin;
}

guint
msim_topology_n_vertices (const MsimTopology *topo)
{
  return topo->n_vertices;
}

guint
msim_topology_n_links (const MsimTopology *topo)
{
  return topo->n_links;
}

guint
msim_topology_n_gpus (const MsimTopology *topo)
{
  return topo->n_gpus;
}

guint
msim_topology_n_hosts (const MsimTopology *topo)
{
  return topo->n_hosts;
}

MsimVertexKind
msim_topology_vertex_kind (const MsimTopology *topo, guint vertex)
{
  g_return_val_if_fail (vertex < topo->n_vertices, MSIM_VERTEX_SWITCH);
  return g_array_index (topo->vertex_kinds, MsimVertexKind, vertex);
}

const char *
msim_topology_vertex_name (const MsimTopology *topo, guint vertex)
{
  g_return_val_if_fail (vertex < topo->n_vertices, NULL);
  return topo->vertex_names->pdata[vertex];
}

gint64
msim_topology_find_vertex (const MsimTopology *topo, const char *name)
{
  gpointer p = name ? g_hash_table_lookup (topo->vertex_by_name, name) : NULL;
  return p ? (gint64)GPOINTER_TO_UINT (p) - 1 : -1;
}

guint
msim_topology_gpu_vertex (const MsimTopology *topo, guint gpu)
{
  g_return_val_if_fail (gpu < topo->n_gpus, 0);
  return topo->gpu_vertex[gpu];
}

guint
msim_topology_gpu_host (const MsimTopology *topo, guint gpu)
{
  g_return_val_if_fail (gpu < topo->n_gpus, 0);
  return topo->gpu_host[gpu];
}

guint
msim_topology_host_vertex (const MsimTopology *topo, guint host)
{
  g_return_val_if_fail (host < topo->n_hosts, 0);
  return topo->host_vertex[host];
}

gint64
msim_topology_vertex_gpu (const MsimTopology *topo, guint vertex)
{
  g_return_val_if_fail (vertex < topo->n_vertices, -1);
  return topo->vertex_gpu[vertex];
}

gint64
msim_topology_vertex_host (const MsimTopology *topo, guint vertex)
{
  g_return_val_if_fail (vertex < topo->n_vertices, -1);
  return g_array_index (topo->vertex_hosts, gint32, vertex);
}

void
msim_topology_host_gpus (const MsimTopology *topo, guint host, guint *first, guint *count)
{
  g_return_if_fail (host < topo->n_hosts);
  if (first)
    *first = topo->host_first_gpu[host];
  if (count)
    *count = topo->host_n_gpus[host];
}

double
msim_topology_link_capacity (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 0.0);
  return topo->link_capacity[link];
}

double
msim_topology_link_efficiency (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 1.0);
  return topo->link_efficiency[link];
}

double
msim_topology_link_effective_capacity (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 0.0);
  return topo->link_capacity[link] * topo->link_efficiency[link];
}

gint64
msim_topology_link_latency_ps (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 0);
  return topo->link_latency_ps[link];
}

guint
msim_topology_link_src (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 0);
  return topo->link_src[link];
}

guint
msim_topology_link_dst (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 0);
  return topo->link_dst[link];
}

const char *
msim_topology_link_name (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, NULL);
  return topo->link_names[link];
}

guint
msim_topology_link_reverse (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, 0);
  return link ^ 1u;
}

MsimLinkType
msim_topology_link_type (const MsimTopology *topo, guint link)
{
  g_return_val_if_fail (link < topo->n_links, MSIM_LINK_OTHER);
  return (MsimLinkType)topo->link_type[link];
}

MsimRoutingMode
msim_topology_routing_mode (const MsimTopology *topo)
{
  return topo->routing;
}

MsimGpuArch
msim_topology_gpu_arch (const MsimTopology *topo)
{
  return topo->gpu_arch;
}

gboolean
msim_topology_nvls (const MsimTopology *topo)
{
  return topo->nvls;
}

const igraph_t *
msim_topology_graph (const MsimTopology *topo)
{
  return &topo->graph;
}
