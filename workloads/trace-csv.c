/* CSV routing traces: one row per (token, layer, rank) assignment,
 *
 *   token,layer,rank,expert[,weight][,sequence,position]
 *
 * with that header line first.  Rows may come in any order; every cell of
 * the dense tokens x layers x k array (sized by the largest ids) must be
 * given exactly once.  The optional columns, which moesim writes when the
 * trace has them, may appear in any order after the four required ones.
 *
 * Reading takes two passes over the mapped file: the first checks syntax
 * and finds the dimensions, the second fills the trace.  Buffering the rows
 * instead would hold the data twice (rows plus trace) at about 24 bytes per
 * row against 2 bytes per cell in the trace. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "trace-private.h"

#define MAX_COLS 7

enum
{
  COL_TOKEN,
  COL_LAYER,
  COL_RANK,
  COL_EXPERT,
  COL_WEIGHT,
  COL_SEQUENCE,
  COL_POSITION,
};

static const char *const col_names[]
    = { "token", "layer", "rank", "expert", "weight", "sequence", "position" };

typedef struct
{
  const guint8 *data;
  gsize length;
  const char *name;
  int ncols;
  int kind[MAX_COLS]; /* COL_* of each column */
  gsize pos;          /* start of the next line */
  guint64 line;       /* number of the line last returned */
} Csv;

typedef struct
{
  guint64 token, layer, rank;
  gint64 expert;
  double weight;
  guint32 sequence, position;
} Row;

/* Up to @n bytes at @p for a message: printable ASCII as is, anything else
 * (control characters, non-ASCII or invalid UTF-8 bytes) as \\xNN, so that
 * the message stays one line of valid UTF-8. */
static char *
printable (const guint8 *p, gsize n)
{
  GString *s = g_string_sized_new (n);
  for (gsize i = 0; i < n; i++)
    if (p[i] >= 0x20 && p[i] < 0x7f)
      g_string_append_c (s, (char)p[i]);
    else
      g_string_append_printf (s, "\\x%02x", p[i]);
  return g_string_free (s, FALSE);
}

/* Next line as [*start, *end) without the line terminator; FALSE at EOF. */
static gboolean
next_line (Csv *c, gsize *start, gsize *end)
{
  if (c->pos >= c->length)
    return FALSE;
  *start = c->pos;
  const guint8 *nl = memchr (c->data + c->pos, '\n', c->length - c->pos);
  gsize e = nl ? (gsize)(nl - c->data) : c->length;
  c->pos = nl ? e + 1 : c->length;
  if (e > *start && c->data[e - 1] == '\r')
    e--;
  *end = e;
  c->line++;
  return TRUE;
}

static gboolean
is_blank (const guint8 *p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t')
      return FALSE;
  return TRUE;
}

/* Splits [start, end) at commas into trimmed fields; returns the number of
 * fields (which may exceed MAX_COLS; only the first MAX_COLS are stored). */
static int
split (const guint8 *data, gsize start, gsize end, gsize *fs, gsize *fe)
{
  int n = 0;
  gsize s = start;
  for (gsize i = start;; i++)
    if (i == end || data[i] == ',')
      {
        gsize a = s, b = i;
        while (a < b && (data[a] == ' ' || data[a] == '\t'))
          a++;
        while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t'))
          b--;
        if (n < MAX_COLS)
          {
            fs[n] = a;
            fe[n] = b;
          }
        n++;
        s = i + 1;
        if (i == end)
          break;
      }
  return n;
}

static gboolean G_GNUC_PRINTF (5, 6)
    row_fail (const Csv *c, GError **error, int code, guint64 line, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, MSIM_ERROR, code, "%s:%" G_GUINT64_FORMAT ": %s", c->name, line, msg);
  return FALSE;
}

