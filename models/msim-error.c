#include "msim-error.h"

G_DEFINE_QUARK (msim - error - quark, msim_error)

int
msim_error_exit_status (const GError *error)
{
  if (error == NULL)
    return 0;
  if (error->domain == MSIM_ERROR)
    return error->code == MSIM_ERROR_RUNTIME ? 1 : 2;
  if (error->domain == G_FILE_ERROR || error->domain == G_KEY_FILE_ERROR
      || error->domain == G_OPTION_ERROR || error->domain == G_CONVERT_ERROR)
    return 2;
  return 1;
}
