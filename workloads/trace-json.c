/* Layer-keyed JSON routing traces, the format FastChat-based tracing
 * writes and the shared Mixtral-8x7B MT-Bench traces use:
 *
 *   {"0": [[e1, e2], [e1, e2], ...], "1": [...], ...}
 *
 * one key per layer, one entry per token, k expert ids per entry (rank
 * order).  Token t of every layer is the same token.
 *
 * Why not json-glib's JsonParser: it builds a DOM of JsonNode/GValue objects,
 * about 50-100 bytes per number, so a 100 MB trace (25 M numbers) would need
 * 1.5-2.5 GB of RAM before a single id is stored, against 50 MB for the
 * int16 trace.  The format is a fixed three-level structure, so this file
 * reads it with a small purpose-built scanner in two passes over the mapped
 * file: pass 1 checks the syntax and records each layer's offset, token
 * count and k; pass 2 allocates the trace once and fills it.  Memory is the
 * trace plus one record per layer.  tests/workloads/check_trace_json.c
 * cross-checks this reader against JsonParser on the shipped traces. */
#include <stdlib.h>
#include <string.h>

#include "trace-private.h"

typedef struct
{
  guint64 layer;
  gsize key_at;   /* byte offset of the key's opening quote */
  gsize value_at; /* byte offset of the layer's '[' */
  gsize tokens;
} LayerRec;

typedef struct
{
  const guint8 *d;
  gsize n;
  gsize pos;
  const char *name;
  GError **error;
  guint k;         /* 0 until the first entry is read */
  guint64 k_layer; /* where k was fixed, for messages */
  gint64 max_expert;
} Js;

static gboolean G_GNUC_PRINTF (4, 5)
    js_fail (Js *j, int code, gsize offset, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  msim_trace_set_text_error (j->error, code, j->name, j->d, j->n, offset, "%s", msg);
  return FALSE;
}

static inline void
js_ws (Js *j)
{
  while (j->pos < j->n)
    {
      guint8 c = j->d[j->pos];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
        break;
      j->pos++;
    }
}

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

/* Up to 24 bytes of what stands at @at, for messages. */
static char *
js_found (const Js *j, gsize at)
{
  if (at >= j->n)
    return g_strdup ("end of file");
  gsize e = at;
  while (e < j->n && e - at < 24 && j->d[e] != ',' && j->d[e] != ']' && j->d[e] != '\n')
    e++;
  if (e == at)
    e = at + 1;
  g_autofree char *raw = printable (j->d + at, e - at);
  return g_strdup_printf ("'%s'", raw);
}

/* One expert id.  JSON numbers are scanned whole so that 1.5, 1e3 and -0
 * are reported as what they are rather than as a stray character. */
static gboolean
js_expert (Js *j, guint64 layer, gsize token, gint64 *out)
{
  gsize at = j->pos;
  gsize e = at;
  while (e < j->n
         && (g_ascii_isdigit (j->d[e]) || j->d[e] == '-' || j->d[e] == '+' || j->d[e] == '.'
             || j->d[e] == 'e' || j->d[e] == 'E'))
    e++;
  if (e == at)
    {
      g_autofree char *found = js_found (j, at);
      return js_fail (j, MSIM_ERROR_INPUT, at,
                      "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                      ": expected an integer expert id, found %s",
                      layer, token, found);
    }
  gboolean neg = j->d[at] == '-';
  gsize i = neg ? at + 1 : at;
  gint64 v = 0;
  gboolean ok = i < e;
  for (; ok && i < e; i++)
    {
      if (!g_ascii_isdigit (j->d[i]))
        ok = FALSE;
      else if (v < 1000000)
        v = v * 10 + (j->d[i] - '0');
    }
  if (!ok)
    {
      g_autofree char *num = g_strndup ((const char *)j->d + at, MIN (e - at, 40));
      return js_fail (j, MSIM_ERROR_INPUT, at,
                      "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                      ": '%s' is not an integer expert id",
                      layer, token, num);
    }
  if (neg)
    return js_fail (j, MSIM_ERROR_INPUT, at,
                    "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                    ": expert id -%" G_GINT64_FORMAT " is negative",
                    layer, token, v);
  if (v >= (gint64)MSIM_TRACE_MAX_EXPERTS)
    {
      g_autofree char *num = g_strndup ((const char *)j->d + at, MIN (e - at, 40));
      return js_fail (j, MSIM_ERROR_LIMIT, at,
                      "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                      ": expert id %s is above the largest supported id (32767)",
                      layer, token, num);
    }
  j->pos = e;
  *out = v;
  return TRUE;
}

