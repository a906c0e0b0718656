/* Routes: lexicographic shortest paths, ECMP and split-path enumeration.
 *
 * The order on paths (see topology.h) is (host-memory transits, latency,
 * hops, bottleneck width).  It is evaluated exactly:
 *
 *  - igraph_distances_dijkstra runs on integer-valued double weights
 *      w(e) = latency_ps(e) + P * [tail of e is a host-memory vertex]
 *    where P is a power of two larger than the sum of all link latencies, so
 *    one host transit outweighs any latency difference.  Every distance is
 *    an integer below 2^53 (checked once per topology), hence exact, and
 *    "edge e is tight" (d[u] + w(e) == d[v]) is an exact comparison.  A
 *    source that is itself host memory pays P once on every path, which
 *    does not change which paths are shortest.
 *  - A breadth-first search over tight edges gives the fewest hops among the
 *    latency-optimal paths; keeping tight edges with hops[u] + 1 == hops[v]
 *    leaves a DAG whose source-to-v paths are exactly the (transits,
 *    latency, hops)-optimal ones.
 *  - One pass in BFS order computes each vertex's widest bottleneck over
 *    that DAG and keeps the predecessors that achieve it; every path of the
 *    remaining DAG then has the widest bottleneck at every vertex.
 *
 * The alternative of folding hops into the weight (latency + epsilon per
 * hop) needs an epsilon smaller than any latency difference yet large
 * enough to survive rounding, which fails silently for some inputs; the
 * lexicographic passes cost two O(E) sweeps per source and never round.
 *
 * Per source we keep only the predecessor DAG (CSR), hop counts and path
 * counts saturated at MSIM_TOPOLOGY_MAX_PATHS: about 11 bytes per vertex
 * plus 4 per DAG edge, ~40 KB per GPU on the 1024-GPU rail cluster.  A route
 * is read by walking predecessors back from the destination, O(hops). */
#include "topology-private.h"

#include <math.h>
#include <string.h>

#include "msim-error.h"

/* 2^53: doubles represent every integer up to here exactly. */
#define EXACT_LIMIT 9007199254740992.0

gboolean
msim_topology_prepare_routing (MsimTopology *topo, const MsimIni *ini, GError **error)
{
  guint nv = topo->n_vertices, ne = topo->n_links;
  const MsimVertexKind *kinds = (const MsimVertexKind *)topo->vertex_kinds->data;

  /* Transit penalty: the smallest power of two above the sum of all link
   * latencies (an upper bound on the latency of any simple path). */
  double sum_latency = 0;
  guint n_host_vertices = 0;
  for (guint e = 0; e < ne; e++)
    sum_latency += (double)topo->link_latency_ps[e];
  for (guint v = 0; v < nv; v++)
    n_host_vertices += kinds[v] == MSIM_VERTEX_HOST;
  double penalty = 1;
  while (penalty <= sum_latency)
    penalty *= 2;
  if ((double)(n_host_vertices + 1) * penalty >= EXACT_LIMIT)
    {
      if (ini != NULL)
        msim_ini_set_error (ini, error, "topology", NULL,
                            "link latencies sum to %.3g s over %u host vertices, too much for "
                            "exact route costs (limit: (hosts + 1) x latency sum < 2^53 ps)",
                            sum_latency * 1e-12, n_host_vertices);
      else
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                     "%s: link latencies too large for exact route costs", topo->origin);
      return FALSE;
    }

  topo->weights = g_new (double, MAX (ne, 1));
  for (guint e = 0; e < ne; e++)
    topo->weights[e] = (double)topo->link_latency_ps[e]
                       + (kinds[topo->link_src[e]] == MSIM_VERTEX_HOST ? penalty : 0.0);

  /* Adjacency in CSR form, links in id order within a vertex, so that the
   * predecessor order (and with it ECMP choices and path numbering) depends
   * only on the topology file. */
  topo->out_off = g_new0 (guint32, nv + 1);
  topo->in_off = g_new0 (guint32, nv + 1);
  topo->out_link = g_new (guint32, MAX (ne, 1));
  topo->in_link = g_new (guint32, MAX (ne, 1));
  for (guint e = 0; e < ne; e++)
    {
      topo->out_off[topo->link_src[e] + 1]++;
      topo->in_off[topo->link_dst[e] + 1]++;
    }
  for (guint v = 0; v < nv; v++)
    {
      topo->out_off[v + 1] += topo->out_off[v];
      topo->in_off[v + 1] += topo->in_off[v];
    }
  g_autofree guint32 *out_fill = g_memdup2 (topo->out_off, nv * sizeof (guint32));
  g_autofree guint32 *in_fill = g_memdup2 (topo->in_off, nv * sizeof (guint32));
  for (guint e = 0; e < ne; e++)
    {
      topo->out_link[out_fill[topo->link_src[e]]++] = e;
      topo->in_link[in_fill[topo->link_dst[e]]++] = e;
    }
  topo->trees = g_new0 (MsimSourceTree *, nv);
  return TRUE;
}

