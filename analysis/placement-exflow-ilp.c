/* exflow-ilp: ExFlow's integer program, solved with GLPK.
 *
 * Variables x[(l,e),k] = 1 when expert e of layer l goes to part k (a GPU,
 * a node, or a half of the GPU set); every expert goes to one part and part
 * k takes at most cap_k experts per layer (exactly E / G per GPU when G
 * divides E, since the capacities then add up to E).
 *
 * Aggregated crossing variables.  ExFlow writes one crossing variable per
 * (token, layer boundary); every token with the same top-1 pair (i at l,
 * j at l+1) crosses or not together, so one variable per pair weighted by
 * the pair's count gives the same optimum with at most (L-1) E^2 pairs
 * instead of T (L-1) rows, independent of the number of tokens (ExFlow's
 * 5,000-token increments exist to keep its per-token model tractable).
 * Per pair p = (i, j) and part k, s[p,k] <= x[i,k] and s[p,k] <= x[j,k]
 * mark "both in part k"; with two cost levels, t[p,n] does the same per
 * node.  The objective is
 *     sum_p C_p (c_node - (c_node - c_gpu) sum_n t[p,n] - c_gpu sum_k s[p,k]),
 * i.e. 0 on one GPU, c_gpu inside a node, c_node across nodes.
 *
 * Modes:
 *   staged     (default) nodes first (N-way, cross-node pairs), then the
 *              GPUs of each node (cross-GPU pairs inside it); with one node
 *              this is the direct G-way program.
 *   bisection  ExFlow's default: recursive 2-way splits of the GPU set,
 *              node boundaries first, log2 G levels.
 *   direct     one program over all GPUs with both cost levels.
 * Staged and bisection are not globally optimal even when every
 * sub-program is (their stages optimise lexicographically).
 *
 * GLPK never aborts the process: terminal output is off, every return code
 * is checked, and an internal GLPK error longjmps back through
 * glp_error_hook and becomes a GError.  The LP relaxation of this model is
 * weak (x = 1/K satisfies everything at zero crossing cost), so GLPK mostly
 * improves the incumbent and rarely closes the gap beyond toy sizes; the
 * reported gap says how far from proven it is.  Time limits make results
 * depend on machine speed.
 */
#include <float.h>
#include <glpk.h>
#include <math.h>
#include <setjmp.h>
#include <string.h>

#include "msim-error.h"
#include "placement-private.h"

typedef enum
{
  MODE_STAGED,
  MODE_BISECTION,
  MODE_DIRECT,
} IlpMode;

typedef enum
{
  WARM_CONTIGUOUS,
  WARM_HEURISTIC,
  WARM_NONE,
} IlpWarm;

typedef struct
{
  IlpMode mode;
  IlpWarm warm;
  double time_limit_s;
  double mip_gap;
  guint max_rows;
} IlpOptions;

/* The model in plain arrays, built outside the GLPK guard (so that a GLPK
 * error, which longjmps, never leaks GLib memory). */
typedef struct
{
  int ncols, nx;   /* all columns; the first nx are the binary x */
  GArray *obj;     /* double [ncols + 1], index 0 = constant */
  GArray *row_ub;  /* double per row; every row is "<= ub" except the first n_fixed */
  guint n_fixed;   /* leading rows that are "= 1" (assignment) */
  GArray *ia, *ja; /* int triplets, 1-based, entry 0 unused */
  GArray *ar;      /* double */
  double *warm_x;  /* [ncols + 1] or NULL */
} Model;

/* One sub-program: place the member items of each layer into K parts. */
typedef struct
{
  const MsimPlacementProblem *pb;
  guint K;
  const guint *part_cap;   /* [K] */
  const guint *part_group; /* [K] node of each part, NULL = flat */
  gint64 c_gpu, c_node;    /* flat: both 1 */
  const guint8 *member;    /* [L * E] */
  guint *warm;             /* [L * E] part of each member (feasible), or NULL */
  double time_limit_s;
  double mip_gap;
  guint max_rows;
  gboolean break_symmetry;
  /* results */
  guint *part; /* [L * E] */
  double objective, gap;
  gboolean optimal, solved, too_large;
  /* model bookkeeping */
  guint n_items;
  guint *item_of; /* [L * E] -> item index or G_MAXUINT */
  Model *model;
  gboolean heur_done;
  double last_gap;
  double lp_seconds;
  jmp_buf jmp;
} SubIlp;

static const char *const ilp_keys[]
    = { "mode", "warm-start", "time-limit", "mip-gap", "max-rows", NULL };
