/* The placement search engine behind affinity-local-search (and the
 * refinement step of graph-partition and the warm starts of exflow-ilp).
 *
 * The objective is a chain: layer l interacts only with layers l-1 and l+1
 * through the top-1 pair counts of the two boundaries.  Two consequences
 * drive the design:
 *  - given both neighbours, the best layout of one layer is a linear
 *    assignment of its experts to the GPUs' slots, solved exactly;
 *  - relabelling GPUs in every layer after boundary l (by a permutation
 *    that keeps nodes together) changes the cost of boundary l only, so the
 *    best relabelling of each boundary is also an exact assignment, and
 *    given every layer's grouping of experts the boundaries can be labelled
 *    independently.  That makes the whole problem a shortest path over
 *    groupings, which is small for Mixtral-sized layers (at most 105
 *    groupings of 8 experts) and solved exactly by dynamic programming.
 * For larger layers the DP state space explodes (16 experts on 8 GPUs
 * already have 2 million groupings), so descent with both moves, restarts
 * and perturbations takes over. */
#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

#include "placement-private.h"

struct _MsimSearch
{
  const MsimPlacementProblem *pb;
  guint L, E, G, N, cap, slots;
  guint q;          /* GPUs per node when uniform */
  gboolean uniform; /* GPU g is in node g / q */
  gint64 gc, nc;    /* costs */
  gint64 *dist;     /* [G * G] */
  MsimAssign *assign;
  gint64 *V, *Vnode, *A, *Aslot; /* best response workspaces */
  gint64 *W, *inner, *val;
  guint *row_col, *rho; /* [max dim], [N * N * q] */
  guint *tau;           /* [G] */
  gint64 *C;            /* [N * N] or [G * G] cost matrices */
  guint32 *tmp;         /* [L * E] */
};

static inline const guint64 *
pair_row (const MsimSearch *s, guint l, guint i)
{
  return s->pb->pair_counts + ((gsize)l * s->E + i) * s->E;
}

MsimSearch *
msim_search_new (const MsimPlacementProblem *pb)
{
  MsimSearch *s = g_new0 (MsimSearch, 1);
  s->pb = pb;
  s->L = pb->layers;
  s->E = pb->experts;
  s->G = pb->gpus;
  s->N = pb->nodes;
  s->cap = pb->slots_per_gpu;
  s->slots = s->G * s->cap;
  s->gc = pb->gpu_cost;
  s->nc = pb->node_cost;
  s->uniform = s->G % s->N == 0;
  s->q = s->uniform ? s->G / s->N : 0;
  for (guint g = 0; s->uniform && g < s->G; g++)
    if (pb->gpu_node[g] != g / s->q)
      s->uniform = FALSE;
  s->dist = g_new (gint64, (gsize)s->G * s->G);
  for (guint g = 0; g < s->G; g++)
    for (guint h = 0; h < s->G; h++)
      s->dist[(gsize)g * s->G + h]
          = g == h ? 0 : (pb->gpu_node[g] == pb->gpu_node[h] ? s->gc : s->nc);
  guint dim = MAX (MAX (s->E, s->slots), s->G);
  s->assign = msim_assign_new (dim, dim);
  s->V = g_new (gint64, (gsize)s->E * s->G);
  s->Vnode = g_new (gint64, (gsize)s->E * s->N);
  s->A = g_new (gint64, (gsize)s->E * s->G);
  s->Aslot = g_new (gint64, (gsize)s->E * s->slots);
  s->W = g_new (gint64, (gsize)s->G * s->G);
  s->inner = g_new (gint64, (gsize)s->N * s->N);
  s->val = g_new (gint64, (gsize)s->N * s->N);
  s->row_col = g_new (guint, dim);
  s->rho = g_new (guint, (gsize)s->N * s->N * MAX (s->q, 1));
  s->tau = g_new (guint, s->G);
  s->C = g_new (gint64, (gsize)MAX (s->G, s->N) * MAX (s->G, s->N));
  s->tmp = g_new (guint32, (gsize)s->L * s->E);
  return s;
}