static void
source_tree_free (MsimSourceTree *t)
{
  if (t == NULL)
    return;
  g_free (t->pred_off);
  g_free (t->pred_link);
  g_free (t->hops);
  g_free (t->n_paths);
  g_free (t->single_off);
  g_free (t->single_link);
  g_free (t);
}

void
msim_topology_clear_routing (MsimTopology *topo)
{
  if (topo->trees != NULL)
    for (guint v = 0; v < topo->n_vertices; v++)
      source_tree_free (topo->trees[v]);
  g_clear_pointer (&topo->trees, g_free);
  g_clear_pointer (&topo->weights, g_free);
  g_clear_pointer (&topo->out_off, g_free);
  g_clear_pointer (&topo->out_link, g_free);
  g_clear_pointer (&topo->in_off, g_free);
  g_clear_pointer (&topo->in_link, g_free);
}

/* Builds the equal-cost predecessor DAG of @src from its distances @d
 * (see the file comment). */
static MsimSourceTree *
build_source_tree (const MsimTopology *topo, guint src, const double *d)
{
  guint nv = topo->n_vertices;
  const double *w = topo->weights;

  /* BFS over tight edges: fewest hops among the cost-optimal paths. */
  g_autofree guint32 *hops = g_new (guint32, nv);
  g_autofree guint32 *order = g_new (guint32, nv);
  for (guint v = 0; v < nv; v++)
    hops[v] = G_MAXUINT32;
  guint head = 0, tail = 0;
  hops[src] = 0;
  order[tail++] = src;
  while (head < tail)
    {
      guint u = order[head++];
      for (guint32 i = topo->out_off[u]; i < topo->out_off[u + 1]; i++)
        {
          guint e = topo->out_link[i];
          guint v = topo->link_dst[e];
          if (hops[v] == G_MAXUINT32 && d[u] + w[e] == d[v])
            {
              hops[v] = hops[u] + 1;
              order[tail++] = v;
            }
        }
    }

  /* Widest bottleneck over the (cost, hops) DAG, in BFS order so that every
   * predecessor is final before its successors; then count and keep the
   * predecessors that achieve it. */
  g_autofree double *width = g_new (double, nv);
  MsimSourceTree *t = g_new0 (MsimSourceTree, 1);
  t->pred_off = g_new0 (guint32, nv + 1);
  t->hops = g_new (guint16, nv);
  t->n_paths = g_new0 (guint8, nv);
  width[src] = INFINITY;
  t->n_paths[src] = 1;
#define ON_DAG(e, u, v) (hops[u] != G_MAXUINT32 && hops[u] + 1 == hops[v] && d[u] + w[e] == d[v])
  for (guint k = 1; k < tail; k++)
    {
      guint v = order[k];
      double best = 0;
      for (guint32 i = topo->in_off[v]; i < topo->in_off[v + 1]; i++)
        {
          guint e = topo->in_link[i];
          guint u = topo->link_src[e];
          if (ON_DAG (e, u, v))
            best = MAX (best, MIN (width[u], topo->link_capacity[e]));
        }
      width[v] = best;
      guint count = 0, paths = 0;
      for (guint32 i = topo->in_off[v]; i < topo->in_off[v + 1]; i++)
        {
          guint e = topo->in_link[i];
          guint u = topo->link_src[e];
          if (ON_DAG (e, u, v) && MIN (width[u], topo->link_capacity[e]) == best)
            {
              count++;
              paths = MIN (paths + t->n_paths[u], MSIM_TOPOLOGY_MAX_PATHS);
            }
        }
      t->pred_off[v + 1] = count;
      t->n_paths[v] = (guint8)paths;
    }
  for (guint v = 0; v < nv; v++)
    {
      t->pred_off[v + 1] += t->pred_off[v];
      t->hops[v] = hops[v] == G_MAXUINT32 ? MSIM_HOPS_UNREACHABLE
                                          : (guint16)MIN (hops[v], MSIM_HOPS_UNREACHABLE - 1);
    }
  t->pred_link = g_new (guint32, MAX (t->pred_off[nv], 1));
  for (guint k = 1; k < tail; k++)
    {
      guint v = order[k];
      guint32 pos = t->pred_off[v];
      for (guint32 i = topo->in_off[v]; i < topo->in_off[v + 1]; i++)
        {
          guint e = topo->in_link[i];
          guint u = topo->link_src[e];
          if (ON_DAG (e, u, v) && MIN (width[u], topo->link_capacity[e]) == width[v])
            t->pred_link[pos++] = e;
        }
    }
#undef ON_DAG
  /* Single-path routes, walked once here: a route query copies them. */
  t->single_off = g_new (guint32, nv);
  guint32 total = 0;
  for (guint v = 0; v < nv; v++)
    {
      gboolean single = v != src && t->hops[v] != MSIM_HOPS_UNREACHABLE
                        && t->hops[v] <= MSIM_ROUTE_MAX_HOPS && t->n_paths[v] == 1;
      t->single_off[v] = single ? total : MSIM_NO_SINGLE;
      total += single ? t->hops[v] : 0;
    }
  t->single_link = g_new (guint32, MAX (total, 1));
  for (guint v = 0; v < nv; v++)
    if (t->single_off[v] != MSIM_NO_SINGLE)
      {
        guint u = v;
        for (guint pos = t->hops[v]; pos-- > 0;)
          {
            guint e = t->pred_link[t->pred_off[u]]; /* the only predecessor */
            t->single_link[t->single_off[v] + pos] = e;
            u = topo->link_src[e];
          }
      }
  return t;
}

