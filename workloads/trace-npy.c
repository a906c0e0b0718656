/* NumPy .npy routing traces: [T, L] (k = 1) or [T, L, k] integer arrays,
 * the form ExFlow and vLLM users dump with np.save.
 *
 * File layout (numpy.lib.format): "\x93NUMPY", major, minor, a header
 * length (u16 LE for v1, u32 LE for v2/v3), then a Python dict literal
 * {'descr': '<i4', 'fortran_order': False, 'shape': (T, L, k), } padded with
 * spaces to a newline, then the raw data.  The header is parsed by a small
 * literal reader, not evaluated: it accepts exactly the three keys numpy
 * writes, and every rejection names the byte offset. */
#include <math.h>
#include <string.h>

#include "trace-private.h"

#define NPY_PREAMBLE_V1 10
#define NPY_PREAMBLE_V2 12
/* numpy itself refuses headers above 10 KB unless told otherwise; a larger
 * one here is a corrupt length field. */
#define NPY_MAX_HEADER (1u << 20)

typedef struct
{
  const guint8 *data;
  gsize length;
  gsize pos, end; /* header text is data[pos..end) */
  const char *name;
  GError **error;
} Hdr;

static gboolean G_GNUC_PRINTF (3, 4) hdr_fail (Hdr *h, gsize offset, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (h->error, MSIM_ERROR, MSIM_ERROR_INPUT,
               "%s: byte %" G_GSIZE_FORMAT ": npy header: %s", h->name, offset, msg);
  return FALSE;
}

static void
hdr_ws (Hdr *h)
{
  while (h->pos < h->end
         && (h->data[h->pos] == ' ' || h->data[h->pos] == '\t' || h->data[h->pos] == '\n'
             || h->data[h->pos] == '\r'))
    h->pos++;
}

static gboolean
hdr_expect (Hdr *h, char c)
{
  hdr_ws (h);
  if (h->pos < h->end && h->data[h->pos] == c)
    {
      h->pos++;
      return TRUE;
    }
  return hdr_fail (h, h->pos, "expected '%c'", c);
}

/* A quoted Python string without escapes (numpy never writes any). */
static gboolean
hdr_string (Hdr *h, char *buf, gsize size)
{
  hdr_ws (h);
  gsize start = h->pos;
  if (h->pos >= h->end || (h->data[h->pos] != '\'' && h->data[h->pos] != '"'))
    return hdr_fail (h, start, "expected a quoted string");
  char quote = (char)h->data[h->pos++];
  gsize n = 0;
  while (h->pos < h->end && h->data[h->pos] != quote)
    {
      /* numpy writes plain ASCII here; other bytes would also end up in
       * messages (unexpected key '...'), which must stay valid UTF-8. */
      guint8 ch = h->data[h->pos];
      if (ch == '\\' || ch < 0x20 || ch >= 0x7f || n + 1 >= size)
        return hdr_fail (h, start,
                         "unsupported string (escapes, bytes other than printable ASCII, or "
                         "longer than %" G_GSIZE_FORMAT " bytes)",
                         size - 1);
      buf[n++] = (char)h->data[h->pos++];
    }
  if (h->pos >= h->end)
    return hdr_fail (h, start, "unterminated string");
  h->pos++;
  buf[n] = '\0';
  return TRUE;
}

static gboolean
hdr_word (Hdr *h, const char *word)
{
  gsize n = strlen (word);
  if (h->end - h->pos >= n && memcmp (h->data + h->pos, word, n) == 0)
    {
      h->pos += n;
      return TRUE;
    }
  return FALSE;
}

/* (d0, d1, ...) with non-negative integers; a trailing comma is allowed and
 * Python 2's long suffix 'L' is accepted (old numpy wrote it). */
