/* round-robin: expert e of every layer on GPU e mod G.  With G dividing E
 * every GPU gets E / G experts per layer, strided instead of blocked. */
#include "placement-private.h"

static gboolean
round_robin_init (void **state, const char *const *options, GError **error)
{
  g_autoptr (GHashTable) opts = msim_policy_options_parse ("round-robin", options, NULL, error);
  *state = NULL;
  return opts != NULL;
}

static gboolean
round_robin_place (void *state, const MsimPlacementProblem *problem, MsimPlacementOutput *out,
                   GError **error)
{
  msim_search_round_robin (problem, out->gpu);
  return TRUE;
}

const MsimPlacementPolicy msim_placement_policy_round_robin = {
  .name = "round-robin",
  .summary = "expert e on GPU e mod G in every layer",
  .options_help = "",
  .init = round_robin_init,
  .free_state = NULL,
  .place = round_robin_place,
};
