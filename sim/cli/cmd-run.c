/* moesim run: the main job.  Reads an experiment config (topology, model,
 * GPU, workload, placement, engine, output), simulates the inference steps
 * and writes a summary to stdout plus JSON, CSV and optionally a Perfetto
 * timeline.  Outputs are written only when the whole run succeeded, each
 * through a temporary file renamed into place. */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ini.h"
#include "msim-error.h"
#include "msim-json.h"
#include "run-config.h"
#include "step.h"

int
msim_cmd_run (int argc, char **argv)
{
  g_autofree char *out_dir = NULL;
  g_autofree char *timeline = NULL;
  g_auto (GStrv) sets = NULL;
  gboolean check = FALSE;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir,
      "Output directory (default: [output] dir of the config, else out/)", "DIR" },
    { "timeline", 0, 0, G_OPTION_ARG_FILENAME, &timeline,
      "Also write a Chrome/Perfetto trace-event timeline to FILE", "FILE" },
    { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets,
      "Override a config key, e.g. --set engine.scheme=context-coherent (repeatable)",
      "SECTION.KEY=VALUE" },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      "Verify network invariants at every re-solve (slow; for debugging)", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Do not print the summary", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("CONFIG.ini - simulate MoE inference steps");
  g_option_context_set_description (ctx, "Every config key is documented in README.md.\n"
                                         "Writes DIR/summary.json and DIR/blocks.csv.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "run: expected exactly one CONFIG file (try --help)"));
  GError *error = NULL;
  g_autoptr (MsimRunConfig) cfg = msim_run_config_load (argv[1], (const char *const *)sets, &error);
  if (!cfg)
    return msim_cli_fail (error);
  if (check)
    cfg->options.check = TRUE;
  if (timeline)
    cfg->options.record_timeline = TRUE;
  const char *dir = out_dir ? out_dir : cfg->output_dir;

  /* Refuse an output path that cannot work before spending time on it. */
  if (g_file_test (dir, G_FILE_TEST_EXISTS) && !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_IO,
                                       "run: output path '%s' exists and is not a directory", dir));

  g_autoptr (MsimStepRun) run = msim_step_run (cfg->topology, cfg->model, cfg->gpu, cfg->trace,
                                               cfg->placement, &cfg->options, &error);
  if (!run)
    {
      g_prefix_error (&error, "%s: ", argv[1]);
      return msim_cli_fail (error);
    }

  g_autoptr (JsonNode) root = msim_step_run_to_json (run);
  JsonObject *obj = json_node_get_object (root);
  json_object_set_string_member (obj, "config", argv[1]);
  json_object_set_string_member (obj, "trace", cfg->trace_path);
  json_object_set_string_member (obj, "placement_policy", cfg->placement_policy);
  g_autofree char *json = msim_json_to_data (root, TRUE);
  g_autofree char *csv = msim_step_run_to_csv (run);
  g_autofree char *tl = timeline ? msim_step_run_timeline (run) : NULL;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    return msim_cli_fail (
        g_error_new (MSIM_ERROR, MSIM_ERROR_IO, "run: cannot create output directory '%s'", dir));
  g_autofree char *json_path = g_build_filename (dir, "summary.json", NULL);
  g_autofree char *csv_path = g_build_filename (dir, "blocks.csv", NULL);
  const char *paths[3] = { json_path, csv_path, timeline };
  const char *data[3] = { json, csv, tl };
  if (!msim_write_files_atomically (paths, data, tl ? 3 : 2, &error))
    return msim_cli_fail (error);

  if (!quiet)
    {
      g_autofree char *summary = msim_step_run_summary (run);
      fputs (summary, stdout);
      printf ("  wrote %s, %s%s%s\n", json_path, csv_path, tl ? ", " : "", tl ? timeline : "");
    }
  return 0;
}
