#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <string.h>

#include "event-queue.h"
#include "msim-check.h"

START_TEST (test_order_and_ties)
{
  g_autoptr (MsimEventQueue) q = msim_event_queue_new ();
  ck_assert_int_eq (msim_event_queue_peek_time (q), MSIM_TIME_NEVER);
  /* Same-time events must pop in insertion order. */
  msim_event_queue_push (q, 50, NULL, GINT_TO_POINTER (1));
  msim_event_queue_push (q, 10, NULL, GINT_TO_POINTER (2));
  msim_event_queue_push (q, 50, NULL, GINT_TO_POINTER (3));
  msim_event_queue_push (q, 10, NULL, GINT_TO_POINTER (4));
  msim_event_queue_push (q, 50, NULL, GINT_TO_POINTER (5));
  msim_event_queue_push (q, 0, NULL, GINT_TO_POINTER (6));
  const int expect[] = { 6, 2, 4, 1, 3, 5 };
  const MsimTime times[] = { 0, 10, 10, 50, 50, 50 };
  ck_assert_int_eq (msim_event_queue_size (q), 6);
  for (int i = 0; i < 6; i++)
    {
      MsimEvent ev;
      ck_assert (msim_event_queue_pop (q, &ev));
      ck_assert_int_eq (GPOINTER_TO_INT (ev.data), expect[i]);
      ck_assert_int_eq (ev.time, times[i]);
    }
  MsimEvent ev;
  ck_assert (!msim_event_queue_pop (q, &ev));
}
END_TEST

START_TEST (test_cancel)
{
  g_autoptr (MsimEventQueue) q = msim_event_queue_new ();
  MsimEventHandle a = msim_event_queue_push (q, 30, NULL, GINT_TO_POINTER (1));
  MsimEventHandle b = msim_event_queue_push (q, 20, NULL, GINT_TO_POINTER (2));
  MsimEventHandle c = msim_event_queue_push (q, 10, NULL, GINT_TO_POINTER (3));
  ck_assert (msim_event_queue_cancel (q, b));
  ck_assert (!msim_event_queue_cancel (q, b)); /* stale: already cancelled */
  ck_assert (!msim_event_queue_is_pending (q, b));
  ck_assert (msim_event_queue_is_pending (q, a));
  ck_assert (msim_event_queue_validate (q));
  MsimEvent ev;
  ck_assert (msim_event_queue_pop (q, &ev));
  ck_assert_int_eq (GPOINTER_TO_INT (ev.data), 3);
  ck_assert (!msim_event_queue_cancel (q, c)); /* stale: popped */
  /* A recycled slot must not be reachable through the old handle. */
  MsimEventHandle d = msim_event_queue_push (q, 15, NULL, GINT_TO_POINTER (4));
  ck_assert (d != c && d != b);
  ck_assert (!msim_event_queue_cancel (q, c));
  ck_assert (!msim_event_queue_cancel (q, b));
  ck_assert_int_eq (msim_event_queue_size (q), 2);
  ck_assert (msim_event_queue_pop (q, &ev));
  ck_assert_int_eq (GPOINTER_TO_INT (ev.data), 4);
  ck_assert (msim_event_queue_pop (q, &ev));
  ck_assert_int_eq (GPOINTER_TO_INT (ev.data), 1);
  ck_assert (!msim_event_queue_cancel (q, MSIM_EVENT_HANDLE_NONE));
}
END_TEST

START_TEST (test_reschedule)
{
  g_autoptr (MsimEventQueue) q = msim_event_queue_new ();
  MsimEventHandle a = msim_event_queue_push (q, 100, NULL, GINT_TO_POINTER (1));
  msim_event_queue_push (q, 40, NULL, GINT_TO_POINTER (2));
  msim_event_queue_push (q, 60, NULL, GINT_TO_POINTER (3));
  /* Earlier: a now first; the old handle goes stale. */
  MsimEventHandle a2 = msim_event_queue_reschedule (q, a, 10);
  ck_assert (a2 != MSIM_EVENT_HANDLE_NONE && a2 != a);
  ck_assert (!msim_event_queue_is_pending (q, a));
  ck_assert (msim_event_queue_reschedule (q, a, 20) == MSIM_EVENT_HANDLE_NONE);
  ck_assert_int_eq (msim_event_queue_peek_time (q), 10);
  ck_assert (msim_event_queue_validate (q));
  /* Same time as an existing event: goes after it (fresh sequence). */
  a = msim_event_queue_reschedule (q, a2, 40);
  ck_assert (a != MSIM_EVENT_HANDLE_NONE);
  MsimEvent ev;
  msim_event_queue_pop (q, &ev);
  ck_assert_int_eq (GPOINTER_TO_INT (ev.data), 2);
  msim_event_queue_pop (q, &ev);
  ck_assert_int_eq (GPOINTER_TO_INT (ev.data), 1);
  ck_assert_int_eq (ev.time, 40);
  ck_assert (msim_event_queue_reschedule (q, a, 45) == MSIM_EVENT_HANDLE_NONE);
  msim_event_queue_pop (q, &ev);
  ck_assert_int_eq (GPOINTER_TO_INT (ev.data), 3);
}
END_TEST

