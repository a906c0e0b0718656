/* contiguous: expert e of every layer on GPU floor(e * G / E), the
 * DeepSpeed-MoE layout and ExFlow's baseline.  It ignores the trace. */
#include "placement-private.h"

static gboolean
contiguous_init (void **state, const char *const *options, GError **error)
{
  g_autoptr (GHashTable) opts = msim_policy_options_parse ("contiguous", options, NULL, error);
  *state = NULL;
  return opts != NULL;
}

static gboolean
contiguous_place (void *state, const MsimPlacementProblem *problem, MsimPlacementOutput *out,
                  GError **error)
{
  msim_search_contiguous (problem, out->gpu);
  return TRUE;
}

const MsimPlacementPolicy msim_placement_policy_contiguous = {
  .name = "contiguous",
  .summary = "expert e on GPU floor(e * G / E) in every layer (DeepSpeed/ExFlow baseline)",
  .options_help = "",
  .init = contiguous_init,
  .free_state = NULL,
  .place = contiguous_place,
};
