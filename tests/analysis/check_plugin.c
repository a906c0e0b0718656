/* Check suite for placement plugins (analysis/placement-plugin.c): the
 * example plugin of experiments/plugins loads, runs and validates; a build
 * of it with another ABI version, a missing file and a file that is not a
 * shared object are refused with clear errors.  The paths of the two
 * plugin builds come from meson (MSIM_EXAMPLE_PLUGIN, MSIM_BAD_ABI_PLUGIN). */
#include <glib/gstdio.h>
#include <string.h>

#include "analysis-test-util.h"
#include "msim-error.h"

START_TEST (tc_load_and_run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimPlacementPlugin) pl = msim_placement_plugin_open (MSIM_EXAMPLE_PLUGIN, &error);
  ck_assert_msg (pl != NULL, "%s", error ? error->message : "");
  const MsimPlacementPolicy *pol = msim_placement_plugin_policy (pl);
  ck_assert_str_eq (pol->name, "greedy-follow");
  ck_assert_str_eq (msim_placement_plugin_path (pl), MSIM_EXAMPLE_PLUGIN);
  g_autoptr (MsimPlacementProblem) pb = test_problem (5, 8, 4, 1, 3);
  g_autoptr (GArray) stats = NULL;
  g_autoptr (MsimPlacement) p = msim_placement_run (pol, NULL, pb, &stats, &error);
  ck_assert_msg (p != NULL, "%s", error ? error->message : "");
  ck_assert (msim_placement_validate (p, 2, NULL));
  ck_assert (msim_placement_stats_get (stats, "layers_placed") == 5.0);
  /* Layer 0 contiguous by default, round-robin on request. */
  ck_assert_uint_eq (msim_placement_get_gpu (p, 0, 3), 1);
  const char *rr[] = { "start=round-robin", NULL };
  g_autoptr (MsimPlacement) q = msim_placement_run (pol, rr, pb, NULL, &error);
  ck_assert (q != NULL);
  ck_assert_uint_eq (msim_placement_get_gpu (q, 0, 3), 3);
  /* Its own option errors come back prefixed, as input errors. */
  const char *bad[] = { "start=sideways", NULL };
  ck_assert (msim_placement_run (pol, bad, pb, NULL, &error) == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
  ck_assert_msg (strstr (error->message, "placement policy 'greedy-follow': unknown option")
                     != NULL,
                 "%s", error->message);
}
END_TEST

START_TEST (tc_resolve)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *spec = g_strdup_printf ("plugin:%s", MSIM_EXAMPLE_PLUGIN);
  MsimPlacementPlugin *pl = NULL;
  const MsimPlacementPolicy *pol = msim_placement_policy_resolve (spec, &pl, &error);
  ck_assert_msg (pol != NULL, "%s", error ? error->message : "");
  ck_assert (pl != NULL);
  ck_assert_str_eq (pol->name, "greedy-follow");
  msim_placement_plugin_free (pl);
  pl = NULL;
  ck_assert (msim_placement_policy_resolve ("contiguous", &pl, NULL) != NULL);
  ck_assert (pl == NULL);
}
END_TEST

START_TEST (tc_wrong_abi)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (MsimPlacementPlugin) pl = msim_placement_plugin_open (MSIM_BAD_ABI_PLUGIN, &error);
  ck_assert (pl == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
  g_autofree char *want = g_strdup_printf ("plugin ABI version 999, but this moesim supports "
                                           "version %u",
                                           MSIM_PLACEMENT_ABI_VERSION);
  ck_assert_msg (strstr (error->message, want) != NULL, "%s", error->message);
  ck_assert (strstr (error->message, MSIM_BAD_ABI_PLUGIN) != NULL);
  ck_assert (strstr (error->message, "rebuild the plugin") != NULL);
}
END_TEST

START_TEST (tc_not_a_plugin)
{
  g_autoptr (GError) error = NULL;
  ck_assert (msim_placement_plugin_open ("/nonexistent/libx.so", &error) == NULL);
  ck_assert (strstr (error->message, "no such plugin file") != NULL);
  g_clear_error (&error);
  g_autofree char *dir = g_dir_make_tmp ("msim-plugin-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "fake.so", NULL);
  ck_assert (g_file_set_contents (path, "not an ELF file\n", -1, NULL));
  ck_assert (msim_placement_plugin_open (path, &error) == NULL);
  ck_assert_int_eq (error->code, MSIM_ERROR_INPUT);
  ck_assert_msg (strstr (error->message, "cannot load plugin") != NULL, "%s", error->message);
  g_unlink (path);
  g_rmdir (dir);
}
END_TEST

static Suite *
plugin_suite (void)
{
  test_quiet_libraries ();
  Suite *s = suite_create ("plugin");
  TCase *tc = tcase_create ("example");
  tcase_add_test (tc, tc_load_and_run);
  tcase_add_test (tc, tc_resolve);
  suite_add_tcase (s, tc);
  tc = tcase_create ("refused");
  tcase_add_test (tc, tc_wrong_abi);
  tcase_add_test (tc, tc_not_a_plugin);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (plugin_suite)
