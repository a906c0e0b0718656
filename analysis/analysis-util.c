/* Atomic output files and trace concatenation for the analysis commands. */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "analysis-util.h"
#include "msim-error.h"

gboolean
msim_write_file_atomic (const char *path, MsimWriteFunc func, gpointer data, GError **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp (tmp);
  if (fd < 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot create a temporary file: %s", path,
                   g_strerror (errno));
      return FALSE;
    }
  FILE *out = fdopen (fd, "w");
  if (out == NULL)
    {
      int err = errno;
      close (fd);
      g_unlink (tmp);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: %s", path, g_strerror (err));
      return FALSE;
    }
  gboolean ok = func (out, data, error);
  if (ok && (fflush (out) != 0 || ferror (out) || fsync (fileno (out)) != 0))
    {
      ok = FALSE;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: write failed: %s", path,
                   g_strerror (errno));
    }
  if (fclose (out) != 0 && ok)
    {
      ok = FALSE;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: write failed: %s", path,
                   g_strerror (errno));
    }
  if (ok && g_rename (tmp, path) != 0)
    {
      ok = FALSE;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot rename the output into place: %s",
                   path, g_strerror (errno));
    }
  if (!ok)
    g_unlink (tmp);
  return ok;
}

static gboolean
write_string (FILE *out, gpointer data, GError **error)
{
  const char *text = data;
  size_t n = strlen (text);
  return fwrite (text, 1, n, out) == n;
}

gboolean
msim_write_string_atomic (const char *path, const char *text, GError **error)
{
  return msim_write_file_atomic (path, write_string, (gpointer)text, error);
}

MsimTrace *
msim_analysis_trace_concat (MsimTrace *const *traces, const char *const *names, guint n,
                            GError **error)
{
  g_return_val_if_fail (n > 0, NULL);
  const MsimTrace *t0 = traces[0];
  gsize tokens = 0;
  guint experts = 0;
  MsimTraceFlags flags = MSIM_TRACE_SEQUENCES | (t0->flags & MSIM_TRACE_WEIGHTS);
  for (guint i = 0; i < n; i++)
    {
      const MsimTrace *t = traces[i];
      if (t->layers != t0->layers || t->k != t0->k)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: %u layers x top-%u does not match %s (%u layers x top-%u)", names[i],
                       t->layers, t->k, names[0], t0->layers, t0->k);
          return NULL;
        }
      if (!(t->flags & MSIM_TRACE_WEIGHTS))
        flags &= ~MSIM_TRACE_WEIGHTS;
      tokens += t->tokens;
      experts = MAX (experts, t->experts);
    }
  MsimTrace *out = msim_trace_new (tokens, t0->layers, t0->k, experts, flags, error);
  if (out == NULL)
    return NULL;
  gsize base = 0;
  guint32 seq_base = 0;
  for (guint i = 0; i < n; i++)
    {
      const MsimTrace *t = traces[i];
      for (guint l = 0; l < t->layers; l++)
        {
          memcpy (msim_trace_row_mut (out, base, l), msim_trace_layer_ids (t, l),
                  t->tokens * t->k * sizeof (MsimExpertId));
          if (flags & MSIM_TRACE_WEIGHTS)
            for (gsize x = 0; x < t->tokens; x++)
              for (guint r = 0; r < t->k; r++)
                msim_trace_set_weight (out, base + x, l, r, msim_trace_weight (t, x, l, r));
        }
      guint32 max_seq = 0;
      for (gsize x = 0; x < t->tokens; x++)
        {
          guint32 s = msim_trace_sequence (t, x);
          max_seq = MAX (max_seq, s);
          msim_trace_set_sequence (out, base + x, seq_base + s, msim_trace_position (t, x));
        }
      seq_base += max_seq + 1;
      base += t->tokens;
    }
  return out;
}

MsimTrace *
msim_analysis_load_traces (const char *const *paths, guint experts, GError **error)
{
  guint n = paths ? g_strv_length ((char **)paths) : 0;
  if (n == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "no trace given");
      return NULL;
    }
  g_autoptr (GPtrArray) traces = g_ptr_array_new_with_free_func ((GDestroyNotify)msim_trace_free);
  for (guint i = 0; i < n; i++)
    {
      MsimTrace *t = msim_trace_load (paths[i], error);
      if (t == NULL)
        return NULL;
      g_ptr_array_add (traces, t);
      if (experts > 0 && experts != t->experts)
        {
          g_autoptr (GError) local = NULL;
          if (experts > MSIM_TRACE_MAX_EXPERTS || !msim_trace_set_experts (t, experts, &local))
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: --experts %u: %s", paths[i],
                           experts, local ? local->message : "too many experts");
              return NULL;
            }
        }
    }
  if (n == 1)
    return g_ptr_array_steal_index (traces, 0);
  return msim_analysis_trace_concat ((MsimTrace *const *)traces->pdata, paths, n, error);
}
