#pragma once

/* Small helpers shared by the analysis Check suites. */

#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <igraph.h>

#include "msim-check.h"
#include "placement.h"
#include "trace.h"

/* A trace from token-major ids: ids[(t * layers + l) * k + r]. */
static inline MsimTrace *
test_trace_new (gsize tokens, guint layers, guint k, guint experts, const int *ids)
{
  g_autoptr (GError) error = NULL;
  MsimTrace *t = msim_trace_new (tokens, layers, k, experts, MSIM_TRACE_NONE, &error);
  ck_assert_msg (t != NULL, "%s", error ? error->message : "");
  for (gsize x = 0; x < tokens; x++)
    for (guint l = 0; l < layers; l++)
      for (guint r = 0; r < k; r++)
        msim_trace_set_expert (t, x, l, r, ids[(x * layers + l) * k + r]);
  ck_assert (msim_trace_validate (t, "test", NULL));
  return t;
}

/* Random top-1 pair counts [(L-1) E E] with some structure: each expert
 * prefers one successor. */
static inline guint64 *
test_random_counts (guint layers, guint experts, guint64 seed)
{
  gsl_rng *r = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (r, (unsigned long)seed);
  guint64 *c = g_new0 (guint64, (gsize)(layers - 1) * experts * experts);
  for (guint l = 0; l + 1 < layers; l++)
    for (guint i = 0; i < experts; i++)
      {
        guint pref = (guint)gsl_rng_uniform_int (r, experts);
        for (guint j = 0; j < experts; j++)
          c[((gsize)l * experts + i) * experts + j]
              = gsl_rng_uniform_int (r, 20) + (j == pref ? 40 : 0);
      }
  gsl_rng_free (r);
  return c;
}

static inline MsimPlacementProblem *
test_problem (guint layers, guint experts, guint gpus, guint nodes, guint64 seed)
{
  g_autoptr (MsimClusterShape) shape = msim_cluster_shape_new (gpus, nodes, NULL);
  ck_assert (shape != NULL);
  g_autofree guint64 *c = test_random_counts (layers, experts, seed);
  MsimPlacementProblem *pb
      = msim_placement_problem_new_from_counts (layers, experts, c, shape, seed, NULL);
  ck_assert (pb != NULL);
  return pb;
}

/* Runs policy @name; fails the test on error. */
static inline MsimPlacement *
test_run (const char *name, const char *const *options, const MsimPlacementProblem *pb,
          GArray **stats)
{
  g_autoptr (GError) error = NULL;
  const MsimPlacementPolicy *pol = msim_placement_policy_find (name);
  ck_assert_msg (pol != NULL, "no policy %s", name);
  MsimPlacement *p = msim_placement_run (pol, options, pb, stats, &error);
  ck_assert_msg (p != NULL, "%s: %s", name, error ? error->message : "");
  return p;
}

static inline void
test_quiet_libraries (void)
{
  igraph_set_error_handler (igraph_error_handler_printignore);
  igraph_set_warning_handler (igraph_warning_handler_ignore);
  gsl_set_error_handler_off ();
}
