#pragma once

/* Helpers shared by the trace test suites (header-only so every suite stays
 * a single entry in tests/workloads/meson.build). */

#include <glib/gstdio.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "msim-check.h"
#include "msim-error.h"
#include "trace.h"

/* Asserts @err is an MSIM_ERROR with @code whose message contains every
 * string of the NULL-terminated list. */
static inline void
tt_assert_error (const GError *err, int code, ...)
{
  ck_assert_msg (err != NULL, "expected an error, got success");
  ck_assert_msg (err->domain == MSIM_ERROR && err->code == code,
                 "expected MSIM_ERROR code %d, got %s code %d: %s", code,
                 g_quark_to_string (err->domain), err->code, err->message);
  va_list ap;
  va_start (ap, code);
  const char *want;
  while ((want = va_arg (ap, const char *)) != NULL)
    ck_assert_msg (strstr (err->message, want) != NULL, "error message lacks \"%s\": %s", want,
                   err->message);
  va_end (ap);
}

static inline char *
tt_tmpdir (void)
{
  GError *err = NULL;
  char *dir = g_dir_make_tmp ("msim-trace-XXXXXX", &err);
  ck_assert_msg (dir != NULL, "%s", err ? err->message : "?");
  return dir;
}

/* Removes @dir and the files in it (the suites create no subdirectories). */
static inline void
tt_rmtree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d)
    {
      const char *name;
      while ((name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *p = g_build_filename (dir, name, NULL);
          g_unlink (p);
        }
      g_dir_close (d);
    }
  g_rmdir (dir);
}

static inline int
tt_count_entries (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  int n = 0;
  if (d)
    {
      while (g_dir_read_name (d) != NULL)
        n++;
      g_dir_close (d);
    }
  return n;
}

/* Writes @len bytes to DIR/NAME and returns the path (transfer full). */
static inline char *
tt_write (const char *dir, const char *name, const void *data, gsize len)
{
  char *path = g_build_filename (dir, name, NULL);
  GError *err = NULL;
  ck_assert_msg (g_file_set_contents (path, data, (gssize)len, &err), "%s",
                 err ? err->message : "?");
  return path;
}

static inline char *
tt_write_str (const char *dir, const char *name, const char *text)
{
  return tt_write (dir, name, text, strlen (text));
}

/* Loads @path, expecting failure; returns the error (transfer full). */
static inline GError *
tt_load_error (const char *path)
{
  GError *err = NULL;
  MsimTrace *t = msim_trace_load (path, &err);
  ck_assert_msg (t == NULL, "%s loaded but should have failed", path);
  ck_assert (err != NULL);
  return err;
}

/* A random trace: k distinct experts per row, the largest id E-1 present
 * (so formats that infer E give it back), random float weights covering
 * many magnitudes, and sequences of random lengths. */
static inline MsimTrace *
tt_random_trace (gsize tokens, guint layers, guint k, guint experts, MsimTraceFlags flags,
                 unsigned long seed)
{
  ck_assert (k <= experts);
  GError *err = NULL;
  MsimTrace *t = msim_trace_new (tokens, layers, k, experts, flags, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, seed);
  for (gsize tok = 0; tok < tokens; tok++)
    for (guint l = 0; l < layers; l++)
      {
        MsimExpertId *row = msim_trace_row_mut (t, tok, l);
        for (guint r = 0; r < k; r++)
          {
            int e;
            gboolean dup;
            do
              {
                e = (int)gsl_rng_uniform_int (rng, experts);
                dup = FALSE;
                for (guint q = 0; q < r; q++)
                  dup |= row[q] == e;
              }
            while (dup);
            row[r] = (MsimExpertId)e;
            if (flags & MSIM_TRACE_WEIGHTS)
              msim_trace_set_weight (
                  t, tok, l, r,
                  (float)(gsl_rng_uniform_pos (rng)
                          * pow (10.0, (double)gsl_rng_uniform_int (rng, 9) - 6.0)));
          }
      }
  /* Make sure id E-1 occurs. */
  MsimExpertId *row0 = msim_trace_row_mut (t, 0, 0);
  for (guint r = 1; r < k; r++)
    if (row0[r] == (MsimExpertId)(experts - 1))
      row0[r] = row0[0];
  row0[0] = (MsimExpertId)(experts - 1);
  if (flags & MSIM_TRACE_SEQUENCES)
    {
      guint32 seq = 7, pos = 0;
      for (gsize tok = 0; tok < tokens; tok++)
        {
          if (pos > 0 && gsl_rng_uniform (rng) < 0.2)
            {
              seq += 1 + (guint32)gsl_rng_uniform_int (rng, 3);
              pos = 0;
            }
          msim_trace_set_sequence (t, tok, seq, pos++);
        }
    }
  gsl_rng_free (rng);
  ck_assert (msim_trace_validate (t, "random", NULL));
  return t;
}

/* Same shape and ids (E and optional data not compared). */
static inline void
tt_assert_same_ids (const MsimTrace *a, const MsimTrace *b)
{
  ck_assert_uint_eq (a->tokens, b->tokens);
  ck_assert_uint_eq (a->layers, b->layers);
  ck_assert_uint_eq (a->k, b->k);
  /* One assertion at the end: in Check's fork mode every assertion is a
   * pipe write, far slower than the comparison itself. */
  for (gsize tok = 0; tok < a->tokens; tok++)
    for (guint l = 0; l < a->layers; l++)
      for (guint r = 0; r < a->k; r++)
        if (msim_trace_expert (a, tok, l, r) != msim_trace_expert (b, tok, l, r))
          ck_abort_msg ("token %zu layer %u rank %u: %d vs %d", (size_t)tok, l, r,
                        msim_trace_expert (a, tok, l, r), msim_trace_expert (b, tok, l, r));
}
