/* The bad-input catalogue: every case in tests/e2e/bad-input/cases.ini runs
 * the real moesim binary on one malformed input (or an impossible output
 * path) and must fail cleanly:
 *
 *  - exit status 2 (no signal: a crash or an abort fails the case; under
 *    the valgrind test setup the binary runs under memcheck too, see
 *    e2e-util.c, and any memcheck error changes the status);
 *  - nothing on stdout, and exactly one line on stderr, "moesim: error: "
 *    followed by a message that contains every `expect` substring of the
 *    case (the file and the line, key or byte offset, and what is wrong);
 *  - no partial output and no change to existing outputs: the case runs in
 *    a fresh directory holding sentinel files where the outputs go, and
 *    afterwards that directory must hold exactly the same names and bytes.
 *
 * Positive controls check that the inputs the cases start from are valid
 * and that a successful run does change the sentinels (so the snapshot
 * comparison can see a change).  The catalogue is described case by case
 * in tests/e2e/bad-input/README.md; a test keeps the two in step. */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "e2e-util.h"
#include "msim-check.h"

/* Sentinel files created in every case's directory; each holds the line
 * "sentinel NAME".  Commands in the catalogue write their outputs here
 * (run -o @TMP@/out, flows -o @TMP@/out.csv, trace convert ... @TMP@/out.mtr). */
static const char *const sentinel_files[] = {
  "out/summary.json", "out/blocks.csv", "out.csv",       "out.mtr", "out.npy",
  "out.json",         "out.dot",        "timeline.json", "afile",   NULL,
};

static GKeyFile *manifest;
static char **case_names;
static gsize n_cases;
static char *cases_dir;

static void
load_manifest (void)
{
  /* Some expected texts come from the C library and GLib (strerror, file
   * errors): run moesim untranslated. */
  g_setenv ("LC_ALL", "C", TRUE);
  cases_dir = msim_test_path ("tests/e2e/bad-input");
  g_autofree char *path = g_build_filename (cases_dir, "cases.ini", NULL);
  manifest = g_key_file_new ();
  GError *error = NULL;
  if (!g_key_file_load_from_file (manifest, path, G_KEY_FILE_NONE, &error))
    g_error ("%s: %s", path, error->message);
  case_names = g_key_file_get_groups (manifest, &n_cases);
}

static void
write_file (const char *path, const char *text)
{
  GError *error = NULL;
  if (!g_file_set_contents (path, text, -1, &error))
    g_error ("%s", error->message);
}

static void
make_sentinels (const char *tmp)
{
  g_autofree char *out = g_build_filename (tmp, "out", NULL);
  g_autofree char *adir = g_build_filename (tmp, "adir", NULL);
  g_autofree char *fifo = g_build_filename (tmp, "fifo", NULL);
  ck_assert_int_eq (g_mkdir (out, 0755), 0);
  ck_assert_int_eq (g_mkdir (adir, 0755), 0);
  ck_assert_msg (mkfifo (fifo, 0644) == 0, "mkfifo: %s", g_strerror (errno));
  for (const char *const *f = sentinel_files; *f; f++)
    {
      g_autofree char *path = g_build_filename (tmp, *f, NULL);
      g_autofree char *text = g_strdup_printf ("sentinel %s\n", *f);
      write_file (path, text);
    }
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* Appends every entry under @root/@rel to @s, sorted, with its type and,
 * for regular files, its bytes; a FIFO or device is listed, never opened. */
static void
snapshot_into (GString *s, const char *root, const char *rel)
{
  g_autofree char *dir_path = g_build_filename (root, rel, NULL);
  GDir *dir = g_dir_open (dir_path, 0, NULL);
  ck_assert_ptr_nonnull (dir);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (dir);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *sub = g_build_filename (rel, g_ptr_array_index (names, i), NULL);
      g_autofree char *path = g_build_filename (root, sub, NULL);
      GStatBuf st;
      ck_assert_int_eq (g_lstat (path, &st), 0);
      if (S_ISDIR (st.st_mode))
        {
          g_string_append_printf (s, "dir %s\n", sub);
          snapshot_into (s, root, sub);
        }
      else if (S_ISREG (st.st_mode))
        {
          g_autofree char *data = NULL;
          gsize len = 0;
          ck_assert (g_file_get_contents (path, &data, &len, NULL));
          g_string_append_printf (s, "file %s %" G_GSIZE_FORMAT "\n", sub, len);
          g_string_append_len (s, data, (gssize)len);
          g_string_append_c (s, '\n');
        }
      else
        g_string_append_printf (s, "other %s %o\n", sub, (unsigned)st.st_mode);
    }
}

