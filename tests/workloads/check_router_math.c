/* The routing maths on small hand-computed cases: softmax and top-k with
 * ties, gate weights, group limits, capacity and its dropping order,
 * expert choice, similarity mixing on three tokens, and a GRU step. */
#include <math.h>

#include "router-private.h"
#include "trace-test-util.h"

START_TEST (test_softmax)
{
  double v[3] = { 0.0, log (2.0), log (3.0) };
  double lse = msim_softmax (v, 3);
  msim_ck_assert_near (lse, log (6.0), 1e-14);
  msim_ck_assert_near (v[0], 1.0 / 6, 1e-14);
  msim_ck_assert_near (v[1], 2.0 / 6, 1e-14);
  msim_ck_assert_near (v[2], 3.0 / 6, 1e-14);
  /* Large logits do not overflow. */
  double big[2] = { 1000.0, 1000.0 };
  msim_ck_assert_near (msim_logsumexp (big, 2), 1000.0 + log (2.0), 1e-14);
  msim_softmax (big, 2);
  ck_assert (big[0] == 0.5 && big[1] == 0.5);
  double sg[3] = { 0.0, 2.0, -800.0 };
  msim_sigmoid (sg, 3);
  ck_assert (sg[0] == 0.5);
  msim_ck_assert_near (sg[1], 1.0 / (1.0 + exp (-2.0)), 1e-15);
  ck_assert (sg[2] >= 0 && sg[2] < 1e-300);
  double p[4] = { 1, 1, 1, 1 };
  msim_ck_assert_near (msim_entropy_bits (p, 4), 2.0, 1e-15);
  double q[3] = { 0, 3, 0 };
  ck_assert (msim_entropy_bits (q, 3) == 0.0);
  ck_assert_uint_eq (msim_argmax ((double[]){ 0.2, 0.5, 0.5 }, 3), 1);
}
END_TEST

START_TEST (test_topk_ties_and_weights)
{
  const double s[4] = { 0.2, 0.3, 0.3, 0.2 };
  int ids[4];
  double w[4];
  /* Ties go to the lower expert id, in every rank. */
  msim_route_topk (s, 4, 2, 1, 1, MSIM_GATING_SOFTMAX_RENORM, 1.0, ids, w);
  ck_assert_int_eq (ids[0], 1);
  ck_assert_int_eq (ids[1], 2);
  ck_assert (w[0] == 0.5 && w[1] == 0.5); /* Mixtral: renormalised over the chosen two */
  msim_route_topk (s, 4, 4, 1, 1, MSIM_GATING_SOFTMAX_RENORM, 1.0, ids, w);
  ck_assert (ids[0] == 1 && ids[1] == 2 && ids[2] == 0 && ids[3] == 3);
  /* Switch: raw probabilities. */
  const double p[4] = { 0.1, 0.6, 0.2, 0.1 };
  msim_route_topk (p, 4, 2, 1, 1, MSIM_GATING_SOFTMAX_RAW, 1.0, ids, w);
  ck_assert (ids[0] == 1 && ids[1] == 2);
  ck_assert (w[0] == 0.6 && w[1] == 0.2);
  msim_route_topk (p, 4, 1, 1, 1, MSIM_GATING_SOFTMAX_RAW, 1.0, ids, w);
  ck_assert (ids[0] == 1 && w[0] == 0.6);
  /* Renormalised, times routed_scaling_factor (DeepSeek). */
  msim_route_topk (p, 4, 2, 1, 1, MSIM_GATING_SIGMOID_RENORM, 2.5, ids, w);
  msim_ck_assert_near (w[0], 2.5 * 0.6 / 0.8, 1e-15);
  msim_ck_assert_near (w[1], 2.5 * 0.2 / 0.8, 1e-15);
}
END_TEST

