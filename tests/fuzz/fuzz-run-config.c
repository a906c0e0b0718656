/* libFuzzer harness: the run-config loader (sim/run-config.c), i.e. a
 * whole `moesim run` config up to the simulation: groups and keys, presets
 * and overrides, topology files, model and GPU specs, the trace, the
 * placement.  The input is written to a file (the loader resolves paths
 * next to it, then in the data directory) and loaded. */
#include "fuzz-common.h"
#include "run-config.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *path = fuzz_write ("run.ini", data, size);
  GError *error = NULL;
  MsimRunConfig *cfg = msim_run_config_load (path, NULL, &error);
  if (cfg == NULL)
    fuzz_check_error (error, "msim_run_config_load");
  g_clear_error (&error);
  msim_run_config_free (cfg);
  return 0;
}
