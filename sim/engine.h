#pragma once

#include <glib.h>

#include "event-queue.h"
#include "msim-time.h"

G_BEGIN_DECLS

/*
 * MsimEngine: the discrete-event loop.
 *
 * The engine owns the clock.  Two kinds of things produce events:
 *  - callbacks scheduled in its event queue (msim_engine_schedule_at);
 *  - registered models (the network, GPU streams), which keep their own
 *    state and answer two questions, in the SimGrid resource/action style:
 *    "when is your next event?" and "settle yourself at time t".
 *
 * One step runs these phases:
 *  1. find the earliest time among the queue and every model's next_event;
 *  2. stop if it is beyond the time limit or nothing is pending;
 *  3. advance the clock to it (time never decreases);
 *  4. let every model settle at the new time (models fire their own due
 *     work here, e.g. flow completions, and may schedule events);
 *  5. fire every queued event due at the new time, in (time, seq) order,
 *     including events those callbacks schedule for the same time.
 * Models never move the clock themselves.
 */

typedef struct _MsimEngine MsimEngine;

typedef void (*MsimEventFunc) (MsimEngine *engine, gpointer data);

typedef struct
{
  const char *name;
  /* Earliest time >= @now at which the model has work, or MSIM_TIME_NEVER. */
  MsimTime (*next_event) (gpointer state, MsimTime now);
  /* Brings the model to @now and processes everything due at @now. */
  void (*advance) (gpointer state, MsimTime now);
} MsimModelClass;

typedef enum
{
  MSIM_STEP_OK,          /* a step ran */
  MSIM_STEP_IDLE,        /* nothing pending anywhere */
  MSIM_STEP_TIME_LIMIT,  /* the next event lies beyond the time limit */
  MSIM_STEP_EVENT_LIMIT, /* the event limit was reached */
  MSIM_STEP_STOPPED,     /* msim_engine_stop() was called */
} MsimStepResult;

MsimEngine *msim_engine_new (void);
void msim_engine_free (MsimEngine *engine);

/* Registers a model (transfer none: @klass and @state must outlive the
 * engine).  Models are settled in registration order. */
void msim_engine_add_model (MsimEngine *engine, const MsimModelClass *klass, gpointer state);

MsimTime msim_engine_now (const MsimEngine *engine);

/* Schedules @func at absolute @time (>= now). */
MsimEventHandle msim_engine_schedule_at (MsimEngine *engine, MsimTime time, MsimEventFunc func,
                                         gpointer data);
MsimEventHandle msim_engine_schedule_in (MsimEngine *engine, MsimTime delay, MsimEventFunc func,
                                         gpointer data);
gboolean msim_engine_cancel (MsimEngine *engine, MsimEventHandle handle);
/* Moves a pending event; returns its new handle (the old one is stale), or
 * MSIM_EVENT_HANDLE_NONE if @handle was stale. */
MsimEventHandle msim_engine_reschedule (MsimEngine *engine, MsimEventHandle handle, MsimTime time);

/* Run limits: the engine stops before an event later than @limit, or after
 * @limit events.  Defaults: none. */
void msim_engine_set_time_limit (MsimEngine *engine, MsimTime limit);
void msim_engine_set_event_limit (MsimEngine *engine, guint64 limit);

/* Asks the loop to return after the current event. */
void msim_engine_stop (MsimEngine *engine);

MsimStepResult msim_engine_step (MsimEngine *engine);

/* Steps until the result is not MSIM_STEP_OK, and returns it. */
MsimStepResult msim_engine_run (MsimEngine *engine);

guint64 msim_engine_events_fired (const MsimEngine *engine);
guint64 msim_engine_steps (const MsimEngine *engine);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimEngine, msim_engine_free)

G_END_DECLS
