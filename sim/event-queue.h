#pragma once

#include <glib.h>

#include "msim-time.h"

G_BEGIN_DECLS

/*
 * MsimEventQueue: the pending events of a discrete-event simulation, keyed by
 * (time, insertion sequence) so that events at the same time pop in the
 * order they were pushed.
 *
 * It is a monotone queue: a push or reschedule must not go earlier than the
 * time of the last popped event (a simulation never schedules into the
 * past).  Within that rule any time may be pushed, including earlier than
 * the current minimum.
 *
 * Handles name an event until it fires, is cancelled or is rescheduled
 * (which returns the new handle); a stale handle is detected, never mistaken
 * for a newer event.  push, cancel and reschedule are O(1); pop is O(1)
 * amortised when the event times are spread evenly, and O(log n) at worst
 * (see event-queue.c); nothing is allocated per event in steady state.
 */

typedef struct _MsimEventQueue MsimEventQueue;

/* An opaque handle to a pending event; 0 is never a valid handle. */
typedef guint64 MsimEventHandle;

#define MSIM_EVENT_HANDLE_NONE ((MsimEventHandle)0)

typedef struct
{
  MsimTime time;
  gpointer func; /* opaque to the queue; the engine stores its callback here */
  gpointer data;
} MsimEvent;

MsimEventQueue *msim_event_queue_new (void);
void msim_event_queue_free (MsimEventQueue *queue);

/* Pre-allocates handle slots for @n pending events. */
void msim_event_queue_reserve (MsimEventQueue *queue, guint n);

guint msim_event_queue_size (const MsimEventQueue *queue);

/* Adds an event at @time (>= the last popped time); returns its handle. */
MsimEventHandle msim_event_queue_push (MsimEventQueue *queue, MsimTime time, gpointer func,
                                       gpointer data);

/* Time of the earliest event, or MSIM_TIME_NEVER when empty.  Amortised
 * O(1): it locates the minimum that the next pop would return. */
MsimTime msim_event_queue_peek_time (MsimEventQueue *queue);

/* Removes the earliest event into *out.  FALSE when empty. */
gboolean msim_event_queue_pop (MsimEventQueue *queue, MsimEvent *out);

/* Removes a pending event.  FALSE if @handle is stale (already popped or
 * cancelled).  O(1). */
gboolean msim_event_queue_cancel (MsimEventQueue *queue, MsimEventHandle handle);

/* Moves a pending event to @time (>= the last popped time) and returns its
 * new handle; @handle becomes stale.  The event takes a fresh sequence
 * number, so it fires after events already queued for the same time.
 * Returns MSIM_EVENT_HANDLE_NONE if @handle is stale.  O(1). */
MsimEventHandle msim_event_queue_reschedule (MsimEventQueue *queue, MsimEventHandle handle,
                                             MsimTime time);

/* TRUE if @handle names an event still in the queue. */
gboolean msim_event_queue_is_pending (const MsimEventQueue *queue, MsimEventHandle handle);

/* Checks the internal invariants (bucket placement, counts, free list);
 * for tests. */
gboolean msim_event_queue_validate (const MsimEventQueue *queue);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimEventQueue, msim_event_queue_free)

G_END_DECLS
