#include "e2e-util.h"

#include <glib/gstdio.h>
#include <stdarg.h>
#include <stdlib.h>

E2eRun
e2e_runv (const char *cwd, const char *const *args)
{
  const char *bin = g_getenv ("MOESIM_BIN");
  g_assert (bin != NULL);
  GPtrArray *argv = g_ptr_array_new ();
  char *supp = NULL;
  if (g_getenv ("MSIM_UNDER_VALGRIND") != NULL)
    {
      g_ptr_array_add (argv, (gpointer) "valgrind");
      g_ptr_array_add (argv, (gpointer) "--quiet");
      g_ptr_array_add (argv, (gpointer) "--error-exitcode=99");
      g_ptr_array_add (argv, (gpointer) "--leak-check=full");
      g_ptr_array_add (argv, (gpointer) "--errors-for-leak-kinds=definite");
      /* The project's suppressions, as the valgrind test setup uses. */
      const char *root = g_getenv ("MOESIM_DATA_DIR");
      if (root != NULL)
        {
          supp = g_strdup_printf ("--suppressions=%s/tests/valgrind.supp", root);
          g_ptr_array_add (argv, supp);
        }
    }
  g_ptr_array_add (argv, (gpointer)bin);
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer)*a);
  g_ptr_array_add (argv, NULL);
  E2eRun r = { -1, NULL, NULL };
  int wait_status = 0;
  GError *error = NULL;
  if (!g_spawn_sync (cwd, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &r.out,
                     &r.err, &wait_status, &error))
    g_error ("spawn failed: %s", error->message);
  if (WIFEXITED (wait_status))
    r.status = WEXITSTATUS (wait_status);
  g_ptr_array_free (argv, TRUE);
  g_free (supp);
  return r;
}

E2eRun
e2e_run (const char *cwd, const char *first_arg, ...)
{
  GPtrArray *args = g_ptr_array_new ();
  va_list ap;
  va_start (ap, first_arg);
  for (const char *a = first_arg; a; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer)a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  E2eRun r = e2e_runv (cwd, (const char *const *)args->pdata);
  g_ptr_array_free (args, TRUE);
  return r;
}

void
e2e_run_clear (E2eRun *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

char *
e2e_tmpdir (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("moesim-e2e-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

void
e2e_rmtree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    {
      g_remove (dir);
      return;
    }
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      char *p = g_build_filename (dir, name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        e2e_rmtree (p);
      else
        g_remove (p);
      g_free (p);
    }
  g_dir_close (d);
  g_rmdir (dir);
}

int
e2e_count_entries (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return -1;
  int n = 0;
  while (g_dir_read_name (d) != NULL)
    n++;
  g_dir_close (d);
  return n;
}
