#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "msim-error.h"
#include "trace-private.h"

/* C11 atomics rather than a GMutex: the limit is read on every trace
 * allocation from any thread and written once at start-up. */
static _Atomic guint64 memory_limit = MSIM_TRACE_DEFAULT_MEMORY_LIMIT;

void
msim_trace_set_memory_limit (guint64 bytes)
{
  atomic_store (&memory_limit, bytes);
}

guint64
msim_trace_get_memory_limit (void)
{
  return atomic_load (&memory_limit);
}

gboolean
msim_trace_bytes_needed (guint64 tokens, guint64 layers, guint64 k, MsimTraceFlags flags,
                         guint64 *bytes)
{
  guint64 cells, ids, total;
  if (!g_uint64_checked_mul (&cells, tokens, layers) || !g_uint64_checked_mul (&cells, cells, k)
      || !g_uint64_checked_mul (&ids, cells, sizeof (MsimExpertId)))
    return FALSE;
  total = ids;
  if (flags & MSIM_TRACE_WEIGHTS)
    {
      guint64 w;
      if (!g_uint64_checked_mul (&w, cells, sizeof (float))
          || !g_uint64_checked_add (&total, total, w))
        return FALSE;
    }
  if (flags & MSIM_TRACE_SEQUENCES)
    {
      guint64 s;
      if (!g_uint64_checked_mul (&s, tokens, 2 * sizeof (guint32))
          || !g_uint64_checked_add (&total, total, s))
        return FALSE;
    }
  *bytes = total;
  return TRUE;
}

static gboolean
check_shape (const char *name, guint64 tokens, guint64 layers, guint64 k, guint64 experts,
             MsimTraceFlags flags, GError **error)
{
  if (tokens == 0 || layers == 0 || k == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: empty trace (%" G_GUINT64_FORMAT " tokens x %" G_GUINT64_FORMAT
                   " layers x k=%" G_GUINT64_FORMAT "): every dimension must be at least 1",
                   name, tokens, layers, k);
      return FALSE;
    }
  if (experts == 0 || experts > MSIM_TRACE_MAX_EXPERTS)
    {
      g_set_error (error, MSIM_ERROR, experts ? MSIM_ERROR_LIMIT : MSIM_ERROR_INPUT,
                   "%s: %" G_GUINT64_FORMAT " experts per layer; moesim supports 1..%u", name,
                   experts, MSIM_TRACE_MAX_EXPERTS);
      return FALSE;
    }
  if (layers > G_MAXUINT || k > G_MAXUINT)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%s: %" G_GUINT64_FORMAT " layers x k=%" G_GUINT64_FORMAT
                   " is beyond what moesim supports",
                   name, layers, k);
      return FALSE;
    }
  guint64 bytes = 0, limit = msim_trace_get_memory_limit ();
  gboolean fits = msim_trace_bytes_needed (tokens, layers, k, flags, &bytes);
  if (!fits || bytes > limit || bytes > G_MAXSIZE)
    {
      g_autofree char *need
          = fits ? msim_trace_format_size (bytes) : g_strdup ("more than 2^64 bytes");
      g_autofree char *lim = msim_trace_format_size (limit);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%s: a trace of %" G_GUINT64_FORMAT " tokens x %" G_GUINT64_FORMAT
                   " layers x k=%" G_GUINT64_FORMAT
                   " needs %s, above the trace memory limit of %s (raise it with "
                   "--memory-limit, or convert the trace to the memory-mapped .mtr format)",
                   name, tokens, layers, k, need, lim);
      return FALSE;
    }
  return TRUE;
}

static MsimTrace *
trace_struct (gsize tokens, guint layers, guint k, guint experts, MsimTraceFlags flags)
{
  MsimTrace *t = g_new0 (MsimTrace, 1);
  t->tokens = tokens;
  t->layers = layers;
  t->k = k;
  t->experts = experts;
  t->flags = flags;
  return t;
}