static char *
snapshot (const char *root)
{
  GString *s = g_string_new (NULL);
  snapshot_into (s, root, ".");
  return g_string_free (s, FALSE);
}

static char *
replace (const char *text, const char *what, const char *by)
{
  g_auto (GStrv) parts = g_strsplit (text, what, -1);
  return g_strjoinv (by, parts);
}

/* @CASES@: this catalogue; @DATA@: the source tree; @TMP@: the case's
 * directory. */
static char *
substitute (const char *text, const char *tmp)
{
  g_autofree char *data = msim_test_path (".");
  g_autofree char *t1 = replace (text, "@CASES@", cases_dir);
  g_autofree char *t2 = replace (t1, "@DATA@", data);
  return replace (t2, "@TMP@", tmp);
}

/* Runs moesim with the case's arguments in a fresh directory @tmp. */
static E2eRun
run_args (const char *name, const char *args_text, const char *tmp)
{
  g_autofree char *args = substitute (args_text, tmp);
  g_auto (GStrv) argv = NULL;
  GError *error = NULL;
  if (!g_shell_parse_argv (args, NULL, &argv, &error))
    ck_abort_msg ("%s: bad args '%s': %s", name, args, error->message);
  return e2e_runv (tmp, (const char *const *)argv);
}

START_TEST (test_case)
{
  const char *name = case_names[_i];
  g_autofree char *disabled = g_key_file_get_string (manifest, name, "disabled", NULL);
  if (disabled != NULL)
    {
      printf ("bad-input %s: disabled: %s\n", name, disabled);
      return;
    }
  g_autofree char *args = g_key_file_get_string (manifest, name, "args", NULL);
  ck_assert_msg (args != NULL, "%s: no args", name);
  gsize n_expect = 0;
  g_auto (GStrv) expect = g_key_file_get_string_list (manifest, name, "expect", &n_expect, NULL);
  ck_assert_msg (n_expect > 0, "%s: no expect", name);
  int status = 2;
  if (g_key_file_has_key (manifest, name, "status", NULL))
    status = g_key_file_get_integer (manifest, name, "status", NULL);

  g_autofree char *tmp = e2e_tmpdir ();
  make_sentinels (tmp);
  g_autofree char *before = snapshot (tmp);
  E2eRun r = run_args (name, args, tmp);
  g_autofree char *after = snapshot (tmp);

  ck_assert_msg (r.status == status,
                 "%s: exit status %d (-1: killed by a signal), expected %d; "
                 "stderr: %s",
                 name, r.status, status, r.err);
  ck_assert_msg (*r.out == '\0', "%s: wrote to stdout: %s", name, r.out);
  const char *nl = strchr (r.err, '\n');
  ck_assert_msg (g_str_has_prefix (r.err, "moesim: error: ") && nl != NULL && nl[1] == '\0',
                 "%s: stderr is not one 'moesim: error: ...' line: [%s]", name, r.err);
  ck_assert_msg (g_utf8_validate (r.err, -1, NULL), "%s: stderr is not UTF-8: %s", name, r.err);
  for (gsize i = 0; i < n_expect; i++)
    {
      g_autofree char *want = substitute (expect[i], tmp);
      ck_assert_msg (strstr (r.err, want) != NULL, "%s: stderr lacks '%s': %s", name, want, r.err);
    }
  ck_assert_msg (strcmp (before, after) == 0,
                 "%s: the output directory changed (partial output, or a sentinel "
                 "modified): before:\n%s\nafter:\n%s",
                 name, before, after);
  e2e_run_clear (&r);
  e2e_rmtree (tmp);
}
END_TEST

