#pragma once

/* Shared set-up for the libFuzzer harnesses (see README.md).
 *
 * Every harness treats its input as a hostile file and checks, besides the
 * sanitizers' memory and undefined-behaviour errors, the contract of
 * moesim's readers: a GLib critical or warning is a bug (they are made
 * fatal), and an error must be a one-line, valid UTF-8 message that the
 * CLI maps to exit status 2 (bad input), never 1. */

#include <glib.h>
#include <glib/gstdio.h>
#include <gsl/gsl_errno.h>
#include <igraph.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msim-error.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A private scratch directory for harnesses that need files. */
static char *fuzz_tmpdir;

/* g_error() and failed g_assert()s stop with SIGTRAP (a breakpoint), which
 * libFuzzer does not catch: turn it into an abort, which it reports with a
 * stack trace and saves the input for. */
static void
fuzz_on_trap (int sig)
{
  abort ();
}

/* Removes the scratch directory (its files only: harnesses make no
 * subdirectories) when the fuzzer exits normally. */
static void
fuzz_cleanup (void)
{
  GDir *dir = g_dir_open (fuzz_tmpdir, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fuzz_tmpdir, name, NULL);
      g_unlink (path);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (fuzz_tmpdir);
}

static inline void
fuzz_init (void)
{
  signal (SIGTRAP, fuzz_on_trap);
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  igraph_set_error_handler (igraph_error_handler_printignore);
  igraph_set_warning_handler (igraph_warning_handler_ignore);
  gsl_set_error_handler_off ();
#ifdef FUZZ_DATA_DIR
  if (g_getenv ("MOESIM_DATA_DIR") == NULL)
    g_setenv ("MOESIM_DATA_DIR", FUZZ_DATA_DIR, TRUE);
#endif
  /* tmpfs when there is one: the trace round trip fsyncs. */
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir ();
  fuzz_tmpdir = g_build_filename (base, "moesim-fuzz-XXXXXX", NULL);
  if (g_mkdtemp (fuzz_tmpdir) == NULL)
    g_error ("cannot create %s", fuzz_tmpdir);
  atexit (fuzz_cleanup);
}

/* Aborts (a finding) unless @error is a proper bad-input error. */
static inline void
fuzz_check_error (const GError *error, const char *what)
{
  if (error == NULL)
    {
      fprintf (stderr, "%s: failed without an error\n", what);
      abort ();
    }
  if (!g_utf8_validate (error->message, -1, NULL) || strchr (error->message, '\n') != NULL)
    {
      fprintf (stderr, "%s: error message is not one line of UTF-8: [%s]\n", what, error->message);
      /* MSIM_FUZZ_LAX_MESSAGES=1 looks past a known case of this. */
      if (g_getenv ("MSIM_FUZZ_LAX_MESSAGES") == NULL)
        abort ();
    }
  if (msim_error_exit_status (error) != 2)
    {
      fprintf (stderr, "%s: input error maps to exit status %d, not 2: %s\n", what,
               msim_error_exit_status (error), error->message);
      abort ();
    }
}

/* Writes @data to @name in the scratch directory; returns the path. */
static inline char *
fuzz_write (const char *name, const uint8_t *data, size_t size)
{
  char *path = g_build_filename (fuzz_tmpdir, name, NULL);
  GError *error = NULL;
  if (!g_file_set_contents (path, (const char *)data, (gssize)size, &error))
    g_error ("%s", error->message);
  return path;
}
