/* Atomic output files for the analysis commands. */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "analysis-util.h"
#include "msim-error.h"

gboolean
msim_write_file_atomic (const char *path, MsimWriteFunc func, gpointer data, GError **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp (tmp);
  if (fd < 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot create a temporary file: %s", path,
                   g_strerror (errno));
      return FALSE;
    }
  FILE *out = fdopen (fd, "w");
  if (out == NULL)
    {
      int err = errno;
      close (fd);
      g_unlink (tmp);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: %s", path, g_strerror (err));
      return FALSE;
    }
  gboolean ok = func (out, data, error);
  if (ok && (fflush (out) != 0 || ferror (out) || fsync (fileno (out)) != 0))
    {
      ok = FALSE;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: write failed: %s", path,
                   g_strerror (errno));
    }
  if (fclose (out) != 0 && ok)
    {
      ok = FALSE;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: write failed: %s", path,
                   g_strerror (errno));
    }
  if (ok && g_rename (tmp, path) != 0)
    {
      ok = FALSE;
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: cannot rename the output into place: %s",
                   path, g_strerror (errno));
    }
  if (!ok)
    g_unlink (tmp);
  return ok;
}

static gboolean
write_string (FILE *out, gpointer data, GError **error)
{
  const char *text = data;
  size_t n = strlen (text);
  return fwrite (text, 1, n, out) == n;
}

gboolean
msim_write_string_atomic (const char *path, const char *text, GError **error)
{
  return msim_write_file_atomic (path, write_string, (gpointer)text, error);
}
