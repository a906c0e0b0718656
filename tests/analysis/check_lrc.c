/* Check suite for analysis/lrc.c: SRP and SCH on tiny traces computed by
 * hand, sequences, and edge cases (windows longer than the sequence, m = 1,
 * C = E). */
#include <math.h>
#include <string.h>

#include "analysis-test-util.h"
#include "lrc.h"
#include "msim-error.h"

static MsimLrc *
lrc_of (const MsimTrace *t, guint m)
{
  g_autoptr (GError) error = NULL;
  MsimLrc *lrc = msim_lrc_compute (t, &m, 1, &error);
  ck_assert_msg (lrc != NULL, "%s", error ? error->message : "");
  return lrc;
}

/* One layer, top-1, 3 experts: 0 0 1 0 2. */
static const int seq_a[] = { 0, 0, 1, 0, 2 };

START_TEST (tc_srp_by_hand)
{
  g_autoptr (MsimTrace) t = test_trace_new (5, 1, 1, 3, seq_a);
  /* m = 2: windows {0,0} {0,1} {1,0} {0,2}: n_e = 1 six times, 2 once.
   * tau = 1: TP = 8, Pred = 2 * 7, Act = 1 * 2 * 4: F1 = 16 / 22.
   * tau = 2: TP = 2, Pred = 2: F1 = 4 / 10. */
  g_autoptr (MsimLrc) a = lrc_of (t, 2);
  ck_assert_uint_eq (msim_lrc_windows (a, 0), 4);
  msim_ck_assert_near (msim_lrc_srp (a, 0, 0), 16.0 / 22.0, 1e-12);
  ck_assert_uint_eq (msim_lrc_srp_threshold (a, 0, 0), 1);
  msim_ck_assert_near (msim_lrc_srp (a, 0, MSIM_LRC_MODEL), 16.0 / 22.0, 1e-12);
  /* m = 5: one window, counts 3, 1, 1.  tau = 1: 10 / 20; tau = 2 or 3:
   * TP = 3, Pred = 5, Act = 5: 0.6, first at tau = 2. */
  g_autoptr (MsimLrc) b = lrc_of (t, 5);
  msim_ck_assert_near (msim_lrc_srp (b, 0, 0), 0.6, 1e-12);
  ck_assert_uint_eq (msim_lrc_srp_threshold (b, 0, 0), 2);
  /* m = 6: no window. */
  g_autoptr (MsimLrc) c = lrc_of (t, 6);
  ck_assert_uint_eq (msim_lrc_windows (c, 0), 0);
  ck_assert (isnan (msim_lrc_srp (c, 0, 0)));
  ck_assert (isnan (msim_lrc_srp (c, 0, MSIM_LRC_MODEL)));
}
END_TEST

START_TEST (tc_srp_topk)
{
  /* Top-2: (0,1) (0,2) (1,0), m = 2: windows {e0 2, e1 1, e2 1} twice.
   * tau = 1: TP = 8, Pred = 2 * 6, Act = 2 * 2 * 2: F1 = 0.8. */
  const int ids[] = { 0, 1, 0, 2, 1, 0 };
  g_autoptr (MsimTrace) t = test_trace_new (3, 1, 2, 3, ids);
  g_autoptr (MsimLrc) a = lrc_of (t, 2);
  msim_ck_assert_near (msim_lrc_srp (a, 0, 0), 0.8, 1e-12);
}
END_TEST

START_TEST (tc_sch_by_hand)
{
  g_autoptr (MsimTrace) t = test_trace_new (5, 1, 1, 3, seq_a);
  /* m = 2.  t0: window {0,0}, e0 ranks 0.  t1: window {0,1}, e0 ties e1
   * and was used more recently: 0.  t2: window {1,0}, e1 ties e0, which was
   * used more recently: rank 1; e1 was never used and one slot is taken:
   * effective rank min(1, 1) = 1.  t3: window {0,2}: e0 ranks 0.  t4: e2
   * alone: 0.  Ranks 0 0 1 0 0: SCH(1) = 4/5, SCH(2) = SCH(3) = 1. */
  g_autoptr (MsimLrc) a = lrc_of (t, 2);
  msim_ck_assert_near (msim_lrc_sch (a, 0, 0, 1), 0.8, 1e-12);
  msim_ck_assert_near (msim_lrc_sch (a, 0, 0, 2), 1.0, 1e-12);
  msim_ck_assert_near (msim_lrc_sch (a, 0, MSIM_LRC_MODEL, 3), 1.0, 1e-12);
  /* m = 1: the window is the token itself, so the demanded expert always
   * ranks first. */
  g_autoptr (MsimLrc) b = lrc_of (t, 1);
  msim_ck_assert_near (msim_lrc_sch (b, 0, 0, 1), 1.0, 1e-12);
  /* m = 5.  Counts from t0: 3 1 1.  t0, t1: e0 first.  t2 (window 1 0 2,
   * counts 1 1 1): e0 was used most recently: e1 ranks 1, effective
   * min(1, 1 slot taken) = 1.  t3: e0 ties e2 (never used): 0.  t4: 0.
   * SCH(1) = 4/5. */
  g_autoptr (MsimLrc) c = lrc_of (t, 5);
  msim_ck_assert_near (msim_lrc_sch (c, 0, 0, 1), 0.8, 1e-12);
  msim_ck_assert_near (msim_lrc_sch (c, 0, 0, 2), 1.0, 1e-12);
}
END_TEST

