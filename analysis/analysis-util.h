#pragma once

#include <glib.h>
#include <stdio.h>

#include "trace.h"

G_BEGIN_DECLS

/*
 * Small helpers the analysis commands share: atomic output files and trace
 * concatenation (for fitting a placement on several trace files).
 */

/* Writes into a FILE; returns FALSE with @error on failure. */
typedef gboolean (*MsimWriteFunc) (FILE *out, gpointer data, GError **error);

/* Calls @func on a temporary file next to @path, flushes it to disk and
 * renames it over @path, so readers see the old file or the complete new
 * one.  On any failure the temporary file is removed and @path is untouched
 * (MSIM_ERROR_IO naming the file). */
gboolean msim_write_file_atomic (const char *path, MsimWriteFunc func, gpointer data,
                                 GError **error);

/* The same for a string. */
gboolean msim_write_string_atomic (const char *path, const char *text, GError **error);

/*
 * The tokens of @n traces one after the other.  All must have the same
 * layers and k; E is the largest.  Each input becomes its own sequence(s):
 * sequence ids of input i are offset past those of inputs 0..i-1, and an
 * input without sequence data is one sequence.  Gate weights are kept only
 * if every input has them.  MSIM_ERROR_INPUT naming @names[i] on a shape
 * mismatch.  (transfer full)
 */
MsimTrace *msim_analysis_trace_concat (MsimTrace *const *traces, const char *const *names, guint n,
                                       GError **error);

/* Loads every file of the NULL-terminated @paths (any trace format),
 * raises E to @experts when it is > 0 (an id >= @experts is an error naming
 * the file), and concatenates them when there are several.  (transfer full) */
MsimTrace *msim_analysis_load_traces (const char *const *paths, guint experts, GError **error);

G_END_DECLS
