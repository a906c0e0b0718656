#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "ini.h"
#include "msim-check.h"
#include "msim-error.h"

static MsimIni *
load (const char *text, GError **error)
{
  return msim_ini_load_data (text, strlen (text), "test.ini", error);
}

static void
expect_error (const char *text, const char *fragment)
{
  GError *error = NULL;
  MsimIni *ini = load (text, &error);
  ck_assert_ptr_null (ini);
  ck_assert_ptr_nonnull (error);
  ck_assert_msg (strstr (error->message, fragment) != NULL, "message '%s' lacks '%s'",
                 error->message, fragment);
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_error_free (error);
}

START_TEST (test_basic)
{
  GError *error = NULL;
  g_autoptr (MsimIni) ini = load ("# comment\n[a]\nx = 1.5\ny=2\n\n[b]\nname = hello world \n"
                                  "flag = yes\nmode = fast\n",
                                  &error);
  ck_assert_ptr_nonnull (ini);
  double x;
  gint64 y;
  g_autofree char *name = NULL;
  gboolean flag;
  int mode;
  ck_assert (msim_ini_get_double (ini, "a", "x", TRUE, 0, 0, 10, &x, NULL));
  ck_assert (x == 1.5);
  ck_assert (msim_ini_get_int64 (ini, "a", "y", TRUE, 0, 0, 10, &y, NULL));
  ck_assert_int_eq (y, 2);
  ck_assert (msim_ini_get_string (ini, "b", "name", TRUE, NULL, &name, NULL));
  ck_assert_str_eq (name, "hello world");
  ck_assert (msim_ini_get_bool (ini, "b", "flag", TRUE, FALSE, &flag, NULL));
  ck_assert (flag);
  const char *const modes[] = { "slow", "fast", NULL };
  ck_assert (msim_ini_get_choice (ini, "b", "mode", TRUE, 0, modes, &mode, NULL));
  ck_assert_int_eq (mode, 1);
  /* Absent optional keys give the default. */
  ck_assert (msim_ini_get_double (ini, "a", "z", FALSE, 7.0, 0, 10, &x, NULL));
  ck_assert (x == 7.0);
  g_auto (GStrv) groups = msim_ini_groups (ini);
  ck_assert_int_eq (g_strv_length (groups), 2);
  ck_assert_str_eq (groups[0], "a");
}
END_TEST

START_TEST (test_syntax_errors)
{
  expect_error ("[a]\nx = 1\nx = 2\n", "test.ini:3: [a] duplicate key 'x' (first set at line 2)");
  expect_error ("[a]\n[b]\n[a]\n", "test.ini:3: duplicate group [a] (first defined at line 1)");
  expect_error ("x = 1\n[a]\n", "test.ini:1: key 'x' appears before any [group]");
  expect_error ("[a]\nnot a pair\n", "test.ini:2: expected '[group]' or 'key = value'");
  expect_error ("[a\n", "test.ini:1: malformed group header");
  expect_error ("[]\n", "test.ini:1: malformed group header");
  expect_error ("[a]\n = 3\n", "test.ini:2: empty key");
  expect_error ("[a]\nb c = 3\n", "test.ini:2: invalid character ' '");
  expect_error ("[a]\nx = 1\ny = \xff\xfe\n", "test.ini:3: invalid UTF-8 at byte offset 14");
}
END_TEST

START_TEST (test_typed_errors)
{
  g_autoptr (MsimIni) ini = load ("[a]\nx = abc\ny = 1e400\nz = -3\nw = nan\nb = maybe\n"
                                  "i = 1.5\nh = 0x10\nm = turbo\n",
                                  NULL);
  ck_assert_ptr_nonnull (ini);
  GError *error = NULL;
  double d;
  gint64 i;
  gboolean b;
  int c;
  ck_assert (!msim_ini_get_double (ini, "a", "x", TRUE, 0, 0, 1, &d, &error));
  ck_assert (strstr (error->message, "test.ini:2: [a] x: expected a finite number, got 'abc'"));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_double (ini, "a", "y", TRUE, 0, 0, INFINITY, &d, &error));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_double (ini, "a", "w", TRUE, 0, -INFINITY, INFINITY, &d, &error));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_double (ini, "a", "h", TRUE, 0, -INFINITY, INFINITY, &d, &error));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_int64 (ini, "a", "z", TRUE, 0, 0, 100, &i, &error));
  ck_assert (strstr (error->message, "test.ini:4: [a] z: value -3 is out of range [0, 100]"));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_int64 (ini, "a", "i", TRUE, 0, 0, 100, &i, &error));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_bool (ini, "a", "b", TRUE, 0, &b, &error));
  g_clear_error (&error);
  const char *const modes[] = { "slow", "fast", NULL };
  ck_assert (!msim_ini_get_choice (ini, "a", "m", TRUE, 0, modes, &c, &error));
  ck_assert (strstr (error->message, "'turbo' is not one of: slow, fast"));
  g_clear_error (&error);
  ck_assert (!msim_ini_get_double (ini, "a", "missing", TRUE, 0, 0, 1, &d, &error));
  ck_assert (strstr (error->message, "test.ini:1: [a]: missing required key 'missing'"));
  g_clear_error (&error);
  const char *const allowed[] = { "x", "y", "z", "w", "b", "i", "h", NULL };
  ck_assert (!msim_ini_check_keys (ini, "a", allowed, &error));
  ck_assert (strstr (error->message, "test.ini:9: [a] m: unknown key"));
  g_clear_error (&error);
  const char *const allowed2[] = { "x", "y", "z", "w", "b", "i", "h", "m", NULL };
  ck_assert (msim_ini_check_keys (ini, "a", allowed2, NULL));
  const char *const prefix[] = { "[a]", NULL };
  (void) prefix;
  const char *const groups[] = { "b*", NULL };
  ck_assert (!msim_ini_check_groups (ini, groups, &error));
  g_clear_error (&error);
  /* 1e6 is accepted as an integer, 2^60 as a plain integer. */
  g_autoptr (MsimIni) ini2 = load ("[a]\nn = 1e6\nbig = 1152921504606846976\n", NULL);
  ck_assert (msim_ini_get_int64 (ini2, "a", "n", TRUE, 0, 0, G_MAXINT64, &i, NULL));
  ck_assert_int_eq (i, 1000000);
  ck_assert (msim_ini_get_int64 (ini2, "a", "big", TRUE, 0, 0, G_MAXINT64, &i, NULL));
  ck_assert_int_eq (i, G_GINT64_CONSTANT (1152921504606846976));
}
END_TEST