/* One layer's array.  With @dest NULL it only checks and counts (pass 1);
 * otherwise it stores tokens * k ids there (pass 2, cannot fail). */
static gboolean
js_layer (Js *j, guint64 layer, MsimExpertId *dest, gsize *tokens)
{
  gsize at = j->pos;
  if (j->pos >= j->n || j->d[j->pos] != '[')
    {
      g_autofree char *found = js_found (j, at);
      return js_fail (j, MSIM_ERROR_INPUT, at,
                      "layer %" G_GUINT64_FORMAT ": expected an array of per-token entries, "
                      "found %s",
                      layer, found);
    }
  j->pos++;
  js_ws (j);
  gsize token = 0;
  if (j->pos < j->n && j->d[j->pos] == ']')
    {
      j->pos++;
      *tokens = 0;
      return TRUE;
    }
  for (;; token++)
    {
      gsize entry_at = j->pos;
      if (j->pos >= j->n || j->d[j->pos] != '[')
        {
          g_autofree char *found = js_found (j, entry_at);
          return js_fail (j, MSIM_ERROR_INPUT, entry_at,
                          "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                          ": expected an entry [e1, ..., ek], found %s",
                          layer, token, found);
        }
      j->pos++;
      guint count = 0;
      for (;;)
        {
          js_ws (j);
          if (count == 0 && j->pos < j->n && j->d[j->pos] == ']')
            return js_fail (j, MSIM_ERROR_INPUT, entry_at,
                            "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                            ": empty entry []",
                            layer, token);
          gint64 v = 0;
          if (!js_expert (j, layer, token, &v))
            return FALSE;
          if (j->k != 0 && count >= j->k)
            return js_fail (j, MSIM_ERROR_INPUT, entry_at,
                            "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                            ": entry has more than %u expert ids (k = %u from layer "
                            "%" G_GUINT64_FORMAT ", token 0)",
                            layer, token, j->k, j->k, j->k_layer);
          if (dest)
            dest[token * j->k + count] = (MsimExpertId)v;
          j->max_expert = MAX (j->max_expert, v);
          count++;
          js_ws (j);
          if (j->pos < j->n && j->d[j->pos] == ',')
            {
              j->pos++;
              continue;
            }
          if (j->pos < j->n && j->d[j->pos] == ']')
            {
              j->pos++;
              break;
            }
          g_autofree char *found = js_found (j, j->pos);
          return js_fail (j, MSIM_ERROR_INPUT, j->pos,
                          "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                          ": expected ',' or ']' in the entry, found %s",
                          layer, token, found);
        }
      if (j->k == 0)
        {
          j->k = count;
          j->k_layer = layer;
        }
      else if (count != j->k)
        return js_fail (j, MSIM_ERROR_INPUT, entry_at,
                        "layer %" G_GUINT64_FORMAT ", token %" G_GSIZE_FORMAT
                        ": entry has %u expert ids, expected %u (k from layer %" G_GUINT64_FORMAT
                        ", token 0)",
                        layer, token, count, j->k, j->k_layer);
      js_ws (j);
      if (j->pos < j->n && j->d[j->pos] == ',')
        {
          j->pos++;
          js_ws (j);
          continue;
        }
      if (j->pos < j->n && j->d[j->pos] == ']')
        {
          j->pos++;
          *tokens = token + 1;
          return TRUE;
        }
      g_autofree char *found = js_found (j, j->pos);
      return js_fail (j, MSIM_ERROR_INPUT, j->pos,
                      "layer %" G_GUINT64_FORMAT ", after token %" G_GSIZE_FORMAT
                      ": expected ',' or ']', found %s",
                      layer, token, found);
    }
}

/* A key "N": a layer index in decimal, no sign, no leading zeros, no
 * escapes (a layer called "1\u0030" would be legal JSON and nonsense). */
static gboolean
js_key (Js *j, guint64 *layer)
{
  gsize at = j->pos;
  if (j->pos >= j->n || j->d[j->pos] != '"')
    {
      g_autofree char *found = js_found (j, at);
      return js_fail (j, MSIM_ERROR_INPUT, at, "expected a layer key such as \"0\", found %s",
                      found);
    }
  gsize s = ++j->pos;
  while (j->pos < j->n && j->d[j->pos] != '"' && j->d[j->pos] != '\n')
    j->pos++;
  if (j->pos >= j->n || j->d[j->pos] != '"')
    return js_fail (j, MSIM_ERROR_INPUT, at, "unterminated key");
  gsize e = j->pos++;
  guint64 v = 0;
  gboolean ok = e > s && (e - s == 1 || j->d[s] != '0') && e - s <= 9;
  for (gsize i = s; ok && i < e; i++)
    {
      if (!g_ascii_isdigit (j->d[i]))
        ok = FALSE;
      else
        v = v * 10 + (j->d[i] - '0');
    }
  if (!ok)
    {
      g_autofree char *key = printable (j->d + s, MIN (e - s, 40));
      return js_fail (j, MSIM_ERROR_INPUT, at,
                      "key \"%s\" is not a layer index (expected \"0\", \"1\", ...)", key);
    }
  *layer = v;
  return TRUE;
}

static int
rec_cmp (const void *a, const void *b)
{
  const LayerRec *x = a, *y = b;
  if (x->layer != y->layer)
    return x->layer < y->layer ? -1 : 1;
  return x->key_at < y->key_at ? -1 : (x->key_at > y->key_at);
}

MsimTrace *
msim_trace_read_json (const guint8 *data, gsize length, const char *name, GError **error)
{
  Js j = { .d = data, .n = length, .name = name, .error = error };
  if (length >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0)
    j.pos = 3;
  js_ws (&j);
  if (j.pos >= j.n || j.d[j.pos] != '{')
    {
      js_fail (&j, MSIM_ERROR_INPUT, j.pos,
               "expected '{' starting a layer-keyed trace {\"0\": [[e1, e2], ...], ...}");
      return NULL;
    }
  j.pos++;
  js_ws (&j);
  g_autoptr (GArray) recs = g_array_new (FALSE, FALSE, sizeof (LayerRec));
  if (j.pos < j.n && j.d[j.pos] == '}')
    {
      js_fail (&j, MSIM_ERROR_INPUT, j.pos, "the trace object has no layers");
      return NULL;
    }
  for (;;)
    {
      LayerRec rec = { 0 };
      rec.key_at = j.pos;
      if (!js_key (&j, &rec.layer))
        return NULL;
      js_ws (&j);
      if (j.pos >= j.n || j.d[j.pos] != ':')
        {
          js_fail (&j, MSIM_ERROR_INPUT, j.pos, "expected ':' after layer key %" G_GUINT64_FORMAT,
                   rec.layer);
          return NULL;
        }
      j.pos++;
      js_ws (&j);
      rec.value_at = j.pos;
      if (!js_layer (&j, rec.layer, NULL, &rec.tokens))
        return NULL;
      g_array_append_val (recs, rec);
      js_ws (&j);
      if (j.pos < j.n && j.d[j.pos] == ',')
        {
          j.pos++;
          js_ws (&j);
          continue;
        }
      if (j.pos < j.n && j.d[j.pos] == '}')
        {
          j.pos++;
          break;
        }
      g_autofree char *found = js_found (&j, j.pos);
      js_fail (&j, MSIM_ERROR_INPUT, j.pos,
               "after layer %" G_GUINT64_FORMAT ": expected ',' or '}', found %s", rec.layer,
               found);
      return NULL;
    }
  js_ws (&j);
  if (j.pos != j.n)
    {
      js_fail (&j, MSIM_ERROR_INPUT, j.pos, "unexpected data after the trace object");
      return NULL;
    }

  /* Keys may come in any order (json.dump keeps insertion order, other
   * writers sort "10" before "2"); sort, then require exactly 0..L-1. */
  qsort (recs->data, recs->len, sizeof (LayerRec), rec_cmp);
  LayerRec *r = (LayerRec *)recs->data;
  guint nl = recs->len;
  for (guint i = 0; i < nl; i++)
    {
      if (i > 0 && r[i].layer == r[i - 1].layer)
        {
          js_fail (&j, MSIM_ERROR_INPUT, r[i].key_at,
                   "layer %" G_GUINT64_FORMAT " appears twice (first at byte %" G_GSIZE_FORMAT ")",
                   r[i].layer, r[i - 1].key_at);
          return NULL;
        }
      if (r[i].layer != i)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: layer %u is missing (the file has %u layer keys, the largest is "
                       "%" G_GUINT64_FORMAT ")",
                       name, i, nl, r[nl - 1].layer);
          return NULL;
        }
    }
  for (guint i = 0; i < nl; i++)
    if (r[i].tokens != r[0].tokens)
      {
        js_fail (&j, MSIM_ERROR_INPUT, r[i].value_at,
                 "layer %u has %" G_GSIZE_FORMAT " tokens but layer 0 has %" G_GSIZE_FORMAT
                 " (ragged trace: every layer must list the same tokens)",
                 i, r[i].tokens, r[0].tokens);
        return NULL;
      }
  if (r[0].tokens == 0)
    {
      js_fail (&j, MSIM_ERROR_INPUT, r[0].value_at, "the layers have no tokens");
      return NULL;
    }

  g_autoptr (MsimTrace) t = msim_trace_alloc (name, r[0].tokens, nl, j.k, MSIM_TRACE_MAX_EXPERTS,
                                              MSIM_TRACE_NONE, error);
  if (t == NULL)
    return NULL;
  for (guint i = 0; i < nl; i++)
    {
      gsize tokens = 0;
      j.pos = r[i].value_at;
      gboolean ok = js_layer (&j, i, t->ids + (gsize)i * t->tokens * t->k, &tokens);
      g_assert (ok && tokens == t->tokens); /* pass 1 accepted the same bytes */
    }
  t->experts = (guint)j.max_expert + 1;
  return g_steal_pointer (&t);
}