START_TEST (test_group_limit)
{
  /* 8 experts in 4 groups of 2, the best 2 groups, top-3.  Scores by
   * group: (0.30, 0.01) (0.20, 0.19) (0.22, 0.01) (0.05, 0.01).
   * Unlimited: experts 0, 4, 2.
   * Softmax gating scores a group by its best expert (DeepSeek-V2):
   * 0.30, 0.20, 0.22, 0.05 -> groups 0 and 2 -> experts 0, 4, 1.
   * Sigmoid gating by its two best (DeepSeek-V3): 0.31, 0.39, 0.23, 0.06
   * -> groups 1 and 0 -> experts 0, 2, 3. */
  const double s[8] = { 0.30, 0.01, 0.20, 0.19, 0.22, 0.01, 0.05, 0.01 };
  int ids[3];
  msim_route_topk (s, 8, 3, 1, 1, MSIM_GATING_SOFTMAX_RENORM, 1.0, ids, NULL);
  ck_assert (ids[0] == 0 && ids[1] == 4 && ids[2] == 2);
  msim_route_topk (s, 8, 3, 4, 2, MSIM_GATING_SOFTMAX_RENORM, 1.0, ids, NULL);
  ck_assert (ids[0] == 0 && ids[1] == 4 && ids[2] == 1);
  msim_route_topk (s, 8, 3, 4, 2, MSIM_GATING_SIGMOID_RENORM, 1.0, ids, NULL);
  ck_assert (ids[0] == 0 && ids[1] == 2 && ids[2] == 3);
  /* All groups allowed = no limit. */
  msim_route_topk (s, 8, 3, 4, 4, MSIM_GATING_SIGMOID_RENORM, 1.0, ids, NULL);
  ck_assert (ids[0] == 0 && ids[1] == 4 && ids[2] == 2);
}
END_TEST

START_TEST (test_capacity_and_drop_order)
{
  ck_assert_uint_eq (msim_route_capacity (10, 2, 4, 1.0), 5);
  ck_assert_uint_eq (msim_route_capacity (10, 2, 4, 1.25), 7); /* ceil (6.25) */
  ck_assert_uint_eq (msim_route_capacity (8, 1, 8, 2.0), 2);
  ck_assert_uint_eq (msim_route_capacity (8, 1, 8, 0.0), G_MAXUINT64);
  /* 4 tokens, k = 2, 3 experts of capacity 2.  First choices first:
   * rank 0: t0->e0 (1), t1->e0 (2), t2->e0 dropped, t3->e1 (1);
   * rank 1: t0->e1 (2), t1->e2 (1), t2->e1 dropped, t3->e0 dropped.
   * Token-major order would instead keep t2's second choice and drop t3's
   * first choice. */
  const int ids[8] = { 0, 1, 0, 2, 0, 1, 1, 0 };
  guint8 dropped[8];
  guint64 load[3];
  ck_assert_uint_eq (msim_route_drop (ids, 4, 2, 3, 2, dropped, load), 3);
  const guint8 want[8] = { 0, 0, 0, 0, 1, 1, 0, 1 };
  for (int i = 0; i < 8; i++)
    ck_assert_msg (dropped[i] == want[i], "cell %d: dropped %d", i, dropped[i]);
  ck_assert (load[0] == 2 && load[1] == 2 && load[2] == 1);
  /* Conservation: kept + dropped = assignments. */
  ck_assert_uint_eq (load[0] + load[1] + load[2] + 3, 8);
  /* Unset cells are skipped, unlimited capacity drops nothing. */
  const int some[4] = { 0, -1, 0, 0 };
  ck_assert_uint_eq (msim_route_drop (some, 2, 2, 3, G_MAXUINT64, dropped, load), 0);
  ck_assert_uint_eq (load[0], 3);
}
END_TEST

START_TEST (test_expert_choice)
{
  /* 4 tokens x 2 experts, each expert takes ceil (4 * 1 / 2) = 2. */
  const double s[8] = { 0.9, 0.1, 0.6, 0.4, 0.5, 0.5, 0.2, 0.8 };
  int ids[8];
  double w[8];
  guint64 cap = msim_route_capacity (4, 1, 2, 1.0);
  ck_assert_uint_eq (cap, 2);
  ck_assert_uint_eq (msim_route_expert_choice (s, 4, 2, cap, ids, w), 4);
  /* e0 takes t0 (0.9), t1 (0.6); e1 takes t3 (0.8), t2 (0.5). */
  const int want[8] = { 0, -1, 0, -1, 1, -1, 1, -1 };
  for (int i = 0; i < 8; i++)
    ck_assert_msg (ids[i] == want[i], "slot %d: %d", i, ids[i]);
  ck_assert (w[0] == 0.9 && w[1] == 0.0 && w[6] == 0.8);
  /* c = 2: every expert takes every token; a token lists its experts in
   * decreasing score, ties (t2: 0.5, 0.5) to the lower id. */
  ck_assert_uint_eq (msim_route_expert_choice (s, 4, 2, msim_route_capacity (4, 1, 2, 2.0), ids, w),
                     8);
  ck_assert (ids[0] == 0 && ids[1] == 1);
  ck_assert (ids[4] == 0 && ids[5] == 1);
  ck_assert (ids[6] == 1 && ids[7] == 0);
  /* Ties between tokens go to the lower token index: e0 sees 0.5 three
   * times and takes t0, t1; e1 sees 0 everywhere and takes t0, t1 too, so
   * t2 and t3 get no expert. */
  const double tie[8] = { 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.1, 0.0 };
  msim_route_expert_choice (tie, 4, 2, 2, ids, NULL);
  ck_assert (ids[0] == 0 && ids[1] == 1 && ids[2] == 0 && ids[3] == 1);
  ck_assert (ids[4] == -1 && ids[5] == -1 && ids[6] == -1 && ids[7] == -1);
  /* Capacity above n is clamped: 2 experts x 4 tokens. */
  ck_assert_uint_eq (msim_route_expert_choice (s, 4, 2, 100, ids, NULL), 8);
}
END_TEST

