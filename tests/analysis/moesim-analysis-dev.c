/* moesim-analysis-dev: runs the analysis subcommands (place, affinity, lrc,
 * bench place) before they are registered in sim/cli/main.c, with the same
 * start-up as main() (igraph and GSL error handlers off).  Not installed;
 * experiments use it through $MOESIM when the real binary lacks the
 * commands. */
#include <gsl/gsl_errno.h>
#include <igraph.h>
#include <locale.h>
#include <string.h>

#include "cli.h"

int msim_cmd_place (int argc, char **argv);
int msim_cmd_affinity (int argc, char **argv);
int msim_cmd_lrc (int argc, char **argv);
int msim_bench_place (int argc, char **argv);

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  igraph_set_error_handler (igraph_error_handler_printignore);
  igraph_set_warning_handler (igraph_warning_handler_ignore);
  gsl_set_error_handler_off ();
  if (argc < 2)
    {
      g_printerr ("usage: moesim-analysis-dev place|affinity|lrc|bench place ...\n");
      return 2;
    }
  const char *cmd = argv[1];
  int (*fn) (int, char **) = NULL;
  if (strcmp (cmd, "place") == 0)
    fn = msim_cmd_place;
  else if (strcmp (cmd, "affinity") == 0)
    fn = msim_cmd_affinity;
  else if (strcmp (cmd, "lrc") == 0)
    fn = msim_cmd_lrc;
  else if (strcmp (cmd, "bench") == 0 && argc >= 3 && strcmp (argv[2], "place") == 0)
    {
      g_autofree char *prg = g_strdup ("moesim bench place");
      argv[2] = prg;
      return msim_bench_place (argc - 2, argv + 2);
    }
  if (fn == NULL)
    {
      g_printerr ("moesim-analysis-dev: unknown command '%s'\n", cmd);
      return 2;
    }
  g_autofree char *prg = g_strdup_printf ("moesim %s", cmd);
  argv[1] = prg;
  return fn (argc - 1, argv + 1);
}