START_TEST (tc_cold_cache)
{
  /* 0 1 2 0 1 2 with m = 1 and C = 1: every demand ranks first. */
  const int ids[] = { 0, 1, 2, 0, 1, 2 };
  g_autoptr (MsimTrace) t = test_trace_new (6, 1, 1, 3, ids);
  g_autoptr (MsimLrc) a = lrc_of (t, 1);
  msim_ck_assert_near (msim_lrc_sch (a, 0, 0, 1), 1.0, 1e-12);
  /* m = 6.  t0: all counts 2, no use yet: e0 wins on id.  t1: e1 2 ties
   * e2 2 (never used, higher id): 0.  t2: e2 alone at 2: 0.  t3 (counts
   * 1 1 1): e1 and e2 were used after e0: rank 2.  t4 (e1 1, e2 1): e2 more
   * recent: rank 1.  t5: 0.  Ranks 0 0 0 2 1 0: SCH = 4/6, 5/6, 1. */
  g_autoptr (MsimLrc) b = lrc_of (t, 6);
  msim_ck_assert_near (msim_lrc_sch (b, 0, 0, 1), 4.0 / 6.0, 1e-12);
  msim_ck_assert_near (msim_lrc_sch (b, 0, 0, 2), 5.0 / 6.0, 1e-12);
  msim_ck_assert_near (msim_lrc_sch (b, 0, 0, 3), 1.0, 1e-12);
}
END_TEST

START_TEST (tc_sequences)
{
  /* Sequence A = 0 0 1 0 2 and B = 2 2 2 interleaved in the file. */
  const guint32 seq[] = { 0, 1, 0, 1, 0, 1, 0, 0 };
  const guint32 pos[] = { 0, 0, 1, 1, 2, 2, 3, 4 };
  const int ex[] = { 0, 2, 0, 2, 1, 2, 0, 2 };
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimTrace) t = msim_trace_new (8, 1, 1, 3, MSIM_TRACE_SEQUENCES, &error);
  for (gsize x = 0; x < 8; x++)
    {
      msim_trace_set_expert (t, x, 0, 0, ex[x]);
      msim_trace_set_sequence (t, x, seq[x], pos[x]);
    }
  g_autoptr (MsimLrc) a = lrc_of (t, 2);
  ck_assert (msim_lrc_has_sequence_ids (a));
  ck_assert_uint_eq (msim_lrc_n_sequences (a), 2);
  /* A: 4 windows (n = 1 x6, 2 x1); B: 2 windows (n_2 = 2 x2).  tau = 1:
   * TP = 6 + 2 + 4 = 12, Pred = 2 * 9, Act = 2 * 6: F1 = 24 / 30. */
  ck_assert_uint_eq (msim_lrc_windows (a, 0), 6);
  msim_ck_assert_near (msim_lrc_srp (a, 0, 0), 0.8, 1e-12);
  /* The same tokens without sequence ids are one sequence in file order. */
  g_autoptr (MsimTrace) u = test_trace_new (8, 1, 1, 3, ex);
  g_autoptr (MsimLrc) b = lrc_of (u, 2);
  ck_assert (!msim_lrc_has_sequence_ids (b));
  ck_assert_uint_eq (msim_lrc_n_sequences (b), 1);
  ck_assert_uint_eq (msim_lrc_windows (b, 0), 7);
}
END_TEST

START_TEST (tc_multi_layer)
{
  /* Model level = mean of layers; SCH(E) = 1 always. */
  const int ids[] = { 0, 1, 0, 1, 1, 2, 0, 0, 2, 0, 1, 1 };
  g_autoptr (MsimTrace) t = test_trace_new (6, 2, 1, 3, ids);
  guint ms[] = { 2, 3 };
  g_autoptr (MsimLrc) a = msim_lrc_compute (t, ms, 2, NULL);
  ck_assert_uint_eq (msim_lrc_n_segments (a), 2);
  ck_assert_uint_eq (msim_lrc_segment (a, 1), 3);
  for (guint s = 0; s < 2; s++)
    {
      msim_ck_assert_near (msim_lrc_srp (a, s, MSIM_LRC_MODEL),
                           (msim_lrc_srp (a, s, 0) + msim_lrc_srp (a, s, 1)) / 2, 1e-12);
      msim_ck_assert_near (msim_lrc_sch (a, s, MSIM_LRC_MODEL, 3), 1.0, 1e-12);
      for (guint c = 1; c < 3; c++)
        ck_assert (msim_lrc_sch (a, s, 0, c) <= msim_lrc_sch (a, s, 0, c + 1));
    }
  g_autoptr (GError) error = NULL;
  guint zero = 0;
  ck_assert (msim_lrc_compute (t, &zero, 1, &error) == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
}
END_TEST

static Suite *
lrc_suite (void)
{
  Suite *s = suite_create ("lrc");
  TCase *tc;
  tc = tcase_create ("srp");
  tcase_add_test (tc, tc_srp_by_hand);
  tcase_add_test (tc, tc_srp_topk);
  suite_add_tcase (s, tc);
  tc = tcase_create ("sch");
  tcase_add_test (tc, tc_sch_by_hand);
  tcase_add_test (tc, tc_cold_cache);
  suite_add_tcase (s, tc);
  tc = tcase_create ("sequences");
  tcase_add_test (tc, tc_sequences);
  tcase_add_test (tc, tc_multi_layer);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (lrc_suite)
