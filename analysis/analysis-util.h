#pragma once

#include <glib.h>
#include <stdio.h>

#include "trace.h"

G_BEGIN_DECLS

/*
 * Small helpers the analysis commands share: atomic output files.
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

G_END_DECLS
