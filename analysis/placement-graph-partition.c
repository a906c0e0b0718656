/* graph-partition: balanced partitioning of the igraph affinity graph
 * (vertices (layer, expert), edge weights = top-1 pair counts), for the
 * case of many experts per GPU and for hierarchical clusters.
 *
 * Level by level (nodes first, then the GPUs of each node; GPUs directly
 * with one node):
 *  1. Louvain community detection (igraph_community_multilevel, seeded
 *     igraph RNG) on the subgraph of the experts still to split; the
 *     coarsest level of the hierarchy with at least as many communities as
 *     parts is used, so communities are chains of co-routed experts across
 *     layers, which is what a GPU should hold;
 *  2. communities are packed into the parts greedily (largest first, least
 *     per-layer overflow), because a part must take exactly its share of
 *     every layer;
 *  3. each layer is then assigned exactly by linear assignment to the parts'
 *     slots, maximising the affinity weight to the experts already in each
 *     part, and a few such sweeps refine the cut (Kernighan-Lin in spirit,
 *     with exact per-layer moves).
 * igraph has no balanced k-way partitioner (no METIS), hence steps 2-3.
 * Finally the whole layout is polished by the same descent as
 * affinity-local-search (refine=true, the default).
 */
#include <igraph.h>
#include <string.h>

#include "msim-error.h"
#include "placement-private.h"

typedef struct
{
  double resolution;
  guint sweeps;
  gboolean refine;
} GraphPartition;

static const char *const gp_keys[] = { "resolution", "sweeps", "refine", NULL };
static const char *const bool_names[] = { "false", "true", NULL };

static gboolean
gp_init (void **state, const char *const *options, GError **error)
{
  const char *name = "graph-partition";
  g_autoptr (GHashTable) opts = msim_policy_options_parse (name, options, gp_keys, error);
  if (opts == NULL)
    return FALSE;
  GraphPartition gp;
  int refine;
  if (!msim_policy_option_double (opts, name, "resolution", 1.0, 1e-6, 1e6, &gp.resolution, error)
      || !msim_policy_option_uint (opts, name, "sweeps", 10, 0, 10000, &gp.sweeps, error)
      || !msim_policy_option_choice (opts, name, "refine", 1, bool_names, &refine, error))
    return FALSE;
  gp.refine = refine == 1;
  *state = g_memdup2 (&gp, sizeof gp);
  return TRUE;
}

static gboolean
igraph_fail (igraph_error_t rc, const char *what, GError **error)
{
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME, "igraph %s failed: %s", what,
               igraph_strerror (rc));
  return FALSE;
}

typedef struct
{
  const MsimPlacementProblem *pb;
  const GraphPartition *opt;
  MsimAssign *assign;
  double top_modularity;
  guint top_communities;
  gboolean top_done;
} Ctx;

static inline guint64
pc (const MsimPlacementProblem *pb, guint l, guint i, guint j)
{
  const guint E = pb->experts;
  return pb->pair_counts[((gsize)l * E + i) * E + j];
}

/* Louvain communities of the member subgraph: comm[v] for member vertex
 * v = l * E + e (others untouched); returns the number of communities. */
