#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A `moesim` subcommand: receives argv with argv[0] = "moesim NAME" and
 * returns the process exit status (0 ok, 1 runtime failure, 2 bad input). */
typedef struct
{
  const char *name;
  const char *summary;
  int (*main) (int argc, char **argv);
} MsimCommand;

/* Prints "moesim: error: MESSAGE" on stderr and returns the exit status
 * for @error (see msim_error_exit_status); takes ownership of @error. */
int msim_cli_fail (GError *error);

/* Parses options with @context; on failure prints the error and the usage
 * hint, and returns FALSE. */
gboolean msim_cli_parse (GOptionContext *context, int *argc, char ***argv);

/* Writes @n files, each through a temporary file in its directory, and
 * renames them into place only when every write succeeded: on failure no
 * target is created or changed. */
gboolean msim_write_files_atomically (const char *const *paths, const char *const *data, guint n,
                                      GError **error);

int msim_cmd_bench (int argc, char **argv);
int msim_cmd_topo (int argc, char **argv);
int msim_cmd_trace (int argc, char **argv);
int msim_cmd_flows (int argc, char **argv);
int msim_cmd_run (int argc, char **argv);
int msim_cmd_sweep (int argc, char **argv);
int msim_cmd_offload (int argc, char **argv);
int msim_cmd_place (int argc, char **argv);
int msim_cmd_affinity (int argc, char **argv);
int msim_cmd_lrc (int argc, char **argv);
int msim_bench_place (int argc, char **argv);
int msim_cmd_fidelity (int argc, char **argv);
int msim_bench_collective (int argc, char **argv);

G_END_DECLS