static const char *const mode_names[] = { "staged", "bisection", "direct", NULL };
static const char *const warm_names[] = { "contiguous", "heuristic", "none", NULL };

static gboolean
ilp_init (void **state, const char *const *options, GError **error)
{
  const char *name = "exflow-ilp";
  g_autoptr (GHashTable) opts = msim_policy_options_parse (name, options, ilp_keys, error);
  if (opts == NULL)
    return FALSE;
  IlpOptions o;
  int mode, warm;
  if (!msim_policy_option_choice (opts, name, "mode", MODE_STAGED, mode_names, &mode, error)
      || !msim_policy_option_choice (opts, name, "warm-start", WARM_CONTIGUOUS, warm_names, &warm,
                                     error)
      || !msim_policy_option_double (opts, name, "time-limit", 60.0, 0.01, 1e6, &o.time_limit_s,
                                     error)
      || !msim_policy_option_double (opts, name, "mip-gap", 0.0, 0.0, 1.0, &o.mip_gap, error)
      || !msim_policy_option_uint (opts, name, "max-rows", 60000, 1, G_MAXINT / 4, &o.max_rows,
                                   error))
    return FALSE;
  o.mode = (IlpMode)mode;
  o.warm = (IlpWarm)warm;
  *state = g_memdup2 (&o, sizeof o);
  return TRUE;
}

/* ---- GLPK guard ---- */

static void
glpk_error_hook (void *info)
{
  SubIlp *sp = info;
  /* GLPK's documented recovery: free its environment, then jump out; the
   * problem object dies with the environment. */
  glp_free_env ();
  longjmp (sp->jmp, 1);
}

static void
ilp_callback (glp_tree *tree, void *info)
{
  SubIlp *sp = info;
  if (glp_ios_reason (tree) == GLP_IHEUR && !sp->heur_done && sp->model->warm_x != NULL)
    {
      sp->heur_done = TRUE;
      /* Rejected when not better than the incumbent: nothing to do then. */
      (void)glp_ios_heur_sol (tree, sp->model->warm_x);
    }
  double gap = glp_ios_mip_gap (tree);
  if (gap < DBL_MAX)
    sp->last_gap = gap;
}

static inline gint64
pair_count (const MsimPlacementProblem *pb, guint l, guint i, guint j)
{
  const guint E = pb->experts;
  return (gint64)pb->pair_counts[((gsize)l * E + i) * E + j];
}

static guint
n_groups (const SubIlp *sp)
{
  guint n = 0;
  for (guint k = 0; sp->part_group && k < sp->K; k++)
    n = MAX (n, sp->part_group[k] + 1);
  return n;
}

static void
add_entry (Model *m, int row, int col, double v)
{
  g_array_append_val (m->ia, row);
  g_array_append_val (m->ja, col);
  g_array_append_val (m->ar, v);
}

static int
add_row (Model *m, double ub)
{
  g_array_append_val (m->row_ub, ub);
  return (int)m->row_ub->len;
}

static int
add_col (Model *m, double obj)
{
  g_array_append_val (m->obj, obj);
  return ++m->ncols;
}

/*
 * The model.  Columns: x[item][k] (binary), then per pair p = (i, j) the
 * crossing indicator d[p] (continuous in [0, 1]: 1 when i and j are in
 * different parts) and, with two cost levels, the node-crossing indicator
 * e[p].  Objective: sum_p C_p (c_gpu d[p] + (c_node - c_gpu) e[p]).  Rows:
 *   sum_k x[i][k] = 1                      every item in one part;
 *   sum_{i in layer} x[i][k] <= cap_k      capacity;
 *   x[i][k] - x[j][k] <= d[p]  for all k   (i's part is not j's => d = 1);
 *   sum_{k in n} (x[i][k] - x[j][k]) <= e[p]  for all nodes n;
 *   sum_j (1 - d[(i,j)]) <= cap and sum_i (1 - d[(i,j)]) <= cap
 *       an expert shares its part with at most cap experts of the next
 *       (previous) layer; the same with e and the node capacity.
 * The last family is what makes the relaxation useful: without it x = 1/K
 * everywhere satisfies every row with d = 0, a bound of zero crossings; with
 * it the relaxation of a boundary is a b-matching, and with one expert per
 * GPU the assignment polytope, whose bound is that boundary's exact optimum.
 * One d per pair (instead of one same-part variable per pair and part)
 * keeps the LP small: GLPK's simplex time, not branching, is what limits
 * this model.
 */