/* Reference: a plain array kept sorted by (time, seq). */
typedef struct
{
  MsimTime time;
  guint64 seq;
  int id;
} Ref;

static int
ref_cmp (const void *a, const void *b)
{
  const Ref *x = a, *y = b;
  if (x->time != y->time)
    return x->time < y->time ? -1 : 1;
  return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Delay distributions: 0 a small range (many ties), 1 a wide uniform range
 * (many buckets and window rebuilds), 2 mostly small with rare huge
 * outliers (a badly fitting calendar width). */
static MsimTime
draw_delay (gsl_rng *rng, int kind)
{
  switch (kind)
    {
      case 0:
        return (MsimTime)gsl_rng_uniform_int (rng, 50);
      case 1:
        return (MsimTime)gsl_rng_uniform_int (rng, 1000000);
      default:
        if (gsl_rng_uniform (rng) < 0.01)
          return (MsimTime)gsl_rng_uniform_int (rng, 1000000000) * 1000;
        return (MsimTime)gsl_rng_uniform_int (rng, 100);
    }
}

START_TEST (test_random_vs_reference)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, 12345 + (unsigned long)_i);
  g_autoptr (MsimEventQueue) q = msim_event_queue_new ();
  const int nops = 100000;
  GArray *ref = g_array_new (FALSE, FALSE, sizeof (Ref));
  MsimEventHandle *handles = g_new0 (MsimEventHandle, nops);
  guint64 seq = 0;
  int next_id = 0;
  MsimTime now = 0;
  for (int op = 0; op < nops; op++)
    {
      double u = gsl_rng_uniform (rng);
      if (u < 0.45 || ref->len == 0)
        {
          MsimTime t = now + draw_delay (rng, _i);
          int id = next_id++;
          handles[id] = msim_event_queue_push (q, t, NULL, GINT_TO_POINTER (id));
          Ref r = { t, seq++, id };
          g_array_append_val (ref, r);
        }
      else if (u < 0.80)
        {
          qsort (ref->data, ref->len, sizeof (Ref), ref_cmp);
          Ref top = g_array_index (ref, Ref, 0);
          g_array_remove_index (ref, 0);
          MsimEvent ev;
          ck_assert (msim_event_queue_pop (q, &ev));
          ck_assert_int_eq (GPOINTER_TO_INT (ev.data), top.id);
          ck_assert_int_eq (ev.time, top.time);
          now = ev.time;
        }
      else if (u < 0.90)
        {
          guint k = (guint)gsl_rng_uniform_int (rng, ref->len);
          Ref victim = g_array_index (ref, Ref, k);
          g_array_remove_index_fast (ref, k);
          ck_assert (msim_event_queue_cancel (q, handles[victim.id]));
        }
      else
        {
          guint k = (guint)gsl_rng_uniform_int (rng, ref->len);
          Ref *r = &g_array_index (ref, Ref, k);
          MsimTime t = now + draw_delay (rng, _i);
          handles[r->id] = msim_event_queue_reschedule (q, handles[r->id], t);
          ck_assert (handles[r->id] != MSIM_EVENT_HANDLE_NONE);
          r->time = t;
          r->seq = seq++;
        }
      ck_assert_int_eq (msim_event_queue_size (q), ref->len);
      if (op % 997 == 0)
        ck_assert (msim_event_queue_validate (q));
    }
  /* Drain and compare the rest. */
  qsort (ref->data, ref->len, sizeof (Ref), ref_cmp);
  for (guint i = 0; i < ref->len; i++)
    {
      MsimEvent ev;
      ck_assert (msim_event_queue_pop (q, &ev));
      ck_assert_int_eq (GPOINTER_TO_INT (ev.data), g_array_index (ref, Ref, i).id);
    }
  ck_assert_int_eq (msim_event_queue_size (q), 0);
  g_array_free (ref, TRUE);
  g_free (handles);
  gsl_rng_free (rng);
}
END_TEST

static gint
ref_seq_cmp (gconstpointer a, gconstpointer b, gpointer user)
{
  (void)user;
  return ref_cmp (a, b);
}

/* A large queue (over LARGE_QUEUE events, so the calendar uses four buckets
 * per event) in the hold model with exponential increments, cancellations
 * and reschedules, against a GSequence kept sorted by (time, seq). */