void
msim_search_free (MsimSearch *s)
{
  if (s == NULL)
    return;
  g_free (s->dist);
  msim_assign_free (s->assign);
  g_free (s->V);
  g_free (s->Vnode);
  g_free (s->A);
  g_free (s->Aslot);
  g_free (s->W);
  g_free (s->inner);
  g_free (s->val);
  g_free (s->row_col);
  g_free (s->rho);
  g_free (s->tau);
  g_free (s->C);
  g_free (s->tmp);
  g_free (s);
}

gint64
msim_search_gpu_distance (const MsimSearch *s, guint g, guint h)
{
  return s->dist[(gsize)g * s->G + h];
}

static gint64
boundary_cost (const MsimSearch *s, const guint32 *gpu, guint l)
{
  const guint E = s->E;
  const guint32 *ga = gpu + (gsize)l * E, *gb = gpu + (gsize)(l + 1) * E;
  gint64 c = 0;
  for (guint i = 0; i < E; i++)
    {
      const guint64 *row = pair_row (s, l, i);
      const gint64 *drow = s->dist + (gsize)ga[i] * s->G;
      for (guint j = 0; j < E; j++)
        c += (gint64)row[j] * drow[gb[j]];
    }
  return c;
}

gint64
msim_search_cost (const MsimSearch *s, const guint32 *gpu)
{
  gint64 c = 0;
  for (guint l = 0; l + 1 < s->L; l++)
    c += boundary_cost (s, gpu, l);
  return c;
}

void
msim_search_contiguous (const MsimPlacementProblem *pb, guint32 *gpu)
{
  for (guint l = 0; l < pb->layers; l++)
    for (guint e = 0; e < pb->experts; e++)
      gpu[(gsize)l * pb->experts + e] = (guint32)(((guint64)e * pb->gpus) / pb->experts);
}

void
msim_search_round_robin (const MsimPlacementProblem *pb, guint32 *gpu)
{
  for (guint l = 0; l < pb->layers; l++)
    for (guint e = 0; e < pb->experts; e++)
      gpu[(gsize)l * pb->experts + e] = e % pb->gpus;
}

static void
random_layer (MsimSearch *s, gsl_rng *rng, guint32 *gpu, guint l)
{
  guint *slot = s->row_col; /* reused as scratch */
  for (guint c = 0; c < s->slots; c++)
    slot[c] = c;
  gsl_ran_shuffle (rng, slot, s->slots, sizeof (guint));
  for (guint e = 0; e < s->E; e++)
    gpu[(gsize)l * s->E + e] = slot[e] / s->cap;
}

void
msim_search_random (MsimSearch *s, gsl_rng *rng, guint32 *gpu)
{
  for (guint l = 0; l < s->L; l++)
    random_layer (s, rng, gpu, l);
}

/* ---- move 1: best response of one layer ---- */

/* Cost of putting each expert of layer @l on each GPU given the layout of
 * the neighbours (only the left one when @left_only): A[e * G + g]. */
static void
layer_costs (MsimSearch *s, const guint32 *gpu, guint l, gboolean left_only)
{
  const guint E = s->E, G = s->G, N = s->N;
  gint64 *V = s->V;
  memset (V, 0, sizeof (gint64) * E * G);
  if (l > 0)
    {
      const guint32 *gp = gpu + (gsize)(l - 1) * E;
      for (guint j = 0; j < E; j++)
        {
          const guint64 *row = pair_row (s, l - 1, j);
          for (guint e = 0; e < E; e++)
            V[(gsize)e * G + gp[j]] += (gint64)row[e];
        }
    }
  if (l + 1 < s->L && !left_only)
    {
      const guint32 *gn = gpu + (gsize)(l + 1) * E;
      for (guint e = 0; e < E; e++)
        {
          const guint64 *row = pair_row (s, l, e);
          gint64 *v = V + (gsize)e * G;
          for (guint j = 0; j < E; j++)
            v[gn[j]] += (gint64)row[j];
        }
    }
  /* A[e][g] = sum_h V[e][h] d(h, g), in O(G) per expert using the three
   * distance classes: same GPU (0), same node (gc), other node (nc). */
  for (guint e = 0; e < E; e++)
    {
      const gint64 *v = V + (gsize)e * G;
      gint64 *vn = s->Vnode + (gsize)e * N;
      gint64 tot = 0;
      memset (vn, 0, sizeof (gint64) * N);
      for (guint h = 0; h < G; h++)
        {
          vn[s->pb->gpu_node[h]] += v[h];
          tot += v[h];
        }
      gint64 *a = s->A + (gsize)e * G;
      for (guint g = 0; g < G; g++)
        {
          gint64 innode = vn[s->pb->gpu_node[g]];
          a[g] = s->gc * (innode - v[g]) + s->nc * (tot - innode);
        }
    }
}