static void
build_model (SubIlp *sp, Model *m)
{
  const MsimPlacementProblem *pb = sp->pb;
  const guint L = pb->layers, E = pb->experts, K = sp->K;
  const gboolean two_level = sp->part_group != NULL && sp->c_node > sp->c_gpu;
  const guint NG = two_level ? n_groups (sp) : 0;
  g_autofree guint *gcap = g_new0 (guint, MAX (NG, 1u));
  guint cap_max = 0, gcap_max = 0;
  for (guint k = 0; k < K; k++)
    {
      cap_max = MAX (cap_max, sp->part_cap[k]);
      if (two_level)
        gcap[sp->part_group[k]] += sp->part_cap[k];
    }
  for (guint g = 0; g < NG; g++)
    gcap_max = MAX (gcap_max, gcap[g]);
  double zero = 0;
  int izero = 0;
  g_array_append_val (m->obj, zero);
  g_array_append_val (m->ia, izero);
  g_array_append_val (m->ja, izero);
  g_array_append_val (m->ar, zero);
  for (guint it = 0; it < sp->n_items; it++)
    for (guint k = 0; k < K; k++)
      add_col (m, 0.0);
  m->nx = m->ncols;
  for (guint it = 0; it < sp->n_items; it++)
    {
      int r = add_row (m, 1.0);
      for (guint k = 0; k < K; k++)
        add_entry (m, r, (int)(it * K + k) + 1, 1.0);
    }
  m->n_fixed = sp->n_items;
  for (guint l = 0; l < L; l++)
    for (guint k = 0; k < K; k++)
      {
        int r = 0;
        for (guint e = 0; e < E; e++)
          {
            guint it = sp->item_of[(gsize)l * E + e];
            if (it == G_MAXUINT)
              continue;
            if (r == 0)
              r = add_row (m, (double)sp->part_cap[k]);
            add_entry (m, r, (int)(it * K + k) + 1, 1.0);
          }
      }
  /* Aggregated rows: [side][expert][level], created on first use; their
   * upper bound (cap - degree) is completed after the boundary. */
  g_autofree int *agg = g_new (int, (gsize)2 * E * 2);
  g_autofree guint *deg = g_new (guint, (gsize)2 * E * 2);
  for (guint l = 0; l + 1 < L; l++)
    {
      memset (agg, 0, sizeof (int) * 4 * E);
      memset (deg, 0, sizeof (guint) * 4 * E);
      for (guint i = 0; i < E; i++)
        {
          guint ii = sp->item_of[(gsize)l * E + i];
          if (ii == G_MAXUINT)
            continue;
          for (guint j = 0; j < E; j++)
            {
              guint jj = sp->item_of[(gsize)(l + 1) * E + j];
              gint64 c = pair_count (pb, l, i, j);
              if (jj == G_MAXUINT || c == 0)
                continue;
              int dcol = add_col (m, (double)c * (double)sp->c_gpu);
              int ecol = two_level ? add_col (m, (double)c * (double)(sp->c_node - sp->c_gpu)) : 0;
              for (guint k = 0; k < K; k++)
                {
                  int r = add_row (m, 0.0);
                  add_entry (m, r, (int)(ii * K + k) + 1, 1.0);
                  add_entry (m, r, (int)(jj * K + k) + 1, -1.0);
                  add_entry (m, r, dcol, -1.0);
                }
              for (guint g = 0; g < NG; g++)
                {
                  int r = add_row (m, 0.0);
                  for (guint k = 0; k < K; k++)
                    if (sp->part_group[k] == g)
                      {
                        add_entry (m, r, (int)(ii * K + k) + 1, 1.0);
                        add_entry (m, r, (int)(jj * K + k) + 1, -1.0);
                      }
                  add_entry (m, r, ecol, -1.0);
                }
              for (int side = 0; side < 2; side++)
                for (int lev = 0; lev < (two_level ? 2 : 1); lev++)
                  {
                    gsize slot = ((gsize)side * E + (side == 0 ? i : j)) * 2 + lev;
                    if (agg[slot] == 0)
                      agg[slot] = add_row (m, 0.0);
                    deg[slot]++;
                    add_entry (m, agg[slot], lev == 0 ? dcol : ecol, -1.0);
                  }
            }
        }
      for (gsize slot = 0; slot < (gsize)4 * E; slot++)
        if (agg[slot] != 0)
          {
            guint cap = slot % 2 == 0 ? cap_max : gcap_max;
            g_array_index (m->row_ub, double, agg[slot] - 1) = (double)cap - (double)deg[slot];
          }
    }

  if (sp->warm)
    {
      m->warm_x = g_new0 (double, m->ncols + 1);
      for (gsize v = 0; v < (gsize)L * E; v++)
        if (sp->member[v])
          m->warm_x[(gsize)sp->item_of[v] * K + sp->warm[v] + 1] = 1.0;
      int c = m->nx;
      for (guint l = 0; l + 1 < L; l++)
        for (guint i = 0; i < E; i++)
          for (guint j = 0; j < E; j++)
            {
              gsize a = (gsize)l * E + i, b = (gsize)(l + 1) * E + j;
              if (!sp->member[a] || !sp->member[b] || pair_count (pb, l, i, j) == 0)
                continue;
              m->warm_x[++c] = sp->warm[a] != sp->warm[b];
              if (two_level)
                m->warm_x[++c] = sp->part_group[sp->warm[a]] != sp->part_group[sp->warm[b]];
            }
      g_assert (c == m->ncols);
    }
}

