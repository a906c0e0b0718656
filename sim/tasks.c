#include "tasks.h"

/*
 * Each stream is a FIFO of submitted tasks; only its head may run.  A task
 * keeps a count of unfinished dependencies and a list of dependents; when
 * it finishes, its dependents' counts drop, and any stream whose head became
 * runnable starts it.  Kernels end through an engine event at start +
 * duration.  Starting is deferred to an engine event at the current time so
 * that a long chain of zero-length tasks never recurses deeply and the
 * order of same-time starts is the engine's (time, sequence) order.
 */

typedef enum
{
  TASK_NEW,
  TASK_QUEUED,
  TASK_RUNNING,
  TASK_DONE,
} TaskState;

struct _MsimTask
{
  MsimTasks *owner;
  const char *name;
  guint stream;
  guint category;
  gint64 arg;
  gboolean external;
  MsimTime duration;
  MsimTaskFunc on_start;
  gpointer start_data;
  MsimTaskFunc on_end;
  gpointer end_data;
  guint waiting; /* unfinished dependencies */
  GPtrArray *dependents;
  TaskState state;
  MsimTime start, end;
  guint seq; /* submission order */
};

typedef struct
{
  MsimTasks *ts;
  guint stream;
} Kick;

typedef struct
{
  Kick kick;   /* the data of this stream's pending start event */
  GQueue fifo; /* MsimTask*, submitted and not yet started */
  MsimTask *running;
  MsimTime busy;
  gboolean kick_pending;
} Stream;

struct _MsimTasks
{
  MsimEngine *engine;
  Stream *streams;
  guint n_streams;
  GPtrArray *all; /* every task, creation order; owns them */
  guint submitted;
  guint finished;
};

static void
task_free (gpointer p)
{
  MsimTask *t = p;
  if (t->dependents)
    g_ptr_array_free (t->dependents, TRUE);
  g_free (t);
}

MsimTasks *
msim_tasks_new (MsimEngine *engine, guint n_streams)
{
  MsimTasks *ts = g_new0 (MsimTasks, 1);
  ts->engine = engine;
  ts->n_streams = n_streams;
  ts->streams = g_new0 (Stream, n_streams);
  for (guint i = 0; i < n_streams; i++)
    g_queue_init (&ts->streams[i].fifo);
  ts->all = g_ptr_array_new_with_free_func (task_free);
  return ts;
}

void
msim_tasks_free (MsimTasks *tasks)
{
  if (tasks == NULL)
    return;
  for (guint i = 0; i < tasks->n_streams; i++)
    g_queue_clear (&tasks->streams[i].fifo);
  g_free (tasks->streams);
  g_ptr_array_free (tasks->all, TRUE);
  g_free (tasks);
}

MsimEngine *
msim_tasks_engine (MsimTasks *tasks)
{
  return tasks->engine;
}

guint
msim_tasks_n_streams (const MsimTasks *tasks)
{
  return tasks->n_streams;
}

static MsimTask *
task_new (MsimTasks *ts, guint stream, const char *name, guint category, gint64 arg)
{
  g_assert (stream < ts->n_streams);
  MsimTask *t = g_new0 (MsimTask, 1);
  t->owner = ts;
  t->name = name;
  t->stream = stream;
  t->category = category;
  t->arg = arg;
  t->start = t->end = -1;
  g_ptr_array_add (ts->all, t);
  return t;
}

MsimTask *
msim_task_kernel (MsimTasks *tasks, guint stream, MsimTime duration, const char *name,
                  guint category, gint64 arg)
{
  g_assert (duration >= 0);
  MsimTask *t = task_new (tasks, stream, name, category, arg);
  t->duration = duration;
  return t;
}

MsimTask *
msim_task_external (MsimTasks *tasks, guint stream, const char *name, guint category, gint64 arg,
                    MsimTaskFunc on_start, gpointer data)
{
  MsimTask *t = task_new (tasks, stream, name, category, arg);
  t->external = TRUE;
  t->on_start = on_start;
  t->start_data = data;
  return t;
}

void
msim_task_after (MsimTask *task, MsimTask *before)
{
  g_return_if_fail (task->state == TASK_NEW);
  if (before == NULL || before->state == TASK_DONE)
    return;
  if (before->dependents == NULL)
    before->dependents = g_ptr_array_new ();
  g_ptr_array_add (before->dependents, task);
  task->waiting++;
}

