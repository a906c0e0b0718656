#include <string.h>

#include "e2e-util.h"
#include "msim-check.h"

START_TEST (test_version_and_help)
{
  E2eRun r = e2e_run (NULL, "--version", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (g_str_has_prefix (r.out, "moesim "));
  e2e_run_clear (&r);
  r = e2e_run (NULL, "--help", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "bench") != NULL);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "queue", "--help", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "--prefill") != NULL);
  e2e_run_clear (&r);
}
END_TEST

START_TEST (test_usage_errors)
{
  const char *none[] = { NULL };
  E2eRun r = e2e_runv (NULL, none);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "no-such-command", NULL);
  ck_assert_int_eq (r.status, 2);
  ck_assert (strstr (r.err, "unknown command 'no-such-command'") != NULL);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "queue", "--no-such-flag", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "queue", "--runs", "0", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
  r = e2e_run (NULL, "bench", "warp-drive", NULL);
  ck_assert_int_eq (r.status, 2);
  e2e_run_clear (&r);
}
END_TEST

START_TEST (test_bench_queue_small)
{
  E2eRun r = e2e_run (NULL, "bench", "queue", "--prefill", "1000", "--ops", "20000", "--runs",
                      "3", NULL);
  ck_assert_int_eq (r.status, 0);
  ck_assert (strstr (r.out, "hold ") != NULL);
  ck_assert (strstr (r.out, "hold+cancel") != NULL);
  ck_assert (strstr (r.out, "(median Mops/s)") != NULL);
  e2e_run_clear (&r);
}
END_TEST

static Suite *
cli_suite (void)
{
  Suite *s = suite_create ("cli");
  TCase *tc = tcase_create ("basics");
  tcase_add_test (tc, test_version_and_help);
  tcase_add_test (tc, test_usage_errors);
  suite_add_tcase (s, tc);
  tc = tcase_create ("bench");
  tcase_add_test (tc, test_bench_queue_small);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (cli_suite)