/* Loads the model into GLPK and solves it.  GLPK may longjmp out of here
 * (see guarded_solve), so nothing is allocated except GLPK's own objects.
 * Returns 0 with a solution, 1 when time ran out without one, 2 when GLPK
 * gave up. */
static int
solve_glpk (SubIlp *sp)
{
  const MsimPlacementProblem *pb = sp->pb;
  const guint L = pb->layers, E = pb->experts, K = sp->K;
  Model *m = sp->model;
  glp_term_out (GLP_OFF);
  glp_prob *lp = glp_create_prob ();
  glp_set_obj_dir (lp, GLP_MIN);
  glp_add_cols (lp, m->ncols);
  for (int c = 1; c <= m->ncols; c++)
    {
      if (c <= m->nx)
        glp_set_col_kind (lp, c, GLP_BV);
      else
        glp_set_col_bnds (lp, c, GLP_DB, 0.0, 1.0);
      glp_set_obj_coef (lp, c, g_array_index (m->obj, double, c));
    }
  glp_set_obj_coef (lp, 0, g_array_index (m->obj, double, 0));
  int nrows = (int)m->row_ub->len;
  glp_add_rows (lp, nrows);
  for (int r = 1; r <= nrows; r++)
    {
      double ub = g_array_index (m->row_ub, double, r - 1);
      if ((guint)r <= m->n_fixed)
        glp_set_row_bnds (lp, r, GLP_FX, ub, ub);
      else
        glp_set_row_bnds (lp, r, GLP_UP, 0.0, ub);
    }
  glp_load_matrix (lp, (int)m->ia->len - 1, (const int *)m->ia->data, (const int *)m->ja->data,
                   (const double *)m->ar->data);
  if (sp->break_symmetry)
    {
      /* Parts are interchangeable: put the first item in part 0. */
      glp_set_col_bnds (lp, 1, GLP_FX, 1.0, 1.0);
    }

  gint64 t0 = g_get_monotonic_time ();
  int tm_ms = (int)MIN (sp->time_limit_s * 1000.0, (double)G_MAXINT / 2);
  glp_smcp smcp;
  glp_init_smcp (&smcp);
  smcp.msg_lev = GLP_MSG_OFF;
  /* Measured on the Mixtral models: the primal simplex from an advanced
   * (triangular) basis is several times faster than the dual simplex or a
   * standard basis on these very degenerate relaxations. */
  smcp.meth = GLP_PRIMAL;
  smcp.tm_lim = MAX (tm_ms, 1);
  glp_adv_basis (lp, 0);
  int rc = glp_simplex (lp, &smcp);
  int used_ms = (int)((g_get_monotonic_time () - t0) / 1000);
  sp->lp_seconds = used_ms / 1000.0;
  if (rc != 0 || glp_get_status (lp) != GLP_OPT)
    {
      /* No relaxation in time: the warm start stands, unproven. */
      glp_delete_prob (lp);
      sp->solved = FALSE;
      return rc == GLP_ETMLIM ? 1 : 2;
    }
  glp_iocp iocp;
  glp_init_iocp (&iocp);
  iocp.msg_lev = GLP_MSG_OFF;
  iocp.tm_lim = MAX (tm_ms - used_ms, 1);
  iocp.mip_gap = sp->mip_gap;
  iocp.cb_func = ilp_callback;
  iocp.cb_info = sp;
  iocp.br_tech = GLP_BR_DTH;
  iocp.bt_tech = GLP_BT_BLB;
  iocp.presolve = GLP_OFF; /* heuristic solutions are given in the model's own columns */
  /* The feasibility pump finds better incumbents than branching alone on
   * this model (GLPK's other heuristics did not help in our runs). */
  iocp.fp_heur = GLP_ON;
  rc = glp_intopt (lp, &iocp);
  int status = glp_mip_status (lp);
  if (status != GLP_OPT && status != GLP_FEAS)
    {
      glp_delete_prob (lp);
      sp->solved = FALSE;
      return rc == GLP_ETMLIM || rc == 0 ? 1 : 2;
    }
  sp->solved = TRUE;
  sp->optimal = status == GLP_OPT && rc == 0;
  sp->objective = glp_mip_obj_val (lp);
  sp->gap = sp->optimal ? 0.0 : sp->last_gap;
  for (guint l = 0; l < L; l++)
    for (guint e = 0; e < E; e++)
      {
        guint it = sp->item_of[(gsize)l * E + e];
        if (it == G_MAXUINT)
          continue;
        guint best = 0;
        double bv = -1;
        for (guint k = 0; k < K; k++)
          {
            double v = glp_mip_col_val (lp, (int)(it * K + k) + 1);
            if (v > bv)
              bv = v, best = k;
          }
        sp->part[(gsize)l * E + e] = best;
      }
  glp_delete_prob (lp);
  return 0;
}

