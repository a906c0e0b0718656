#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * One error domain for everything a user can cause: bad files, impossible
 * configurations, unreadable traces.  Programmer errors use g_return_if_fail
 * and g_assert instead.  The CLI maps MSIM_ERROR_INPUT to exit status 2 and
 * everything else to 1.
 */
#define MSIM_ERROR (msim_error_quark ())

typedef enum
{
  MSIM_ERROR_INPUT,   /* malformed or inconsistent user input (exit 2) */
  MSIM_ERROR_LIMIT,   /* input within syntax but beyond a configured limit (exit 2) */
  MSIM_ERROR_IO,      /* a file could not be read or written (exit 2) */
  MSIM_ERROR_RUNTIME, /* the simulation itself failed (exit 1) */
} MsimErrorCode;

GQuark msim_error_quark (void);

/* Exit status the CLI uses for @error: 0 when NULL, 2 for input/limit/IO
 * errors and GLib file errors, 1 otherwise. */
int msim_error_exit_status (const GError *error);

G_END_DECLS