static gboolean
hdr_shape (Hdr *h, guint64 *dims, int *ndim)
{
  hdr_ws (h);
  gsize start = h->pos;
  if (!hdr_expect (h, '('))
    return FALSE;
  *ndim = 0;
  for (;;)
    {
      hdr_ws (h);
      if (h->pos < h->end && h->data[h->pos] == ')')
        {
          h->pos++;
          return TRUE;
        }
      gsize num_start = h->pos;
      guint64 v = 0;
      gboolean any = FALSE;
      while (h->pos < h->end && g_ascii_isdigit (h->data[h->pos]))
        {
          guint d = h->data[h->pos++] - '0';
          if (v > (G_MAXUINT64 - d) / 10)
            return hdr_fail (h, num_start, "shape dimension does not fit in 64 bits");
          v = v * 10 + d;
          any = TRUE;
        }
      if (!any)
        return hdr_fail (h, num_start, "expected a non-negative integer in the shape");
      if (h->pos < h->end && h->data[h->pos] == 'L')
        h->pos++;
      if (*ndim == 8)
        return hdr_fail (h, start, "shape has more than 8 dimensions");
      dims[(*ndim)++] = v;
      hdr_ws (h);
      if (h->pos < h->end && h->data[h->pos] == ',')
        h->pos++;
      else if (h->pos >= h->end || h->data[h->pos] != ')')
        return hdr_fail (h, h->pos, "expected ',' or ')' in the shape");
    }
}

typedef struct
{
  guint size; /* bytes per element: 1, 2, 4, 8 */
  gboolean is_signed;
  gboolean swap; /* file byte order differs from little endian */
} Dtype;

/* @want_float: the caller reads a float32/float64 matrix (router weights)
 * rather than integer expert ids; each kind's message says what is wrong. */
static gboolean
parse_descr (Hdr *h, gsize offset, const char *descr, gboolean want_float, char *kind_out,
             Dtype *dt)
{
  char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return hdr_fail (h, offset, "dtype '%s': expected a byte-order character (<, >, |, =)", descr);
  char kind = descr[1];
  const char *size_text = descr + 2;
  if (want_float)
    {
      gboolean f4 = kind == 'f' && strcmp (size_text, "4") == 0;
      gboolean f8 = kind == 'f' && strcmp (size_text, "8") == 0;
      if (!f4 && !f8)
        return hdr_fail (h, offset,
                         "dtype '%s': expected float32 ('<f4') or float64 ('<f8') weights", descr);
      dt->size = f4 ? 4 : 8;
      dt->is_signed = TRUE;
      gboolean big_f = order == '>' || (order == '=' && G_BYTE_ORDER == G_BIG_ENDIAN);
      if (order == '|')
        return hdr_fail (h, offset,
                         "dtype '%s': '|' (no byte order) is only valid for 1-byte "
                         "types",
                         descr);
      dt->swap = big_f;
      *kind_out = 'f';
      return TRUE;
    }
  switch (kind)
    {
      case 'i':
      case 'u':
        break;
      case 'f':
      case 'c':
        return hdr_fail (h, offset,
                         "dtype '%s' is floating point; expert ids must be an integer array "
                         "(np.save (path, ids.astype (np.int32)))",
                         descr);
      case 'O':
        return hdr_fail (h, offset,
                         "dtype '%s' is an object array (pickled Python objects), which moesim "
                         "does not read; save an integer array",
                         descr);
      case 'b':
        return hdr_fail (h, offset, "dtype '%s' is boolean, not expert ids", descr);
      case 'S':
      case 'U':
      case 'a':
        return hdr_fail (h, offset, "dtype '%s' is a string array, not expert ids", descr);
      default:
        return hdr_fail (h, offset,
                         "dtype '%s' is not supported (expected int8/16/32/64 or "
                         "uint8/16/32/64)",
                         descr);
    }
  if (strcmp (size_text, "1") == 0)
    dt->size = 1;
  else if (strcmp (size_text, "2") == 0)
    dt->size = 2;
  else if (strcmp (size_text, "4") == 0)
    dt->size = 4;
  else if (strcmp (size_text, "8") == 0)
    dt->size = 8;
  else
    return hdr_fail (h, offset, "dtype '%s': integer size must be 1, 2, 4 or 8 bytes", descr);
  if (order == '|' && dt->size != 1)
    return hdr_fail (h, offset, "dtype '%s': '|' (no byte order) is only valid for 1-byte types",
                     descr);
  dt->is_signed = kind == 'i';
  gboolean big = order == '>' || (order == '=' && G_BYTE_ORDER == G_BIG_ENDIAN);
  dt->swap = big && dt->size > 1;
  *kind_out = kind;
  return TRUE;
}

