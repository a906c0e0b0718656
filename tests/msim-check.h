#pragma once

/* Shared scaffolding for the Check suites: every test binary builds one
 * suite and runs it with MSIM_CHECK_MAIN, which reports through the
 * environment-controlled Check runner (CK_FORK, CK_VERBOSITY) and returns
 * non-zero on any failure so meson counts it. */

#include <check.h>
#include <glib.h>
#include <stdlib.h>

#define MSIM_CHECK_MAIN(suite_fn)                                                                  \
  int main (void)                                                                                  \
  {                                                                                                \
    SRunner *sr = srunner_create (suite_fn ());                                                    \
    srunner_run_all (sr, CK_ENV);                                                                  \
    int failed = srunner_ntests_failed (sr);                                                       \
    srunner_free (sr);                                                                             \
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                              \
  }

/* Relative closeness for doubles in assertions. */
#define msim_ck_assert_near(a, b, rel)                                                             \
  do                                                                                               \
    {                                                                                              \
      double _a = (a), _b = (b);                                                                   \
      double _s = fabs (_a) > fabs (_b) ? fabs (_a) : fabs (_b);                                   \
      ck_assert_msg (fabs (_a - _b) <= (rel)*_s, "%s = %.17g, %s = %.17g (rel tol %g)", #a, _a,    \
                     #b, _b, (double)(rel));                                                       \
    }                                                                                              \
  while (0)

/* Path of a file in the source tree (set by meson as MSIM_SOURCE_DIR). */
static inline char *
msim_test_path (const char *relative)
{
  const char *root = g_getenv ("MOESIM_DATA_DIR");
  return g_build_filename (root ? root : ".", relative, NULL);
}