/* Re-solves layer @l; returns the change of the total cost (<= 0). */
static gint64
best_response (MsimSearch *s, guint32 *gpu, guint l, gboolean left_only, gboolean force)
{
  const guint E = s->E, G = s->G, cap = s->cap;
  layer_costs (s, gpu, l, left_only);
  guint32 *gl = gpu + (gsize)l * E;
  gint64 current = 0;
  for (guint e = 0; e < E; e++)
    current += s->A[(gsize)e * G + gl[e]];
  /* With several slots per GPU, expand each GPU's column into its slots. */
  const gint64 *mat = s->A;
  if (cap > 1)
    {
      for (guint e = 0; e < E; e++)
        for (guint g = 0; g < G; g++)
          for (guint k = 0; k < cap; k++)
            s->Aslot[(gsize)e * s->slots + g * cap + k] = s->A[(gsize)e * G + g];
      mat = s->Aslot;
    }
  gint64 best = msim_assign_solve (s->assign, E, s->slots, mat, s->row_col);
  if (best < current || force)
    {
      for (guint e = 0; e < E; e++)
        gl[e] = s->row_col[e] / cap;
      return best - current;
    }
  return 0;
}

/* ---- move 2: relabel every layer after a boundary ---- */

/* Best structure-preserving relabelling tau of the GPUs of layer l+1 (and
 * all later layers) for boundary @l.  Returns the gain in score (>= 0) and
 * fills s->tau. */
static gint64
best_relabel (MsimSearch *s, const guint32 *gpu, guint l)
{
  const guint E = s->E, G = s->G, N = s->N;
  gint64 *W = s->W;
  memset (W, 0, sizeof (gint64) * G * G);
  const guint32 *ga = gpu + (gsize)l * E, *gb = gpu + (gsize)(l + 1) * E;
  for (guint i = 0; i < E; i++)
    {
      const guint64 *row = pair_row (s, l, i);
      gint64 *w = W + (gsize)ga[i] * G;
      for (guint j = 0; j < E; j++)
        w[gb[j]] += (gint64)row[j];
    }
  /* score(tau) = sum_{g,h} W[g][h] (nc - d(g, tau(h))). */
  gint64 current = 0;
  for (guint g = 0; g < G; g++)
    for (guint h = 0; h < G; h++)
      current += W[(gsize)g * G + h] * (s->nc - s->dist[(gsize)g * G + h]);

  gint64 best;
  if (N == 1 || N == G)
    {
      /* Flat: only same-GPU pairs score; assign h -> g maximising W[g][h]. */
      gint64 same = N == 1 ? s->gc : s->nc;
      gint64 *c = s->C;
      for (guint h = 0; h < G; h++)
        for (guint g = 0; g < G; g++)
          c[(gsize)h * G + g] = -W[(gsize)g * G + h];
      gint64 m = -msim_assign_solve (s->assign, G, G, c, s->row_col);
      for (guint h = 0; h < G; h++)
        s->tau[h] = s->row_col[h];
      /* With one node every other GPU scores nc - gc = 0; with one GPU per
       * node, other GPUs score 0 as well. */
      best = m * same;
    }
  else if (s->uniform)
    {
      const guint q = s->q;
      gint64 *c = s->C;
      /* For every node pair (a <- b): best GPU matching inside, and the
       * node-level weight. */
      for (guint a = 0; a < N; a++)
        for (guint b = 0; b < N; b++)
          {
            gint64 nw = 0;
            for (guint x = 0; x < q; x++)
              for (guint y = 0; y < q; y++)
                {
                  gint64 w = W[(gsize)(a * q + x) * G + (b * q + y)];
                  nw += w;
                  c[(gsize)y * q + x] = -w;
                }
            guint *rho = s->rho + ((gsize)a * N + b) * q;
            gint64 in = -msim_assign_solve (s->assign, q, q, c, rho);
            s->val[(gsize)b * N + a] = -((s->nc - s->gc) * nw + s->gc * in);
          }
      gint64 m = -msim_assign_solve (s->assign, N, N, s->val, s->row_col);
      for (guint b = 0; b < N; b++)
        {
          guint a = s->row_col[b];
          const guint *rho = s->rho + ((gsize)a * N + b) * q;
          for (guint y = 0; y < q; y++)
            s->tau[b * q + y] = a * q + rho[y];
        }
      best = m;
    }
  else
    return 0; /* nodes of different sizes: no structure-preserving relabelling */
  return best > current ? best - current : 0;
}