/* One element as a signed 64-bit value; uint64 above 2^63 saturates,
 * which the range check then rejects like any other huge id. */
static inline gint64
load_elem (const guint8 *p, const Dtype *dt)
{
  guint8 b[8];
  if (dt->swap)
    {
      for (guint i = 0; i < dt->size; i++)
        b[i] = p[dt->size - 1 - i];
      p = b;
    }
  switch (dt->size)
    {
      case 1:
        return dt->is_signed ? (gint64)(gint8)p[0] : (gint64)p[0];
      case 2:
        {
          guint16 v = msim_load_le16 (p);
          return dt->is_signed ? (gint64)(gint16)v : (gint64)v;
        }
      case 4:
        {
          guint32 v = msim_load_le32 (p);
          return dt->is_signed ? (gint64)(gint32)v : (gint64)v;
        }
      default:
        {
          guint64 v = msim_load_le64 (p);
          if (dt->is_signed)
            return (gint64)v;
          return v > (guint64)G_MAXINT64 ? G_MAXINT64 : (gint64)v;
        }
    }
}

static gboolean
truncated_preamble (const char *name, gsize length, guint major, int need, GError **error)
{
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
               "%s: byte %" G_GSIZE_FORMAT ": truncated npy preamble (%" G_GSIZE_FORMAT
               " bytes, version %u needs %d)",
               name, length, length, major, need);
  return FALSE;
}

gboolean
msim_npy_parse_header (const guint8 *data, gsize length, const char *name, gboolean want_float,
                       MsimNpyHeader *out, GError **error)
{
  Hdr h = { data, length, 0, 0, name, error };
  if (length < 8 || memcmp (data, "\x93NUMPY", 6) != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: byte 0: not a NumPy .npy file (missing the \\x93NUMPY magic)", name);
      return FALSE;
    }
  guint major = data[6], minor = data[7];
  gsize preamble, header_len;
  if (major == 1)
    {
      if (length < NPY_PREAMBLE_V1)
        return truncated_preamble (name, length, major, NPY_PREAMBLE_V1, error);
      preamble = NPY_PREAMBLE_V1;
      header_len = msim_load_le16 (data + 8);
    }
  else if (major == 2 || major == 3)
    {
      if (length < NPY_PREAMBLE_V2)
        return truncated_preamble (name, length, major, NPY_PREAMBLE_V2, error);
      preamble = NPY_PREAMBLE_V2;
      header_len = msim_load_le32 (data + 8);
    }
  else
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: byte 6: npy format version %u.%u is not supported (1.0, 2.0, 3.0 are)",
                   name, major, minor);
      return FALSE;
    }
  if (header_len > NPY_MAX_HEADER || header_len > length - preamble)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: byte 8: npy header length %" G_GSIZE_FORMAT
                   " runs past the end of the file (%" G_GSIZE_FORMAT " bytes): truncated or "
                   "corrupt",
                   name, header_len, length);
      return FALSE;
    }
  h.pos = preamble;
  h.end = preamble + header_len;

  /* The dict: exactly descr, fortran_order and shape, in any order. */
  Dtype dt = { 0 };
  char kind = 0;
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE, fortran = FALSE;
  guint64 dims[8];
  int ndim = 0;
  gsize shape_at = 0;
  if (!hdr_expect (&h, '{'))
    return FALSE;
  for (;;)
    {
      hdr_ws (&h);
      if (h.pos < h.end && h.data[h.pos] == '}')
        {
          h.pos++;
          break;
        }
      char key[32];
      gsize key_at = h.pos;
      if (!hdr_string (&h, key, sizeof key) || !hdr_expect (&h, ':'))
        return FALSE;
      hdr_ws (&h);
      gsize val_at = h.pos;
      if (strcmp (key, "descr") == 0)
        {
          if (h.pos < h.end && h.data[h.pos] == '[')
            return hdr_fail (&h, val_at,
                             "structured dtype (a list of fields) is not supported; "
                             "save a plain %s array",
                             want_float ? "float" : "integer");
          char descr[16];
          if (!hdr_string (&h, descr, sizeof descr)
              || !parse_descr (&h, val_at, descr, want_float, &kind, &dt))
            return FALSE;
          have_descr = TRUE;
        }
      else if (strcmp (key, "fortran_order") == 0)
        {
          if (hdr_word (&h, "True"))
            fortran = TRUE;
          else if (hdr_word (&h, "False"))
            fortran = FALSE;
          else
            return hdr_fail (&h, val_at, "fortran_order must be True or False");
          have_order = TRUE;
        }
      else if (strcmp (key, "shape") == 0)
        {
          shape_at = val_at;
          if (!hdr_shape (&h, dims, &ndim))
            return FALSE;
          have_shape = TRUE;
        }
      else
        return hdr_fail (&h, key_at, "unexpected key '%s'", key);
      hdr_ws (&h);
      if (h.pos < h.end && h.data[h.pos] == ',')
        h.pos++;
      else if (h.pos >= h.end || h.data[h.pos] != '}')
        return hdr_fail (&h, h.pos, "expected ',' or '}'");
    }
  hdr_ws (&h);
  if (h.pos != h.end)
    return hdr_fail (&h, h.pos, "unexpected text after the header dict");
  if (!have_descr || !have_order || !have_shape)
    return hdr_fail (&h, preamble, "missing key '%s'",
                     !have_descr   ? "descr"
                     : !have_order ? "fortran_order"
                                   : "shape");
  out->kind = kind;
  out->size = dt.size;
  out->is_signed = dt.is_signed;
  out->swap = dt.swap;
  out->fortran = fortran;
  out->ndim = ndim;
  memcpy (out->dims, dims, sizeof dims);
  out->shape_offset = shape_at;
  out->data_offset = preamble + header_len;
  return TRUE;
}