MsimTrace *
msim_trace_alloc (const char *name, gsize tokens, guint layers, guint k, guint experts,
                  MsimTraceFlags flags, GError **error)
{
  g_return_val_if_fail ((flags & ~MSIM_TRACE_ALL_FLAGS) == 0, NULL);
  if (!check_shape (name, tokens, layers, k, experts, flags, error))
    return NULL;
  g_autoptr (MsimTrace) t = trace_struct (tokens, layers, k, experts, flags);
  gsize cells = tokens * layers * k; /* no overflow: checked above */
  /* One block for all arrays keeps the trace a single allocation to free
   * and lets g_try_malloc report failure instead of aborting. */
  gsize ids_bytes = cells * sizeof (MsimExpertId);
  gsize w_off = (ids_bytes + 7) & ~(gsize)7;
  gsize w_bytes = (flags & MSIM_TRACE_WEIGHTS) ? cells * sizeof (float) : 0;
  gsize s_off = (w_off + w_bytes + 7) & ~(gsize)7;
  gsize s_bytes = (flags & MSIM_TRACE_SEQUENCES) ? tokens * sizeof (guint32) : 0;
  guint8 *block = g_try_malloc (s_off + 2 * s_bytes);
  if (block == NULL)
    {
      g_autofree char *need = msim_trace_format_size (s_off + 2 * s_bytes);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT, "%s: cannot allocate %s for the trace",
                   name, need);
      return NULL;
    }
  t->storage = block;
  t->ids = (MsimExpertId *)block;
  memset (t->ids, 0xff, ids_bytes); /* -1 = unset */
  if (flags & MSIM_TRACE_WEIGHTS)
    {
      t->weights = (float *)(block + w_off);
      memset (t->weights, 0, w_bytes);
    }
  if (flags & MSIM_TRACE_SEQUENCES)
    {
      t->sequences = (guint32 *)(block + s_off);
      t->positions = (guint32 *)(block + s_off + s_bytes);
      memset (t->sequences, 0, s_bytes);
      for (gsize i = 0; i < tokens; i++)
        t->positions[i] = (guint32)i;
    }
  return g_steal_pointer (&t);
}

MsimTrace *
msim_trace_new (gsize tokens, guint layers, guint k, guint experts, MsimTraceFlags flags,
                GError **error)
{
  return msim_trace_alloc ("trace", tokens, layers, k, experts, flags, error);
}

MsimTrace *
msim_trace_new_mapped (GMappedFile *mapping, gsize tokens, guint layers, guint k, guint experts,
                       MsimTraceFlags flags)
{
  MsimTrace *t = trace_struct (tokens, layers, k, experts, flags);
  t->storage = mapping;
  t->mapped = TRUE;
  return t;
}

void
msim_trace_free (MsimTrace *trace)
{
  if (trace == NULL)
    return;
  if (trace->mapped)
    g_mapped_file_unref (trace->storage);
  else
    g_free (trace->storage);
  g_free (trace);
}

gboolean
msim_trace_is_mapped (const MsimTrace *trace)
{
  g_return_val_if_fail (trace != NULL, FALSE);
  return trace->mapped;
}

void
msim_trace_set_expert (MsimTrace *trace, gsize token, guint layer, guint rank, int expert)
{
  g_return_if_fail (trace != NULL);
  g_return_if_fail (token < trace->tokens && layer < trace->layers && rank < trace->k);
  g_return_if_fail ((expert >= 0 && (guint)expert < trace->experts)
                    || (expert == MSIM_EXPERT_NONE && (trace->flags & MSIM_TRACE_DROPS)));
  msim_trace_row_mut (trace, token, layer)[rank] = (MsimExpertId)expert;
}

void
msim_trace_set_weight (MsimTrace *trace, gsize token, guint layer, guint rank, float weight)
{
  g_return_if_fail (trace != NULL && trace->weights != NULL);
  g_return_if_fail (token < trace->tokens && layer < trace->layers && rank < trace->k);
  trace->weights[((gsize)layer * trace->tokens + token) * trace->k + rank] = weight;
}

void
msim_trace_set_sequence (MsimTrace *trace, gsize token, guint32 sequence, guint32 position)
{
  g_return_if_fail (trace != NULL && trace->sequences != NULL);
  g_return_if_fail (token < trace->tokens);
  trace->sequences[token] = sequence;
  trace->positions[token] = position;
}