static gboolean
communities (Ctx *c, const guint8 *member, guint parts, guint *comm, guint *n_comm, GError **error)
{
  const MsimPlacementProblem *pb = c->pb;
  const guint L = pb->layers, E = pb->experts;
  const gsize n = (gsize)L * E;
  g_autofree guint *local = g_new (guint, n);
  g_autofree guint *global = g_new (guint, n);
  guint nv = 0;
  for (gsize v = 0; v < n; v++)
    if (member[v])
      {
        local[v] = nv;
        global[nv++] = (guint)v;
      }
  igraph_vector_int_t edges;
  igraph_vector_t weights;
  igraph_vector_int_init (&edges, 0);
  igraph_vector_init (&weights, 0);
  for (guint l = 0; l + 1 < L; l++)
    for (guint i = 0; i < E; i++)
      for (guint j = 0; j < E; j++)
        {
          gsize a = (gsize)l * E + i, b = (gsize)(l + 1) * E + j;
          guint64 w = pc (pb, l, i, j);
          if (w == 0 || !member[a] || !member[b])
            continue;
          igraph_vector_int_push_back (&edges, local[a]);
          igraph_vector_int_push_back (&edges, local[b]);
          igraph_vector_push_back (&weights, (double)w);
        }
  igraph_t graph;
  igraph_error_t rc = igraph_create (&graph, &edges, nv, IGRAPH_UNDIRECTED);
  igraph_vector_int_destroy (&edges);
  if (rc != IGRAPH_SUCCESS)
    {
      igraph_vector_destroy (&weights);
      return igraph_fail (rc, "create", error);
    }
  igraph_vector_int_t membership;
  igraph_matrix_int_t memberships;
  igraph_vector_t modularity;
  igraph_vector_int_init (&membership, 0);
  igraph_matrix_int_init (&memberships, 0, 0);
  igraph_vector_init (&modularity, 0);
  igraph_rng_seed (igraph_rng_default (), (igraph_uint_t)c->pb->seed);
  rc = igraph_community_multilevel (&graph, &weights, c->opt->resolution, &membership, &memberships,
                                    &modularity);
  gboolean ok = rc == IGRAPH_SUCCESS;
  if (ok)
    {
      /* Levels go from fine to coarse: take the coarsest with >= parts
       * communities, else the finest. */
      igraph_integer_t levels = igraph_matrix_int_nrow (&memberships);
      igraph_integer_t pick = 0;
      guint count = 0;
      for (igraph_integer_t lv = 0; lv < levels; lv++)
        {
          igraph_integer_t mx = -1;
          for (guint v = 0; v < nv; v++)
            mx = MAX (mx, MATRIX (memberships, lv, v));
          if ((guint)(mx + 1) >= parts || lv == 0)
            {
              pick = lv;
              count = (guint)(mx + 1);
            }
        }
      for (guint v = 0; v < nv; v++)
        comm[global[v]]
            = levels > 0 ? (guint)MATRIX (memberships, pick, v) : (guint)VECTOR (membership)[v];
      if (levels == 0)
        {
          igraph_integer_t mx = -1;
          for (guint v = 0; v < nv; v++)
            mx = MAX (mx, VECTOR (membership)[v]);
          count = (guint)(mx + 1);
        }
      *n_comm = count;
      if (!c->top_done)
        {
          c->top_done = TRUE;
          c->top_communities = count;
          c->top_modularity
              = igraph_vector_size (&modularity) > 0 ? VECTOR (modularity)[pick] : 0.0;
        }
    }
  igraph_vector_int_destroy (&membership);
  igraph_matrix_int_destroy (&memberships);
  igraph_vector_destroy (&modularity);
  igraph_vector_destroy (&weights);
  igraph_destroy (&graph);
  if (!ok)
    return igraph_fail (rc, "community_multilevel", error);
  return TRUE;
}

/* One exact re-assignment of layer @l's members to the parts' slots,
 * maximising the weight to neighbours by part (@bin_of gives each member
 * vertex's current or target part).  Returns TRUE if anything moved. */
static gboolean
assign_layer (Ctx *c, const guint8 *member, guint l, const guint *bin_of, const guint *prefer,
              const guint *cap, guint K, guint *part, gboolean force)
{
  const MsimPlacementProblem *pb = c->pb;
  const guint L = pb->layers, E = pb->experts;
  guint rows = 0, cols = 0;
  g_autofree guint *items = g_new (guint, E);
  for (guint e = 0; e < E; e++)
    if (member[(gsize)l * E + e])
      items[rows++] = e;
  for (guint k = 0; k < K; k++)
    cols += cap[k];
  if (rows == 0)
    return FALSE;
  g_autofree gint64 *gain = g_new0 (gint64, (gsize)rows * K);
  for (guint r = 0; r < rows; r++)
    {
      guint e = items[r];
      gint64 *g = gain + (gsize)r * K;
      for (guint j = 0; j < E; j++)
        {
          if (l > 0 && member[(gsize)(l - 1) * E + j])
            g[bin_of[(gsize)(l - 1) * E + j]] += (gint64)pc (pb, l - 1, j, e);
          if (l + 1 < L && member[(gsize)(l + 1) * E + j])
            g[bin_of[(gsize)(l + 1) * E + j]] += (gint64)pc (pb, l, e, j);
        }
      if (prefer)
        {
          /* The community's part outweighs all affinity of the expert, so
           * the assignment keeps as many experts at their target as the
           * capacities allow and uses affinity to place the rest. */
          gint64 total = 1;
          for (guint k = 0; k < K; k++)
            total += g[k];
          g[prefer[(gsize)l * E + e]] += total;
        }
    }
  g_autofree gint64 *cost = g_new (gint64, (gsize)rows * cols);
  g_autofree guint *slot_bin = g_new (guint, cols);
  for (guint k = 0, s = 0; k < K; k++)
    for (guint x = 0; x < cap[k]; x++)
      slot_bin[s++] = k;
  gint64 current = 0;
  for (guint r = 0; r < rows; r++)
    {
      for (guint s = 0; s < cols; s++)
        cost[(gsize)r * cols + s] = -gain[(gsize)r * K + slot_bin[s]];
      if (!force)
        current -= gain[(gsize)r * K + part[(gsize)l * E + items[r]]];
    }
  g_autofree guint *rc = g_new (guint, rows);
  gint64 best = msim_assign_solve (c->assign, rows, cols, cost, rc);
  if (!force && best >= current)
    return FALSE;
  for (guint r = 0; r < rows; r++)
    part[(gsize)l * E + items[r]] = slot_bin[rc[r]];
  return TRUE;
}