static gboolean
parse_header (Csv *c, GError **error)
{
  gsize start, end;
  if (!next_line (c, &start, &end))
    return row_fail (c, error, MSIM_ERROR_INPUT, 1, "empty file");
  if (end - start >= 3 && memcmp (c->data + start, "\xef\xbb\xbf", 3) == 0)
    start += 3;
  gsize fs[MAX_COLS], fe[MAX_COLS];
  int n = split (c->data, start, end, fs, fe);
  const char *expected = "expected the header 'token,layer,rank,expert' optionally followed by "
                         "'weight', 'sequence' and 'position'";
  if (n < 4 || n > MAX_COLS)
    return row_fail (c, error, MSIM_ERROR_INPUT, c->line, "%s; found %d columns", expected, n);
  gboolean seen[MAX_COLS] = { FALSE };
  for (int i = 0; i < n; i++)
    {
      g_autofree char *col = g_strndup ((const char *)c->data + fs[i], fe[i] - fs[i]);
      int kind = -1;
      for (int j = 0; j < MAX_COLS; j++)
        if (g_ascii_strcasecmp (col, col_names[j]) == 0)
          kind = j;
      g_autofree char *shown = printable (c->data + fs[i], MIN (fe[i] - fs[i], 40));
      if (kind < 0 || (i < 4 && kind != i) || (i >= 4 && kind < 4))
        return row_fail (c, error, MSIM_ERROR_INPUT, c->line, "%s; column %d is '%s'", expected,
                         i + 1, shown);
      if (seen[kind])
        return row_fail (c, error, MSIM_ERROR_INPUT, c->line, "column '%s' appears twice", shown);
      seen[kind] = TRUE;
      c->kind[i] = kind;
    }
  if (seen[COL_SEQUENCE] != seen[COL_POSITION])
    return row_fail (c, error, MSIM_ERROR_INPUT, c->line,
                     "columns 'sequence' and 'position' come together; only '%s' is given",
                     seen[COL_SEQUENCE] ? "sequence" : "position");
  c->ncols = n;
  return TRUE;
}

/* Parses a decimal integer with an optional leading '-'. */
static gboolean
parse_int (const guint8 *p, gsize n, gint64 *out)
{
  gboolean neg = n > 0 && p[0] == '-';
  gsize i = neg ? 1 : 0;
  if (i == n)
    return FALSE;
  guint64 v = 0;
  for (; i < n; i++)
    {
      if (!g_ascii_isdigit (p[i]))
        return FALSE;
      if (v > (guint64)G_MAXINT64 / 10)
        return FALSE;
      v = v * 10 + (guint)(p[i] - '0');
      if (v > (guint64)G_MAXINT64)
        return FALSE;
    }
  *out = neg ? -(gint64)v : (gint64)v;
  return TRUE;
}

/* Parses and range-checks one data line. */
static gboolean
parse_row (const Csv *c, gsize start, gsize end, Row *row, GError **error)
{
  gsize fs[MAX_COLS], fe[MAX_COLS];
  int n = split (c->data, start, end, fs, fe);
  if (n != c->ncols)
    return row_fail (c, error, MSIM_ERROR_INPUT, c->line,
                     "expected %d comma-separated fields as in the header, found %d", c->ncols, n);
  row->weight = 0;
  row->sequence = row->position = 0;
  for (int i = 0; i < n; i++)
    {
      int kind = c->kind[i];
      const guint8 *p = c->data + fs[i];
      gsize len = fe[i] - fs[i];
      if (len == 0)
        return row_fail (c, error, MSIM_ERROR_INPUT, c->line, "column '%s' is empty",
                         col_names[kind]);
      g_autofree char *text = NULL;
      if (kind == COL_WEIGHT)
        {
          char buf[64];
          double w = 0;
          char *endp = NULL;
          if (len < sizeof buf)
            {
              memcpy (buf, p, len);
              buf[len] = '\0';
              w = g_ascii_strtod (buf, &endp);
            }
          /* Weights are stored as float32: a finite double beyond its
           * range would become infinite. */
          if (len >= sizeof buf || endp != buf + len || !isfinite (w) || fabs (w) > FLT_MAX)
            {
              text = printable (p, MIN (len, 40));
              return row_fail (c, error, MSIM_ERROR_INPUT, c->line,
                               "column 'weight': '%s' is not a finite number in float32 range",
                               text);
            }
          row->weight = w;
          continue;
        }
      gint64 v;
      if (!parse_int (p, len, &v))
        {
          text = printable (p, MIN (len, 40));
          return row_fail (c, error, MSIM_ERROR_INPUT, c->line,
                           "column '%s': '%s' is not an integer", col_names[kind], text);
        }
      if (v < 0)
        return row_fail (c, error, MSIM_ERROR_INPUT, c->line,
                         "column '%s': %" G_GINT64_FORMAT " is negative", col_names[kind], v);
      switch (kind)
        {
          case COL_TOKEN:
            row->token = (guint64)v;
            break;
          case COL_LAYER:
          case COL_RANK:
            if (v >= G_MAXUINT)
              return row_fail (c, error, MSIM_ERROR_LIMIT, c->line,
                               "column '%s': %" G_GINT64_FORMAT " is too large", col_names[kind],
                               v);
            if (kind == COL_LAYER)
              row->layer = (guint64)v;
            else
              row->rank = (guint64)v;
            break;
          case COL_EXPERT:
            if (v >= (gint64)MSIM_TRACE_MAX_EXPERTS)
              return row_fail (
                  c, error, MSIM_ERROR_LIMIT, c->line,
                  "expert id %" G_GINT64_FORMAT " is above the largest supported id (32767)", v);
            row->expert = v;
            break;
          default: /* sequence, position */
            if (v > G_MAXUINT32)
              return row_fail (c, error, MSIM_ERROR_INPUT, c->line,
                               "column '%s': %" G_GINT64_FORMAT " does not fit in 32 bits",
                               col_names[kind], v);
            if (kind == COL_SEQUENCE)
              row->sequence = (guint32)v;
            else
              row->position = (guint32)v;
            break;
        }
    }
  return TRUE;
}

