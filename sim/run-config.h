#pragma once

#include <glib.h>

#include "gpu-spec.h"
#include "ini.h"
#include "model-spec.h"
#include "step.h"
#include "topology.h"
#include "trace.h"

G_BEGIN_DECLS

/*
 * An experiment config (`moesim run CONFIG`): one GLib key file with the
 * groups [topology] [model] [gpu] [workload] [placement] [engine] [output],
 * every key documented in README.md, unknown groups and keys rejected with
 * the file, line and key.  Relative paths are looked up next to the config
 * first, then in the moesim data directory.
 */
typedef struct
{
  MsimIni *ini;
  MsimTopology *topology;
  MsimModelSpec *model;
  MsimGpuSpec *gpu;
  MsimTrace *trace;
  gboolean trace_shared; /* owned by the trace cache, not by this config */
  char *trace_path;
  MsimExpertMap *placement;
  char *placement_policy;
  MsimStepOptions options;
  char *output_dir;
  guint64 seed;
} MsimRunConfig;

/* Loads @path and applies @sets ("section.key=value", NULL-terminated, may
 * be NULL) on top of it.  (transfer full) */
MsimRunConfig *msim_run_config_load (const char *path, const char *const *sets, GError **error);
void msim_run_config_free (MsimRunConfig *cfg);

/* While enabled, traces are loaded once per path and shared (read-only)
 * between configs, across threads; sweeps turn it on.  Disabling frees the
 * cached traces: no config using them may remain. */
void msim_run_config_set_trace_cache (gboolean enabled);

/* Resolves a path named in @ini: absolute, next to the config, or under the
 * data directory.  Returns the first that exists, else the one next to the
 * config (transfer full). */
char *msim_run_config_resolve (const MsimIni *ini, const char *path);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimRunConfig, msim_run_config_free)

G_END_DECLS
