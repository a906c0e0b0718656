/* Check suite for analysis/affinity.c: count matrices and probabilities
 * (top-1 and all-k) on a trace computed by hand, entropies and mutual
 * information, non-adjacent layers, the igraph graph and its GraphML file,
 * and the affinity gain. */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "affinity.h"
#include "analysis-test-util.h"
#include "msim-error.h"

/* 4 tokens, 2 layers, top-2, 3 experts. */
static const int ids[] = {
  0, 1, 2, 0, /* t0: L0 (0,1) L1 (2,0) */
  0, 2, 2, 1, /* t1: L0 (0,2) L1 (2,1) */
  1, 0, 0, 2, /* t2: L0 (1,0) L1 (0,2) */
  0, 1, 1, 2, /* t3: L0 (0,1) L1 (1,2) */
};

START_TEST (tc_counts_top1)
{
  g_autoptr (MsimTrace) t = test_trace_new (4, 2, 2, 3, ids);
  g_autoptr (MsimAffinity) a = msim_affinity_new (t, 1, NULL);
  ck_assert (a != NULL);
  ck_assert_uint_eq (msim_affinity_n_pairs (a), 1);
  const guint64 *c = msim_affinity_counts (a, MSIM_AFFINITY_TOP1, 0);
  const guint64 want[9] = { 0, 1, 2, 1, 0, 0, 0, 0, 0 };
  for (int i = 0; i < 9; i++)
    ck_assert_uint_eq (c[i], want[i]);
  msim_ck_assert_near (msim_affinity_probability (a, MSIM_AFFINITY_TOP1, 0, 0, 2), 2.0 / 3.0,
                       1e-12);
  msim_ck_assert_near (msim_affinity_probability (a, MSIM_AFFINITY_TOP1, 0, 0, 1), 1.0 / 3.0,
                       1e-12);
  msim_ck_assert_near (msim_affinity_probability (a, MSIM_AFFINITY_TOP1, 0, 1, 0), 1.0, 1e-12);
  ck_assert (isnan (msim_affinity_probability (a, MSIM_AFFINITY_TOP1, 0, 2, 0)));
}
END_TEST

START_TEST (tc_counts_allk)
{
  g_autoptr (MsimTrace) t = test_trace_new (4, 2, 2, 3, ids);
  g_autoptr (MsimAffinity) a = msim_affinity_new (t, 1, NULL);
  const guint64 *c = msim_affinity_counts (a, MSIM_AFFINITY_ALLK, 0);
  const guint64 want[9] = { 2, 2, 4, 2, 1, 3, 0, 1, 1 };
  for (int i = 0; i < 9; i++)
    ck_assert_uint_eq (c[i], want[i]);
  ck_assert_uint_eq (msim_affinity_row_tokens (a, MSIM_AFFINITY_ALLK, 0, 0), 4);
  ck_assert_uint_eq (msim_affinity_row_tokens (a, MSIM_AFFINITY_ALLK, 0, 1), 3);
  ck_assert_uint_eq (msim_affinity_row_tokens (a, MSIM_AFFINITY_ALLK, 0, 2), 1);
  /* P(j among the choices at l+1 | i among them at l); rows sum to k. */
  msim_ck_assert_near (msim_affinity_probability (a, MSIM_AFFINITY_ALLK, 0, 0, 2), 1.0, 1e-12);
  msim_ck_assert_near (msim_affinity_probability (a, MSIM_AFFINITY_ALLK, 0, 1, 1), 1.0 / 3.0,
                       1e-12);
  for (guint i = 0; i < 3; i++)
    {
      double sum = 0;
      for (guint j = 0; j < 3; j++)
        sum += msim_affinity_probability (a, MSIM_AFFINITY_ALLK, 0, i, j);
      msim_ck_assert_near (sum, 2.0, 1e-12);
    }
}
END_TEST

START_TEST (tc_entropy)
{
  g_autoptr (MsimTrace) t = test_trace_new (4, 2, 2, 3, ids);
  g_autoptr (MsimAffinity) a = msim_affinity_new (t, 1, NULL);
  MsimAffinityStats s;
  msim_affinity_pair_stats (a, MSIM_AFFINITY_TOP1, 0, &s);
  /* p(i,j): (0,2) 1/2, (0,1) 1/4, (1,0) 1/4.  H(J) = 1.5 bits;
   * H(J|I) = 3/4 H(2/3, 1/3) = 0.688722 bits. */
  msim_ck_assert_near (s.entropy, 1.5, 1e-12);
  double h23 = -(2.0 / 3.0) * log2 (2.0 / 3.0) - (1.0 / 3.0) * log2 (1.0 / 3.0);
  msim_ck_assert_near (s.conditional_entropy, 0.75 * h23, 1e-12);
  msim_ck_assert_near (s.mutual_information, 1.5 - 0.75 * h23, 1e-12);
  msim_ck_assert_near (s.normalized_mi, (1.5 - 0.75 * h23) / 1.5, 1e-12);
  ck_assert_uint_eq (s.samples, 4);
  MsimAffinityStats m;
  msim_affinity_mean_stats (a, MSIM_AFFINITY_TOP1, &m);
  msim_ck_assert_near (m.mutual_information, s.mutual_information, 1e-12);
  msim_affinity_pair_stats (a, MSIM_AFFINITY_ALLK, 0, &s);
  ck_assert_uint_eq (s.samples, 16);
  ck_assert (s.mutual_information >= 0 && s.mutual_information <= s.entropy);
}
END_TEST