int
msim_trace_max_expert (const MsimTrace *trace)
{
  g_return_val_if_fail (trace != NULL, -1);
  gsize n = trace->tokens * trace->layers * trace->k;
  gboolean drops = (trace->flags & MSIM_TRACE_DROPS) != 0;
  int max = drops ? -1 : 0;
  for (gsize i = 0; i < n; i++)
    {
      int e = trace->ids[i];
      if (e < 0 && !drops)
        return -1;
      max = MAX (max, e);
    }
  return max;
}

gboolean
msim_trace_set_experts (MsimTrace *trace, guint experts, GError **error)
{
  g_return_val_if_fail (trace != NULL, FALSE);
  if (experts == 0 || experts > MSIM_TRACE_MAX_EXPERTS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%u experts per layer; moesim supports 1..%u", experts, MSIM_TRACE_MAX_EXPERTS);
      return FALSE;
    }
  gsize n = trace->tokens * trace->layers * trace->k;
  for (gsize i = 0; i < n; i++)
    if (trace->ids[i] >= 0 && (guint)trace->ids[i] >= experts)
      {
        gsize layer = i / (trace->tokens * trace->k);
        gsize token = (i / trace->k) % trace->tokens;
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "token %" G_GSIZE_FORMAT ", layer %" G_GSIZE_FORMAT
                     " routes to expert %d, which does not exist with %u experts",
                     token, layer, trace->ids[i], experts);
        return FALSE;
      }
  trace->experts = experts;
  return TRUE;
}

gboolean
msim_trace_validate (const MsimTrace *trace, const char *name, GError **error)
{
  g_return_val_if_fail (trace != NULL, FALSE);
  gsize per_layer = trace->tokens * trace->k;
  gsize n = per_layer * trace->layers;
  int lowest = (trace->flags & MSIM_TRACE_DROPS) ? MSIM_EXPERT_NONE : 0;
  for (gsize i = 0; i < n; i++)
    {
      int e = trace->ids[i];
      gboolean bad_id = e < lowest || (e >= 0 && (guint)e >= trace->experts);
      gboolean bad_w = trace->weights && !isfinite (trace->weights[i]);
      if (G_LIKELY (!bad_id && !bad_w))
        continue;
      gsize layer = i / per_layer, token = (i % per_layer) / trace->k, rank = i % trace->k;
      if (bad_id)
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: token %" G_GSIZE_FORMAT ", layer %" G_GSIZE_FORMAT
                     ", rank %" G_GSIZE_FORMAT ": expert id %d is %s",
                     name, token, layer, rank, e,
                     e < 0 ? "negative (unset)" : "not below the number of experts");
      else
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: token %" G_GSIZE_FORMAT ", layer %" G_GSIZE_FORMAT
                     ", rank %" G_GSIZE_FORMAT ": gate weight is not finite",
                     name, token, layer, rank);
      return FALSE;
    }
  return TRUE;
}

gboolean
msim_trace_equal (const MsimTrace *a, const MsimTrace *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);
  if (a->tokens != b->tokens || a->layers != b->layers || a->k != b->k || a->experts != b->experts
      || a->flags != b->flags)
    return FALSE;
  gsize cells = a->tokens * a->layers * a->k;
  if (memcmp (a->ids, b->ids, cells * sizeof (MsimExpertId)) != 0)
    return FALSE;
  if (a->weights && memcmp (a->weights, b->weights, cells * sizeof (float)) != 0)
    return FALSE;
  if (a->sequences
      && (memcmp (a->sequences, b->sequences, a->tokens * sizeof (guint32)) != 0
          || memcmp (a->positions, b->positions, a->tokens * sizeof (guint32)) != 0))
    return FALSE;
  return TRUE;
}

void
msim_trace_count_layer (const MsimTrace *trace, guint layer, guint64 *load, guint64 *top1)
{
  g_return_if_fail (trace != NULL && layer < trace->layers);
  if (load)
    memset (load, 0, trace->experts * sizeof *load);
  if (top1)
    memset (top1, 0, trace->experts * sizeof *top1);
  const MsimExpertId *ids = msim_trace_layer_ids (trace, layer);
  for (gsize tok = 0; tok < trace->tokens; tok++, ids += trace->k)
    for (guint r = 0; r < trace->k; r++)
      {
        int e = ids[r];
        if (e < 0 || (guint)e >= trace->experts)
          continue;
        if (load)
          load[e]++;
        if (top1 && r == 0)
          top1[e]++;
      }
}