/* Splits the members into K parts with per-layer capacities @cap. */
static gboolean
split_level (Ctx *c, const guint8 *member, guint K, const guint *cap, guint *part, GError **error)
{
  const MsimPlacementProblem *pb = c->pb;
  const guint L = pb->layers, E = pb->experts;
  const gsize n = (gsize)L * E;
  if (K == 1)
    {
      for (gsize v = 0; v < n; v++)
        if (member[v])
          part[v] = 0;
      return TRUE;
    }
  g_autofree guint *comm = g_new0 (guint, n);
  guint nc = 0;
  if (!communities (c, member, K, comm, &nc, error))
    return FALSE;

  /* Per-community per-layer sizes, then greedy packing. */
  g_autofree guint *csize = g_new0 (guint, (gsize)nc * L);
  g_autofree guint *ctotal = g_new0 (guint, nc);
  g_autofree guint *cfirst = g_new (guint, nc);
  for (guint x = 0; x < nc; x++)
    cfirst[x] = G_MAXUINT;
  for (gsize v = 0; v < n; v++)
    if (member[v])
      {
        csize[(gsize)comm[v] * L + v / E]++;
        ctotal[comm[v]]++;
        cfirst[comm[v]] = MIN (cfirst[comm[v]], (guint)v);
      }
  g_autofree guint *order = g_new (guint, nc);
  for (guint x = 0; x < nc; x++)
    order[x] = x;
  /* Insertion sort by size descending, first vertex ascending: nc is small
   * and the order must be deterministic. */
  for (guint a = 1; a < nc; a++)
    {
      guint key = order[a], b = a;
      while (b > 0
             && (ctotal[order[b - 1]] < ctotal[key]
                 || (ctotal[order[b - 1]] == ctotal[key] && cfirst[order[b - 1]] > cfirst[key])))
        {
          order[b] = order[b - 1];
          b--;
        }
      order[b] = key;
    }
  g_autofree guint *used = g_new0 (guint, (gsize)K * L);
  g_autofree guint *target = g_new (guint, nc);
  for (guint oi = 0; oi < nc; oi++)
    {
      guint x = order[oi];
      if (ctotal[x] == 0)
        {
          target[x] = 0;
          continue;
        }
      guint best = 0;
      gint64 best_over = G_MAXINT64, best_free = -1;
      for (guint k = 0; k < K; k++)
        {
          gint64 over = 0, fr = 0;
          for (guint l = 0; l < L; l++)
            {
              gint64 u = used[(gsize)k * L + l] + csize[(gsize)x * L + l];
              over += MAX (0, u - (gint64)cap[k]);
              fr += (gint64)cap[k] - used[(gsize)k * L + l];
            }
          if (over < best_over || (over == best_over && fr > best_free))
            {
              best = k;
              best_over = over;
              best_free = fr;
            }
        }
      target[x] = best;
      for (guint l = 0; l < L; l++)
        used[(gsize)best * L + l] += csize[(gsize)x * L + l];
    }

  /* Exact per-layer assignment towards the targets, then refinement sweeps
   * against the current parts. */
  g_autofree guint *bin_of = g_new0 (guint, n);
  for (gsize v = 0; v < n; v++)
    if (member[v])
      bin_of[v] = target[comm[v]];
  for (guint l = 0; l < L; l++)
    assign_layer (c, member, l, bin_of, bin_of, cap, K, part, TRUE);
  for (guint sw = 0; sw < c->opt->sweeps; sw++)
    {
      gboolean moved = FALSE;
      for (guint l = 0; l < L; l++)
        moved |= assign_layer (c, member, l, part, NULL, cap, K, part, FALSE);
      if (!moved)
        break;
    }
  return TRUE;
}

