#include "timeline.h"

#include <stdarg.h>

struct _MsimTimeline
{
  GString *s;
  gboolean first;
  guint streams_per_gpu;
  const char *const *category_names;
  const char *arg_name;
};

static void
separate (MsimTimeline *tl)
{
  if (!tl->first)
    g_string_append (tl->s, ",\n");
  tl->first = FALSE;
}

void
msim_timeline_add_event (MsimTimeline *tl, const char *format, ...)
{
  separate (tl);
  va_list ap;
  va_start (ap, format);
  g_string_append_vprintf (tl->s, format, ap);
  va_end (ap);
}

MsimTimeline *
msim_timeline_new (guint gpus, guint streams_per_gpu, const char *const *stream_names,
                   const char *const *category_names, const char *arg_name)
{
  g_return_val_if_fail (streams_per_gpu > 0, NULL);
  MsimTimeline *tl = g_new0 (MsimTimeline, 1);
  tl->s = g_string_new ("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
  tl->first = TRUE;
  tl->streams_per_gpu = streams_per_gpu;
  tl->category_names = category_names;
  tl->arg_name = arg_name;
  for (guint g = 0; g < gpus; g++)
    {
      msim_timeline_add_event (
          tl, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"args\":{\"name\":\"GPU %u\"}}",
          g, g);
      for (guint t = 0; t < streams_per_gpu; t++)
        msim_timeline_add_event (tl,
                                 "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,"
                                 "\"args\":{\"name\":\"%s\"}}",
                                 g, t, stream_names[t]);
    }
  return tl;
}

static void
add_task (const char *name, guint stream, guint category, gint64 arg, MsimTime start, MsimTime end,
          gpointer data)
{
  MsimTimeline *tl = data;
  msim_timeline_add_event (tl,
                           "{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%u,\"tid\":%u,"
                           "\"ts\":%" G_GINT64_FORMAT ".%06" G_GINT64_FORMAT
                           ",\"dur\":%" G_GINT64_FORMAT ".%06" G_GINT64_FORMAT
                           ",\"args\":{\"%s\":%" G_GINT64_FORMAT "}}",
                           name, tl->category_names[category], stream / tl->streams_per_gpu,
                           stream % tl->streams_per_gpu, start / 1000000, start % 1000000,
                           (end - start) / 1000000, (end - start) % 1000000, tl->arg_name, arg);
}

void
msim_timeline_add_tasks (MsimTimeline *tl, const MsimTasks *tasks)
{
  msim_tasks_foreach (tasks, add_task, tl);
}

char *
msim_timeline_finish (MsimTimeline *tl)
{
  g_string_append (tl->s, "\n]}\n");
  char *out = g_string_free (tl->s, FALSE);
  g_free (tl);
  return out;
}