/* The only frame that calls setjmp: GLPK's error hook jumps back here. */
static int
guarded_solve (SubIlp *sp)
{
  if (setjmp (sp->jmp) != 0)
    return 3;
  return solve_glpk (sp);
}

/* Makes a warm start feasible: members keep their part while it has room,
 * the rest go to the first part with room. */
static void
repair_warm (SubIlp *sp)
{
  const guint L = sp->pb->layers, E = sp->pb->experts;
  g_autofree guint *used = g_new (guint, sp->K);
  for (guint l = 0; l < L; l++)
    {
      memset (used, 0, sizeof (guint) * sp->K);
      for (int pass = 0; pass < 2; pass++)
        for (guint e = 0; e < E; e++)
          {
            gsize i = (gsize)l * E + e;
            if (!sp->member[i])
              continue;
            guint k = sp->warm[i];
            if (pass == 0)
              {
                if (k < sp->K && used[k] < sp->part_cap[k])
                  used[k]++;
                else
                  sp->warm[i] = G_MAXUINT;
              }
            else if (k == G_MAXUINT)
              {
                guint z = 0;
                while (used[z] >= sp->part_cap[z])
                  z++;
                sp->warm[i] = z;
                used[z]++;
              }
          }
    }
}

/* Relabels the warm start so that the first item is in part 0 (valid when
 * parts are interchangeable; two-level: swap whole nodes, then GPUs). */
static void
align_warm (SubIlp *sp, guint first)
{
  const gsize n = (gsize)sp->pb->layers * sp->pb->experts;
  guint w0 = sp->warm[first];
  if (w0 == 0)
    return;
  g_autofree guint *perm = g_new (guint, sp->K);
  for (guint k = 0; k < sp->K; k++)
    perm[k] = k;
  if (sp->part_group == NULL || sp->c_node == sp->c_gpu)
    {
      perm[w0] = 0;
      perm[0] = w0;
    }
  else
    {
      /* Uniform two-level parts: group g holds parts g*q .. g*q+q-1. */
      guint q = 0;
      for (guint k = 0; k < sp->K; k++)
        q += sp->part_group[k] == 0;
      guint g0 = sp->part_group[w0];
      for (guint k = 0; k < sp->K; k++)
        {
          guint g = sp->part_group[k], x = k % q;
          guint ng = g == g0 ? 0 : (g == 0 ? g0 : g);
          perm[k] = ng * q + x;
        }
      guint lx = w0 % q;
      for (guint k = 0; k < sp->K; k++)
        if (perm[k] / q == 0)
          {
            guint x = perm[k] % q;
            perm[k] = x == lx ? 0 : (x == 0 ? lx : x);
          }
    }
  for (gsize i = 0; i < n; i++)
    if (sp->member[i])
      sp->warm[i] = perm[sp->warm[i]];
}

