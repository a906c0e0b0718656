/* Routers end to end on small synthetic states: trace shape and validity,
 * determinism, batching invariance, capacity conservation, expert-choice
 * counts, the pre-gate, graph-of-tokens mixing at sequence starts, the
 * fluctuation metric and .npy gate weights. */
#include <math.h>

#include "router-private.h"
#include "trace-private.h"
#include "trace-test-util.h"

static void
small_params (MsimRouterParams *p)
{
  msim_router_params_init (p, 3, 8, 2);
  p->hidden.dim = 16;
  p->hidden.sequence_len = 16;
  p->batch_tokens = 64;
  p->recurrent_dim = 16;
  p->attention_heads = 2;
}

static MsimTrace *
route (const char *name, const MsimRouterParams *p, gsize tokens, guint64 seed,
       MsimRouterReport **report, MsimTrace **predicted)
{
  GError *err = NULL;
  const MsimRouterType *type = msim_router_lookup (name);
  ck_assert_msg (type != NULL, "no router %s", name);
  g_autoptr (MsimRouter) r = msim_router_new (type, p, seed, &err);
  ck_assert_msg (r != NULL, "%s: %s", name, err ? err->message : "?");
  MsimTrace *t = msim_router_run (r, tokens, report, predicted, &err);
  ck_assert_msg (t != NULL, "%s: %s", name, err ? err->message : "?");
  ck_assert_msg (msim_trace_validate (t, name, &err), "%s", err ? err->message : "?");
  return t;
}

START_TEST (test_every_router)
{
  MsimRouterParams p;
  small_params (&p);
  guint n;
  const MsimRouterType *const *types = msim_router_types (&n);
  ck_assert_uint_eq (n, 7);
  for (guint i = 0; i < n; i++)
    {
      const char *name = types[i]->name;
      g_autoptr (MsimRouterReport) rep = NULL;
      g_autoptr (MsimTrace) t = route (name, &p, 100, 5, &rep, NULL);
      gboolean ec = types[i]->select == MSIM_ROUTER_SELECT_EXPERT_CHOICE;
      ck_assert_uint_eq (t->tokens, 100);
      ck_assert_uint_eq (t->layers, 3);
      ck_assert_uint_eq (t->experts, 8);
      ck_assert_uint_eq (t->k, ec ? 8 : 2);
      ck_assert (t->weights != NULL && t->sequences != NULL);
      ck_assert_uint_eq (msim_trace_sequence (t, 17), 1);
      ck_assert_uint_eq (msim_trace_position (t, 17), 1);
      ck_assert_str_eq (rep->router, name);
      ck_assert_uint_eq (rep->total.tokens, 100);
      for (guint l = 0; l < 3; l++)
        for (gsize tok = 0; tok < 100; tok++)
          {
            const MsimExpertId *row = msim_trace_row (t, tok, l);
            const float *w = msim_trace_weight_row (t, tok, l);
            double sum = 0;
            for (guint a = 0; a < t->k; a++)
              {
                if (row[a] < 0)
                  continue;
                sum += w[a];
                for (guint b = a + 1; b < t->k; b++)
                  ck_assert_msg (row[a] != row[b], "%s: repeated expert", name);
                if (a > 0 && row[a - 1] >= 0)
                  ck_assert_msg (w[a - 1] >= w[a], "%s: weights not in rank order", name);
              }
            /* Mixtral renormalisation: the k weights sum to 1; Switch's raw
             * probabilities to less. */
            if (strcmp (name, "switch") == 0)
              ck_assert (sum > 0 && sum < 1.0);
            else if (!ec)
              msim_ck_assert_near (sum, 1.0, 1e-6);
          }
      const MsimRouterStats *s = &rep->total;
      ck_assert (s->balance >= 1.0 - 1e-9 || !ec);
      ck_assert (s->z >= 0 && isfinite (s->z));
      ck_assert (s->routing_entropy_bits > 0 && s->routing_entropy_bits <= 3.0 + 1e-9);
      ck_assert (s->load_entropy_bits > 0 && s->load_entropy_bits <= 3.0 + 1e-9);
      ck_assert (isnan (s->fluctuation));
      msim_ck_assert_near (s->aux_loss, 0.01 * s->balance, 1e-12);
      msim_ck_assert_near (s->z_loss, 0.001 * s->z, 1e-12);
      g_autofree char *text = msim_router_report_to_text (rep);
      ck_assert (strstr (text, name) != NULL);
    }
  msim_router_params_clear (&p);
}
END_TEST

