/* moesim offload: decode with experts offloaded to host memory and a cache
 * of them on every GPU (sim/offload.h).  Reads a run config with an
 * [offload] group, prints a summary and writes offload.json, layers.csv and
 * steps.csv (and optionally a Perfetto timeline), each through a temporary
 * file renamed into place, only when the run succeeded. */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ini.h"
#include "msim-error.h"
#include "msim-json.h"
#include "offload.h"
#include "run-config.h"

int
msim_cmd_offload (int argc, char **argv)
{
  g_autofree char *out_dir = NULL;
  g_autofree char *timeline = NULL;
  g_auto (GStrv) sets = NULL;
  gboolean check = FALSE;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir,
      "Output directory (default: [output] dir of the config, else out/)", "DIR" },
    { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets,
      "Override a config key, e.g. --set offload.policy=lfu (repeatable)", "SECTION.KEY=VALUE" },
    { "timeline", 0, 0, G_OPTION_ARG_FILENAME, &timeline,
      "Also write a Chrome/Perfetto trace-event timeline to FILE", "FILE" },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      "Conservation checks (residency, bytes, assignments) and network invariants", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Do not print the summary", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
      = g_option_context_new ("CONFIG.ini - decode with experts offloaded to host memory");
  GString *desc = g_string_new ("Policies ([offload] policy):\n");
  for (const char *const *p = msim_offload_policy_names (); *p; p++)
    g_string_append_printf (desc, "  %-11s %s\n", *p, msim_offload_policy_summary (*p));
  g_string_append (desc, "\nThe [offload] keys are documented in README.md.\n"
                         "Writes DIR/offload.json, DIR/layers.csv and DIR/steps.csv.\n");
  g_autofree char *description = g_string_free (desc, FALSE);
  g_option_context_set_description (ctx, description);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!msim_cli_parse (ctx, &argc, &argv))
    return 2;
  if (argc != 2)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_INPUT,
                                       "offload: expected exactly one CONFIG file (try --help)"));
  GError *error = NULL;
  g_autoptr (MsimRunConfig) cfg = msim_run_config_load (argv[1], (const char *const *)sets, &error);
  if (!cfg)
    return msim_cli_fail (error);
  MsimOffloadOptions opt;
  if (!msim_offload_options_from_ini (cfg->ini, &opt, &error))
    return msim_cli_fail (error);
  if (check)
    {
      opt.check = TRUE;
      cfg->options.check = TRUE;
    }
  opt.record_timeline = timeline != NULL;
  const char *dir = out_dir ? out_dir : cfg->output_dir;
  if (g_file_test (dir, G_FILE_TEST_EXISTS) && !g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      msim_offload_options_clear (&opt);
      return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_IO,
                                         "offload: output path '%s' exists and is not a directory",
                                         dir));
    }

  g_autoptr (MsimOffloadRun) run = msim_offload_run (cfg, &opt, &error);
  msim_offload_options_clear (&opt);
  if (!run)
    {
      /* Config errors already name the file; others get it here. */
      if (!g_str_has_prefix (error->message, argv[1]))
        g_prefix_error (&error, "%s: ", argv[1]);
      return msim_cli_fail (error);
    }

  g_autoptr (JsonNode) root = msim_offload_run_to_json (run);
  JsonObject *obj = json_node_get_object (root);
  json_object_set_string_member (obj, "config", argv[1]);
  json_object_set_string_member (obj, "placement_policy", cfg->placement_policy);
  g_autofree char *json = msim_json_to_data (root, TRUE);
  g_autofree char *layers = msim_offload_run_layers_csv (run);
  g_autofree char *steps = msim_offload_run_steps_csv (run);
  g_autofree char *tl = timeline ? msim_offload_run_timeline (run) : NULL;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    return msim_cli_fail (g_error_new (MSIM_ERROR, MSIM_ERROR_IO,
                                       "offload: cannot create output directory '%s'", dir));
  g_autofree char *json_path = g_build_filename (dir, "offload.json", NULL);
  g_autofree char *layers_path = g_build_filename (dir, "layers.csv", NULL);
  g_autofree char *steps_path = g_build_filename (dir, "steps.csv", NULL);
  const char *paths[4] = { json_path, layers_path, steps_path, timeline };
  const char *data[4] = { json, layers, steps, tl };
  if (!msim_write_files_atomically (paths, data, tl ? 4 : 3, &error))
    return msim_cli_fail (error);
  if (!quiet)
    {
      g_autofree char *summary = msim_offload_run_summary (run);
      fputs (summary, stdout);
      printf ("  wrote %s, %s, %s%s%s\n", json_path, layers_path, steps_path, tl ? ", " : "",
              tl ? timeline : "");
    }
  return 0;
}