/* ------------------------------------------------------------------ */
/* Formats                                                              */
/* ------------------------------------------------------------------ */

static const char *const format_names[] = { "auto", "npy", "csv", "json", "mtr" };

const char *
msim_trace_format_name (MsimTraceFormat format)
{
  g_return_val_if_fail ((guint)format < G_N_ELEMENTS (format_names), "?");
  return format_names[format];
}

gboolean
msim_trace_format_parse (const char *name, MsimTraceFormat *format)
{
  g_return_val_if_fail (name != NULL && format != NULL, FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (format_names); i++)
    if (g_ascii_strcasecmp (name, format_names[i]) == 0)
      {
        *format = (MsimTraceFormat)i;
        return TRUE;
      }
  if (g_ascii_strcasecmp (name, "native") == 0)
    {
      *format = MSIM_TRACE_FORMAT_NATIVE;
      return TRUE;
    }
  return FALSE;
}

MsimTraceFormat
msim_trace_format_from_path (const char *path)
{
  g_return_val_if_fail (path != NULL, MSIM_TRACE_FORMAT_AUTO);
  const char *dot = strrchr (path, '.');
  const char *slash = strrchr (path, G_DIR_SEPARATOR);
  if (dot == NULL || (slash != NULL && dot < slash))
    return MSIM_TRACE_FORMAT_AUTO;
  for (guint i = 1; i < G_N_ELEMENTS (format_names); i++)
    if (g_ascii_strcasecmp (dot + 1, format_names[i]) == 0)
      return (MsimTraceFormat)i;
  return MSIM_TRACE_FORMAT_AUTO;
}

MsimTraceFlags
msim_trace_format_flags (MsimTraceFormat format)
{
  switch (format)
    {
      case MSIM_TRACE_FORMAT_CSV:
        return MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES;
      case MSIM_TRACE_FORMAT_NATIVE:
        return MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES | MSIM_TRACE_DROPS;
      case MSIM_TRACE_FORMAT_AUTO:
      case MSIM_TRACE_FORMAT_NPY:
      case MSIM_TRACE_FORMAT_JSON:
      default:
        return MSIM_TRACE_NONE;
    }
}

#define NPY_MAGIC    "\x93NUMPY"
#define NATIVE_MAGIC "\x89MTRACE\n"

/* Content first: a file's bytes do not lie about being NumPy or native the
 * way a renamed file's extension can.  Text formats have no magic; JSON
 * starts with '{' and CSV is recognised by extension or its header. */
static MsimTraceFormat
sniff (const guint8 *data, gsize length, const char *name)
{
  if (length >= 6 && memcmp (data, NPY_MAGIC, 6) == 0)
    return MSIM_TRACE_FORMAT_NPY;
  if (length >= 8 && memcmp (data, NATIVE_MAGIC, 8) == 0)
    return MSIM_TRACE_FORMAT_NATIVE;
  MsimTraceFormat by_name = msim_trace_format_from_path (name);
  gsize i = 0;
  if (length >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0)
    i = 3;
  while (i < length && g_ascii_isspace (data[i]))
    i++;
  if (i < length && data[i] == '{')
    return MSIM_TRACE_FORMAT_JSON;
  if (by_name != MSIM_TRACE_FORMAT_AUTO)
    return by_name;
  if (length - i >= 5 && g_ascii_strncasecmp ((const char *)data + i, "token", 5) == 0)
    return MSIM_TRACE_FORMAT_CSV;
  return MSIM_TRACE_FORMAT_AUTO;
}

static MsimTrace *
read_any (const guint8 *data, gsize length, GMappedFile *mapping, const char *name,
          MsimTraceFormat format, GError **error)
{
  if (length == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: empty file, expected a routing trace",
                   name);
      return NULL;
    }
  if (format == MSIM_TRACE_FORMAT_AUTO)
    format = sniff (data, length, name);
  switch (format)
    {
      case MSIM_TRACE_FORMAT_NPY:
        return msim_trace_read_npy (data, length, name, error);
      case MSIM_TRACE_FORMAT_CSV:
        return msim_trace_read_csv (data, length, name, error);
      case MSIM_TRACE_FORMAT_JSON:
        return msim_trace_read_json (data, length, name, error);
      case MSIM_TRACE_FORMAT_NATIVE:
        return msim_trace_read_native (data, length, mapping, name, error);
      case MSIM_TRACE_FORMAT_AUTO:
      default:
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: cannot tell the trace format: not NumPy or moesim .mtr (no magic), not "
                     "JSON (no '{'), not CSV (no .csv extension or 'token,...' header); name the "
                     "format explicitly (--format)",
                     name);
        return NULL;
    }
}