START_TEST (tc_distance)
{
  /* Layer l+2 is a deterministic function of layer l. */
  const int chain[] = { 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0 };
  g_autoptr (MsimTrace) t = test_trace_new (4, 3, 1, 2, chain);
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimAffinity) a = msim_affinity_new (t, 2, &error);
  ck_assert (a != NULL);
  ck_assert_uint_eq (msim_affinity_n_pairs (a), 1);
  const guint64 *c = msim_affinity_counts (a, MSIM_AFFINITY_TOP1, 0);
  ck_assert_uint_eq (c[0 * 2 + 1], 2);
  ck_assert_uint_eq (c[1 * 2 + 0], 2);
  MsimAffinityStats s;
  msim_affinity_pair_stats (a, MSIM_AFFINITY_TOP1, 0, &s);
  msim_ck_assert_near (s.conditional_entropy + 1.0, 1.0, 1e-12);
  msim_ck_assert_near (s.mutual_information, 1.0, 1e-12);
  ck_assert (msim_affinity_new (t, 3, &error) == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
}
END_TEST

START_TEST (tc_graph)
{
  g_autoptr (MsimTrace) t = test_trace_new (4, 2, 2, 3, ids);
  g_autoptr (MsimAffinity) a = msim_affinity_new (t, 1, NULL);
  igraph_t g;
  ck_assert (msim_affinity_graph (a, MSIM_AFFINITY_TOP1, &g, NULL));
  ck_assert_int_eq (igraph_vcount (&g), 6);
  ck_assert_int_eq (igraph_ecount (&g), 3);
  ck_assert (igraph_is_directed (&g));
  ck_assert_str_eq (VAS (&g, "name", 5), "L1E2");
  ck_assert (VAN (&g, "layer", 4) == 1.0);
  ck_assert (VAN (&g, "load", 0) == 3.0);
  double wsum = 0;
  for (igraph_integer_t e = 0; e < igraph_ecount (&g); e++)
    wsum += EAN (&g, "weight", e);
  ck_assert (wsum == 4.0);
  igraph_destroy (&g);
  ck_assert (msim_affinity_graph (a, MSIM_AFFINITY_ALLK, &g, NULL));
  ck_assert_int_eq (igraph_ecount (&g), 8);
  igraph_destroy (&g);

  /* GraphML round trip through igraph's reader. */
  g_autofree char *dir = g_dir_make_tmp ("msim-aff-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "a.graphml", NULL);
  ck_assert (msim_affinity_save_graphml (a, MSIM_AFFINITY_TOP1, path, NULL));
  FILE *in = fopen (path, "r");
  ck_assert (in != NULL);
  igraph_t back;
  ck_assert_int_eq (igraph_read_graph_graphml (&back, in, 0), IGRAPH_SUCCESS);
  fclose (in);
  ck_assert_int_eq (igraph_vcount (&back), 6);
  ck_assert_int_eq (igraph_ecount (&back), 3);
  igraph_destroy (&back);
  g_unlink (path);
  g_rmdir (dir);
  g_autoptr (GError) error = NULL;
  ck_assert (
      !msim_affinity_save_graphml (a, MSIM_AFFINITY_TOP1, "/nonexistent/dir/a.graphml", &error));
  ck_assert_int_eq (error->code, MSIM_ERROR_IO);
}
END_TEST

START_TEST (tc_gain)
{
  /* Tokens follow 0->1 and 2->3 ... perfectly: 2 GPUs can hold each chain
   * on one GPU, contiguous splits them. */
  int chain[4 * 2];
  const int path0[2] = { 0, 3 }, path1[2] = { 1, 2 };
  for (int x = 0; x < 4; x++)
    for (int l = 0; l < 2; l++)
      chain[x * 2 + l] = x % 2 ? path1[l] : path0[l];
  g_autoptr (MsimTrace) t = test_trace_new (4, 2, 1, 4, chain);
  MsimAffinityGain g;
  ck_assert (msim_affinity_gain (t, 2, 1, &g, NULL));
  /* Contiguous: 0,1 on GPU 0, 2,3 on GPU 1: every token crosses. */
  msim_ck_assert_near (g.contiguous, 1.0, 1e-12);
  ck_assert (g.best == 0.0);
  msim_ck_assert_near (g.relative_gain, 1.0, 1e-12);
  ck_assert (g.exact);
}
END_TEST

static Suite *
affinity_suite (void)
{
  test_quiet_libraries ();
  Suite *s = suite_create ("affinity");
  TCase *tc;
  tc = tcase_create ("counts");
  tcase_add_test (tc, tc_counts_top1);
  tcase_add_test (tc, tc_counts_allk);
  tcase_add_test (tc, tc_distance);
  suite_add_tcase (s, tc);
  tc = tcase_create ("entropy");
  tcase_add_test (tc, tc_entropy);
  suite_add_tcase (s, tc);
  tc = tcase_create ("graph");
  tcase_add_test (tc, tc_graph);
  suite_add_tcase (s, tc);
  tc = tcase_create ("gain");
  tcase_add_test (tc, tc_gain);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (affinity_suite)