START_TEST (test_large_hold_vs_reference)
{
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, 777);
  g_autoptr (MsimEventQueue) q = msim_event_queue_new ();
  const int prefill = 40000, nops = 120000;
  GSequence *ref = g_sequence_new (g_free);
  GSequenceIter **where = g_new0 (GSequenceIter *, prefill);
  MsimEventHandle *handles = g_new0 (MsimEventHandle, prefill);
  guint64 seq = 0;
  MsimTime now = 0;
  for (int id = 0; id < prefill; id++)
    {
      MsimTime t = (MsimTime)gsl_ran_exponential (rng, 1e6);
      handles[id] = msim_event_queue_push (q, t, NULL, GINT_TO_POINTER (id));
      Ref *r = g_new (Ref, 1);
      *r = (Ref){ t, seq++, id };
      where[id] = g_sequence_insert_sorted (ref, r, ref_seq_cmp, NULL);
    }
  for (int op = 0; op < nops; op++)
    {
      /* Hold: pop the earliest, push it again later. */
      MsimEvent ev;
      ck_assert (msim_event_queue_pop (q, &ev));
      GSequenceIter *first = g_sequence_get_begin_iter (ref);
      Ref *top = g_sequence_get (first);
      ck_assert_int_eq (GPOINTER_TO_INT (ev.data), top->id);
      ck_assert_int_eq (ev.time, top->time);
      now = ev.time;
      int id = top->id;
      g_sequence_remove (first);
      MsimTime t = now + (MsimTime)gsl_ran_exponential (rng, 1e6);
      handles[id] = msim_event_queue_push (q, t, NULL, GINT_TO_POINTER (id));
      Ref *r = g_new (Ref, 1);
      *r = (Ref){ t, seq++, id };
      where[id] = g_sequence_insert_sorted (ref, r, ref_seq_cmp, NULL);
      if (op % 10 == 0)
        {
          /* Cancel a random event and push it back, or reschedule it. */
          int v = (int)gsl_rng_uniform_int (rng, prefill);
          MsimTime tv = now + (MsimTime)gsl_ran_exponential (rng, 1e6);
          if (op % 20 == 0)
            {
              ck_assert (msim_event_queue_cancel (q, handles[v]));
              handles[v] = msim_event_queue_push (q, tv, NULL, GINT_TO_POINTER (v));
            }
          else
            handles[v] = msim_event_queue_reschedule (q, handles[v], tv);
          ck_assert (handles[v] != MSIM_EVENT_HANDLE_NONE);
          g_sequence_remove (where[v]);
          Ref *rv = g_new (Ref, 1);
          *rv = (Ref){ tv, seq++, v };
          where[v] = g_sequence_insert_sorted (ref, rv, ref_seq_cmp, NULL);
        }
      if (op % 49999 == 0)
        ck_assert (msim_event_queue_validate (q));
    }
  ck_assert_int_eq (msim_event_queue_size (q), prefill);
  for (GSequenceIter *it = g_sequence_get_begin_iter (ref); !g_sequence_iter_is_end (it);
       it = g_sequence_iter_next (it))
    {
      MsimEvent ev;
      ck_assert (msim_event_queue_pop (q, &ev));
      ck_assert_int_eq (GPOINTER_TO_INT (ev.data), ((Ref *)g_sequence_get (it))->id);
    }
  ck_assert_int_eq (msim_event_queue_size (q), 0);
  g_sequence_free (ref);
  g_free (where);
  g_free (handles);
  gsl_rng_free (rng);
}
END_TEST

START_TEST (test_steady_state_no_growth)
{
  /* In the hold model the slot table must stop growing: slots recycle. */
  g_autoptr (MsimEventQueue) q = msim_event_queue_new ();
  for (int i = 0; i < 1000; i++)
    msim_event_queue_push (q, i, NULL, NULL);
  for (int i = 0; i < 100000; i++)
    {
      MsimEvent ev;
      msim_event_queue_pop (q, &ev);
      msim_event_queue_push (q, ev.time + 1000, NULL, NULL);
    }
  ck_assert_int_eq (msim_event_queue_size (q), 1000);
  ck_assert (msim_event_queue_validate (q));
}
END_TEST

static Suite *
queue_suite (void)
{
  Suite *s = suite_create ("event-queue");
  TCase *tc = tcase_create ("ordering");
  tcase_add_test (tc, test_order_and_ties);
  suite_add_tcase (s, tc);
  tc = tcase_create ("handles");
  tcase_add_test (tc, test_cancel);
  tcase_add_test (tc, test_reschedule);
  tcase_add_test (tc, test_steady_state_no_growth);
  suite_add_tcase (s, tc);
  tc = tcase_create ("randomized");
  tcase_set_timeout (tc, 300);
  tcase_add_loop_test (tc, test_random_vs_reference, 0, 3);
  tcase_add_test (tc, test_large_hold_vs_reference);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (queue_suite)