/* Solves one sub-program; on failure or no solution keeps the warm start. */
static gboolean
sub_ilp_run (SubIlp *sp, GError **error)
{
  const MsimPlacementProblem *pb = sp->pb;
  const guint L = pb->layers, E = pb->experts, K = sp->K;
  const gsize n = (gsize)L * E;
  sp->item_of = g_new (guint, n);
  sp->n_items = 0;
  guint first = G_MAXUINT;
  for (gsize i = 0; i < n; i++)
    {
      sp->item_of[i] = sp->member[i] ? sp->n_items++ : G_MAXUINT;
      if (sp->member[i] && first == G_MAXUINT)
        first = (guint)i;
    }
  sp->gap = NAN;
  sp->last_gap = NAN;
  sp->optimal = FALSE;
  sp->solved = FALSE;
  sp->heur_done = FALSE;
  if (sp->warm)
    {
      repair_warm (sp);
      if (sp->break_symmetry && first != G_MAXUINT)
        align_warm (sp, first);
      for (gsize i = 0; i < n; i++)
        if (sp->member[i])
          sp->part[i] = sp->warm[i];
    }

  int rc = 0;
  if (sp->n_items > 0)
    {
      Model m = { 0 };
      m.obj = g_array_new (FALSE, FALSE, sizeof (double));
      m.row_ub = g_array_new (FALSE, FALSE, sizeof (double));
      m.ia = g_array_new (FALSE, FALSE, sizeof (int));
      m.ja = g_array_new (FALSE, FALSE, sizeof (int));
      m.ar = g_array_new (FALSE, FALSE, sizeof (double));
      build_model (sp, &m);
      sp->model = &m;
      /* GLPK does not check its time limit while it factorises the first
       * basis, which takes minutes beyond a few hundred thousand rows: such
       * models are not handed to it at all. */
      sp->too_large = m.row_ub->len > sp->max_rows;
      if (!sp->too_large)
        {
          glp_error_hook (glpk_error_hook, sp);
          rc = guarded_solve (sp);
          glp_error_hook (NULL, NULL);
        }
      sp->model = NULL;
      g_array_unref (m.obj);
      g_array_unref (m.row_ub);
      g_array_unref (m.ia);
      g_array_unref (m.ja);
      g_array_unref (m.ar);
      g_free (m.warm_x);
    }
  g_clear_pointer (&sp->item_of, g_free);
  if (rc == 3)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                   "GLPK failed with an internal error on a %u-part sub-problem", K);
      return FALSE;
    }
  if (!sp->solved && sp->warm == NULL && sp->n_items > 0)
    {
      if (sp->too_large)
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                     "a %u-part sub-problem has more than max-rows=%u rows and there is no warm "
                     "start to fall back on",
                     K, sp->max_rows);
      else
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                     "GLPK found no solution of a %u-part sub-problem within %.3g s and there "
                     "is no warm start (use warm-start=contiguous or a longer time-limit)",
                     K, sp->time_limit_s);
      return FALSE;
    }
  return TRUE;
}

/* ---- drivers ---- */

typedef struct
{
  const MsimPlacementProblem *pb;
  const IlpOptions *o;
  gint64 deadline;
  guint remaining; /* sub-programs still to solve */
  guint subproblems, optimal;
  double max_gap;
  double lp_seconds;
  guint too_large;
  gboolean unsolved;
  const guint32 *warm_gpu; /* [L * E] or NULL */
} Driver;

static double
budget (Driver *d)
{
  double left = (double)(d->deadline - g_get_monotonic_time ()) / 1e6;
  double b = left / MAX (d->remaining, 1u);
  return MAX (b, 0.05);
}

static void
account (Driver *d, const SubIlp *sp)
{
  d->remaining = d->remaining ? d->remaining - 1 : 0;
  if (sp->n_items == 0)
    return;
  d->lp_seconds += sp->lp_seconds;
  d->too_large += sp->too_large;
  d->subproblems++;
  if (sp->optimal)
    d->optimal++;
  if (!sp->solved)
    d->unsolved = TRUE;
  if (sp->solved && !isnan (sp->gap))
    d->max_gap = isnan (d->max_gap) ? sp->gap : MAX (d->max_gap, sp->gap);
}

/* Places @member items into GPUs [lo, hi) with one K-way program whose parts
 * are the GPUs (two-level costs when @two_level), writing gpu[]. */
