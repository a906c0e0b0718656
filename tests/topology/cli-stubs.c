/* Stand-ins for the two helpers that sim/cli/main.c defines, so that
 * check_topology_cli can link sim/cli/cmd-topo.c without main.c (which has
 * its own main()).  They follow main.c's documented contract in cli.h:
 * print "moesim: error: ..." and map the error to an exit status. */
#include <stdio.h>

#include "cli.h"
#include "msim-error.h"

int
msim_cli_fail (GError *error)
{
  int status = msim_error_exit_status (error);
  if (status == 0)
    status = 1;
  g_printerr ("moesim: error: %s\n", error ? error->message : "unknown error");
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