/* GPU sources are computed in blocks of up to this many GPUs (fewer on
 * graphs so large that the block's distance matrix would pass 32 MB).  igraph's Dijkstra
 * rebuilds its incidence lists on every call, which is about half of the
 * cost of a single-source call; one call for a block of sources pays that
 * once.  Collectives query every GPU as a source, so the neighbours in a
 * block are almost always needed soon; other vertices (host memory, NICs)
 * are computed one at a time. */
#define GPU_SOURCE_BLOCK 64

/* Computes the trees of the uncached sources among @want (n of them) and
 * publishes them.  Called with tree_lock held. */
static void
compute_trees (MsimTopology *topo, const guint *want, guint n)
{
  guint nv = topo->n_vertices;
  igraph_vector_int_t from;
  igraph_matrix_t res;
  igraph_vector_t weights;
  msim_topology_igraph_lock ();
  if (igraph_vector_int_init (&from, n) != IGRAPH_SUCCESS
      || igraph_matrix_init (&res, n, nv) != IGRAPH_SUCCESS)
    g_error ("out of memory");
  for (guint i = 0; i < n; i++)
    VECTOR (from)[i] = want[i];
  igraph_vector_view (&weights, topo->weights, topo->n_links);
  /* All weights are finite and non-negative by construction, the only
   * conditions under which igraph's Dijkstra fails; a failure here is a
   * programming error, not an input error. */
  if (igraph_distances_dijkstra (&topo->graph, &res, igraph_vss_vector (&from), igraph_vss_all (),
                                 &weights, IGRAPH_OUT)
      != IGRAPH_SUCCESS)
    g_error ("igraph_distances_dijkstra failed on a validated topology");
  msim_topology_igraph_unlock ();
  /* igraph matrices are column-major: row i (source i) is strided. */
  g_autofree double *d = g_new (double, nv);
  for (guint i = 0; i < n; i++)
    {
      for (guint v = 0; v < nv; v++)
        d[v] = MATRIX (res, i, v);
      g_atomic_pointer_set (&topo->trees[want[i]], build_source_tree (topo, want[i], d));
    }
  msim_topology_igraph_lock ();
  igraph_matrix_destroy (&res);
  igraph_vector_int_destroy (&from);
  msim_topology_igraph_unlock ();
}

