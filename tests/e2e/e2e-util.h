#pragma once

#include <glib.h>

/* Result of running the moesim binary. */
typedef struct
{
  int status; /* exit status, or -1 if it did not exit normally */
  char *out;
  char *err;
} E2eRun;

/* Runs `moesim ARGS...` (NULL-terminated) in @cwd (NULL = current dir).
 * Under the valgrind test setup the child is run through valgrind too. */
E2eRun e2e_run (const char *cwd, const char *first_arg, ...) G_GNUC_NULL_TERMINATED;
E2eRun e2e_runv (const char *cwd, const char *const *args);
void e2e_run_clear (E2eRun *r);

/* A fresh temporary directory, removed by e2e_rmtree. */
char *e2e_tmpdir (void);
void e2e_rmtree (const char *dir);

/* Number of entries in @dir. */
int e2e_count_entries (const char *dir);
