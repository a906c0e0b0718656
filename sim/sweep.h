#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * Sweeps: a run config plus a [sweep] group of axes.
 *
 *   [sweep]
 *   axis.model.experts = 8;16;32;64
 *   axis.topology.override.nodes = 1;2;4
 *   mode = cartesian          # or zip (all axes the same length)
 *   seeds = 1;2;3             # or repetitions = 3 (seeds 1..3); an implicit last axis
 *   metrics = time_s;tokens_per_s   # default: every summary metric
 *
 * A config with an [offload] group runs msim_offload_run() at each point
 * (moesim offload) and collects offload summary metrics instead.
 *
 * Points are numbered in expansion order (the first axis varies slowest).
 * Each finished point is appended to a journal in the output directory with
 * one write and an fsync, so a crash loses at most the points in flight and
 * a re-run skips what is already there; a point that fails is recorded with
 * its error and the sweep goes on.  When every point is done the journal is
 * turned into points.jsonl and points.csv, sorted by point index, so the
 * final files do not depend on thread scheduling.
 */

typedef struct _MsimSweep MsimSweep;

/* Reads the [sweep] group of @config and expands the grid.  Axis names are
 * checked by loading the config once with every axis at its first value
 * (unknown groups or keys are errors naming the axis). (transfer full) */
MsimSweep *msim_sweep_load (const char *config, GError **error);
void msim_sweep_free (MsimSweep *sweep);

guint msim_sweep_n_points (const MsimSweep *sweep);
guint msim_sweep_n_axes (const MsimSweep *sweep);
/* "group.key" of axis @i (the seed axis is "engine.seed"). */
const char *msim_sweep_axis_name (const MsimSweep *sweep, guint i);
/* Value of axis @i at point @p (transfer none). */
const char *msim_sweep_value (const MsimSweep *sweep, guint p, guint i);

typedef struct
{
  guint jobs;        /* worker threads, >= 1 */
  guint shard_index; /* this process runs points with index % shard_count == shard_index */
  guint shard_count; /* >= 1 */
  gboolean progress; /* progress line on stderr */
  gboolean merge;    /* write points.jsonl/csv when every point of the grid is done */
} MsimSweepOptions;

typedef struct
{
  guint total;   /* points of this shard */
  guint skipped; /* already in the journal */
  guint ran;
  guint failed; /* in this shard, including earlier runs */
  gboolean merged;
} MsimSweepReport;

/* Runs the points of this shard that the journal in @dir lacks.  FALSE
 * only when the sweep itself cannot run (unwritable directory, a journal
 * of another sweep); failing points are counted in @report. */
gboolean msim_sweep_run (MsimSweep *sweep, const char *dir, const MsimSweepOptions *options,
                         MsimSweepReport *report, GError **error);

/* Merges every journal in @dir into points.jsonl and points.csv.  Fails if
 * some point of the grid has no result yet. */
gboolean msim_sweep_merge (MsimSweep *sweep, const char *dir, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimSweep, msim_sweep_free)

G_END_DECLS