MsimTrace *
msim_trace_read_npy (const guint8 *data, gsize length, const char *name, GError **error)
{
  MsimNpyHeader hd;
  if (!msim_npy_parse_header (data, length, name, FALSE, &hd, error))
    return NULL;
  Dtype dt = { hd.size, hd.is_signed, hd.swap };
  gboolean fortran = hd.fortran;
  int ndim = hd.ndim;
  const guint64 *dims = hd.dims;
  gsize shape_at = hd.shape_offset;
  Hdr h = { data, length, 0, 0, name, error };
  if (ndim != 2 && ndim != 3)
    {
      hdr_fail (&h, shape_at,
                "a routing trace is a 2-D [tokens, layers] or 3-D [tokens, layers, k] array, "
                "this one has %d dimension%s",
                ndim, ndim == 1 ? "" : "s");
      return NULL;
    }
  guint64 tokens = dims[0], layers = dims[1], k = ndim == 3 ? dims[2] : 1;
  gsize data_at = hd.data_offset;
  gsize avail = length - data_at;
  guint64 cells = 0, data_bytes = 0;
  gboolean overflow = !g_uint64_checked_mul (&cells, tokens, layers)
                      || !g_uint64_checked_mul (&cells, cells, k)
                      || !g_uint64_checked_mul (&data_bytes, cells, dt.size);
  if (overflow || cells == 0 || data_bytes != avail)
    {
      g_autofree char *shape
          = ndim == 3 ? g_strdup_printf ("(%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                                         ", %" G_GUINT64_FORMAT ")",
                                         tokens, layers, k)
                      : g_strdup_printf ("(%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ")", tokens,
                                         layers);
      if (overflow)
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: byte %" G_GSIZE_FORMAT ": npy shape %s declares more than 2^64 bytes "
                     "of data: the header is corrupt",
                     name, shape_at, shape);
      else if (cells == 0)
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: byte %" G_GSIZE_FORMAT ": npy shape %s is empty", name, shape_at, shape);
      else if (data_bytes > avail)
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: byte %" G_GSIZE_FORMAT ": truncated: shape %s of %u-byte integers "
                     "needs %" G_GUINT64_FORMAT
                     " data bytes after the header (byte %" G_GSIZE_FORMAT
                     "), the file has %" G_GSIZE_FORMAT,
                     name, length, shape, dt.size, data_bytes, data_at, avail);
      else
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: byte %" G_GSIZE_FORMAT ": shape %s of %u-byte integers accounts for "
                     "%" G_GUINT64_FORMAT " data bytes but %" G_GSIZE_FORMAT
                     " follow the header: the header does not match the data",
                     name, data_at + (gsize)data_bytes, shape, dt.size, data_bytes, avail);
      return NULL;
    }

  /* Infer E as max id + 1 while converting; the trace is allocated with
   * the maximum and narrowed at the end (no second allocation). */
  g_autoptr (MsimTrace) t = msim_trace_alloc (name, tokens, (guint)layers, (guint)k,
                                              MSIM_TRACE_MAX_EXPERTS, MSIM_TRACE_NONE, error);
  if (t == NULL)
    return NULL;

  /* Walk the file sequentially and scatter into the layer-major trace: for
   * a file larger than the page cache, reading in file order touches each
   * page once, whereas walking the trace in its own order would re-read the
   * whole file once per layer.  C order runs (token, layer, rank) with rank
   * fastest; Fortran order (rank, layer, token) with token fastest. */
  gsize T = tokens, L = layers, K = k;
  gsize n_outer = fortran ? K : T, n_inner = fortran ? T : K;
  const guint8 *p = data + data_at;
  gint64 max = 0;
  for (gsize outer = 0; outer < n_outer; outer++)
    for (gsize layer = 0; layer < L; layer++)
      for (gsize inner = 0; inner < n_inner; inner++, p += dt.size)
        {
          gsize token = fortran ? inner : outer, rank = fortran ? outer : inner;
          gint64 v = load_elem (p, &dt);
          if (G_UNLIKELY (v < 0 || v >= (gint64)MSIM_TRACE_MAX_EXPERTS))
            {
              g_set_error (error, MSIM_ERROR, v < 0 ? MSIM_ERROR_INPUT : MSIM_ERROR_LIMIT,
                           "%s: byte %" G_GSIZE_FORMAT ": token %" G_GSIZE_FORMAT
                           ", layer %" G_GSIZE_FORMAT ", rank %" G_GSIZE_FORMAT
                           ": expert id %" G_GINT64_FORMAT " is %s",
                           name, (gsize)(p - data), token, layer, rank, v,
                           v < 0 ? "negative" : "above the largest supported id (32767)");
              return NULL;
            }
          t->ids[(layer * T + token) * K + rank] = (MsimExpertId)v;
          max = MAX (max, v);
        }
  t->experts = (guint)max + 1;
  return g_steal_pointer (&t);
}

