/* affinity-local-search, the default policy: exact dynamic programming over
 * the layer chain when each layer's groupings are few (every Mixtral-8x7B
 * shape), otherwise descent with exact per-layer and per-boundary moves plus
 * seeded perturbation restarts (see placement-search.c).  Never worse than
 * contiguous on the trace it is fitted on. */
#include "msim-error.h"
#include "placement-private.h"

typedef struct
{
  guint restarts;
  guint max_states;
  double time_limit_s;
} LocalSearch;

static const char *const ls_keys[] = { "restarts", "max-states", "time-limit", NULL };

static gboolean
ls_init (void **state, const char *const *options, GError **error)
{
  const char *name = "affinity-local-search";
  g_autoptr (GHashTable) opts = msim_policy_options_parse (name, options, ls_keys, error);
  if (opts == NULL)
    return FALSE;
  LocalSearch ls;
  if (!msim_policy_option_uint (opts, name, "restarts", 24, 0, 1000000, &ls.restarts, error)
      || !msim_policy_option_uint (opts, name, "max-states", 512, 0, 100000, &ls.max_states, error)
      || !msim_policy_option_double (opts, name, "time-limit", 0, 0, 1e6, &ls.time_limit_s, error))
    return FALSE;
  *state = g_memdup2 (&ls, sizeof ls);
  return TRUE;
}

static gboolean
ls_place (void *state, const MsimPlacementProblem *problem, MsimPlacementOutput *out,
          GError **error)
{
  const LocalSearch *ls = state;
  gint64 deadline
      = ls->time_limit_s > 0 ? g_get_monotonic_time () + (gint64)(ls->time_limit_s * 1e6) : 0;
  msim_search_best (problem, out->gpu, ls->restarts, ls->max_states, deadline, out);
  if (deadline && g_get_monotonic_time () > deadline)
    msim_placement_output_add_stat (out, "time_limit_reached", 1);
  return TRUE;
}

const MsimPlacementPolicy msim_placement_policy_local_search = {
  .name = "affinity-local-search",
  .summary = "default: exact chain DP when small, else descent + seeded restarts",
  .options_help = "restarts=N     perturbation rounds after the descents (default 24)\n"
                  "max-states=N   largest per-layer grouping count solved exactly by DP "
                  "(default 512, 0 = never)\n"
                  "time-limit=S   stop restarts after S seconds (default 0 = no limit; a limit "
                  "makes results depend on machine speed)\n",
  .init = ls_init,
  .free_state = g_free,
  .place = ls_place,
};
