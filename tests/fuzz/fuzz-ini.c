/* libFuzzer harness: the strict key-file reader (models/ini.c) and the
 * model and GPU spec parsers on top of it (presets, includes, every typed
 * getter).  The input is the text of one .ini file. */
#include "fuzz-common.h"
#include "gpu-spec.h"
#include "ini.h"
#include "model-spec.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* Includes resolve next to this name (an empty directory), then in the
   * data directory (the presets). */
  g_autofree char *name = g_build_filename (fuzz_tmpdir, "fuzz.ini", NULL);
  GError *error = NULL;
  MsimIni *ini = msim_ini_load_data ((const char *)data, size, name, &error);
  if (ini == NULL)
    {
      fuzz_check_error (error, "msim_ini_load_data");
      g_clear_error (&error);
      return 0;
    }
  static const char *const groups[] = { "model", "gpu", "topology", "workload", NULL };
  if (!msim_ini_check_groups (ini, groups, &error))
    {
      fuzz_check_error (error, "msim_ini_check_groups");
      g_clear_error (&error);
    }
  /* Every getter on every key. */
  g_auto (GStrv) names = msim_ini_groups (ini);
  for (char **g = names; *g; g++)
    {
      g_auto (GStrv) keys = msim_ini_keys (ini, *g);
      for (char **k = keys; *k; k++)
        {
          g_autofree char *s = NULL;
          double d;
          gint64 i;
          gboolean b;
          int c;
          static const char *const choices[] = { "a", "b", NULL };
          if (!msim_ini_get_string (ini, *g, *k, TRUE, NULL, &s, &error)
              || !msim_ini_get_double (ini, *g, *k, TRUE, 0, -1e9, 1e9, &d, &error)
              || !msim_ini_get_int64 (ini, *g, *k, TRUE, 0, -1000, 1000, &i, &error)
              || !msim_ini_get_bool (ini, *g, *k, TRUE, FALSE, &b, &error)
              || !msim_ini_get_choice (ini, *g, *k, TRUE, 0, choices, &c, &error))
            {
              fuzz_check_error (error, "getter");
              g_clear_error (&error);
            }
        }
    }
  if (msim_ini_has_group (ini, "model"))
    {
      MsimModelSpec *m = msim_model_spec_new_from_ini (ini, "model", &error);
      if (m == NULL)
        fuzz_check_error (error, "msim_model_spec_new_from_ini");
      else
        {
          /* Derived counts of a valid spec must not overflow (UBSan). */
          (void)msim_model_spec_total_params (m);
          (void)msim_model_spec_active_params (m);
          (void)msim_model_spec_kv_cache_bytes_per_token (m);
        }
      g_clear_error (&error);
      msim_model_spec_free (m);
    }
  if (msim_ini_has_group (ini, "gpu"))
    {
      MsimGpuSpec *gpu = msim_gpu_spec_new_from_ini (ini, "gpu", &error);
      if (gpu == NULL)
        fuzz_check_error (error, "msim_gpu_spec_new_from_ini");
      g_clear_error (&error);
      msim_gpu_spec_free (gpu);
    }
  msim_ini_free (ini);
  return 0;
}