START_TEST (test_determinism_and_batching)
{
  MsimRouterParams p;
  small_params (&p);
  const char *names[] = { "topk", "similarity", "attention", "recurrent" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (MsimTrace) a = route (names[i], &p, 150, 9, NULL, NULL);
      g_autoptr (MsimTrace) b = route (names[i], &p, 150, 9, NULL, NULL);
      g_autoptr (MsimTrace) c = route (names[i], &p, 150, 10, NULL, NULL);
      ck_assert_msg (msim_trace_equal (a, b), "%s: same seed, different trace", names[i]);
      ck_assert_msg (!msim_trace_equal (a, c), "%s: different seed, same trace", names[i]);
      /* Hidden states are per sequence, and these routers look at most at
       * one sequence: batching (without capacity) does not matter, nor does
       * measuring fluctuation. */
      MsimRouterParams q = p;
      q.batch_tokens = 16;
      q.fluctuation_eps = 0.05;
      g_autoptr (MsimTrace) d = route (names[i], &q, 150, 9, NULL, NULL);
      ck_assert_msg (msim_trace_equal (a, d), "%s: batching or fluctuation changed the trace",
                     names[i]);
    }
  /* Jitter changes routing, reproducibly. */
  MsimRouterParams j = p;
  j.jitter = 0.2;
  g_autoptr (MsimTrace) plain = route ("topk", &p, 150, 9, NULL, NULL);
  g_autoptr (MsimTrace) j1 = route ("topk", &j, 150, 9, NULL, NULL);
  g_autoptr (MsimTrace) j2 = route ("topk", &j, 150, 9, NULL, NULL);
  ck_assert (msim_trace_equal (j1, j2));
  ck_assert (!msim_trace_equal (plain, j1));
  msim_router_params_clear (&p);
}
END_TEST

