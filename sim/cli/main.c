/* moesim: the command-line front end.  Each subcommand parses its own
 * options with GOptionContext and returns an exit status:
 * 0 success, 1 runtime failure, 2 bad input or usage. */
#include <igraph.h>
#include <gsl/gsl_errno.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "msim-error.h"

static const MsimCommand commands[] = {
  { "run", "simulate MoE inference steps from an experiment config", msim_cmd_run },
  { "sweep", "run a grid of configs in parallel, resumably (threads, shards, MPI)",
    msim_cmd_sweep },
  { "offload", "decode with experts offloaded to host memory and cached on the GPUs",
    msim_cmd_offload },
  { "flows", "simulate a CSV of flows on a topology (max-min or analytical)", msim_cmd_flows },
  { "place", "fit and evaluate expert placements (policies, ILP, EPLB, plugins)", msim_cmd_place },
  { "affinity", "inter-layer expert affinity: matrices, GraphML, heat maps", msim_cmd_affinity },
  { "lrc", "local routing consistency of a trace (SRP, SCH)", msim_cmd_lrc },
  { "fidelity", "simulate the published collective measurements in experiments/fidelity",
    msim_cmd_fidelity },
  { "topo", "show, export or list cluster topologies (GraphML, DOT)", msim_cmd_topo },
  { "trace", "convert and inspect routing traces (npy, csv, json, mtr)", msim_cmd_trace },
  { "bench", "measure the simulator's own speed (queue, network)", msim_cmd_bench },
};

int
msim_cli_fail (GError *error)
{
  int status = msim_error_exit_status (error);
  if (status == 0)
    status = 1;
  /* One line, whatever the message echoes (a path with a newline...). */
  GString *msg = g_string_new (error ? error->message : "unknown error");
  for (gsize i = 0; i < msg->len; i++)
    if ((guchar) msg->str[i] < 0x20 || msg->str[i] == 0x7f)
      msg->str[i] = '?';
  g_printerr ("moesim: error: %s\n", msg->str);
  g_string_free (msg, TRUE);
  g_clear_error (&error);
  return status;
}

gboolean
msim_cli_parse (GOptionContext *context, int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("moesim: error: %s (try --help)\n", error->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
msim_write_files_atomically (const char *const *paths, const char *const *data, guint n,
                             GError **error)
{
  g_autoptr (GPtrArray) tmps = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *dir = g_path_get_dirname (paths[i]);
      g_autofree char *base = g_path_get_basename (paths[i]);
      g_autofree char *tmpl = g_strdup_printf (".%s.XXXXXX", base);
      char *tmp = g_build_filename (dir, tmpl, NULL);
      /* mkstemp creates 0600; outputs get the usual 0666 & ~umask. */
      int fd = g_mkstemp_full (tmp, O_RDWR, 0666);
      gboolean ok = fd >= 0;
      if (ok)
        {
          gsize len = strlen (data[i]);
          ok = write (fd, data[i], len) == (gssize)len && fsync (fd) == 0;
          ok = close (fd) == 0 && ok;
        }
      g_ptr_array_add (tmps, tmp);
      if (!ok)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot write %s: %s", paths[i],
                       g_strerror (errno));
          for (guint j = 0; j < tmps->len; j++)
            g_unlink (g_ptr_array_index (tmps, j));
          return FALSE;
        }
    }
  for (guint i = 0; i < n; i++)
    if (g_rename (g_ptr_array_index (tmps, i), paths[i]) != 0)
      {
        g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot rename into %s: %s", paths[i],
                     g_strerror (errno));
        for (guint j = i; j < n; j++)
          g_unlink (g_ptr_array_index (tmps, j));
        return FALSE;
      }
  return TRUE;
}

static void
usage (FILE *out)
{
  fprintf (out, "Usage: moesim COMMAND [OPTION...]\n\n"
                "Discrete-event simulator of Mixture-of-Experts routing on multi-GPU clusters.\n\n"
                "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun 'moesim COMMAND --help' for a command's options.\n"
                "  --version  print the version and exit\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  /* igraph and GSL abort on error by default; moesim turns their return
   * codes into GErrors at each call site instead. */
  igraph_set_error_handler (igraph_error_handler_printignore);
  igraph_set_warning_handler (igraph_warning_handler_ignore);
  gsl_set_error_handler_off ();

  if (argc < 2)
    {
      usage (stderr);
      return 2;
    }
  if (strcmp (argv[1], "--version") == 0 || strcmp (argv[1], "version") == 0)
    {
      printf ("moesim %s\n", MSIM_VERSION);
      return 0;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        g_autofree char *prg = g_strdup_printf ("moesim %s", commands[i].name);
        argv[1] = prg;
        return commands[i].main (argc - 1, argv + 1);
      }
  g_printerr ("moesim: error: unknown command '%s' (run 'moesim --help')\n", argv[1]);
  return 2;
}
