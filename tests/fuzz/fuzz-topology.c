/* libFuzzer harness: topology files and builders (topology/), then routes:
 * the input is one topology file; when it loads, routes and equal-cost
 * paths between its first GPUs are computed, and each route is checked to
 * be a connected walk from source to destination. */
#include "fuzz-common.h"
#include "topology.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  return 0;
}

static void
check_route (MsimTopology *t, guint src, guint dst, const MsimRoute *r)
{
  guint v = src;
  gint64 latency = 0;
  for (guint h = 0; h < r->n_links; h++)
    {
      guint l = r->links[h];
      if (l >= msim_topology_n_links (t) || msim_topology_link_src (t, l) != v)
        abort ();
      latency += msim_topology_link_latency_ps (t, l);
      v = msim_topology_link_dst (t, l);
    }
  if (v != dst || latency != r->latency_ps)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *name = g_build_filename (fuzz_tmpdir, "topology.ini", NULL);
  GError *error = NULL;
  MsimTopology *t = msim_topology_load_data ((const char *)data, (gssize)size, name, &error);
  if (t == NULL)
    {
      fuzz_check_error (error, "msim_topology_load_data");
      g_clear_error (&error);
      return 0;
    }
  guint n = MIN (msim_topology_n_gpus (t), 6u);
  for (guint a = 0; a < n; a++)
    for (guint b = 0; b < n; b++)
      {
        guint va = msim_topology_gpu_vertex (t, a), vb = msim_topology_gpu_vertex (t, b);
        MsimRoute r;
        if (msim_topology_route (t, va, vb, a * 31 + b, &r, &error))
          check_route (t, va, vb, &r);
        else
          {
            fuzz_check_error (error, "msim_topology_route");
            g_clear_error (&error);
          }
        guint np = msim_topology_n_paths (t, va, vb);
        for (guint k = 0; k < MIN (np, 4u); k++)
          if (msim_topology_path (t, va, vb, k, &r))
            check_route (t, va, vb, &r);
      }
  msim_topology_free (t);
  return 0;
}
