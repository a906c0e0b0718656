/* Several traces as one: concatenation (for fitting a placement on several
 * trace files, e.g. one per prompt set). */
#include <string.h>

#include "msim-error.h"
#include "trace.h"

MsimTrace *
msim_trace_concat (MsimTrace *const *traces, const char *const *names, guint n, GError **error)
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
      flags |= t->flags & MSIM_TRACE_DROPS;
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
msim_trace_load_files (const char *const *paths, guint experts, GError **error)
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
  return msim_trace_concat ((MsimTrace *const *)traces->pdata, paths, n, error);
}