static void
rewind_csv (Csv *c)
{
  gsize s, e;
  c->pos = 0;
  c->line = 0;
  next_line (c, &s, &e); /* header, already checked */
}

/* Error path only: the line of the first row naming (token, layer, rank). */
static guint64
find_first (Csv *c, const Row *want)
{
  gsize s, e;
  rewind_csv (c);
  while (next_line (c, &s, &e))
    {
      Row r;
      if (is_blank (c->data + s, e - s))
        continue;
      if (parse_row (c, s, e, &r, NULL) && r.token == want->token && r.layer == want->layer
          && r.rank == want->rank)
        return c->line;
    }
  return 0;
}

MsimTrace *
msim_trace_read_csv (const guint8 *data, gsize length, const char *name, GError **error)
{
  Csv c = { .data = data, .length = length, .name = name };
  if (!parse_header (&c, error))
    return NULL;
  gboolean has_weight = FALSE, has_seq = FALSE;
  for (int i = 4; i < c.ncols; i++)
    {
      has_weight |= c.kind[i] == COL_WEIGHT;
      has_seq |= c.kind[i] == COL_SEQUENCE;
    }

  /* Pass 1: syntax, ranges, dimensions. */
  guint64 rows = 0, max_tok = 0, max_layer = 0, max_rank = 0;
  guint64 line_tok = 0, line_layer = 0, line_rank = 0;
  gint64 max_expert = 0;
  gsize s, e;
  while (next_line (&c, &s, &e))
    {
      if (is_blank (data + s, e - s))
        continue;
      Row r;
      if (!parse_row (&c, s, e, &r, error))
        return NULL;
      rows++;
      if (r.token > max_tok || line_tok == 0)
        max_tok = r.token, line_tok = c.line;
      if (r.layer > max_layer || line_layer == 0)
        max_layer = r.layer, line_layer = c.line;
      if (r.rank > max_rank || line_rank == 0)
        max_rank = r.rank, line_rank = c.line;
      max_expert = MAX (max_expert, r.expert);
    }
  if (rows == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no data rows after the header", name);
      return NULL;
    }
  MsimTraceFlags flags
      = (has_weight ? MSIM_TRACE_WEIGHTS : 0) | (has_seq ? MSIM_TRACE_SEQUENCES : 0);
  guint64 bytes = 0;
  if (max_tok >= G_MAXSIZE
      || !msim_trace_bytes_needed (max_tok + 1, max_layer + 1, max_rank + 1, flags, &bytes)
      || bytes > msim_trace_get_memory_limit ())
    {
      /* Almost always one typo'd id; point at it rather than only at the
       * product. */
      g_autofree char *lim = msim_trace_format_size (msim_trace_get_memory_limit ());
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%s: the largest ids (token %" G_GUINT64_FORMAT " at line %" G_GUINT64_FORMAT
                   ", layer %" G_GUINT64_FORMAT " at line %" G_GUINT64_FORMAT
                   ", rank %" G_GUINT64_FORMAT " at line %" G_GUINT64_FORMAT
                   ") make a trace larger than the trace memory limit of %s",
                   name, max_tok, line_tok, max_layer, line_layer, max_rank, line_rank, lim);
      return NULL;
    }
  g_autoptr (MsimTrace) t
      = msim_trace_alloc (name, (gsize)max_tok + 1, (guint)max_layer + 1, (guint)max_rank + 1,
                          MSIM_TRACE_MAX_EXPERTS, flags, error);
  if (t == NULL)
    return NULL;
  g_autofree guint8 *seq_seen = has_seq ? g_malloc0 ((t->tokens + 7) / 8) : NULL;

  /* Pass 2: fill; duplicates are cells already set. */
  rewind_csv (&c);
  while (next_line (&c, &s, &e))
    {
      if (is_blank (data + s, e - s))
        continue;
      Row r;
      gboolean ok = parse_row (&c, s, e, &r, NULL);
      g_assert (ok); /* pass 1 accepted it */
      MsimExpertId *cell = msim_trace_row_mut (t, r.token, (guint)r.layer) + r.rank;
      if (*cell >= 0)
        {
          guint64 dup_line = c.line;
          Csv again = c;
          guint64 first = find_first (&again, &r);
          row_fail (&c, error, MSIM_ERROR_INPUT, dup_line,
                    "token %" G_GUINT64_FORMAT ", layer %" G_GUINT64_FORMAT
                    ", rank %" G_GUINT64_FORMAT " is given twice (first at line %" G_GUINT64_FORMAT
                    ")",
                    r.token, r.layer, r.rank, first);
          return NULL;
        }
      *cell = (MsimExpertId)r.expert;
      if (has_weight)
        t->weights[cell - t->ids] = (float)r.weight;
      if (has_seq)
        {
          gsize tok = (gsize)r.token;
          gboolean seen = (seq_seen[tok / 8] >> (tok % 8)) & 1;
          if (seen && (t->sequences[tok] != r.sequence || t->positions[tok] != r.position))
            {
              row_fail (&c, error, MSIM_ERROR_INPUT, c.line,
                        "token %" G_GUINT64_FORMAT " has sequence %u position %u here but "
                        "sequence %u position %u on an earlier row",
                        r.token, r.sequence, r.position, t->sequences[tok], t->positions[tok]);
              return NULL;
            }
          seq_seen[tok / 8] |= (guint8)(1u << (tok % 8));
          t->sequences[tok] = r.sequence;
          t->positions[tok] = r.position;
        }
    }

  /* Gaps: cells no row set.  A missing row has no line of its own, so the
   * message names the cell and the dimensions that imply it. */
  gsize cells = t->tokens * t->layers * t->k;
  for (gsize i = 0; i < cells; i++)
    if (t->ids[i] < 0)
      {
        gsize per_layer = t->tokens * t->k;
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                     "%s: token %" G_GSIZE_FORMAT ", layer %" G_GSIZE_FORMAT
                     ", rank %" G_GSIZE_FORMAT " has no row (lines 2-%" G_GUINT64_FORMAT
                     " give %" G_GUINT64_FORMAT " of the %" G_GSIZE_FORMAT
                     " cells implied by the largest ids: %" G_GSIZE_FORMAT " tokens x %u "
                     "layers x k=%u)",
                     name, (i % per_layer) / t->k, i / per_layer, i % t->k, c.line, rows, cells,
                     t->tokens, t->layers, t->k);
        return NULL;
      }
  t->experts = (guint)max_expert + 1;
  return g_steal_pointer (&t);
}