static char *
write_tmp (const char *dir, const char *name, const char *text)
{
  char *p = g_build_filename (dir, name, NULL);
  ck_assert (g_file_set_contents (p, text, -1, NULL));
  return p;
}

START_TEST (test_include)
{
  g_autofree char *dir = g_dir_make_tmp ("msim-ini-XXXXXX", NULL);
  g_autofree char *base = write_tmp (dir, "base.ini", "[model]\nlayers = 32\nexperts = 8\n"
                                                      "[extra]\nk = v\n");
  g_autofree char *over = write_tmp (dir, "over.ini", "[model]\nexperts = 16\n");
  g_autofree char *top = write_tmp (dir, "top.ini", "[model]\ninclude = base.ini\nlayers = 4\n"
                                                    "[gpu]\ninclude = over.ini\n");
  GError *error = NULL;
  g_autoptr (MsimIni) ini = msim_ini_load (top, &error);
  ck_assert_msg (ini != NULL, "%s", error ? error->message : "");
  gint64 v;
  /* Own key wins over the include. */
  ck_assert (msim_ini_get_int64 (ini, "model", "layers", TRUE, 0, 0, 100, &v, NULL));
  ck_assert_int_eq (v, 4);
  /* The later include (over.ini) wins over the earlier one. */
  ck_assert (msim_ini_get_int64 (ini, "model", "experts", TRUE, 0, 0, 100, &v, NULL));
  ck_assert_int_eq (v, 16);
  ck_assert (msim_ini_has_group (ini, "extra"));
  ck_assert (!msim_ini_has_key (ini, "model", "include"));
  /* Errors in included keys point at the included file. */
  ck_assert (!msim_ini_get_int64 (ini, "extra", "k", TRUE, 0, 0, 1, &v, &error));
  ck_assert_msg (strstr (error->message, "base.ini:5: [extra] k:") != NULL, "%s", error->message);
  g_clear_error (&error);

  g_autofree char *cyc1 = write_tmp (dir, "c1.ini", "[a]\ninclude = c2.ini\n");
  g_autofree char *cyc2 = write_tmp (dir, "c2.ini", "[a]\ninclude = c1.ini\n");
  ck_assert_ptr_null (msim_ini_load (cyc1, &error));
  ck_assert_msg (strstr (error->message, "cycle") != NULL, "%s", error->message);
  g_clear_error (&error);
  g_autofree char *miss = write_tmp (dir, "m.ini", "[a]\nx=1\ninclude = nowhere.ini\n");
  ck_assert_ptr_null (msim_ini_load (miss, &error));
  ck_assert_msg (strstr (error->message, "m.ini:3: [a] include: file 'nowhere.ini' not found"),
                 "%s", error->message);
  g_clear_error (&error);
  /* A directory given as a file. */
  ck_assert_ptr_null (msim_ini_load (dir, &error));
  ck_assert (strstr (error->message, "is a directory") != NULL);
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_clear_error (&error);
  ck_assert_ptr_null (msim_ini_load ("/nonexistent/x.ini", &error));
  ck_assert_int_eq (msim_error_exit_status (error), 2);
  g_clear_error (&error);
  const char *names[] = { "base.ini", "over.ini", "top.ini", "c1.ini", "c2.ini", "m.ini" };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (dir, names[i], NULL);
      g_remove (p);
    }
  g_rmdir (dir);
}
END_TEST

static Suite *
ini_suite (void)
{
  Suite *s = suite_create ("ini");
  TCase *tc = tcase_create ("parse");
  tcase_add_test (tc, test_basic);
  tcase_add_test (tc, test_syntax_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("typed");
  tcase_add_test (tc, test_typed_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("include");
  tcase_add_test (tc, test_include);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (ini_suite)