static void
apply_relabel (MsimSearch *s, guint32 *gpu, guint from_layer)
{
  for (guint l = from_layer; l < s->L; l++)
    for (guint e = 0; e < s->E; e++)
      {
        guint32 *g = gpu + (gsize)l * s->E + e;
        *g = s->tau[*g];
      }
}

gint64
msim_search_descend (MsimSearch *s, guint32 *gpu, guint max_sweeps, gint64 deadline_us)
{
  gint64 cost = msim_search_cost (s, gpu);
  if (s->L < 2)
    return cost;
  for (guint sweep = 0; sweep < max_sweeps; sweep++)
    {
      gboolean improved = FALSE;
      for (guint k = 0; k < s->L; k++)
        {
          guint l = sweep % 2 == 0 ? k : s->L - 1 - k;
          gint64 d = best_response (s, gpu, l, FALSE, FALSE);
          if (d < 0)
            {
              cost += d;
              improved = TRUE;
            }
        }
      for (guint l = 0; l + 1 < s->L; l++)
        {
          gint64 gain = best_relabel (s, gpu, l);
          if (gain > 0)
            {
              apply_relabel (s, gpu, l + 1);
              cost -= gain;
              improved = TRUE;
            }
        }
      if (!improved || (deadline_us && g_get_monotonic_time () > deadline_us))
        break;
    }
  return cost;
}

/* Layer 0 contiguous, then each layer the best response to the previous
 * one only: a greedy walk down the chain. */
static void
greedy_chain (MsimSearch *s, guint32 *gpu)
{
  msim_search_contiguous (s->pb, gpu);
  for (guint l = 1; l < s->L; l++)
    best_response (s, gpu, l, TRUE, TRUE);
}

gint64
msim_search_iterate (MsimSearch *s, guint32 *gpu, gsl_rng *rng, guint restarts, gint64 deadline_us,
                     guint *improvements)
{
  const gsize n = (gsize)s->L * s->E;
  gint64 best = msim_search_descend (s, gpu, 1000, deadline_us);
  guint improved = 0;
  for (guint r = 0; r < restarts && s->L > 1; r++)
    {
      if (deadline_us && g_get_monotonic_time () > deadline_us)
        break;
      memcpy (s->tmp, gpu, n * sizeof (guint32));
      /* Perturb a random segment of layers: redraw it entirely or swap a
       * few experts between GPUs in each of its layers. */
      guint len = 1 + (guint)gsl_rng_uniform_int (rng, MAX (1u, s->L / 4));
      guint first = (guint)gsl_rng_uniform_int (rng, s->L - MIN (len, s->L) + 1);
      gboolean redraw = gsl_rng_uniform (rng) < 0.5;
      for (guint l = first; l < first + len && l < s->L; l++)
        {
          if (redraw)
            random_layer (s, rng, s->tmp, l);
          else
            {
              guint swaps = MAX (1u, s->E / 4);
              guint32 *gl = s->tmp + (gsize)l * s->E;
              for (guint k = 0; k < swaps; k++)
                {
                  guint a = (guint)gsl_rng_uniform_int (rng, s->E);
                  guint b = (guint)gsl_rng_uniform_int (rng, s->E);
                  guint32 t = gl[a];
                  gl[a] = gl[b];
                  gl[b] = t;
                }
            }
        }
      gint64 c = msim_search_descend (s, s->tmp, 1000, deadline_us);
      if (c < best)
        {
          best = c;
          memcpy (gpu, s->tmp, n * sizeof (guint32));
          improved++;
        }
    }
  if (improvements)
    *improvements = improved;
  return best;
}