gboolean
msim_trace_write_csv (const MsimTrace *trace, MsimTraceOut *out, GError **error)
{
  gboolean w = trace->weights != NULL, sq = trace->sequences != NULL;
  fprintf (out->fp, "token,layer,rank,expert%s%s\n", w ? ",weight" : "",
           sq ? ",sequence,position" : "");
  char line[160];
  for (gsize tok = 0; tok < trace->tokens; tok++)
    for (guint l = 0; l < trace->layers; l++)
      {
        const MsimExpertId *row = msim_trace_row (trace, tok, l);
        const float *wrow = msim_trace_weight_row (trace, tok, l);
        for (guint r = 0; r < trace->k; r++)
          {
            char *p = line;
            p = msim_trace_put_uint (p, tok);
            *p++ = ',';
            p = msim_trace_put_uint (p, l);
            *p++ = ',';
            p = msim_trace_put_uint (p, r);
            *p++ = ',';
            p = msim_trace_put_uint (p, (guint64)row[r]);
            if (w)
              {
                /* 9 significant digits identify a float uniquely, and the
                 * decimal is so close to it that parsing to double and
                 * rounding to float gives it back exactly. */
                *p++ = ',';
                g_ascii_formatd (p, 32, "%.9g", (double)wrow[r]);
                p += strlen (p);
              }
            if (sq)
              {
                *p++ = ',';
                p = msim_trace_put_uint (p, trace->sequences[tok]);
                *p++ = ',';
                p = msim_trace_put_uint (p, trace->positions[tok]);
              }
            *p++ = '\n';
            fwrite (line, 1, (gsize)(p - line), out->fp);
          }
      }
  if (ferror (out->fp))
    {
      msim_trace_out_set_error (out, error, "writing");
      return FALSE;
    }
  return TRUE;
}
