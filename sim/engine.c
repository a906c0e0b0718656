#include "engine.h"

typedef struct
{
  const MsimModelClass *klass;
  gpointer state;
} Model;

struct _MsimEngine
{
  MsimEventQueue *queue;
  GArray *models; /* Model */
  MsimTime now;
  MsimTime time_limit;
  guint64 event_limit;
  guint64 events_fired;
  guint64 steps;
  gboolean stop_requested;
};

MsimEngine *
msim_engine_new (void)
{
  MsimEngine *e = g_new0 (MsimEngine, 1);
  e->queue = msim_event_queue_new ();
  e->models = g_array_new (FALSE, FALSE, sizeof (Model));
  e->time_limit = MSIM_TIME_NEVER;
  e->event_limit = G_MAXUINT64;
  return e;
}

void
msim_engine_free (MsimEngine *engine)
{
  if (engine == NULL)
    return;
  msim_event_queue_free (engine->queue);
  g_array_free (engine->models, TRUE);
  g_free (engine);
}

void
msim_engine_add_model (MsimEngine *engine, const MsimModelClass *klass, gpointer state)
{
  g_return_if_fail (klass != NULL && klass->next_event != NULL && klass->advance != NULL);
  Model m = { klass, state };
  g_array_append_val (engine->models, m);
}

MsimTime
msim_engine_now (const MsimEngine *engine)
{
  return engine->now;
}

MsimEventHandle
msim_engine_schedule_at (MsimEngine *engine, MsimTime time, MsimEventFunc func, gpointer data)
{
  g_return_val_if_fail (func != NULL, MSIM_EVENT_HANDLE_NONE);
  g_return_val_if_fail (time >= engine->now, MSIM_EVENT_HANDLE_NONE);
  return msim_event_queue_push (engine->queue, time, (gpointer)func, data);
}

MsimEventHandle
msim_engine_schedule_in (MsimEngine *engine, MsimTime delay, MsimEventFunc func, gpointer data)
{
  g_return_val_if_fail (delay >= 0, MSIM_EVENT_HANDLE_NONE);
  return msim_engine_schedule_at (engine, msim_time_add_sat (engine->now, delay), func, data);
}

gboolean
msim_engine_cancel (MsimEngine *engine, MsimEventHandle handle)
{
  return msim_event_queue_cancel (engine->queue, handle);
}

MsimEventHandle
msim_engine_reschedule (MsimEngine *engine, MsimEventHandle handle, MsimTime time)
{
  g_return_val_if_fail (time >= engine->now, MSIM_EVENT_HANDLE_NONE);
  return msim_event_queue_reschedule (engine->queue, handle, time);
}

void
msim_engine_set_time_limit (MsimEngine *engine, MsimTime limit)
{
  engine->time_limit = limit;
}

void
msim_engine_set_event_limit (MsimEngine *engine, guint64 limit)
{
  engine->event_limit = limit;
}

void
msim_engine_stop (MsimEngine *engine)
{
  engine->stop_requested = TRUE;
}

guint64
msim_engine_events_fired (const MsimEngine *engine)
{
  return engine->events_fired;
}

guint64
msim_engine_steps (const MsimEngine *engine)
{
  return engine->steps;
}

MsimStepResult
msim_engine_step (MsimEngine *engine)
{
  if (engine->stop_requested)
    {
      engine->stop_requested = FALSE;
      return MSIM_STEP_STOPPED;
    }
  if (engine->events_fired >= engine->event_limit)
    return MSIM_STEP_EVENT_LIMIT;

  /* Phase 1: earliest pending time anywhere. */
  MsimTime next = msim_event_queue_peek_time (engine->queue);
  for (guint i = 0; i < engine->models->len; i++)
    {
      Model *m = &g_array_index (engine->models, Model, i);
      MsimTime t = m->klass->next_event (m->state, engine->now);
      g_assert (t >= engine->now);
      next = MIN (next, t);
    }

  /* Phase 2: stop conditions. */
  if (next == MSIM_TIME_NEVER)
    return MSIM_STEP_IDLE;
  if (next > engine->time_limit)
    return MSIM_STEP_TIME_LIMIT;

  /* Phase 3: the clock only moves forward. */
  g_assert (next >= engine->now);
  engine->now = next;
  engine->steps++;

  /* Phase 4: models settle and run their own due work. */
  for (guint i = 0; i < engine->models->len; i++)
    {
      Model *m = &g_array_index (engine->models, Model, i);
      m->klass->advance (m->state, engine->now);
    }

  /* Phase 5: fire due events, including ones scheduled for now by them. */
  while (msim_event_queue_peek_time (engine->queue) == engine->now)
    {
      if (engine->events_fired >= engine->event_limit)
        return MSIM_STEP_EVENT_LIMIT;
      MsimEvent ev;
      msim_event_queue_pop (engine->queue, &ev);
      engine->events_fired++;
      ((MsimEventFunc)ev.func) (engine, ev.data);
      if (engine->stop_requested)
        break;
    }
  return MSIM_STEP_OK;
}

MsimStepResult
msim_engine_run (MsimEngine *engine)
{
  MsimStepResult r;
  while ((r = msim_engine_step (engine)) == MSIM_STEP_OK)
    ;
  return r;
}