/* ======================================================================
 * Exact dynamic programming over groupings
 * ====================================================================== */

/* ln of the number of ways to split @n labelled items into @groups
 * unlabelled groups of @size each. */
static double
log_groupings (guint n, guint groups, guint size)
{
  return lgamma (n + 1.0) - groups * lgamma (size + 1.0) - lgamma (groups + 1.0);
}

/* Canonical set partitions of @n items (ids @items) into @groups groups of
 * @size: an item joins an open group with room or opens the next group. */
static void
enum_partitions (guint idx, guint n, const guint *items, guint groups, guint size, guint opened,
                 guint8 *grp, guint *group_fill, GArray *out, guint row_len)
{
  if (idx == n)
    {
      g_array_append_vals (out, grp, row_len);
      return;
    }
  guint it = items[idx];
  for (guint g = 0; g < opened; g++)
    if (group_fill[g] < size)
      {
        grp[it] = (guint8)g;
        group_fill[g]++;
        enum_partitions (idx + 1, n, items, groups, size, opened, grp, group_fill, out, row_len);
        group_fill[g]--;
      }
  if (opened < groups && n - idx >= size)
    {
      grp[it] = (guint8)opened;
      group_fill[opened] = 1;
      enum_partitions (idx + 1, n, items, groups, size, opened + 1, grp, group_fill, out, row_len);
      group_fill[opened] = 0;
    }
}

/* Node-level partitions, each expanded into every GPU-level partition of
 * each node (cartesian product).  Rows hold the GPU group (node * q + local)
 * of each expert. */
static GArray *
enumerate_states (guint E, guint N, guint q, guint cap)
{
  GArray *states = g_array_new (FALSE, FALSE, 1);
  guint node_size = E / N;
  g_autofree guint *items = g_new (guint, E);
  g_autofree guint8 *grp = g_new0 (guint8, E);
  g_autofree guint *fill_buf = g_new0 (guint, MAX (N, q) + 1);
  for (guint e = 0; e < E; e++)
    items[e] = e;
  g_autoptr (GArray) nodes = g_array_new (FALSE, FALSE, 1);
  enum_partitions (0, E, items, N, node_size, 0, grp, fill_buf, nodes, E);
  guint n_node = nodes->len / E;
  g_autofree guint8 *row = g_new (guint8, E);
  g_autofree guint *members = g_new (guint, (gsize)N * node_size);
  g_autofree guint *choice = g_new0 (guint, N);
  GArray **local = g_new0 (GArray *, N);
  for (guint s = 0; s < n_node; s++)
    {
      const guint8 *np = (const guint8 *)nodes->data + (gsize)s * E;
      guint fill[256] = { 0 };
      for (guint e = 0; e < E; e++)
        members[np[e] * node_size + fill[np[e]]++] = e;
      for (guint n = 0; n < N; n++)
        {
          local[n] = g_array_new (FALSE, FALSE, 1);
          memset (grp, 0, E);
          memset (fill_buf, 0, sizeof (guint) * (MAX (N, q) + 1));
          enum_partitions (0, node_size, members + n * node_size, q, cap, 0, grp, fill_buf,
                           local[n], E);
          choice[n] = 0;
        }
      /* Odometer over the nodes' local choices. */
      for (;;)
        {
          for (guint n = 0; n < N; n++)
            {
              const guint8 *lp = (const guint8 *)local[n]->data + (gsize)choice[n] * E;
              for (guint k = 0; k < node_size; k++)
                {
                  guint e = members[n * node_size + k];
                  row[e] = (guint8)(n * q + lp[e]);
                }
            }
          g_array_append_vals (states, row, E);
          guint n = 0;
          while (n < N && ++choice[n] == local[n]->len / E)
            choice[n++] = 0;
          if (n == N)
            break;
        }
      for (guint n = 0; n < N; n++)
        g_array_unref (local[n]);
    }
  g_free (local);
  return states;
}

/* Score of the best structure-preserving matching of Q's groups (rows b)
 * to P's groups (a) for weights W[a][b]; fills match[b] = a. */
