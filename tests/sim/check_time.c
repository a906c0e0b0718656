#include <math.h>

#include "msim-check.h"
#include "msim-time.h"

START_TEST (test_seconds_roundtrip)
{
  MsimTime t = -1;
  ck_assert (msim_time_from_seconds (1.0, &t));
  ck_assert_int_eq (t, MSIM_PS_PER_SECOND);
  ck_assert (msim_time_from_seconds (1.6e-12, &t)); /* nearest picosecond */
  ck_assert_int_eq (t, 2);
  ck_assert (msim_time_from_seconds (0.4e-12, &t));
  ck_assert_int_eq (t, 0);
  ck_assert (msim_time_from_seconds (3.7, &t));
  ck_assert_int_eq (t, G_GINT64_CONSTANT (3700000000000));
  ck_assert (msim_time_to_seconds (t) == 3.7);
  /* A large time keeps picosecond resolution through the split conversion. */
  MsimTime big = G_GINT64_CONSTANT (8000000000000000001);
  double s = msim_time_to_seconds (big);
  ck_assert (fabs (s - 8000000.000000000001) < 1e-9);
}
END_TEST

START_TEST (test_seconds_reject)
{
  MsimTime t = 42;
  ck_assert (!msim_time_from_seconds (NAN, &t));
  ck_assert (!msim_time_from_seconds (INFINITY, &t));
  ck_assert (!msim_time_from_seconds (-1e-3, &t));
  ck_assert (!msim_time_from_seconds (1e7, &t));  /* 1e19 ps > INT64_MAX */
  ck_assert_int_eq (t, 42);                       /* untouched on failure */
  ck_assert (msim_time_from_seconds (9.2e6, &t)); /* 9.2e18 ps fits */
}
END_TEST

START_TEST (test_add_overflow)
{
  MsimTime r = 0;
  ck_assert (msim_time_add (5, 7, &r));
  ck_assert_int_eq (r, 12);
  ck_assert (!msim_time_add (G_MAXINT64, 1, &r));
  ck_assert (!msim_time_add (G_MININT64, -1, &r));
  ck_assert (msim_time_add (G_MAXINT64, -1, &r));
  ck_assert_int_eq (r, G_MAXINT64 - 1);
  ck_assert_int_eq (msim_time_add_sat (G_MAXINT64 - 3, 10), MSIM_TIME_NEVER);
  ck_assert_int_eq (msim_time_add_sat (3, 10), 13);
}
END_TEST

START_TEST (test_bytes_at_rate)
{
  MsimTime t = 0;
  /* 1 GB at 1 GB/s is one second exactly. */
  ck_assert (msim_time_for_bytes (1e9, 1e9, &t));
  ck_assert_int_eq (t, MSIM_PS_PER_SECOND);
  /* 1 byte at 3 B/s: 333333333333.33 ps rounds down. */
  ck_assert (msim_time_for_bytes (1.0, 3.0, &t));
  ck_assert_int_eq (t, G_GINT64_CONSTANT (333333333333));
  /* 2 bytes at 3 B/s: 666666666666.67 ps rounds up. */
  ck_assert (msim_time_for_bytes (2.0, 3.0, &t));
  ck_assert_int_eq (t, G_GINT64_CONSTANT (666666666667));
  ck_assert (msim_time_for_bytes (0.0, 0.0, &t));
  ck_assert_int_eq (t, 0);
  ck_assert (!msim_time_for_bytes (1.0, 0.0, &t));
  ck_assert (!msim_time_for_bytes (-1.0, 1.0, &t));
  ck_assert (!msim_time_for_bytes (NAN, 1.0, &t));
  ck_assert (!msim_time_for_bytes (1e30, 1.0, &t)); /* overflow is reported */
  ck_assert (msim_time_bytes_at_rate (MSIM_PS_PER_SECOND / 2, 4e9) == 2e9);
}
END_TEST

static Suite *
time_suite (void)
{
  Suite *s = suite_create ("time");
  TCase *tc = tcase_create ("seconds");
  tcase_add_test (tc, test_seconds_roundtrip);
  tcase_add_test (tc, test_seconds_reject);
  suite_add_tcase (s, tc);
  tc = tcase_create ("arithmetic");
  tcase_add_test (tc, test_add_overflow);
  tcase_add_test (tc, test_bytes_at_rate);
  suite_add_tcase (s, tc);
  return s;
}

MSIM_CHECK_MAIN (time_suite)