START_TEST (test_capacity)
{
  MsimRouterParams p;
  small_params (&p);
  p.capacity_factor = 1.0;
  gsize T = 150; /* batches of 64, 64, 22 */
  g_autoptr (MsimRouterReport) rep = NULL;
  g_autoptr (MsimTrace) kept = route ("topk", &p, T, 3, &rep, NULL);
  /* Default: the trace keeps the router's choices, drops are reported. */
  ck_assert (!(kept->flags & MSIM_TRACE_DROPS));
  ck_assert_uint_eq (rep->capacity, 16); /* ceil (64 * 2 / 8 * 1.0) */
  ck_assert (rep->total.dropped > 0);
  ck_assert_uint_eq (rep->total.assignments + rep->total.dropped, T * 2 * 3);

  p.mark_dropped = TRUE;
  g_autoptr (MsimRouterReport) rep2 = NULL;
  g_autoptr (MsimTrace) marked = route ("topk", &p, T, 3, &rep2, NULL);
  ck_assert (marked->flags & MSIM_TRACE_DROPS);
  ck_assert_uint_eq (rep2->total.dropped, rep->total.dropped);
  guint64 minus = 0;
  for (guint l = 0; l < 3; l++)
    {
      guint64 per_layer = 0;
      for (gsize first = 0; first < T; first += 64)
        {
          gsize n = MIN ((gsize)64, T - first);
          guint64 cap = msim_route_capacity (n, 2, 8, 1.0);
          guint64 load[8] = { 0 };
          for (gsize tok = first; tok < first + n; tok++)
            for (guint r = 0; r < 2; r++)
              {
                int e = msim_trace_expert (marked, tok, l, r);
                int orig = msim_trace_expert (kept, tok, l, r);
                if (e < 0)
                  {
                    per_layer++;
                    ck_assert (msim_trace_weight (marked, tok, l, r) == 0.0f);
                    continue;
                  }
                ck_assert_int_eq (e, orig);
                load[e]++;
              }
          for (int e = 0; e < 8; e++)
            ck_assert_msg (load[e] <= cap,
                           "expert %d holds %" G_GUINT64_FORMAT " > %" G_GUINT64_FORMAT, e, load[e],
                           cap);
        }
      ck_assert_uint_eq (per_layer, rep2->per_layer[l].dropped);
      minus += per_layer;
    }
  /* Conservation: every assignment is processed or counted as dropped. */
  ck_assert_uint_eq (minus, rep2->total.dropped);
  ck_assert_uint_eq (rep2->total.assignments + minus, T * 2 * 3);

  /* Only .mtr stores -1 cells. */
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *npy = g_build_filename (dir, "d.npy", NULL);
  g_autofree char *mtr = g_build_filename (dir, "d.mtr", NULL);
  GError *err = NULL;
  ck_assert (!msim_trace_save (marked, npy, MSIM_TRACE_FORMAT_AUTO, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "expert -1", ".mtr", NULL);
  g_clear_error (&err);
  ck_assert (!g_file_test (npy, G_FILE_TEST_EXISTS));
  ck_assert (msim_trace_save (marked, mtr, MSIM_TRACE_FORMAT_AUTO, &err));
  g_autoptr (MsimTrace) back = msim_trace_load (mtr, &err);
  ck_assert_msg (back != NULL, "%s", err ? err->message : "?");
  ck_assert (msim_trace_equal (back, marked));
  tt_rmtree (dir);

  /* A generous capacity drops nothing, and the flag is not left set. */
  p.capacity_factor = 8.0;
  g_autoptr (MsimRouterReport) rep3 = NULL;
  g_autoptr (MsimTrace) none = route ("topk", &p, T, 3, &rep3, NULL);
  ck_assert_uint_eq (rep3->total.dropped, 0);
  ck_assert (!(none->flags & MSIM_TRACE_DROPS));
  /* Capacity is not marked in the trace by default: same routing. */
  ck_assert (msim_trace_equal (none, kept));
  msim_router_params_clear (&p);
}
END_TEST

START_TEST (test_expert_choice_counts)
{
  MsimRouterParams p;
  small_params (&p);
  p.expert_capacity = 2.0;
  gsize T = 150;
  g_autoptr (MsimRouterReport) rep = NULL;
  g_autoptr (MsimTrace) t = route ("expert-choice", &p, T, 4, &rep, NULL);
  ck_assert (t->flags & MSIM_TRACE_DROPS);
  guint64 total = 0;
  for (guint l = 0; l < 3; l++)
    for (gsize first = 0; first < T; first += 64)
      {
        gsize n = MIN ((gsize)64, T - first);
        guint64 cap = MIN ((guint64)n, msim_route_capacity (n, 1, 8, 2.0));
        guint64 per_expert[8] = { 0 };
        for (gsize tok = first; tok < first + n; tok++)
          {
            const MsimExpertId *row = msim_trace_row (t, tok, l);
            gboolean ended = FALSE;
            for (guint s = 0; s < 8; s++)
              {
                if (row[s] < 0)
                  {
                    ended = TRUE;
                    continue;
                  }
                ck_assert_msg (!ended, "an expert after an empty slot");
                per_expert[row[s]]++;
                total++;
              }
          }
        /* Every expert takes exactly ceil (n c / E) tokens: 16, 16, 6. */
        for (int e = 0; e < 8; e++)
          ck_assert_uint_eq (per_expert[e], cap);
      }
  ck_assert_uint_eq (total, rep->total.assignments);
  ck_assert_uint_eq (rep->total.dropped, 0);
  msim_ck_assert_near (rep->total.experts_per_token, (double)total / (3.0 * T), 1e-12);
  msim_ck_assert_near (rep->total.balance, 1.0, 1e-12);
  ck_assert (rep->total.unrouted_share >= 0 && rep->total.unrouted_share < 1);
  msim_router_params_clear (&p);
}
END_TEST

START_TEST (test_pregated)
{
  MsimRouterParams p;
  small_params (&p);
  p.hidden.drift = 0.0;
  /* Without drift the state a layer sees is the previous layer's, so the
   * pre-gate is exact. */
  g_autoptr (MsimRouterReport) rep = NULL;
  g_autoptr (MsimTrace) pred = NULL;
  g_autoptr (MsimTrace) t = route ("pregated", &p, 100, 6, &rep, &pred);
  ck_assert_ptr_nonnull (pred);
  ck_assert (msim_trace_validate (pred, "pred", NULL));
  ck_assert (rep->total.pregate_top1 == 1.0);
  ck_assert (rep->total.pregate_recall == 1.0);
  ck_assert (rep->total.prefetch_recall == 1.0 && rep->total.prefetch_precision == 1.0);
  ck_assert (isnan (rep->per_layer[0].pregate_top1));
  for (guint l = 0; l < 3; l++)
    for (gsize tok = 0; tok < 100; tok++)
      ck_assert (memcmp (msim_trace_row (pred, tok, l), msim_trace_row (t, tok, l),
                         2 * sizeof (MsimExpertId))
                 == 0);
  /* The plain top-k router routes the same. */
  g_autoptr (MsimTrace) plain = route ("topk", &p, 100, 6, NULL, NULL);
  ck_assert (msim_trace_equal (plain, t));

  /* With drift the prediction degrades, but stays well above chance. */
  p.hidden.drift = 0.5;
  g_autoptr (MsimRouterReport) rep2 = NULL;
  g_autoptr (MsimTrace) pred2 = NULL;
  g_autoptr (MsimTrace) t2 = route ("pregated", &p, 100, 6, &rep2, &pred2);
  double acc = rep2->total.pregate_top1;
  ck_assert_msg (acc < 1.0 && acc > 0.3, "pre-gate top-1 accuracy %g", acc);
  ck_assert (rep2->total.pregate_recall < 1.0);
  /* Layer 0 of the predictions repeats the real routing. */
  ck_assert (
      memcmp (msim_trace_row (pred2, 5, 0), msim_trace_row (t2, 5, 0), 2 * sizeof (MsimExpertId))
      == 0);
  /* Prefetch sets: the experts of the predicted rows, each once. */
  guint8 need[8];
  guint count = msim_router_prefetch_set (pred2, 2, 0, 16, need);
  guint marked = 0;
  for (int e = 0; e < 8; e++)
    marked += need[e];
  ck_assert_uint_eq (count, marked);
  for (gsize tok = 0; tok < 16; tok++)
    for (guint r = 0; r < 2; r++)
      ck_assert (need[msim_trace_expert (pred2, tok, 2, r)]);

  /* Execute mode: the pre-gate's choice is what runs. */
  p.pregate = MSIM_PREGATE_EXECUTE;
  g_autoptr (MsimRouterReport) rep3 = NULL;
  g_autoptr (MsimTrace) pred3 = NULL;
  g_autoptr (MsimTrace) t3 = route ("pregated", &p, 100, 6, &rep3, &pred3);
  for (guint l = 0; l < 3; l++)
    for (gsize tok = 0; tok < 100; tok++)
      ck_assert (memcmp (msim_trace_row (pred3, tok, l), msim_trace_row (t3, tok, l),
                         2 * sizeof (MsimExpertId))
                 == 0);
  msim_ck_assert_near (rep3->total.pregate_top1, acc, 1e-12);
  msim_router_params_clear (&p);
}
END_TEST

START_TEST (test_graph_of_tokens)
{
  /* Causal mixing: the first token of each sequence sees only itself, so
   * it routes as the plain gate does (same seed: same states and gate). */
  MsimRouterParams p;
  small_params (&p);
  g_autoptr (MsimTrace) plain = route ("topk", &p, 64, 8, NULL, NULL);
  g_autoptr (MsimTrace) sim = route ("similarity", &p, 64, 8, NULL, NULL);
  g_autoptr (MsimTrace) att = route ("attention", &p, 64, 8, NULL, NULL);
  guint differ = 0;
  for (guint l = 0; l < 3; l++)
    for (gsize tok = 0; tok < 64; tok++)
      {
        gboolean head = msim_trace_position (plain, tok) == 0;
        gboolean same_s = memcmp (msim_trace_row (plain, tok, l), msim_trace_row (sim, tok, l),
                                  2 * sizeof (MsimExpertId))
                          == 0;
        gboolean same_a = memcmp (msim_trace_row (plain, tok, l), msim_trace_row (att, tok, l),
                                  2 * sizeof (MsimExpertId))
                          == 0;
        if (head)
          ck_assert (same_s && same_a);
        else
          differ += !same_s;
      }
  ck_assert_msg (differ > 0, "mixing never changed a routing decision");
  /* A huge tau makes S uniform over the causal prefix. */
  p.tau = 1e12;
  g_autoptr (MsimTrace) flat = route ("similarity", &p, 64, 8, NULL, NULL);
  ck_assert (flat != NULL);
  msim_router_params_clear (&p);
}
END_TEST

START_TEST (test_fluctuation)
{
  MsimRouterParams p;
  small_params (&p);
  p.hidden.dim = 32;
  p.hidden.sequence_len = 64;
  p.batch_tokens = 256;
  p.layers = 4;
  /* A vanishing perturbation changes nothing. */
  p.fluctuation_eps = 1e-12;
  g_autoptr (MsimRouterReport) r0 = NULL;
  g_autoptr (MsimTrace) t0 = route ("topk", &p, 256, 2, &r0, NULL);
  ck_assert (r0->total.fluctuation == 0.0);
  /* The Graph-of-Tokens claim on our synthetic states: mixing over similar
   * tokens halves fluctuation or better (experiments/routers has
   * the full table). */
  p.fluctuation_eps = 0.1;
  g_autoptr (MsimRouterReport) rk = NULL, rs = NULL, ra = NULL;
  g_autoptr (MsimTrace) tk = route ("topk", &p, 512, 2, &rk, NULL);
  g_autoptr (MsimTrace) ts = route ("similarity", &p, 512, 2, &rs, NULL);
  g_autoptr (MsimTrace) ta = route ("attention", &p, 512, 2, &ra, NULL);
  double fk = rk->total.fluctuation, fs = rs->total.fluctuation, fa = ra->total.fluctuation;
  ck_assert_msg (fk > 0.01, "topk fluctuation %g", fk);
  ck_assert_msg (fs < 0.75 * fk && fa < 0.75 * fk,
                 "fluctuation topk %g, similarity %g, attention %g", fk, fs, fa);
  for (guint l = 0; l < 4; l++)
    ck_assert (isfinite (rk->per_layer[l].fluctuation));
  msim_router_params_clear (&p);
}
END_TEST

/* Writes a float32 [rows, cols] C-order .npy with v[i][j] = f(i, j). */
static void
write_npy (const char *path, gsize rows, gsize cols, double (*f) (gsize, gsize), gboolean f8)
{
  g_autofree char *dict
      = g_strdup_printf ("{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                         f8 ? "<f8" : "<f4", (size_t)rows, (size_t)cols);
  gsize hl = 10 + strlen (dict) + 1;
  gsize total = (hl + 63) / 64 * 64;
  GString *s = g_string_new (NULL);
  g_string_append_len (s, "\x93NUMPY\x01\x00", 8);
  guint16 len = (guint16)(total - 10);
  g_string_append_c (s, (char)(len & 0xff));
  g_string_append_c (s, (char)(len >> 8));
  g_string_append (s, dict);
  while (s->len < total - 1)
    g_string_append_c (s, ' ');
  g_string_append_c (s, '\n');
  for (gsize i = 0; i < rows; i++)
    for (gsize j = 0; j < cols; j++)
      {
        if (f8)
          {
            double v = f (i, j);
            g_string_append_len (s, (const char *)&v, 8);
          }
        else
          {
            float v = (float)f (i, j);
            g_string_append_len (s, (const char *)&v, 4);
          }
      }
  ck_assert (g_file_set_contents (path, s->str, (gssize)s->len, NULL));
  g_string_free (s, TRUE);
}

static double
w_fn (gsize i, gsize j)
{
  return (double)i * 0.25 - (double)j * 0.125;
}

START_TEST (test_npy_weights)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *one = g_build_filename (dir, "gate.npy", NULL);
  g_autofree char *stacked = g_build_filename (dir, "stacked.npy", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad.npy", NULL);
  write_npy (one, 8, 12, w_fn, FALSE);
  write_npy (stacked, 24, 12, w_fn, TRUE);
  write_npy (bad, 7, 12, w_fn, FALSE);
  for (guint l = 0; l < 3; l++)
    {
      g_autofree char *name = g_strdup_printf ("layer-%u.npy", l);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      write_npy (path, 8, 12, w_fn, FALSE);
    }
  MsimRouterParams p;
  small_params (&p);
  GError *err = NULL;

  /* [E, d]: every layer, and d comes from the file. */
  p.weights = g_strdup (one);
  g_autoptr (MsimRouter) r = msim_router_new (msim_router_lookup ("topk"), &p, 1, &err);
  ck_assert_msg (r != NULL, "%s", err ? err->message : "?");
  ck_assert_uint_eq (msim_router_dim (r), 12);
  ck_assert (gsl_matrix_get (msim_router_gate (r, 2), 3, 5) == w_fn (3, 5));
  g_autoptr (MsimTrace) t = msim_router_run (r, 40, NULL, NULL, &err);
  ck_assert_ptr_nonnull (t);

  /* [L E, d] stacked by layer, float64. */
  g_free (p.weights);
  p.weights = g_strdup (stacked);
  g_autoptr (MsimRouter) r2 = msim_router_new (msim_router_lookup ("similarity"), &p, 1, &err);
  ck_assert_msg (r2 != NULL, "%s", err ? err->message : "?");
  ck_assert (gsl_matrix_get (msim_router_gate (r2, 1), 2, 7) == w_fn (8 + 2, 7));

  /* One file per layer. */
  g_free (p.weights);
  p.weights = g_build_filename (dir, "layer-{layer}.npy", NULL);
  g_autoptr (MsimRouter) r3 = msim_router_new (msim_router_lookup ("pregated"), &p, 1, &err);
  ck_assert_msg (r3 != NULL, "%s", err ? err->message : "?");

  /* Wrong shape, missing file, integer dtype, router without a gate. */
  g_free (p.weights);
  p.weights = g_strdup (bad);
  ck_assert_ptr_null (msim_router_new (msim_router_lookup ("topk"), &p, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "bad.npy", "shape (7, 12)", "[8, d]", NULL);
  g_clear_error (&err);
  g_free (p.weights);
  p.weights = g_build_filename (dir, "missing.npy", NULL);
  ck_assert_ptr_null (msim_router_new (msim_router_lookup ("topk"), &p, 1, &err));
  tt_assert_error (err, MSIM_ERROR_IO, "missing.npy", NULL);
  g_clear_error (&err);
  g_autoptr (MsimTrace) ids = msim_trace_new (2, 2, 1, 4, MSIM_TRACE_NONE, NULL);
  for (int i = 0; i < 2; i++)
    for (guint l = 0; l < 2; l++)
      msim_trace_set_expert (ids, i, l, 0, i);
  g_autofree char *int_npy = g_build_filename (dir, "ints.npy", NULL);
  ck_assert (msim_trace_save (ids, int_npy, MSIM_TRACE_FORMAT_NPY, NULL));
  g_free (p.weights);
  p.weights = g_strdup (int_npy);
  ck_assert_ptr_null (msim_router_new (msim_router_lookup ("topk"), &p, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "float32", NULL);
  g_clear_error (&err);
  g_free (p.weights);
  p.weights = g_strdup (one);
  ck_assert_ptr_null (msim_router_new (msim_router_lookup ("recurrent"), &p, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "router: weights", NULL);
  g_clear_error (&err);
  msim_router_params_clear (&p);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_params_validation)
{
  MsimRouterParams p;
  small_params (&p);
  GError *err = NULL;
  p.batch_tokens = 40; /* not whole sequences of 16 */
  ck_assert_ptr_null (msim_router_new (msim_router_lookup ("topk"), &p, 1, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "router: batch_tokens", "sequence_len", NULL);
  g_clear_error (&err);
  p.batch_tokens = 64;
  p.expert_groups = 3;
  ck_assert (!msim_router_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "expert_groups", NULL);
  g_clear_error (&err);
  p.expert_groups = 4;
  p.topk_groups = 0;
  ck_assert (!msim_router_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "topk_groups", NULL);
  g_clear_error (&err);
  p.topk_groups = 2;
  ck_assert (msim_router_params_validate (&p, NULL));
  p.hidden.token_corr = 2;
  ck_assert (!msim_router_params_validate (&p, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "hidden states: token_corr", NULL);
  g_clear_error (&err);
  msim_router_params_clear (&p);
  ck_assert_ptr_null (msim_router_lookup ("nope"));
}
END_TEST

START_TEST (test_trace_drops_flag)
{
  /* -1 is valid only with MSIM_TRACE_DROPS; the native reader agrees. */
  GError *err = NULL;
  g_autoptr (MsimTrace) t = msim_trace_new (2, 1, 2, 4, MSIM_TRACE_DROPS, &err);
  msim_trace_set_expert (t, 0, 0, 0, 3);
  msim_trace_set_expert (t, 0, 0, 1, MSIM_EXPERT_NONE);
  msim_trace_set_expert (t, 1, 0, 0, 1);
  msim_trace_set_expert (t, 1, 0, 1, 2);
  ck_assert (msim_trace_validate (t, "d", NULL));
  ck_assert_int_eq (msim_trace_max_expert (t), 3);
  guint64 load[4];
  msim_trace_count_layer (t, 0, load, NULL);
  ck_assert (load[0] == 0 && load[1] == 1 && load[2] == 1 && load[3] == 1);
  t->flags = MSIM_TRACE_NONE;
  ck_assert (!msim_trace_validate (t, "d", &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "token 0, layer 0, rank 1", NULL);
  g_clear_error (&err);
  t->flags = MSIM_TRACE_DROPS;
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "d.mtr", NULL);
  ck_assert (msim_trace_save (t, path, MSIM_TRACE_FORMAT_AUTO, NULL));
  g_autoptr (MsimTrace) back = msim_trace_load (path, &err);
  ck_assert_msg (back != NULL, "%s", err ? err->message : "?");
  ck_assert (msim_trace_equal (t, back));
  /* A file without the flag but with a -1 id is rejected by the reader:
   * write a clean trace, poke -1 into its ids and fix the checksums, so
   * that only the range check can fail. */
  g_autoptr (MsimTrace) plain = msim_trace_new (2, 1, 2, 4, MSIM_TRACE_NONE, NULL);
  for (int i = 0; i < 2; i++)
    for (int r = 0; r < 2; r++)
      msim_trace_set_expert (plain, i, 0, r, r);
  ck_assert (msim_trace_save (plain, path, MSIM_TRACE_FORMAT_AUTO, NULL));
  gchar *data = NULL;
  gsize len = 0;
  ck_assert (g_file_get_contents (path, &data, &len, NULL));
  guint8 *d = (guint8 *)data;
  guint32 off = msim_load_le32 (d + 64 + 8); /* section 0 (ids): offset */
  guint8 *ids = d + off;
  ids[2] = 0xff;
  ids[3] = 0xff;
  msim_store_le32 (d + 64 + 4, msim_crc32_update (0, ids, 8));
  guint32 header_bytes = msim_load_le32 (d + 12);
  msim_store_le32 (d + 60, 0);
  msim_store_le32 (d + 60, msim_crc32_update (0, d, header_bytes));
  g_autoptr (MsimTrace) bad
      = msim_trace_load_data (data, len, "poked.mtr", MSIM_TRACE_FORMAT_AUTO, &err);
  ck_assert_ptr_null (bad);
  tt_assert_error (err, MSIM_ERROR_INPUT, "poked.mtr", "expert id -1", NULL);
  g_clear_error (&err);
  g_free (data);
  tt_rmtree (dir);
}
END_TEST

static Suite *
routers_suite (void)
{
  Suite *s = suite_create ("routers");
  TCase *tc = tcase_create ("all");
  tcase_add_test (tc, test_every_router);
  tcase_add_test (tc, test_params_validation);
  suite_add_tcase (s, tc);
  tc = tcase_create ("determinism");
  tcase_add_test (tc, test_determinism_and_batching);
  suite_add_tcase (s, tc);
  tc = tcase_create ("capacity");
  tcase_add_test (tc, test_capacity);
  tcase_add_test (tc, test_trace_drops_flag);
  suite_add_tcase (s, tc);
  tc = tcase_create ("expert-choice");
  tcase_add_test (tc, test_expert_choice_counts);
  suite_add_tcase (s, tc);
  tc = tcase_create ("pregated");
  tcase_add_test (tc, test_pregated);
  suite_add_tcase (s, tc);
  tc = tcase_create ("graph-of-tokens");
  tcase_add_test (tc, test_graph_of_tokens);
  tcase_add_test (tc, test_fluctuation);
  suite_add_tcase (s, tc);
  tc = tcase_create ("weights");
  tcase_add_test (tc, test_npy_weights);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (routers_suite)