static gint64
match_groups (MsimSearch *s, const gint64 *W, guint *match)
{
  const guint G = s->G, N = s->N;
  gint64 *c = s->C;
  if (N == 1 || N == G)
    {
      gint64 same = N == 1 ? s->gc : s->nc;
      for (guint b = 0; b < G; b++)
        for (guint a = 0; a < G; a++)
          c[(gsize)b * G + a] = -W[(gsize)a * G + b];
      gint64 m = -msim_assign_solve (s->assign, G, G, c, match);
      return m * same;
    }
  const guint q = s->q;
  for (guint a = 0; a < N; a++)
    for (guint b = 0; b < N; b++)
      {
        gint64 nw = 0;
        for (guint x = 0; x < q; x++)
          for (guint y = 0; y < q; y++)
            {
              gint64 w = W[(gsize)(a * q + x) * G + (b * q + y)];
              nw += w;
              c[(gsize)y * q + x] = -w;
            }
        guint *rho = s->rho + ((gsize)a * N + b) * q;
        gint64 in = -msim_assign_solve (s->assign, q, q, c, rho);
        s->val[(gsize)b * N + a] = -((s->nc - s->gc) * nw + s->gc * in);
      }
  guint nm[256];
  gint64 m = -msim_assign_solve (s->assign, N, N, s->val, nm);
  for (guint b = 0; b < N; b++)
    {
      const guint *rho = s->rho + ((gsize)nm[b] * N + b) * q;
      for (guint y = 0; y < q; y++)
        match[b * q + y] = nm[b] * q + rho[y];
    }
  return m;
}

gboolean
msim_search_exact (MsimSearch *s, guint32 *gpu, guint64 max_states, guint64 *n_states)
{
  const guint L = s->L, E = s->E, G = s->G;
  guint N = s->N;
  if (n_states)
    *n_states = G_MAXUINT64;
  if (E != G * s->cap || E > 64 || !s->uniform || G > 64 || N > 64)
    return FALSE;
  /* Levels: node groups then GPU groups inside; flat when N is 1 or G. */
  gboolean flat = N == 1 || N == G;
  guint nn = flat ? 1 : N, q = flat ? G : s->q;
  double lg = log_groupings (E, nn, E / nn) + nn * log_groupings (E / nn, q, s->cap);
  double count = exp (lg);
  if (n_states)
    *n_states = count < 1.8e19 ? (guint64)llround (count) : G_MAXUINT64;
  if (count > (double)max_states + 0.5)
    return FALSE;

  g_autoptr (GArray) states = enumerate_states (E, nn, q, s->cap);
  const guint S = states->len / E;
  const guint8 *st = (const guint8 *)states->data;
  if (n_states)
    *n_states = S;

  /* DP: score[P] = best total score of layers 0..l ending in grouping P. */
  g_autofree gint64 *score = g_new0 (gint64, S);
  g_autofree gint64 *next = g_new (gint64, S);
  g_autofree guint32 *back = g_new (guint32, (gsize)L * S);
  g_autofree gint64 *R = g_new (gint64, (gsize)G * E);
  g_autofree gint64 *W = g_new (gint64, (gsize)G * G);
  g_autofree guint *match = g_new (guint, G);
  for (guint l = 0; l + 1 < L; l++)
    {
      for (guint b = 0; b < S; b++)
        next[b] = G_MININT64;
      for (guint a = 0; a < S; a++)
        {
          const guint8 *P = st + (gsize)a * E;
          memset (R, 0, sizeof (gint64) * G * E);
          for (guint i = 0; i < E; i++)
            {
              const guint64 *row = pair_row (s, l, i);
              gint64 *r = R + (gsize)P[i] * E;
              for (guint j = 0; j < E; j++)
                r[j] += (gint64)row[j];
            }
          for (guint b = 0; b < S; b++)
            {
              const guint8 *Q = st + (gsize)b * E;
              memset (W, 0, sizeof (gint64) * G * G);
              for (guint x = 0; x < G; x++)
                for (guint j = 0; j < E; j++)
                  W[(gsize)x * G + Q[j]] += R[(gsize)x * E + j];
              gint64 v = score[a] + match_groups (s, W, match);
              if (v > next[b])
                {
                  next[b] = v;
                  back[(gsize)(l + 1) * S + b] = a;
                }
            }
        }
      memcpy (score, next, sizeof (gint64) * S);
    }
  guint bestb = 0;
  for (guint b = 1; b < S; b++)
    if (score[b] > score[bestb])
      bestb = b;
  g_autofree guint32 *chosen = g_new (guint32, L);
  chosen[L - 1] = bestb;
  for (guint l = L - 1; l > 0; l--)
    chosen[l - 1] = back[(gsize)l * S + chosen[l]];

  /* Labels: layer 0 groups are GPUs 0..G-1 (node-major); each later layer
   * takes the labels of the groups its own groups are matched to. */
  g_autofree guint *lab = g_new (guint, G);
  g_autofree guint *nlab = g_new (guint, G);
  for (guint a = 0; a < G; a++)
    lab[a] = a;
  for (guint l = 0; l < L; l++)
    {
      const guint8 *P = st + (gsize)chosen[l] * E;
      for (guint e = 0; e < E; e++)
        gpu[(gsize)l * E + e] = lab[P[e]];
      if (l + 1 == L)
        break;
      const guint8 *Q = st + (gsize)chosen[l + 1] * E;
      memset (W, 0, sizeof (gint64) * G * G);
      for (guint i = 0; i < E; i++)
        {
          const guint64 *row = pair_row (s, l, i);
          for (guint j = 0; j < E; j++)
            W[(gsize)P[i] * G + Q[j]] += (gint64)row[j];
        }
      match_groups (s, W, match);
      for (guint b = 0; b < G; b++)
        nlab[b] = lab[match[b]];
      memcpy (lab, nlab, sizeof (guint) * G);
    }
  return TRUE;
}

