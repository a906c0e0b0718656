/* libFuzzer harness: placement files (analysis/placement.c), both the
 * moesim CSV (layer,expert,gpu[,replica]) and ExFlow's Expert,Node CSV.
 * The first input byte chooses the dimensions the caller imposes (none,
 * or a model with 2 layers x 8 experts on 4 GPUs); the rest is the file.
 * A placement that loads must validate and survive a write and re-read
 * unchanged. */
#include "fuzz-common.h"
#include "placement.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  gboolean given = data[0] & 1;
  guint layers = given ? 2 : 0, experts = given || (data[0] & 2) ? 8 : 0, gpus = given ? 4 : 0;
  GError *error = NULL;
  MsimPlacement *p = msim_placement_load_data ((const char *)data + 1, size - 1, "fuzz.csv", layers,
                                               experts, gpus, &error);
  if (p == NULL)
    {
      fuzz_check_error (error, "msim_placement_load_data");
      g_clear_error (&error);
      return 0;
    }
  if (!msim_placement_validate (p, G_MAXUINT, &error))
    {
      fprintf (stderr, "a loaded placement does not validate: %s\n", error->message);
      abort ();
    }
  /* Small placements: the CSV of it reads back the same. */
  if ((gsize)msim_placement_layers (p) * msim_placement_experts (p) <= 4096)
    {
      g_autofree char *csv = msim_placement_to_csv (p, MSIM_PLACEMENT_CSV_MOESIM, &error);
      if (csv == NULL)
        abort ();
      MsimPlacement *back
          = msim_placement_load_data (csv, strlen (csv), "rt.csv", msim_placement_layers (p),
                                      msim_placement_experts (p), msim_placement_gpus (p), &error);
      if (back == NULL)
        {
          fprintf (stderr, "cannot re-read a written placement: %s\n", error->message);
          abort ();
        }
      for (guint l = 0; l < msim_placement_layers (p); l++)
        for (guint e = 0; e < msim_placement_experts (p); e++)
          {
            guint n = msim_placement_n_replicas (p, l, e);
            if (n != msim_placement_n_replicas (back, l, e))
              abort ();
            for (guint k = 0; k < n; k++)
              if (msim_placement_replica_gpu (p, l, e, k)
                  != msim_placement_replica_gpu (back, l, e, k))
                abort ();
          }
      msim_placement_free (back);
    }
  msim_placement_free (p);
  return 0;
}