gboolean
msim_trace_write_npy (const MsimTrace *trace, MsimTraceOut *out, GError **error)
{
  g_autofree char *dict = g_strdup_printf ("{'descr': '<i4', 'fortran_order': False, 'shape': "
                                           "(%" G_GSIZE_FORMAT ", %u, %u), }",
                                           trace->tokens, trace->layers, trace->k);
  /* numpy pads so that the data starts on a 64-byte boundary (aligned
   * loads for memory-mapped arrays); version 2.0 only when the header
   * does not fit the 16-bit length. */
  gsize dict_len = strlen (dict) + 1; /* + '\n' */
  gboolean v2 = dict_len + NPY_PREAMBLE_V1 + 63 > G_MAXUINT16;
  gsize preamble = v2 ? NPY_PREAMBLE_V2 : NPY_PREAMBLE_V1;
  gsize total = (preamble + dict_len + 63) / 64 * 64;
  gsize header_len = total - preamble;
  guint8 pre[NPY_PREAMBLE_V2];
  memcpy (pre, "\x93NUMPY", 6);
  pre[6] = v2 ? 2 : 1;
  pre[7] = 0;
  if (v2)
    msim_store_le32 (pre + 8, (guint32)header_len);
  else
    {
      pre[8] = (guint8)header_len;
      pre[9] = (guint8)(header_len >> 8);
    }
  fwrite (pre, 1, preamble, out->fp);
  fputs (dict, out->fp);
  for (gsize i = strlen (dict) + 1; i < header_len; i++)
    fputc (' ', out->fp);
  fputc ('\n', out->fp);

  /* [T, L, k] C order is token-major: a strided gather from the layer-major
   * trace into a buffer written sequentially. */
  guint8 buf[4096];
  gsize n = 0;
  for (gsize tok = 0; tok < trace->tokens; tok++)
    for (guint l = 0; l < trace->layers; l++)
      {
        const MsimExpertId *row = msim_trace_row (trace, tok, l);
        for (guint r = 0; r < trace->k; r++)
          {
            msim_store_le32 (buf + n, (guint32)(gint32)row[r]);
            n += 4;
            if (n == sizeof buf)
              {
                fwrite (buf, 1, n, out->fp);
                n = 0;
              }
          }
      }
  fwrite (buf, 1, n, out->fp);
  if (ferror (out->fp))
    {
      msim_trace_out_set_error (out, error, "writing");
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Float matrices (router weights)                                      */
/* ------------------------------------------------------------------ */

static double
load_float (const guint8 *p, const MsimNpyHeader *hd)
{
  guint8 b[8];
  if (hd->swap)
    {
      for (guint i = 0; i < hd->size; i++)
        b[i] = p[hd->size - 1 - i];
      p = b;
    }
  if (hd->size == 4)
    {
      guint32 v = msim_load_le32 (p);
      float f;
      memcpy (&f, &v, sizeof f);
      return f;
    }
  guint64 v = msim_load_le64 (p);
  double d;
  memcpy (&d, &v, sizeof d);
  return d;
}

gboolean
msim_npy_load_matrix (const char *path, gsize *rows, gsize *cols, double **values, GError **error)
{
  g_return_val_if_fail (path != NULL && rows != NULL && cols != NULL && values != NULL, FALSE);
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) mapping = g_mapped_file_new (path, FALSE, &local);
  if (mapping == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot read: %s", path, local->message);
      return FALSE;
    }
  const guint8 *data = (const guint8 *)g_mapped_file_get_contents (mapping);
  gsize length = g_mapped_file_get_length (mapping);
  MsimNpyHeader hd;
  if (!msim_npy_parse_header (data, length, path, TRUE, &hd, error))
    return FALSE;
  if (hd.ndim != 2)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: byte %" G_GSIZE_FORMAT ": npy header: weights must be a 2-D array, this "
                   "one has %d dimension%s",
                   path, hd.shape_offset, hd.ndim, hd.ndim == 1 ? "" : "s");
      return FALSE;
    }
  guint64 r = hd.dims[0], c = hd.dims[1], cells = 0, bytes = 0;
  gsize avail = length - hd.data_offset;
  if (!g_uint64_checked_mul (&cells, r, c) || !g_uint64_checked_mul (&bytes, cells, hd.size)
      || cells == 0 || bytes != avail || cells > G_MAXSIZE / sizeof (double))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: byte %" G_GSIZE_FORMAT ": shape (%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   ") of %u-byte floats does not match the %" G_GSIZE_FORMAT
                   " data bytes after the header (empty, truncated or corrupt)",
                   path, hd.shape_offset, r, c, hd.size, avail);
      return FALSE;
    }
  g_autofree double *v = g_try_new (double, (gsize)cells);
  if (v == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%s: cannot allocate %" G_GUINT64_FORMAT " doubles for the weights", path,
                   cells);
      return FALSE;
    }
  const guint8 *p = data + hd.data_offset;
  for (gsize i = 0; i < (gsize)cells; i++, p += hd.size)
    {
      gsize row = hd.fortran ? i % (gsize)r : i / (gsize)c;
      gsize col = hd.fortran ? i / (gsize)r : i % (gsize)c;
      double x = load_float (p, &hd);
      if (!isfinite (x))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: byte %" G_GSIZE_FORMAT ": row %" G_GSIZE_FORMAT
                       ", column %" G_GSIZE_FORMAT ": weight is not finite",
                       path, (gsize)(p - data), row, col);
          return FALSE;
        }
      v[row * (gsize)c + col] = x;
    }
  *rows = (gsize)r;
  *cols = (gsize)c;
  *values = g_steal_pointer (&v);
  return TRUE;
}