/* ======================================================================
 * The default heuristic
 * ====================================================================== */

gint64
msim_search_best (const MsimPlacementProblem *pb, guint32 *gpu, guint restarts, guint64 max_states,
                  gint64 deadline_us, MsimPlacementOutput *out)
{
  g_autoptr (MsimSearch) s = msim_search_new (pb);
  const gsize n = (gsize)pb->layers * pb->experts;
  g_autofree guint32 *contig = g_new (guint32, n);
  msim_search_contiguous (pb, contig);
  gint64 contig_cost = msim_search_cost (s, contig);
  guint64 states = 0;
  gint64 best;
  guint improvements = 0;
  gboolean exact = msim_search_exact (s, gpu, max_states, &states);
  if (exact)
    best = msim_search_cost (s, gpu);
  else
    {
      gsl_rng *rng = msim_placement_rng_new (pb->seed);
      g_autofree guint32 *cand = g_new (guint32, n);
      memcpy (gpu, contig, n * sizeof (guint32));
      best = msim_search_descend (s, gpu, 1000, deadline_us);
      greedy_chain (s, cand);
      gint64 c = msim_search_descend (s, cand, 1000, deadline_us);
      if (c < best)
        {
          best = c;
          memcpy (gpu, cand, n * sizeof (guint32));
        }
      best = msim_search_iterate (s, gpu, rng, restarts, deadline_us, &improvements);
      gsl_rng_free (rng);
    }
  if (best > contig_cost)
    {
      /* Cannot happen (every move only lowers the cost from contiguous), but
       * the guarantee is cheap to keep explicit. */
      memcpy (gpu, contig, n * sizeof (guint32));
      best = contig_cost;
    }
  if (out)
    {
      guint64 xg, xn, tot;
      msim_placement_problem_crossings (pb, gpu, &xg, &xn, &tot);
      msim_placement_output_add_stat (out, "exact", exact ? 1 : 0);
      msim_placement_output_add_stat (out, "dp_states",
                                      states == G_MAXUINT64 ? NAN : (double)states);
      msim_placement_output_add_stat (out, "objective", (double)best);
      msim_placement_output_add_stat (out, "contiguous_objective", (double)contig_cost);
      msim_placement_output_add_stat (out, "cross_gpu_fraction",
                                      tot ? (double)xg / (double)tot : 0.0);
      msim_placement_output_add_stat (out, "cross_node_fraction",
                                      tot ? (double)xn / (double)tot : 0.0);
      if (!exact)
        msim_placement_output_add_stat (out, "ils_improvements", improvements);
    }
  return best;
}
