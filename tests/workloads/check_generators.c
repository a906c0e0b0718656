/* Synthetic generators: layout, distinct top-k choices, determinism, and
 * recovery of every parameter from the generated trace within the
 * tolerances generators.h states. */
#include <math.h>

#include "generators.h"
#include "trace-test-util.h"

/* A trace of @tokens for L layers x E experts x top-k with @p applied by
 * the caller through @setup. */
static MsimTrace *
gen (guint L, guint E, guint k, gsize tokens, guint64 seed, void (*setup) (MsimGenParams *, double),
     double v)
{
  MsimGenParams p;
  msim_gen_params_init (&p, L, E, k);
  p.sequence_len = 64;
  if (setup)
    setup (&p, v);
  GError *err = NULL;
  MsimTrace *t = msim_gen_generate (&p, tokens, seed, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  msim_gen_params_clear (&p);
  ck_assert (msim_trace_validate (t, "gen", NULL));
  return t;
}

static void
set_zipf (MsimGenParams *p, double v)
{
  p->zipf_s = v;
}

static void
set_affinity (MsimGenParams *p, double v)
{
  p->affinity = v;
}

static void
set_affinity_zipf (MsimGenParams *p, double v)
{
  p->affinity = v;
  p->zipf_s = 1.0;
}

static void
set_reuse (MsimGenParams *p, double v)
{
  p->reuse = v;
}

static void
set_reuse_zipf (MsimGenParams *p, double v)
{
  p->reuse = v;
  p->zipf_s = 1.0;
}

/* Every row holds k distinct experts. */
static void
assert_distinct (const MsimTrace *t)
{
  for (guint l = 0; l < t->layers; l++)
    for (gsize tok = 0; tok < t->tokens; tok++)
      {
        const MsimExpertId *row = msim_trace_row (t, tok, l);
        for (guint a = 0; a < t->k; a++)
          for (guint b = a + 1; b < t->k; b++)
            ck_assert_msg (row[a] != row[b], "token %zu layer %u repeats expert %d", (size_t)tok, l,
                           row[a]);
      }
}

START_TEST (test_params)
{
  MsimGenParams p;
  GError *err = NULL;
  msim_gen_params_init (&p, 4, 8, 2);
  ck_assert_uint_eq (p.sequence_len, 512);
  ck_assert (msim_gen_params_validate (&p, NULL));
  p.k = 9;
  ck_assert (!msim_gen_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "generator: k:", NULL);
  g_clear_error (&err);
  p.k = 2;
  p.affinity = 1.5;
  ck_assert (!msim_gen_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "generator: affinity:", "0..1", NULL);
  g_clear_error (&err);
  p.affinity = 0;
  p.domains = 2;
  p.domain_weights = g_new0 (double, 2);
  ck_assert (!msim_gen_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "domain_weights", "sum to 0", NULL);
  g_clear_error (&err);
  p.domain_weights[1] = NAN;
  ck_assert (!msim_gen_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "weight 2", NULL);
  g_clear_error (&err);
  MsimGenParams q;
  p.domain_weights[1] = 1;
  msim_gen_params_copy (&q, &p);
  ck_assert (q.domain_weights != p.domain_weights && q.domain_weights[1] == 1.0);
  msim_gen_params_clear (&q);
  msim_gen_params_clear (&p);
  ck_assert_ptr_null (p.domain_weights);

  /* The name table. */
  ck_assert_ptr_null (msim_generator_lookup ("nope"));
  const MsimGeneratorType *m = msim_generator_lookup ("markov");
  ck_assert_ptr_nonnull (m);
  msim_gen_params_init (&p, 4, 8, 2);
  m->apply_defaults (&p);
  ck_assert (p.affinity == 0.8);
  guint n = 0;
  msim_generator_types (&n);
  ck_assert_uint_eq (n, 5);
}
END_TEST

START_TEST (test_layout_and_determinism)
{
  g_autoptr (MsimTrace) a = gen (3, 8, 2, 200, 7, set_zipf, 1.0);
  g_autoptr (MsimTrace) b = gen (3, 8, 2, 200, 7, set_zipf, 1.0);
  g_autoptr (MsimTrace) c = gen (3, 8, 2, 200, 8, set_zipf, 1.0);
  ck_assert (msim_trace_equal (a, b));
  ck_assert (!msim_trace_equal (a, c));
  ck_assert_int_eq (a->flags, MSIM_TRACE_SEQUENCES);
  /* Sequences of 64 tokens, the last one shorter. */
  ck_assert_uint_eq (msim_trace_sequence (a, 63), 0);
  ck_assert_uint_eq (msim_trace_sequence (a, 64), 1);
  ck_assert_uint_eq (msim_trace_position (a, 64), 0);
  ck_assert_uint_eq (msim_trace_sequence (a, 199), 3);
  ck_assert_uint_eq (msim_trace_position (a, 199), 7);
  /* A longer trace with the same seed extends a shorter one. */
  g_autoptr (MsimTrace) longer = gen (3, 8, 2, 300, 7, set_zipf, 1.0);
  for (guint l = 0; l < 3; l++)
    for (gsize tok = 0; tok < 200; tok++)
      ck_assert (memcmp (msim_trace_row (a, tok, l), msim_trace_row (longer, tok, l),
                         2 * sizeof (MsimExpertId))
                 == 0);
}
END_TEST

START_TEST (test_distinct_choices)
{
  /* A steep law with k = E / 2 forces many rejections and the fallback
   * scan; k = E must give a permutation per row. */
  g_autoptr (MsimTrace) steep = gen (2, 8, 4, 500, 1, set_zipf, 4.0);
  assert_distinct (steep);
  g_autoptr (MsimTrace) full = gen (2, 6, 6, 200, 2, set_zipf, 1.0);
  assert_distinct (full);
  g_autoptr (MsimTrace) path = gen (4, 8, 3, 500, 3, set_affinity_zipf, 0.7);
  assert_distinct (path);
}
END_TEST

START_TEST (test_zipf_recovery)
{
  /* generators.h: within 0.05 for 0.5 <= s <= 2 with T L >= 50,000. */
  const double s[] = { 0.5, 1.0, 1.5, 2.0 };
  for (guint i = 0; i < G_N_ELEMENTS (s); i++)
    {
      g_autoptr (MsimTrace) t = gen (4, 16, 2, 15000, 10 + i, set_zipf, s[i]);
      MsimGenFit fit;
      msim_gen_fit (t, &fit);
      ck_assert_msg (fabs (fit.zipf_s - s[i]) < 0.05, "zipf_s %g estimated as %g", s[i],
                     fit.zipf_s);
      ck_assert_msg (fabs (fit.affinity) < 0.03, "no affinity, estimated %g", fit.affinity);
      ck_assert_msg (fabs (fit.reuse) < 0.03, "no reuse, estimated %g", fit.reuse);
    }
  /* Uniform reads slightly above 0 (sorted noise), well below 0.1. */
  g_autoptr (MsimTrace) u = gen (4, 16, 2, 15000, 3, NULL, 0);
  MsimGenFit fit;
  msim_gen_fit (u, &fit);
  ck_assert_msg (fit.zipf_s >= 0 && fit.zipf_s < 0.1, "uniform read as zipf_s %g", fit.zipf_s);
}
END_TEST

START_TEST (test_affinity_recovery)
{
  const double a[] = { 0.0, 0.3, 0.6, 0.9 };
  for (guint i = 0; i < G_N_ELEMENTS (a); i++)
    for (int z = 0; z < 2; z++)
      {
        g_autoptr (MsimTrace) t
            = gen (4, 16, 2, 20000, 20 + i, z ? set_affinity_zipf : set_affinity, a[i]);
        MsimGenFit fit;
        msim_gen_fit (t, &fit);
        ck_assert_msg (fabs (fit.affinity - a[i]) < 0.03, "affinity %g (zipf %d) estimated as %g",
                       a[i], z, fit.affinity);
        /* Rank-preserving paths keep every layer's popularity exactly. */
        if (z)
          ck_assert_msg (fabs (fit.zipf_s - 1.0) < 0.05, "zipf 1 with affinity %g read as %g", a[i],
                         fit.zipf_s);
      }
  /* Strength 1: the path is deterministic. */
  g_autoptr (MsimTrace) t = gen (5, 16, 2, 2000, 5, set_affinity_zipf, 1.0);
  MsimGenFit fit;
  msim_gen_fit (t, &fit);
  ck_assert (fit.follow_rate == 1.0);
  ck_assert (fit.affinity == 1.0);
}
END_TEST

START_TEST (test_reuse_recovery)
{
  const double r[] = { 0.0, 0.4, 0.8 };
  for (guint i = 0; i < G_N_ELEMENTS (r); i++)
    for (int z = 0; z < 2; z++)
      {
        g_autoptr (MsimTrace) t
            = gen (4, 8, 2, 20000, 30 + i, z ? set_reuse_zipf : set_reuse, r[i]);
        MsimGenFit fit;
        msim_gen_fit (t, &fit);
        ck_assert_msg (fabs (fit.reuse - r[i]) < 0.03, "reuse %g (zipf %d) estimated as %g", r[i],
                       z, fit.reuse);
      }
  /* Reuse 1: every token of a sequence repeats the first token's rows. */
  g_autoptr (MsimTrace) t = gen (2, 8, 2, 300, 5, set_reuse, 1.0);
  for (gsize tok = 0; tok < t->tokens; tok++)
    {
      gsize head = tok - msim_trace_position (t, tok);
      for (guint l = 0; l < 2; l++)
        ck_assert (memcmp (msim_trace_row (t, tok, l), msim_trace_row (t, head, l),
                           2 * sizeof (MsimExpertId))
                   == 0);
    }
}
END_TEST

START_TEST (test_mixture_recovery)
{
  /* generators.h: weights within 0.05 for >= 300 sequences of >= 32 tokens;
   * 1000 sequences keep the sampling noise of the drawn domains themselves
   * (about 0.016 for a weight of 0.5) well inside that. */
  MsimGenParams p;
  msim_gen_params_init (&p, 4, 16, 2);
  p.sequence_len = 32;
  p.zipf_s = 1.0;
  p.domains = 3;
  p.domain_weights = g_new (double, 3);
  p.domain_weights[0] = 2; /* normalised on use: 0.5, 0.3, 0.2 */
  p.domain_weights[1] = 1.2;
  p.domain_weights[2] = 0.8;
  GError *err = NULL;
  g_autoptr (MsimTrace) t = msim_gen_generate (&p, 32000, 4, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  msim_gen_params_clear (&p);
  double w[3];
  g_autofree guint *assign = NULL;
  gsize n_seq = 0;
  ck_assert (msim_gen_fit_domains (t, 3, 5, 1, w, &assign, &n_seq, &err));
  ck_assert_uint_eq (n_seq, 1000);
  const double want[] = { 0.5, 0.3, 0.2 };
  for (int d = 0; d < 3; d++)
    ck_assert_msg (fabs (w[d] - want[d]) < 0.05, "weight %d: %g, want %g", d, w[d], want[d]);
  /* The assignment agrees with the weights. */
  guint count[3] = { 0 };
  for (gsize s = 0; s < n_seq; s++)
    {
      ck_assert_uint_lt (assign[s], 3);
      count[assign[s]]++;
    }
  for (int d = 0; d < 3; d++)
    ck_assert_msg (fabs (count[d] / 1000.0 - w[d]) < 0.02, "domain %d: %u sequences, weight %g", d,
                   count[d], w[d]);

  /* Errors: no sequences, too few sequences. */
  g_autoptr (MsimTrace) plain = msim_trace_new (4, 1, 1, 4, MSIM_TRACE_NONE, NULL);
  for (gsize i = 0; i < 4; i++)
    msim_trace_set_expert (plain, i, 0, 0, (int)i);
  ck_assert (!msim_gen_fit_domains (plain, 2, 1, 1, w, NULL, NULL, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "sequence ids", NULL);
  g_clear_error (&err);
  g_autoptr (MsimTrace) few = gen (1, 4, 1, 100, 1, NULL, 0);
  double w4[4];
  ck_assert (!msim_gen_fit_domains (few, 4, 1, 1, w4, NULL, NULL, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "2 sequences cannot be split into 4 domains", NULL);
  g_clear_error (&err);
}
END_TEST

static Suite *
generators_suite (void)
{
  Suite *s = suite_create ("generators");
  TCase *tc = tcase_create ("params");
  tcase_add_test (tc, test_params);
  suite_add_tcase (s, tc);
  tc = tcase_create ("layout");
  tcase_add_test (tc, test_layout_and_determinism);
  tcase_add_test (tc, test_distinct_choices);
  suite_add_tcase (s, tc);
  tc = tcase_create ("recovery");
  tcase_add_test (tc, test_zipf_recovery);
  tcase_add_test (tc, test_affinity_recovery);
  tcase_add_test (tc, test_reuse_recovery);
  tcase_add_test (tc, test_mixture_recovery);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (generators_suite)