static gboolean
gp_place (void *state, const MsimPlacementProblem *pb, MsimPlacementOutput *out, GError **error)
{
  const GraphPartition *opt = state;
  const guint L = pb->layers, E = pb->experts, G = pb->gpus, N = pb->nodes;
  const gsize n = (gsize)L * E;
  Ctx c = { 0 };
  c.pb = pb;
  c.opt = opt;
  c.assign = msim_assign_new (E, G * pb->slots_per_gpu);
  g_autofree guint8 *all = g_new (guint8, n);
  memset (all, 1, n);
  g_autofree guint *part = g_new0 (guint, n);
  gboolean uniform = G % N == 0;
  for (guint g = 0; uniform && g < G; g++)
    uniform = pb->gpu_node[g] == g / (G / N);
  gboolean ok = TRUE;
  if (N > 1 && N < G && uniform)
    {
      guint q = G / N;
      g_autofree guint *cap = g_new (guint, MAX (N, q));
      for (guint k = 0; k < N; k++)
        cap[k] = q * pb->slots_per_gpu;
      ok = split_level (&c, all, N, cap, part, error);
      g_autofree guint8 *member = g_new (guint8, n);
      g_autofree guint *sub = g_new0 (guint, n);
      for (guint k = 0; k < q; k++)
        cap[k] = pb->slots_per_gpu;
      for (guint node = 0; ok && node < N; node++)
        {
          for (gsize v = 0; v < n; v++)
            member[v] = part[v] == node;
          ok = split_level (&c, member, q, cap, sub, error);
          for (gsize v = 0; ok && v < n; v++)
            if (member[v])
              out->gpu[v] = node * q + sub[v];
        }
    }
  else
    {
      g_autofree guint *cap = g_new (guint, G);
      for (guint k = 0; k < G; k++)
        cap[k] = pb->slots_per_gpu;
      ok = split_level (&c, all, G, cap, part, error);
      for (gsize v = 0; ok && v < n; v++)
        out->gpu[v] = part[v];
    }
  msim_assign_free (c.assign);
  if (!ok)
    return FALSE;
  gint64 before = (gint64)msim_placement_problem_cost (pb, out->gpu);
  gint64 after = before;
  if (opt->refine)
    {
      g_autoptr (MsimSearch) s = msim_search_new (pb);
      after = msim_search_descend (s, out->gpu, 1000, 0);
    }
  guint64 xg, xn, tot;
  msim_placement_problem_crossings (pb, out->gpu, &xg, &xn, &tot);
  msim_placement_output_add_stat (out, "communities", c.top_communities);
  msim_placement_output_add_stat (out, "modularity", c.top_modularity);
  msim_placement_output_add_stat (out, "partition_objective", (double)before);
  msim_placement_output_add_stat (out, "objective", (double)after);
  msim_placement_output_add_stat (out, "cross_gpu_fraction", tot ? (double)xg / (double)tot : 0.0);
  msim_placement_output_add_stat (out, "cross_node_fraction", tot ? (double)xn / (double)tot : 0.0);
  return TRUE;
}

const MsimPlacementPolicy msim_placement_policy_graph_partition = {
  .name = "graph-partition",
  .summary = "Louvain communities of the affinity graph, packed per node then per GPU",
  .options_help = "resolution=X   Louvain resolution (default 1)\n"
                  "sweeps=N       per-level refinement sweeps (default 10)\n"
                  "refine=true|false  polish with the local-search descent (default true)\n",
  .init = gp_init,
  .free_state = g_free,
  .place = gp_place,
};
