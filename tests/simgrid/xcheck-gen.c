/* xcheck-gen: writes the SimGrid cross-check's cases as files and compares
 * result files, so that a case can be reproduced, reduced and timed by hand
 * (tests/simgrid/README.md, experiments/simgrid-comparison/bench.sh).
 *
 *   xcheck-gen random --seed K [--latency zero|equal] -o DIR
 *   xcheck-gen alltoall --gpus N [--skew S] [--seed K] [--mean-mib M] [--bandwidth GBPS] -o DIR
 *   xcheck-gen compare OUT.csv REF.csv [--rel R] [--abs SECONDS]
 *
 * The first two write DIR/topology.ini and DIR/flows.csv and print what the
 * case is; compare prints the differences and exits 1 when a flow is out of
 * tolerance.  Exit status 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "xcheck-case.h"

static int
usage (const char *msg)
{
  fprintf (stderr,
           "xcheck-gen: %s\n"
           "usage: xcheck-gen random --seed K [--latency zero|equal] -o DIR\n"
           "       xcheck-gen alltoall --gpus N [--skew S] [--seed K] [--mean-mib M] "
           "[--bandwidth GBPS] -o DIR\n"
           "       xcheck-gen compare OUT.csv REF.csv [--rel R] [--abs SECONDS]\n",
           msg);
  return 2;
}

static int
write_case (XcheckCase *c, const char *dir)
{
  GError *error = NULL;
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      fprintf (stderr, "xcheck-gen: cannot create %s\n", dir);
      return 2;
    }
  g_autofree char *topo = g_build_filename (dir, "topology.ini", NULL);
  g_autofree char *flows = g_build_filename (dir, "flows.csv", NULL);
  if (!xcheck_case_write (c, topo, flows, &error))
    {
      fprintf (stderr, "xcheck-gen: %s\n", error->message);
      g_error_free (error);
      return 2;
    }
  printf ("%s\n%s\n%s\n", xcheck_case_describe (c), topo, flows);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    return usage ("missing command");
  const char *cmd = argv[1];
  gint64 seed = 1;
  gint gpus = 0;
  gdouble skew = 1.0, mean_mib = 1.0, bw_gbps = 450.0, rel = 1e-6, abs_s = 0.0;
  g_autofree char *latency = NULL;
  g_autofree char *dir = NULL;
  GOptionEntry entries[] = {
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed (default 1)", "K" },
    { "latency", 0, 0, G_OPTION_ARG_STRING, &latency, "random: zero (default) or equal", "L" },
    { "gpus", 0, 0, G_OPTION_ARG_INT, &gpus, "alltoall: GPUs", "N" },
    { "skew", 0, 0, G_OPTION_ARG_DOUBLE, &skew, "alltoall: lognormal sigma, 0 = equal (default 1)",
      "S" },
    { "mean-mib", 0, 0, G_OPTION_ARG_DOUBLE, &mean_mib, "alltoall: mean MiB per pair (default 1)",
      "M" },
    { "bandwidth", 0, 0, G_OPTION_ARG_DOUBLE, &bw_gbps,
      "alltoall: GB/s per GPU link and direction (default 450)", "GBPS" },
    { "rel", 0, 0, G_OPTION_ARG_DOUBLE, &rel, "compare: relative tolerance (default 1e-6)", "R" },
    { "abs", 0, 0, G_OPTION_ARG_DOUBLE, &abs_s, "compare: absolute tolerance in s (default 0)",
      "S" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &dir, "Output directory", "DIR" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("COMMAND - SimGrid cross-check cases");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      int r = usage (error->message);
      g_error_free (error);
      return r;
    }
  if (strcmp (cmd, "random") == 0)
    {
      if (dir == NULL || argc != 2 || seed < 0)
        return usage ("random needs --seed K >= 0 and -o DIR");
      XcheckLatency lat = XCHECK_LATENCY_ZERO;
      if (latency && strcmp (latency, "equal") == 0)
        lat = XCHECK_LATENCY_EQUAL;
      else if (latency && strcmp (latency, "zero") != 0)
        return usage ("--latency must be zero or equal");
      g_autoptr (XcheckCase) c = xcheck_case_random ((guint64)seed, lat);
      return write_case (c, dir);
    }
  if (strcmp (cmd, "alltoall") == 0)
    {
      if (dir == NULL || argc != 2 || gpus < 2 || gpus > 4096 || !(skew >= 0.0 && skew <= 10.0)
          || seed < 0 || !(mean_mib > 0.0) || !(bw_gbps > 0.0))
        return usage ("alltoall needs --gpus N in 2..4096, --skew in 0..10, and -o DIR");
      g_autoptr (XcheckCase) c = xcheck_case_alltoall ((guint)gpus, skew, (guint64)seed,
                                                       mean_mib * 1048576.0, bw_gbps * 1e9);
      return write_case (c, dir);
    }
  if (strcmp (cmd, "compare") == 0)
    {
      if (argc != 4)
        return usage ("compare needs OUT.csv REF.csv");
      XcheckDiff d;
      if (!xcheck_compare (argv[2], argv[3], rel, abs_s, &d, &error))
        {
          fprintf (stderr, "xcheck-gen: %s\n", error->message);
          g_error_free (error);
          return 2;
        }
      printf ("%u flows, %u out of tolerance (rel %g + abs %g s; the worst flow uses %.3g of it); "
              "max |diff| %.3g s, max rel (end) %.3g, max rel (duration) %.3g (flow %s)\n",
              d.n_flows, d.n_bad, rel, abs_s, d.max_tol_used, d.max_abs_s, d.max_rel_end,
              d.max_rel_dur, d.worst_id ? d.worst_id : "-");
      if (d.first_bad)
        printf ("first: %s\n", d.first_bad);
      int status = d.n_bad == 0 ? 0 : 1;
      xcheck_diff_clear (&d);
      return status;
    }
  return usage ("unknown command");
}