void
msim_task_on_end (MsimTask *task, MsimTaskFunc on_end, gpointer data)
{
  g_return_if_fail (task->on_end == NULL);
  task->on_end = on_end;
  task->end_data = data;
}

static void kick_stream (MsimTasks *ts, guint stream);

static void
finish (MsimTask *t)
{
  MsimTasks *ts = t->owner;
  Stream *s = &ts->streams[t->stream];
  g_assert (t->state == TASK_RUNNING && s->running == t);
  t->state = TASK_DONE;
  t->end = msim_engine_now (ts->engine);
  s->busy += t->end - t->start;
  s->running = NULL;
  ts->finished++;
  if (t->on_end)
    t->on_end (t, t->end_data);
  kick_stream (ts, t->stream);
  if (t->dependents)
    for (guint i = 0; i < t->dependents->len; i++)
      {
        MsimTask *d = g_ptr_array_index (t->dependents, i);
        g_assert (d->waiting > 0);
        if (--d->waiting == 0)
          kick_stream (ts, d->stream);
      }
}

static void
kernel_end (MsimEngine *engine, gpointer data)
{
  finish (data);
}

/* Starts the head of @stream if it can run. */
static void
try_start (MsimTasks *ts, guint stream)
{
  Stream *s = &ts->streams[stream];
  s->kick_pending = FALSE;
  if (s->running)
    return;
  MsimTask *t = g_queue_peek_head (&s->fifo);
  if (t == NULL || t->waiting > 0)
    return;
  g_queue_pop_head (&s->fifo);
  s->running = t;
  t->state = TASK_RUNNING;
  t->start = msim_engine_now (ts->engine);
  if (t->external)
    {
      if (t->on_start)
        t->on_start (t, t->start_data);
    }
  else
    msim_engine_schedule_in (ts->engine, t->duration, kernel_end, t);
}

static void
kick_event (MsimEngine *engine, gpointer data)
{
  const Kick *k = data;
  try_start (k->ts, k->stream);
}

static void
kick_stream (MsimTasks *ts, guint stream)
{
  Stream *s = &ts->streams[stream];
  if (s->kick_pending || s->running)
    return;
  MsimTask *t = g_queue_peek_head (&s->fifo);
  if (t == NULL || t->waiting > 0)
    return;
  s->kick_pending = TRUE;
  s->kick = (Kick){ ts, stream };
  msim_engine_schedule_in (ts->engine, 0, kick_event, &s->kick);
}

void
msim_task_submit (MsimTask *task)
{
  g_return_if_fail (task->state == TASK_NEW);
  MsimTasks *ts = task->owner;
  task->state = TASK_QUEUED;
  task->seq = ts->submitted++;
  g_queue_push_tail (&ts->streams[task->stream].fifo, task);
  kick_stream (ts, task->stream);
}

void
msim_task_finish (MsimTask *task)
{
  g_return_if_fail (task->external && task->state == TASK_RUNNING);
  finish (task);
}

gboolean
msim_task_done (const MsimTask *task)
{
  return task->state == TASK_DONE;
}

MsimTime
msim_task_start_time (const MsimTask *task)
{
  return task->start;
}

MsimTime
msim_task_end_time (const MsimTask *task)
{
  return task->end;
}

guint
msim_task_stream (const MsimTask *task)
{
  return task->stream;
}

void
msim_tasks_foreach (const MsimTasks *tasks, MsimTaskVisit visit, gpointer data)
{
  for (guint i = 0; i < tasks->all->len; i++)
    {
      const MsimTask *t = g_ptr_array_index (tasks->all, i);
      if (t->state == TASK_DONE)
        visit (t->name, t->stream, t->category, t->arg, t->start, t->end, data);
    }
}

MsimTime
msim_tasks_stream_busy (const MsimTasks *tasks, guint stream)
{
  g_return_val_if_fail (stream < tasks->n_streams, 0);
  return tasks->streams[stream].busy;
}

guint
msim_tasks_pending (const MsimTasks *tasks)
{
  return tasks->submitted - tasks->finished;
}
