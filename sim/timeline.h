#pragma once

#include <glib.h>

#include "tasks.h"

G_BEGIN_DECLS

/*
 * A Chrome/Perfetto trace-event document (ui.perfetto.dev), as moesim run
 * and moesim offload write it: one process per GPU with one thread per
 * stream (stream s of GPU g is task stream g * streams_per_gpu + s), then
 * the finished tasks as complete ("X") events, then whatever the caller
 * adds.  Times are written in microseconds with the picoseconds as six
 * decimals, so nothing is rounded.
 */
typedef struct _MsimTimeline MsimTimeline;

/* @stream_names: @streams_per_gpu track names.  @category_names: indexed by
 * a task's category.  @arg_name: the name under which a task's integer
 * argument is shown (e.g. "block"). */
MsimTimeline *msim_timeline_new (guint gpus, guint streams_per_gpu, const char *const *stream_names,
                                 const char *const *category_names, const char *arg_name);

/* Appends every finished task of @tasks. */
void msim_timeline_add_tasks (MsimTimeline *tl, const MsimTasks *tasks);

/* Appends one event: a JSON object written by printf-style @format. */
void msim_timeline_add_event (MsimTimeline *tl, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Closes the document and returns it; frees @tl (transfer full). */
char *msim_timeline_finish (MsimTimeline *tl);

G_END_DECLS