static gboolean
solve_gpus (Driver *d, const guint8 *member, guint lo, guint hi, gboolean two_level, guint32 *gpu,
            GError **error)
{
  const MsimPlacementProblem *pb = d->pb;
  const gsize n = (gsize)pb->layers * pb->experts;
  guint K = hi - lo;
  g_autofree guint *cap = g_new (guint, K);
  g_autofree guint *grp = g_new (guint, K);
  for (guint k = 0; k < K; k++)
    {
      cap[k] = pb->slots_per_gpu;
      grp[k] = pb->gpu_node[lo + k] - pb->gpu_node[lo];
    }
  g_autofree guint *part = g_new0 (guint, n);
  g_autofree guint *warm = NULL;
  if (d->warm_gpu)
    {
      warm = g_new (guint, n);
      for (gsize i = 0; i < n; i++)
        warm[i] = d->warm_gpu[i] >= lo && d->warm_gpu[i] < hi ? d->warm_gpu[i] - lo : G_MAXUINT;
    }
  SubIlp sp = { 0 };
  sp.pb = pb;
  sp.K = K;
  sp.part_cap = cap;
  sp.part_group = two_level ? grp : NULL;
  sp.c_gpu = two_level ? pb->gpu_cost : 1;
  sp.c_node = two_level ? pb->node_cost : 1;
  sp.member = member;
  sp.warm = warm;
  sp.part = part;
  sp.time_limit_s = budget (d);
  sp.mip_gap = d->o->mip_gap;
  sp.max_rows = d->o->max_rows;
  gboolean uniform_groups = TRUE;
  guint per = 0;
  for (guint k = 0; k < K; k++)
    per += grp[k] == 0;
  for (guint k = 0; k < K; k++)
    if (per == 0 || K % per != 0 || grp[k] != k / per)
      uniform_groups = FALSE;
  sp.break_symmetry = !two_level || uniform_groups;
  if (!sub_ilp_run (&sp, error))
    return FALSE;
  account (d, &sp);
  for (gsize i = 0; i < n; i++)
    if (member[i])
      gpu[i] = lo + part[i];
  return TRUE;
}

/* 2-way or N-way split of @member into contiguous GPU ranges given by
 * @bounds[0..K] (part k = GPUs bounds[k] .. bounds[k+1]-1); part[] gets the
 * range index. */
static gboolean
solve_split (Driver *d, const guint8 *member, const guint *bounds, guint K, guint *part,
             GError **error)
{
  const MsimPlacementProblem *pb = d->pb;
  const gsize n = (gsize)pb->layers * pb->experts;
  g_autofree guint *cap = g_new (guint, K);
  gboolean equal = TRUE;
  for (guint k = 0; k < K; k++)
    {
      cap[k] = (bounds[k + 1] - bounds[k]) * pb->slots_per_gpu;
      equal = equal && cap[k] == cap[0];
    }
  g_autofree guint *warm = NULL;
  if (d->warm_gpu)
    {
      warm = g_new (guint, n);
      for (gsize i = 0; i < n; i++)
        {
          warm[i] = G_MAXUINT;
          for (guint k = 0; k < K; k++)
            if (d->warm_gpu[i] >= bounds[k] && d->warm_gpu[i] < bounds[k + 1])
              warm[i] = k;
        }
    }
  SubIlp sp = { 0 };
  sp.pb = pb;
  sp.K = K;
  sp.part_cap = cap;
  sp.part_group = NULL;
  sp.c_gpu = sp.c_node = 1;
  sp.member = member;
  sp.warm = warm;
  sp.part = part;
  sp.time_limit_s = budget (d);
  sp.mip_gap = d->o->mip_gap;
  sp.max_rows = d->o->max_rows;
  sp.break_symmetry = equal;
  if (!sub_ilp_run (&sp, error))
    return FALSE;
  account (d, &sp);
  return TRUE;
}

static gboolean
bisect (Driver *d, const guint8 *member, guint lo, guint hi, guint32 *gpu, GError **error)
{
  const MsimPlacementProblem *pb = d->pb;
  const gsize n = (gsize)pb->layers * pb->experts;
  if (hi - lo == 1)
    {
      for (gsize i = 0; i < n; i++)
        if (member[i])
          gpu[i] = lo;
      return TRUE;
    }
  guint mid;
  guint nlo = pb->gpu_node[lo], nhi = pb->gpu_node[hi - 1];
  if (nlo != nhi)
    {
      /* Split between nodes first: the first GPU of the middle node. */
      guint target = nlo + (nhi - nlo + 1) / 2;
      mid = lo;
      while (mid < hi && pb->gpu_node[mid] < target)
        mid++;
    }
  else
    mid = lo + (hi - lo) / 2;
  guint bounds[3] = { lo, mid, hi };
  g_autofree guint *part = g_new0 (guint, n);
  if (!solve_split (d, member, bounds, 2, part, error))
    return FALSE;
  g_autofree guint8 *left = g_new0 (guint8, n);
  g_autofree guint8 *right = g_new0 (guint8, n);
  for (gsize i = 0; i < n; i++)
    if (member[i])
      (part[i] == 0 ? left : right)[i] = 1;
  return bisect (d, left, lo, mid, gpu, error) && bisect (d, right, mid, hi, gpu, error);
}

