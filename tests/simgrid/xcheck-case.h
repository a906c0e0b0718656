#pragma once

/* Cases for the SimGrid cross-check: seeded random flow sets on tree
 * topologies, written in moesim's own input formats (a topology file of
 * explicit vertices and links, and a flows CSV), plus the comparison of two
 * `id,start_s,end_s,...` result files.
 *
 * Nothing here links moesim's libraries: the cross-check talks to `moesim
 * flows` and `moesim-simgrid` only through files, so a bug in moesim's
 * topology reader or router shows up as a disagreement too. */

#include <glib.h>

G_BEGIN_DECLS

typedef struct _XcheckCase XcheckCase;

typedef enum
{
  XCHECK_LATENCY_ZERO,  /* every link has latency 0 */
  XCHECK_LATENCY_EQUAL, /* every route between two flow endpoints has the same latency */
} XcheckLatency;

/* A random case drawn from @seed: a tree of depth 1 (star), 2 or 3 with
 * heterogeneous, partly oversubscribed capacities, optional NICs between
 * GPUs and switches, 20-500 flows with heavy-tailed sizes (some empty or
 * tiny), start times in bursts, waves or spread, and hot-spot destinations
 * so that many flows share links.  With XCHECK_LATENCY_EQUAL the latency
 * sits only on the links that attach flow endpoints (GPUs and host memory,
 * all leaves of the tree), so every route has latency 2 x lambda.
 * (transfer full) */
XcheckCase *xcheck_case_random (guint64 seed, XcheckLatency latency);

/* The all-to-all benchmark case: @gpus GPUs on one switch (link
 * @bandwidth_Bps per GPU and direction, no latency), one flow per ordered
 * pair, all starting at 0, with the per-pair bytes of `moesim bench network
 * --skew S --seed K` (lognormal with mean @mean_bytes, drawn in the same
 * order from the same generator) rounded to whole bytes (at least 1).
 * (transfer full) */
XcheckCase *xcheck_case_alltoall (guint gpus, double skew, guint64 seed, double mean_bytes,
                                  double bandwidth_Bps);

/* One line saying what the case is (shape, sizes, latency). (transfer none) */
const char *xcheck_case_describe (const XcheckCase *c);
guint xcheck_case_n_flows (const XcheckCase *c);

/* Writes the topology and the flows CSV. */
gboolean xcheck_case_write (const XcheckCase *c, const char *topology_path, const char *flows_path,
                            GError **error);
void xcheck_case_free (XcheckCase *c);

typedef struct
{
  guint n_flows;
  guint n_bad;         /* flows outside the tolerance */
  double max_rel_end;  /* max |end_a - end_b| / end_b */
  double max_rel_dur;  /* max |end_a - end_b| / (end_b - start), flows with end_b > start */
  double max_abs_s;    /* max |end_a - end_b| */
  double max_tol_used; /* max |end_a - end_b| / (rel_tol x end_b + abs_tol_s): <= 1 passes */
  char *worst_id;      /* the flow with the largest |end_a - end_b| / (end_b - start) */
  char *first_bad;     /* the first flow outside the tolerance, with both times */
} XcheckDiff;

/* Compares two result CSVs (`id,start_s,end_s,...`, as `moesim flows` and
 * `moesim-simgrid` write them), @ref_csv being the reference: a flow is
 * within tolerance when |end - end_ref| <= rel_tol x end_ref + abs_tol_s.
 * Both files must list the same ids with the same start times; otherwise
 * FALSE with @error. */
gboolean xcheck_compare (const char *csv, const char *ref_csv, double rel_tol, double abs_tol_s,
                         XcheckDiff *diff, GError **error);
void xcheck_diff_clear (XcheckDiff *diff);

/* Runs @argv (argv[0] is a path or looked up in PATH) in this process's
 * environment less the variables named in @unset_env (NULL-terminated, may
 * be NULL) and returns its exit status (-1 if it did not exit normally);
 * stdout and stderr are returned in @out and @err when not NULL. */
int xcheck_spawn (const char *const *argv, const char *const *unset_env, char **out, char **err);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (XcheckCase, xcheck_case_free)

G_END_DECLS
