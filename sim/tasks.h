#pragma once

#include <glib.h>

#include "engine.h"

G_BEGIN_DECLS

/*
 * MsimTasks: work on GPU streams, with explicit dependencies.
 *
 * Every GPU has streams (moesim uses two per GPU: compute and
 * communication, as CUDA programs do), and each stream runs its tasks one
 * at a time in submission order.  A task starts when it reaches the head of
 * its stream and every task it depends on has finished; overlap between
 * computation and communication therefore happens exactly where the
 * dependencies allow it, not by assumption.
 *
 * Two kinds of task:
 *  - a kernel has a duration known when it starts (a roofline time);
 *  - an external task finishes when its owner says so (a rank's part of a
 *    collective finishes when its flows have arrived): at start it calls
 *    its start callback, and msim_task_finish() ends it.
 *
 * Tasks are owned by the MsimTasks that made them and freed with it.  Every
 * task's start and end are recorded for the timeline and the metrics.
 */

typedef struct _MsimTasks MsimTasks;
typedef struct _MsimTask MsimTask;

typedef void (*MsimTaskFunc) (MsimTask *task, gpointer data);

/* Creates a task system with @n_streams streams on @engine (transfer none). */
MsimTasks *msim_tasks_new (MsimEngine *engine, guint n_streams);
void msim_tasks_free (MsimTasks *tasks);

MsimEngine *msim_tasks_engine (MsimTasks *tasks);
guint msim_tasks_n_streams (const MsimTasks *tasks);

/* A kernel of @duration on @stream.  @name (static string) and @category
 * (caller-defined, e.g. attention/expert) label it for metrics and the
 * timeline; @arg is an optional integer argument shown in the timeline
 * (e.g. the layer), -1 for none. */
MsimTask *msim_task_kernel (MsimTasks *tasks, guint stream, MsimTime duration, const char *name,
                            guint category, gint64 arg);

/* An external task: @on_start runs when it starts; it ends at
 * msim_task_finish(). */
MsimTask *msim_task_external (MsimTasks *tasks, guint stream, const char *name, guint category,
                              gint64 arg, MsimTaskFunc on_start, gpointer data);

/* @task waits for @before to finish.  Both must be unsubmitted or @before
 * may already be running or done. */
void msim_task_after (MsimTask *task, MsimTask *before);

/* Calls @on_end (once) when @task finishes. */
void msim_task_on_end (MsimTask *task, MsimTaskFunc on_end, gpointer data);

/* Queues @task on its stream; call after its dependencies are declared.
 * Tasks on one stream run in submission order. */
void msim_task_submit (MsimTask *task);

/* Ends a running external task at the current time. */
void msim_task_finish (MsimTask *task);

gboolean msim_task_done (const MsimTask *task);
MsimTime msim_task_start_time (const MsimTask *task); /* -1 before it starts */
MsimTime msim_task_end_time (const MsimTask *task);   /* -1 before it ends */
guint msim_task_stream (const MsimTask *task);

/* Walks every task that has finished, in submission order. */
typedef void (*MsimTaskVisit) (const char *name, guint stream, guint category, gint64 arg,
                               MsimTime start, MsimTime end, gpointer data);
void msim_tasks_foreach (const MsimTasks *tasks, MsimTaskVisit visit, gpointer data);

/* Busy time per stream (sum of its tasks' durations). */
MsimTime msim_tasks_stream_busy (const MsimTasks *tasks, guint stream);

/* Number of submitted tasks that have not finished (0 after a clean run). */
guint msim_tasks_pending (const MsimTasks *tasks);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimTasks, msim_tasks_free)

G_END_DECLS
