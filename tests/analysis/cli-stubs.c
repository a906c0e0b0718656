/* Stand-ins for the two helpers that sim/cli/main.c defines, so that the
 * analysis commands (sim/cli/cmd-place.c, cmd-affinity.c, cmd-lrc.c) can be
 * linked into tests and into the development driver without main.c.  They
 * follow main.c's documented contract in cli.h. */
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