START_TEST (test_similarity_three_tokens)
{
  /* x = (1,0), (0,1), (1,1); tau = 1; G rows (1,0), (0,1), (0.5,0.5).
   * Dot products: row 0 (1,0,1), row 1 (0,1,1), row 2 (1,1,2), so
   *   S0 = (e, 1, e) / (2e + 1)
   *   S1 = (1, e, e) / (2e + 1)
   *   S2 = (1, 1, e) / (e + 2)
   * and P = S G. */
  double xv[6] = { 1, 0, 0, 1, 1, 1 }, gv[6] = { 1, 0, 0, 1, 0.5, 0.5 };
  gsl_matrix_view x = gsl_matrix_view_array (xv, 3, 2);
  gsl_matrix_view g = gsl_matrix_view_array (gv, 3, 2);
  gsl_matrix *s = gsl_matrix_alloc (3, 3), *p = gsl_matrix_alloc (3, 2);
  double e = M_E, a = 2 * e + 1, b = e + 2;
  msim_similarity_mix (&x.matrix, &g.matrix, 1.0, FALSE, s, p);
  msim_ck_assert_near (gsl_matrix_get (s, 0, 0), e / a, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (s, 0, 1), 1 / a, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (s, 2, 2), e / b, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 0, 0), (e + e / 2) / a, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 0, 1), (1 + e / 2) / a, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 1, 0), (1 + e / 2) / a, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 1, 1), (e + e / 2) / a, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 2, 0), (1 + e / 2) / b, 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 2, 1), (1 + e / 2) / b, 1e-14);
  /* Rows of P stay distributions. */
  for (int i = 0; i < 3; i++)
    msim_ck_assert_near (gsl_matrix_get (p, i, 0) + gsl_matrix_get (p, i, 1), 1.0, 1e-14);
  /* Causal: token 0 sees itself, token 1 tokens 0-1 with (1, e)/(1 + e),
   * token 2 all three as before. */
  msim_similarity_mix (&x.matrix, &g.matrix, 1.0, TRUE, s, p);
  ck_assert (gsl_matrix_get (p, 0, 0) == 1.0 && gsl_matrix_get (p, 0, 1) == 0.0);
  ck_assert (gsl_matrix_get (s, 0, 1) == 0.0 && gsl_matrix_get (s, 1, 2) == 0.0);
  msim_ck_assert_near (gsl_matrix_get (p, 1, 0), 1 / (1 + e), 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 1, 1), e / (1 + e), 1e-14);
  msim_ck_assert_near (gsl_matrix_get (p, 2, 1), (1 + e / 2) / b, 1e-14);
  /* tau = 2 halves the logits: S0 = (e^.5, 1, e^.5) / (2 e^.5 + 1). */
  msim_similarity_mix (&x.matrix, &g.matrix, 2.0, FALSE, s, p);
  double h = sqrt (e);
  msim_ck_assert_near (gsl_matrix_get (s, 0, 0), h / (2 * h + 1), 1e-14);
  gsl_matrix_free (s);
  gsl_matrix_free (p);
}
END_TEST

