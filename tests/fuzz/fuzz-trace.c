/* libFuzzer harness: one routing-trace importer, chosen at compile time
 * with -DFUZZ_FORMAT=MSIM_TRACE_FORMAT_{NPY,CSV,JSON,NATIVE}.  A trace that
 * loads must validate (the readers promise ids in [0, E)), and a small one
 * must survive a save and reload in the same format unchanged.  For NumPy
 * the float-matrix header parser of the router weights is run too. */
#include "fuzz-common.h"
#include "trace-private.h"
#include "trace.h"

#ifndef FUZZ_FORMAT
#error "compile with -DFUZZ_FORMAT=MSIM_TRACE_FORMAT_..."
#endif

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  /* Declared sizes above 64 MiB are refused before allocating, as a
   * configured limit would; the fuzzer's RSS limit is 2 GiB. */
  msim_trace_set_memory_limit (64u << 20);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  MsimTrace *t = msim_trace_load_data (data, size, "fuzz", FUZZ_FORMAT, &error);
#if FUZZ_FORMAT == MSIM_TRACE_FORMAT_NPY
  {
    MsimNpyHeader h;
    GError *herr = NULL;
    if (!msim_npy_parse_header (data, size, "fuzz", TRUE, &h, &herr))
      fuzz_check_error (herr, "msim_npy_parse_header");
    g_clear_error (&herr);
    g_autofree char *path = fuzz_write ("m.npy", data, size);
    gsize rows = 0, cols = 0;
    double *values = NULL;
    if (!msim_npy_load_matrix (path, &rows, &cols, &values, &herr))
      fuzz_check_error (herr, "msim_npy_load_matrix");
    g_clear_error (&herr);
    g_free (values);
  }
#endif
  if (t == NULL)
    {
      fuzz_check_error (error, "msim_trace_load_data");
      g_clear_error (&error);
      return 0;
    }
  if (!msim_trace_validate (t, "fuzz", &error))
    {
      fprintf (stderr, "a loaded trace does not validate: %s\n", error->message);
      abort ();
    }
  if (t->experts == 0 || t->experts > MSIM_TRACE_MAX_EXPERTS)
    abort ();
  if (t->tokens * t->layers * t->k <= 4096)
    {
      static const char *const ext[] = { "", "npy", "csv", "json", "mtr" };
      g_autofree char *file = g_strdup_printf ("rt.%s", ext[FUZZ_FORMAT]);
      g_autofree char *path = g_build_filename (fuzz_tmpdir, file, NULL);
      if (!msim_trace_save (t, path, FUZZ_FORMAT, &error))
        {
          fprintf (stderr, "cannot save a loaded trace: %s\n", error->message);
          abort ();
        }
      MsimTrace *back = msim_trace_load_format (path, FUZZ_FORMAT, &error);
      if (back == NULL)
        {
          fprintf (stderr, "cannot reload a saved trace: %s\n", error->message);
          abort ();
        }
      /* Formats other than .mtr store no E: reload gives max id + 1. */
      if (FUZZ_FORMAT != MSIM_TRACE_FORMAT_NATIVE)
        msim_trace_set_experts (back, t->experts, NULL);
      if (!msim_trace_equal (t, back))
        {
          fprintf (stderr, "a trace changed in a save and reload\n");
          abort ();
        }
      msim_trace_free (back);
    }
  msim_trace_free (t);
  return 0;
}
