#include "engine.h"
#include "msim-check.h"

/* A toy model with its own schedule: it "ticks" every @period ps until
 * @ticks_left reaches zero, logging each tick into a shared trace. */
typedef struct
{
  MsimTime period;
  MsimTime next;
  int ticks_left;
  GString *trace;
  int advances;
} Ticker;

static MsimTime
ticker_next (gpointer state, MsimTime now)
{
  Ticker *t = state;
  return t->ticks_left > 0 ? t->next : MSIM_TIME_NEVER;
}

static void
ticker_advance (gpointer state, MsimTime now)
{
  Ticker *t = state;
  t->advances++;
  if (t->ticks_left > 0 && now == t->next)
    {
      g_string_append_printf (t->trace, "T%" G_GINT64_FORMAT " ", now);
      t->ticks_left--;
      t->next += t->period;
    }
  /* A model may be advanced at times that are not its own events. */
  ck_assert (now <= t->next || t->ticks_left == 0);
}

static const MsimModelClass ticker_class = { "ticker", ticker_next, ticker_advance };

typedef struct
{
  GString *trace;
  const char *name;
  MsimTime chain_delay; /* >= 0: schedule a follow-up event */
} Ev;

static void
log_event (MsimEngine *engine, gpointer data)
{
  Ev *ev = data;
  g_string_append_printf (ev->trace, "%s%" G_GINT64_FORMAT " ", ev->name, msim_engine_now (engine));
  if (ev->chain_delay >= 0)
    {
      ev->chain_delay = -1;
      msim_engine_schedule_in (engine, 0, log_event, ev);
    }
}

START_TEST (test_interleave)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  g_autoptr (GString) trace = g_string_new (NULL);
  Ticker t = { .period = 10, .next = 10, .ticks_left = 3, .trace = trace };
  msim_engine_add_model (e, &ticker_class, &t);
  Ev a = { trace, "A", -1 }, b = { trace, "B", 0 }, c = { trace, "C", -1 };
  msim_engine_schedule_at (e, 20, log_event, &a);
  msim_engine_schedule_at (e, 5, log_event, &b);
  msim_engine_schedule_at (e, 20, log_event, &c);
  ck_assert_int_eq (msim_engine_run (e), MSIM_STEP_IDLE);
  /* B at 5 re-schedules itself once at the same time (fires in the same
   * step); the ticker settles before queued events at equal times (20). */
  ck_assert_str_eq (trace->str, "B5 B5 T10 T20 A20 C20 T30 ");
  ck_assert_int_eq (msim_engine_now (e), 30);
  ck_assert_int_eq (msim_engine_events_fired (e), 4);
  ck_assert_int_eq (msim_engine_steps (e), 4); /* times 5, 10, 20, 30 */
  ck_assert_int_eq (t.advances, 4);
}
END_TEST

START_TEST (test_limits)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  g_autoptr (GString) trace = g_string_new (NULL);
  Ticker t = { .period = 10, .next = 10, .ticks_left = 100, .trace = trace };
  msim_engine_add_model (e, &ticker_class, &t);
  msim_engine_set_time_limit (e, 35);
  ck_assert_int_eq (msim_engine_run (e), MSIM_STEP_TIME_LIMIT);
  ck_assert_int_eq (msim_engine_now (e), 30); /* the clock never passes the limit */
  ck_assert_int_eq (t.ticks_left, 97);

  g_autoptr (MsimEngine) e2 = msim_engine_new ();
  Ev evs[5];
  for (int i = 0; i < 5; i++)
    {
      evs[i] = (Ev){ trace, "E", -1 };
      msim_engine_schedule_at (e2, 100 + i, log_event, &evs[i]);
    }
  msim_engine_set_event_limit (e2, 3);
  ck_assert_int_eq (msim_engine_run (e2), MSIM_STEP_EVENT_LIMIT);
  ck_assert_int_eq (msim_engine_events_fired (e2), 3);
  ck_assert_int_eq (msim_engine_now (e2), 102);
}
END_TEST

static void
cancel_other (MsimEngine *engine, gpointer data)
{
  MsimEventHandle *h = data;
  ck_assert (msim_engine_cancel (engine, *h));
}

static void
must_not_fire (MsimEngine *engine, gpointer data)
{
  ck_abort_msg ("cancelled event fired");
}

static void
stopper (MsimEngine *engine, gpointer data)
{
  msim_engine_stop (engine);
}

START_TEST (test_cancel_and_stop)
{
  g_autoptr (MsimEngine) e = msim_engine_new ();
  MsimEventHandle victim = msim_engine_schedule_at (e, 50, must_not_fire, NULL);
  msim_engine_schedule_at (e, 10, cancel_other, &victim);
  MsimEventHandle moved = msim_engine_schedule_at (e, 90, stopper, NULL);
  ck_assert (msim_engine_reschedule (e, moved, 20) != MSIM_EVENT_HANDLE_NONE);
  ck_assert_int_eq (msim_engine_run (e), MSIM_STEP_STOPPED);
  ck_assert_int_eq (msim_engine_now (e), 20);
  ck_assert_int_eq (msim_engine_run (e), MSIM_STEP_IDLE);
  ck_assert_int_eq (msim_engine_events_fired (e), 2);
}
END_TEST

static Suite *
engine_suite (void)
{
  Suite *s = suite_create ("engine");
  TCase *tc = tcase_create ("phases");
  tcase_add_test (tc, test_interleave);
  suite_add_tcase (s, tc);
  tc = tcase_create ("control");
  tcase_add_test (tc, test_limits);
  tcase_add_test (tc, test_cancel_and_stop);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (engine_suite)