/* The cached tree of @src, built on first use.  Readers take no lock: a
 * tree's pointer is published with an atomic store after the tree is
 * complete, and trees never change afterwards. */
static const MsimSourceTree *
source_tree (MsimTopology *topo, guint src)
{
  MsimSourceTree *t = g_atomic_pointer_get (&topo->trees[src]);
  if (G_LIKELY (t != NULL))
    return t;
  g_mutex_lock (&topo->tree_lock);
  if (g_atomic_pointer_get (&topo->trees[src]) == NULL)
    {
      guint want[GPU_SOURCE_BLOCK];
      guint n = 0;
      gint32 gpu = topo->vertex_gpu[src];
      if (gpu < 0)
        want[n++] = src;
      else
        {
          guint block
              = CLAMP ((32u << 20) / (sizeof (double) * topo->n_vertices), 1, GPU_SOURCE_BLOCK);
          guint lo = (guint)gpu / block * block;
          guint hi = MIN (lo + block, topo->n_gpus);
          for (guint g = lo; g < hi; g++)
            if (g_atomic_pointer_get (&topo->trees[topo->gpu_vertex[g]]) == NULL)
              want[n++] = topo->gpu_vertex[g];
        }
      compute_trees (topo, want, n);
    }
  t = g_atomic_pointer_get (&topo->trees[src]);
  g_mutex_unlock (&topo->tree_lock);
  return t;
}

/* SplitMix64's finaliser: a fixed, well-mixed 64-bit permutation, so ECMP
 * choices are identical on every platform and run. */
static inline guint64
mix64 (guint64 x)
{
  x ^= x >> 30;
  x *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= G_GUINT64_CONSTANT (0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static gboolean
check_route (MsimTopology *topo, const MsimSourceTree *t, guint src, guint dst, GError **error)
{
  guint h = t->hops[dst];
  if (h == MSIM_HOPS_UNREACHABLE)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no route from '%s' to '%s'",
                   topo->origin, msim_topology_vertex_name (topo, src),
                   msim_topology_vertex_name (topo, dst));
      return FALSE;
    }
  if (h > MSIM_ROUTE_MAX_HOPS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%s: the route from '%s' to '%s' has %u hops, more than the %d a route can "
                   "hold",
                   topo->origin, msim_topology_vertex_name (topo, src),
                   msim_topology_vertex_name (topo, dst), h, MSIM_ROUTE_MAX_HOPS);
      return FALSE;
    }
  return TRUE;
}