static gboolean
ilp_place (void *state, const MsimPlacementProblem *pb, MsimPlacementOutput *out, GError **error)
{
  const IlpOptions *o = state;
  const guint L = pb->layers, E = pb->experts, G = pb->gpus, N = pb->nodes;
  const gsize n = (gsize)L * E;
  g_autofree guint32 *warm = NULL;
  if (o->warm != WARM_NONE)
    {
      warm = g_new (guint32, n);
      if (o->warm == WARM_HEURISTIC)
        msim_search_best (pb, warm, 24, 512, 0, NULL);
      else
        msim_search_contiguous (pb, warm);
    }
  Driver d = { 0 };
  d.pb = pb;
  d.o = o;
  d.deadline = g_get_monotonic_time () + (gint64)(o->time_limit_s * 1e6);
  d.max_gap = NAN;
  d.warm_gpu = warm;
  g_autofree guint8 *all = g_new (guint8, n);
  memset (all, 1, n);
  gint64 t0 = g_get_monotonic_time ();
  gboolean uniform = G % N == 0;
  for (guint g = 0; uniform && g < G; g++)
    uniform = pb->gpu_node[g] == g / (G / N);

  gboolean ok;
  if (o->mode == MODE_DIRECT || (o->mode == MODE_STAGED && (N == 1 || N == G)))
    {
      d.remaining = 1;
      ok = solve_gpus (&d, all, 0, G, N > 1 && N < G, out->gpu, error);
    }
  else if (o->mode == MODE_STAGED)
    {
      if (!uniform)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "mode=staged needs GPUs numbered node by node in equal nodes (use "
                       "mode=direct)");
          return FALSE;
        }
      guint q = G / N;
      g_autofree guint *bounds = g_new (guint, N + 1);
      for (guint k = 0; k <= N; k++)
        bounds[k] = k * q;
      g_autofree guint *node = g_new0 (guint, n);
      d.remaining = 1 + N;
      ok = solve_split (&d, all, bounds, N, node, error);
      g_autofree guint8 *member = g_new (guint8, n);
      for (guint k = 0; ok && k < N; k++)
        {
          for (gsize i = 0; i < n; i++)
            member[i] = node[i] == k;
          ok = solve_gpus (&d, member, k * q, (k + 1) * q, FALSE, out->gpu, error);
        }
    }
  else
    {
      d.remaining = G > 1 ? G - 1 : 1;
      ok = bisect (&d, all, 0, G, out->gpu, error);
    }
  if (!ok)
    return FALSE;
  double secs = (double)(g_get_monotonic_time () - t0) / 1e6;

  guint64 xg, xn, tot;
  msim_placement_problem_crossings (pb, out->gpu, &xg, &xn, &tot);
  msim_placement_output_add_stat (out, "objective",
                                  (double)msim_placement_problem_cost (pb, out->gpu));
  if (warm)
    msim_placement_output_add_stat (out, "warm_start_objective",
                                    (double)msim_placement_problem_cost (pb, warm));
  msim_placement_output_add_stat (out, "cross_gpu_fraction", tot ? (double)xg / (double)tot : 0.0);
  msim_placement_output_add_stat (out, "cross_node_fraction", tot ? (double)xn / (double)tot : 0.0);
  msim_placement_output_add_stat (out, "mip_gap", d.max_gap);
  msim_placement_output_add_stat (out, "subproblems", d.subproblems);
  msim_placement_output_add_stat (out, "subproblems_optimal", d.optimal);
  msim_placement_output_add_stat (out, "all_solved", d.unsolved ? 0 : 1);
  msim_placement_output_add_stat (out, "subproblems_too_large", d.too_large);
  msim_placement_output_add_stat (out, "lp_relaxation_seconds", d.lp_seconds);
  msim_placement_output_add_stat (out, "ilp_seconds", secs);
  return TRUE;
}

const MsimPlacementPolicy msim_placement_policy_exflow_ilp = {
  .name = "exflow-ilp",
  .summary = "ExFlow's integer program (GLPK): staged node/GPU, bisection or direct",
  .options_help = "mode=staged|bisection|direct  decomposition (default staged)\n"
                  "warm-start=contiguous|heuristic|none  first incumbent (default contiguous)\n"
                  "time-limit=S   total GLPK time in seconds, shared by the sub-programs "
                  "(default 60)\n"
                  "mip-gap=X      stop a sub-program at relative gap X (default 0)\n"
                  "max-rows=N     larger sub-programs are not given to GLPK; the warm start "
                  "is kept (default 60000)\n",
  .init = ilp_init,
  .free_state = g_free,
  .place = ilp_place,
};
