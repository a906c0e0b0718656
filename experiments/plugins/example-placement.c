/* An example moesim placement plugin: "greedy-follow".
 *
 * Layer 0 is placed contiguously (or round-robin); every later layer puts
 * its experts, heaviest incoming affinity first, on the GPU where most of
 * their tokens come from, if that GPU still has a free slot, else on the
 * free GPU with the most of them.  It is a one-pass heuristic (no search),
 * meant to show the plugin interface, not to compete with the built-ins.
 *
 * It uses only analysis/placement-plugin.h and GLib: no other moesim
 * header or library.  Build it with the meson target in this directory or
 * by hand (see README.md); load it with
 *     moesim place --policy plugin:path/to/libmsim-example-placement.so ...
 */
#include <gmodule.h>
#include <string.h>

#include "placement-plugin.h"

/* The tests build this file a second time with another ABI version to
 * check that moesim refuses it. */
#ifndef MSIM_EXAMPLE_ABI_VERSION
#define MSIM_EXAMPLE_ABI_VERSION MSIM_PLACEMENT_ABI_VERSION
#endif

typedef struct
{
  gboolean round_robin_start;
} Greedy;

static gboolean
greedy_init (void **state, const char *const *options, GError **error)
{
  Greedy *g = g_new0 (Greedy, 1);
  for (gsize i = 0; options[i]; i++)
    {
      if (strcmp (options[i], "start=contiguous") == 0)
        g->round_robin_start = FALSE;
      else if (strcmp (options[i], "start=round-robin") == 0)
        g->round_robin_start = TRUE;
      else
        {
          /* Any error domain works; moesim prefixes the policy name. */
          g_set_error (error, g_quark_from_static_string ("greedy-follow"), 1,
                       "unknown option '%s' (known: start=contiguous|round-robin)", options[i]);
          g_free (g);
          return FALSE;
        }
    }
  *state = g;
  return TRUE;
}

static gboolean
greedy_place (void *state, const MsimPlacementProblem *pb, MsimPlacementOutput *out, GError **error)
{
  const Greedy *g = state;
  const guint L = pb->layers, E = pb->experts, G = pb->gpus;
  guint64 *affinity = g_new (guint64, (gsize)E * G); /* [expert][gpu] */
  guint *used = g_new (guint, G);
  gboolean *done = g_new (gboolean, E);
  for (guint e = 0; e < E; e++)
    out->gpu[e] = g->round_robin_start ? e % G : (guint32)(((guint64)e * G) / E);
  for (guint l = 1; l < L; l++)
    {
      /* Tokens arriving at each expert of layer l from each GPU. */
      memset (affinity, 0, sizeof (guint64) * E * G);
      const guint64 *pc = pb->pair_counts + (gsize)(l - 1) * E * E;
      for (guint i = 0; i < E; i++)
        for (guint j = 0; j < E; j++)
          affinity[(gsize)j * G + out->gpu[(gsize)(l - 1) * E + i]] += pc[(gsize)i * E + j];
      memset (used, 0, sizeof (guint) * G);
      memset (done, 0, sizeof (gboolean) * E);
      for (guint step = 0; step < E; step++)
        {
          /* The (expert, free GPU) pair with the most tokens, first found on
           * ties, so the result is deterministic. */
          guint be = 0, bg = 0;
          gboolean found = FALSE;
          guint64 best = 0;
          for (guint e = 0; e < E; e++)
            for (guint x = 0; x < G && !done[e]; x++)
              if (used[x] < pb->slots_per_gpu && (!found || affinity[(gsize)e * G + x] > best))
                {
                  found = TRUE;
                  best = affinity[(gsize)e * G + x];
                  be = e;
                  bg = x;
                }
          out->gpu[(gsize)l * E + be] = bg;
          used[bg]++;
          done[be] = TRUE;
        }
    }
  g_free (affinity);
  g_free (used);
  g_free (done);
  msim_placement_output_add_stat (out, "layers_placed", L);
  return TRUE;
}

static const MsimPlacementPolicy greedy_policy = {
  .name = "greedy-follow",
  .summary = "example plugin: each layer follows the previous one greedily",
  .options_help = "start=contiguous|round-robin  layout of layer 0 (default contiguous)\n",
  .init = greedy_init,
  .free_state = g_free,
  .place = greedy_place,
};

/* The one exported symbol; moesim checks abi_version before anything else. */
G_MODULE_EXPORT const MsimPlacementPluginDescriptor msim_placement_plugin = {
  MSIM_EXAMPLE_ABI_VERSION,
  sizeof (MsimPlacementPluginDescriptor),
  &greedy_policy,
};
