/* moesim sweep: run a grid of configs (a run config plus [sweep] axes) on
 * a thread pool, resumably, optionally as one shard of several (job arrays,
 * or MPI ranks when built with MPI). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "msim-error.h"
#include "run-config.h"
#include "sweep.h"

#ifdef MSIM_HAVE_MPI
#include <mpi.h>
#endif

static gboolean
parse_shard (const char *text, guint *index, guint *count)
{
  guint64 i, n;
  g_auto (GStrv) parts = g_strsplit (text, "/", 2);
  if (g_strv_length (parts) != 2
      || !g_ascii_string_to_unsigned (parts[0], 10, 0, G_MAXUINT, &i, NULL)
      || !g_ascii_string_to_unsigned (parts[1], 10, 1, 1000000, &n, NULL) || i >= n)
    return FALSE;
  *index = (guint)i;
  *count = (guint)n;
  return TRUE;
}

int
msim_cmd_sweep (int argc, char **argv)
{
  g_autofree char *out = NULL;
  g_autofree char *shard = NULL;
  gint jobs = (gint)g_get_num_processors ();
  gboolean list = FALSE;
  gboolean merge_only = FALSE;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Results directory (required)", "DIR" },
    { "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Worker threads (default: the number of cores)",
      "N" },
    { "shard", 0, 0, G_OPTION_ARG_STRING, &shard,
      "Run only points with index mod n = i (e.g. a Slurm job array); merge later", "i/n" },
    { "list", 0, 0, G_OPTION_ARG_NONE, &list, "Print the points and exit", NULL },
    { "merge", 0, 0, G_OPTION_ARG_NONE, &merge_only,
      "Only merge the journals of DIR into points.jsonl and points.csv", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("CONFIG.ini - run a parameter sweep");
  g_option_context_set_description (
      ctx, "CONFIG is a run config with a [sweep] group (see README.md).  Finished points are\n"
           "journaled in DIR; re-running the same command skips them.  When every point is\n"
           "done, DIR/points.jsonl and DIR/points.csv hold one row per point, by index.\n"
           "Exit status: 0 all points ok, 1 some points failed, 2 bad input.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "sweep: expected exactly one CONFIG file (try --help)"));
  if (jobs < 1 || jobs > 1024)
    return msim_cli_fail (
        g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "sweep: --jobs must be in 1..1024"));
  MsimSweepOptions o = { (guint)jobs, 0, 1, isatty (STDERR_FILENO), TRUE };
  if (shard && !parse_shard (shard, &o.shard_index, &o.shard_count))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "sweep: --shard must be i/n with 0 <= i < n, got '%s'",
                                       shard));
#ifdef MSIM_HAVE_MPI
  /* Initialise MPI only under a launcher: a plain `moesim sweep` must not
   * depend on an MPI runtime being usable (singleton init needs daemons). */
  int mpi_rank = 0, mpi_size = 1;
  gboolean use_mpi = g_getenv ("OMPI_COMM_WORLD_SIZE") || g_getenv ("PMI_SIZE")
                     || g_getenv ("PMIX_RANK") || g_getenv ("MPI_LOCALNRANKS");
  if (use_mpi)
    {
      MPI_Init (&argc, &argv);
      MPI_Comm_rank (MPI_COMM_WORLD, &mpi_rank);
      MPI_Comm_size (MPI_COMM_WORLD, &mpi_size);
    }
  if (mpi_size > 1)
    {
      if (shard)
        {
          MPI_Finalize ();
          use_mpi = FALSE;
          return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                             "sweep: --shard cannot be combined with mpirun"));
        }
      o.shard_index = (guint)mpi_rank;
      o.shard_count = (guint)mpi_size;
      o.progress = o.progress && mpi_rank == 0;
      o.merge = FALSE; /* rank 0 merges after everyone is done */
    }
#endif
  GError *error = NULL;
  g_autoptr (MsimSweep) sw = msim_sweep_load (argv[1], &error);
  int status = 0;
  if (sw == NULL)
    status = msim_cli_fail (error);
  else if (list)
    {
      for (guint p = 0; p < msim_sweep_n_points (sw); p++)
        {
          printf ("%u", p);
          for (guint a = 0; a < msim_sweep_n_axes (sw); a++)
            printf (" %s=%s", msim_sweep_axis_name (sw, a), msim_sweep_value (sw, p, a));
          printf ("\n");
        }
    }
  else if (out == NULL)
    status
        = msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT, "sweep: -o DIR is required"));
  else if (merge_only)
    {
      if (!msim_sweep_merge (sw, out, &error))
        status = msim_cli_fail (error);
      else
        printf ("sweep: merged %u points into %s/points.csv\n", msim_sweep_n_points (sw), out);
    }
  else
    {
      MsimSweepReport rep;
      gint64 t0 = g_get_monotonic_time ();
      if (!msim_sweep_run (sw, out, &o, &rep, &error))
        status = msim_cli_fail (error);
      else
        {
          double wall = (double)(g_get_monotonic_time () - t0) / 1e6;
          printf ("sweep: shard %u/%u: %u points, %u run now, %u already done, %u failed, %.2f s "
                  "with %u jobs%s\n",
                  o.shard_index, o.shard_count, rep.total, rep.ran, rep.skipped, rep.failed, wall,
                  o.jobs, rep.merged ? "; merged into points.csv" : "");
          status = rep.failed > 0 ? 1 : 0;
        }
#ifdef MSIM_HAVE_MPI
      if (mpi_size > 1)
        {
          int mine = status, worst = 0;
          MPI_Allreduce (&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
          status = worst;
          if (mpi_rank == 0 && worst < 2)
            {
              if (!msim_sweep_merge (sw, out, &error))
                status = msim_cli_fail (error);
              else
                printf ("sweep: %d ranks done; merged into %s/points.csv\n", mpi_size, out);
            }
        }
#endif
    }
  msim_run_config_set_trace_cache (FALSE);
#ifdef MSIM_HAVE_MPI
  if (use_mpi)
    MPI_Finalize ();
#endif
  return status;
}