MsimTrace *
msim_trace_load_format (const char *path, MsimTraceFormat format, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: is a directory, expected a trace file",
                   path);
      return NULL;
    }
  /* A FIFO or device would block in open() or never end: refuse anything
   * but a regular file (checked on the descriptor below, against races). */
  int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  /* A private writable mapping of a read-only descriptor: pages are shared
   * with the page cache until written, and writes (a router editing a loaded
   * trace) go to private copies, never to the file.  g_mapped_file_new
   * (path, TRUE) would open the file O_RDWR and fail on read-only traces. */
  int fd = g_open (path, flags, 0);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot open: %s", path,
                   g_strerror (saved));
      return NULL;
    }
  struct stat st;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: not a regular file", path);
      return NULL;
    }
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) mapping = g_mapped_file_new_from_fd (fd, TRUE, &local);
  close (fd);
  if (mapping == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot read: %s", path, local->message);
      return NULL;
    }
  const guint8 *data = (const guint8 *)g_mapped_file_get_contents (mapping);
  gsize length = g_mapped_file_get_length (mapping);
  return read_any (data, length, mapping, path, format, error);
}

MsimTrace *
msim_trace_load (const char *path, GError **error)
{
  return msim_trace_load_format (path, MSIM_TRACE_FORMAT_AUTO, error);
}

MsimTrace *
msim_trace_load_data (const void *data, gsize length, const char *name, MsimTraceFormat format,
                      GError **error)
{
  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return read_any (data, length, NULL, name, format, error);
}

gboolean
msim_trace_save (const MsimTrace *trace, const char *path, MsimTraceFormat format, GError **error)
{
  g_return_val_if_fail (trace != NULL && path != NULL, FALSE);
  if (format == MSIM_TRACE_FORMAT_AUTO)
    format = msim_trace_format_from_path (path);
  if (format == MSIM_TRACE_FORMAT_AUTO)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: cannot tell the output format from the extension (use .npy, .csv, .json "
                   "or .mtr, or name the format)",
                   path);
      return FALSE;
    }
  /* A writer would otherwise serialise -1 for unset cells, which every
   * reader then rejects: fail here, before the output exists. */
  g_autofree char *what = g_strdup_printf ("%s: cannot save", path);
  if (!msim_trace_validate (trace, what, error))
    return FALSE;
  if ((trace->flags & MSIM_TRACE_DROPS) && !(msim_trace_format_flags (format) & MSIM_TRACE_DROPS))
    {
      gsize per_layer = trace->tokens * trace->k, n = per_layer * trace->layers;
      for (gsize i = 0; i < n; i++)
        if (trace->ids[i] < 0)
          {
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "%s: token %" G_GSIZE_FORMAT ", layer %" G_GSIZE_FORMAT
                         ": the trace has dropped or unused assignments (expert -1), which only "
                         "the .mtr format stores; save it as .mtr",
                         what, (i % per_layer) / trace->k, i / per_layer);
            return FALSE;
          }
    }
  MsimTraceOut *out = msim_trace_out_open (path, error);
  if (out == NULL)
    return FALSE;
  gboolean ok = FALSE;
  switch (format)
    {
      case MSIM_TRACE_FORMAT_NPY:
        ok = msim_trace_write_npy (trace, out, error);
        break;
      case MSIM_TRACE_FORMAT_CSV:
        ok = msim_trace_write_csv (trace, out, error);
        break;
      case MSIM_TRACE_FORMAT_JSON:
        ok = msim_trace_write_json (trace, out, error);
        break;
      case MSIM_TRACE_FORMAT_NATIVE:
        ok = msim_trace_write_native (trace, out, error);
        break;
      case MSIM_TRACE_FORMAT_AUTO:
      default:
        g_assert_not_reached ();
    }
  if (!ok)
    {
      msim_trace_out_abort (out);
      return FALSE;
    }
  return msim_trace_out_commit (out, error);
}