gboolean
msim_topology_route (MsimTopology *topo, guint src, guint dst, guint64 flow_id, MsimRoute *out,
                     GError **error)
{
  g_return_val_if_fail (topo != NULL && out != NULL, FALSE);
  g_return_val_if_fail (src < topo->n_vertices && dst < topo->n_vertices, FALSE);
  out->n_links = 0;
  out->latency_ps = 0;
  if (src == dst)
    return TRUE;
  const MsimSourceTree *t = source_tree (topo, src);
  if (!check_route (topo, t, src, dst, error))
    return FALSE;

  guint n = t->hops[dst];
  if (t->single_off[dst] != MSIM_NO_SINGLE)
    {
      const guint32 *links = t->single_link + t->single_off[dst];
      gint64 lat = 0;
      for (guint pos = 0; pos < n; pos++)
        {
          out->links[pos] = links[pos];
          lat += topo->link_latency_ps[links[pos]];
        }
      out->n_links = n;
      out->latency_ps = lat;
      return TRUE;
    }
  guint64 h0
      = mix64 (mix64 (mix64 (src + G_GUINT64_CONSTANT (0x9e3779b97f4a7c15)) ^ dst) ^ flow_id);
  gint64 latency = 0;
  guint v = dst;
  for (guint pos = n; pos-- > 0;)
    {
      guint32 lo = t->pred_off[v], hi = t->pred_off[v + 1];
      guint e = t->pred_link[lo];
      if (hi - lo > 1)
        {
          /* Weighted by the number of equal-cost paths through each
           * predecessor, with an independent hash per vertex: the product
           * of the per-hop probabilities telescopes to 1 / n_paths(dst), so
           * every equal-cost path is equally likely. */
          guint total = 0;
          for (guint32 i = lo; i < hi; i++)
            total += t->n_paths[topo->link_src[t->pred_link[i]]];
          guint r = (guint)(mix64 (h0 ^ ((guint64)v * G_GUINT64_CONSTANT (0xd1b54a32d192ed03)))
                            % total);
          for (guint32 i = lo; i < hi; i++)
            {
              guint c = t->n_paths[topo->link_src[t->pred_link[i]]];
              if (r < c)
                {
                  e = t->pred_link[i];
                  break;
                }
              r -= c;
            }
        }
      out->links[pos] = e;
      latency += topo->link_latency_ps[e];
      v = topo->link_src[e];
    }
  out->n_links = n;
  out->latency_ps = latency;
  return TRUE;
}

guint
msim_topology_n_paths (MsimTopology *topo, guint src, guint dst)
{
  g_return_val_if_fail (topo != NULL, 0);
  g_return_val_if_fail (src < topo->n_vertices && dst < topo->n_vertices, 0);
  if (src == dst)
    return 1;
  const MsimSourceTree *t = source_tree (topo, src);
  return t->hops[dst] == MSIM_HOPS_UNREACHABLE ? 0 : t->n_paths[dst];
}

gboolean
msim_topology_path (MsimTopology *topo, guint src, guint dst, guint k, MsimRoute *out)
{
  g_return_val_if_fail (topo != NULL && out != NULL, FALSE);
  g_return_val_if_fail (src < topo->n_vertices && dst < topo->n_vertices, FALSE);
  out->n_links = 0;
  out->latency_ps = 0;
  if (src == dst)
    return k == 0;
  const MsimSourceTree *t = source_tree (topo, src);
  if (t->hops[dst] == MSIM_HOPS_UNREACHABLE || t->hops[dst] > MSIM_ROUTE_MAX_HOPS
      || k >= t->n_paths[dst])
    return FALSE;
  /* Mixed-radix decoding: the paths through the i-th predecessor are
   * numbered after those through predecessors 0..i-1.  Counts saturate at
   * MSIM_TOPOLOGY_MAX_PATHS, and k stays below the (saturated) count of the
   * vertex it is decoded at, so distinct k give distinct paths. */
  guint n = t->hops[dst];
  gint64 latency = 0;
  guint v = dst;
  for (guint pos = n; pos-- > 0;)
    {
      guint32 lo = t->pred_off[v], hi = t->pred_off[v + 1];
      guint e = t->pred_link[lo];
      for (guint32 i = lo; i < hi; i++)
        {
          guint c = t->n_paths[topo->link_src[t->pred_link[i]]];
          if (k < c)
            {
              e = t->pred_link[i];
              break;
            }
          k -= c;
        }
      out->links[pos] = e;
      latency += topo->link_latency_ps[e];
      v = topo->link_src[e];
    }
  out->n_links = n;
  out->latency_ps = latency;
  return TRUE;
}