START_TEST (test_gru_step)
{
  /* One unit: W_ih = (0.5, -0.5, 1.0), W_hh = (1.0, 0.5, -1.0) for the r,
   * z, n gates, b_ih = (0, 0.1, 0), b_hh = (0.2, 0, 0.3), x = 1, h = 0.5:
   *   r = sigmoid (0.5 + 0.5 + 0.2)               = sigmoid (1.2)  = 0.76852478...
   *   z = sigmoid (-0.5 + 0.1 + 0.25)             = sigmoid (-0.15) = 0.46257015...
   *   n = tanh (1.0 + r (-0.5 + 0.3))            = tanh (0.84629504) = 0.68912896...
   *   h' = (1 - z) n + z h                       = 0.60164354541430... */
  g_autoptr (MsimGru) g = msim_gru_new (1, 1);
  const double wi[3] = { 0.5, -0.5, 1.0 }, wh[3] = { 1.0, 0.5, -1.0 };
  const double bi[3] = { 0, 0.1, 0 }, bh[3] = { 0.2, 0, 0.3 };
  for (int i = 0; i < 3; i++)
    {
      gsl_matrix_set (g->w_ih, i, 0, wi[i]);
      gsl_matrix_set (g->w_hh, i, 0, wh[i]);
      gsl_vector_set (g->b_ih, i, bi[i]);
      gsl_vector_set (g->b_hh, i, bh[i]);
    }
  gsl_matrix *x = gsl_matrix_alloc (1, 1), *h = gsl_matrix_alloc (1, 1);
  gsl_matrix *gi = gsl_matrix_alloc (1, 3), *gh = gsl_matrix_alloc (1, 3);
  gsl_matrix_set (x, 0, 0, 1.0);
  gsl_matrix_set (h, 0, 0, 0.5);
  msim_gru_step (g, x, h, gi, gh);
  msim_ck_assert_near (gsl_matrix_get (h, 0, 0), 0.6016435454143015, 1e-14);
  gsl_matrix_free (x);
  gsl_matrix_free (h);
  gsl_matrix_free (gi);
  gsl_matrix_free (gh);

  /* Two units, two inputs, asymmetric weights: checks that rows are gates
   * (r0, r1, z0, z1, n0, n1) and columns inputs, as in PyTorch.  Expected
   * values computed by hand from the formulas in router-private.h. */
  g_autoptr (MsimGru) g2 = msim_gru_new (2, 2);
  const double wih[12] = { 0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9, -1.0, 1.1, 1.2 };
  const double whh[12] = { -0.2, 0.1, 0.4, 0.3, -0.6, 0.5, 0.8, -0.7, 1.0, 0.9, -1.2, 1.1 };
  for (int i = 0; i < 6; i++)
    {
      for (int j = 0; j < 2; j++)
        {
          gsl_matrix_set (g2->w_ih, i, j, wih[2 * i + j]);
          gsl_matrix_set (g2->w_hh, i, j, whh[2 * i + j]);
        }
      gsl_vector_set (g2->b_ih, i, 0.01 * (i + 1));
      gsl_vector_set (g2->b_hh, i, -0.01 * (i + 1));
    }
  /* Two tokens: the first as computed by hand, the second zero input and
   * zero state, which must give h' = (1 - z) tanh (b_in + r b_hn). */
  double xv[4] = { 1.0, -2.0, 0, 0 }, hv[4] = { 0.3, -0.1, 0, 0 };
  gsl_matrix_view xm = gsl_matrix_view_array (xv, 2, 2), hm = gsl_matrix_view_array (hv, 2, 2);
  gsl_matrix *gi2 = gsl_matrix_alloc (4, 6), *gh2 = gsl_matrix_alloc (4, 6);
  msim_gru_step (g2, &xm.matrix, &hm.matrix, gi2, gh2);
  msim_ck_assert_near (hv[0], 0.7985136540674523, 1e-14);
  msim_ck_assert_near (hv[1], -0.8287424409139842, 1e-14);
  for (int j = 0; j < 2; j++)
    {
      double r = 1 / (1 + exp (-(0.01 * (j + 1) - 0.01 * (j + 1))));
      double z = 1 / (1 + exp (-(0.01 * (j + 3) - 0.01 * (j + 3))));
      double n = tanh (0.01 * (j + 5) + r * -0.01 * (j + 5));
      msim_ck_assert_near (hv[2 + j], (1 - z) * n, 1e-14);
    }
  gsl_matrix_free (gi2);
  gsl_matrix_free (gh2);
}
END_TEST

static Suite *
router_math_suite (void)
{
  Suite *s = suite_create ("router-math");
  TCase *tc = tcase_create ("softmax");
  tcase_add_test (tc, test_softmax);
  suite_add_tcase (s, tc);
  tc = tcase_create ("topk");
  tcase_add_test (tc, test_topk_ties_and_weights);
  tcase_add_test (tc, test_group_limit);
  suite_add_tcase (s, tc);
  tc = tcase_create ("capacity");
  tcase_add_test (tc, test_capacity_and_drop_order);
  suite_add_tcase (s, tc);
  tc = tcase_create ("expert-choice");
  tcase_add_test (tc, test_expert_choice);
  suite_add_tcase (s, tc);
  tc = tcase_create ("similarity");
  tcase_add_test (tc, test_similarity_three_tokens);
  suite_add_tcase (s, tc);
  tc = tcase_create ("gru");
  tcase_add_test (tc, test_gru_step);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (router_math_suite)