gboolean
msim_trace_write_json (const MsimTrace *trace, MsimTraceOut *out, GError **error)
{
  /* Byte for byte what Python's json.dump writes for a dict of lists of
   * lists (", " and ": " separators, no trailing newline), so exporting a
   * FastChat trace that moesim read reproduces the original file. */
  char buf[64 + 24 * 8];
  fputc ('{', out->fp);
  for (guint l = 0; l < trace->layers; l++)
    {
      fprintf (out->fp, "%s\"%u\": [", l ? ", " : "", l);
      for (gsize tok = 0; tok < trace->tokens; tok++)
        {
          const MsimExpertId *row = msim_trace_row (trace, tok, l);
          char *p = buf;
          if (tok)
            {
              *p++ = ',';
              *p++ = ' ';
            }
          *p++ = '[';
          for (guint r = 0; r < trace->k; r++)
            {
              if (r)
                {
                  *p++ = ',';
                  *p++ = ' ';
                }
              p = msim_trace_put_uint (p, (guint64)row[r]);
              if ((gsize)(p - buf) > sizeof buf - 24)
                {
                  fwrite (buf, 1, (gsize)(p - buf), out->fp);
                  p = buf;
                }
            }
          *p++ = ']';
          fwrite (buf, 1, (gsize)(p - buf), out->fp);
        }
      fputc (']', out->fp);
    }
  fputc ('}', out->fp);
  if (ferror (out->fp))
    {
      msim_trace_out_set_error (out, error, "writing");
      return FALSE;
    }
  return TRUE;
}