/* The valid inputs the cases start from are valid, and a successful run
 * changes the sentinels: the negative cases fail because of their defect,
 * and the snapshot comparison can see a write. */
START_TEST (test_controls)
{
  static const char *const controls[] = {
    "run @CASES@/run/base.ini -o @TMP@/out --timeline @TMP@/timeline.json",
    "flows --topology @CASES@/topo/good.ini --flows @CASES@/flows/good.csv -o @TMP@/out.csv",
    "trace convert @CASES@/trace/good.json @TMP@/out.mtr",
    "trace convert @CASES@/trace/good.csv @TMP@/out.mtr",
    "trace convert @CASES@/trace/good.npy @TMP@/out.mtr",
    "trace convert @CASES@/trace/good.mtr @TMP@/out.npy",
    "run @CASES@/run/base.ini -o @TMP@/out --set workload.trace=../trace/good.mtr",
    "run @CASES@/run/base.ini -o @TMP@/out --set workload.trace=../trace/good.npy",
    "run @CASES@/run/base.ini -o @TMP@/out --set workload.trace=../trace/good.csv",
    "run @CASES@/run/router-base.ini -o @TMP@/out",
    "run @CASES@/run/placement-good.ini -o @TMP@/out",
    NULL,
  };
  for (const char *const *c = controls; *c; c++)
    {
      g_autofree char *tmp = e2e_tmpdir ();
      make_sentinels (tmp);
      g_autofree char *before = snapshot (tmp);
      E2eRun r = run_args ("control", *c, tmp);
      ck_assert_msg (r.status == 0, "control '%s' failed (%d): %s", *c, r.status, r.err);
      g_autofree char *after = snapshot (tmp);
      ck_assert_msg (strcmp (before, after) != 0, "control '%s' changed nothing", *c);
      e2e_run_clear (&r);
      e2e_rmtree (tmp);
    }
}
END_TEST

/* At least 40 cases, each described in README.md, and each case file in
 * the catalogue named by some case or by the README. */
START_TEST (test_catalogue_documented)
{
  ck_assert_msg (n_cases >= 40, "only %" G_GSIZE_FORMAT " cases", n_cases);
  g_autofree char *readme_path = g_build_filename (cases_dir, "README.md", NULL);
  g_autofree char *readme = NULL;
  ck_assert (g_file_get_contents (readme_path, &readme, NULL, NULL));
  for (gsize i = 0; i < n_cases; i++)
    {
      g_autofree char *cell = g_strdup_printf ("| `%s` |", case_names[i]);
      ck_assert_msg (strstr (readme, cell) != NULL, "case %s is not described in %s", case_names[i],
                     readme_path);
    }
  g_autofree char *all_args = NULL;
  {
    GString *s = g_string_new (NULL);
    for (gsize i = 0; i < n_cases; i++)
      {
        g_autofree char *a = g_key_file_get_string (manifest, case_names[i], "args", NULL);
        g_string_append_printf (s, "%s\n", a ? a : "");
      }
    all_args = g_string_free (s, FALSE);
  }
  static const char *const subdirs[] = { "run", "topo", "trace", "flows", NULL };
  for (const char *const *d = subdirs; *d; d++)
    {
      g_autofree char *dir_path = g_build_filename (cases_dir, *d, NULL);
      GDir *dir = g_dir_open (dir_path, 0, NULL);
      ck_assert_ptr_nonnull (dir);
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *rel = g_strdup_printf ("%s/%s", *d, name);
          ck_assert_msg (strstr (all_args, rel) != NULL || strstr (readme, rel) != NULL,
                         "%s is used by no case and not mentioned in README.md", rel);
        }
      g_dir_close (dir);
    }
}
END_TEST

static Suite *
bad_input_suite (void)
{
  load_manifest ();
  Suite *s = suite_create ("bad_input");
  TCase *tc = tcase_create ("catalogue");
  tcase_add_test (tc, test_catalogue_documented);
  tcase_add_test (tc, test_controls);
  suite_add_tcase (s, tc);
  tc = tcase_create ("cases");
  tcase_add_loop_test (tc, test_case, 0, (int)n_cases);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (bad_input_suite)
