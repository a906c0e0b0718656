#pragma once

/*
 * Synthetic workloads from a configuration group: the entry point `moesim
 * run` and `moesim trace gen` use to make a trace from a synthetic
 * generator (generators.h) or a router over synthetic hidden states
 * (router.h) instead of loading one.
 *
 * The group (normally [router]) names exactly one of
 *   generator = uniform | zipf | markov | segment | mixture
 *   router    = topk | switch | expert-choice | similarity | attention |
 *               recurrent | pregated
 * and that generator's or router's parameters; every key is documented in
 * workloads/README.md.  The model supplies the shape: MoE layers, experts,
 * top_k, and for routers the gating, routed_scaling_factor and expert
 * groups.  Unknown keys, and keys that do not apply to the chosen
 * generator or router, are errors naming the file, line and key; so are
 * out-of-range values and inconsistent combinations (e.g. batch_tokens not
 * a multiple of sequence_len).
 */

#include <glib.h>

#include "ini.h"
#include "model-spec.h"
#include "router.h"
#include "trace.h"

G_BEGIN_DECLS

typedef struct
{
  char *kind;               /* "generator" or "router" */
  char *name;               /* e.g. "zipf", "topk" */
  guint64 seed;             /* the seed used: the group's `seed` key, else the caller's */
  MsimTrace *trace;         /* owned */
  MsimTrace *predicted;     /* pre-gated routers: the predictions (owned), else NULL */
  MsimRouterReport *report; /* routers: the metrics (owned), else NULL */
} MsimWorkload;

/*
 * Reads [@group] of @ini and makes a trace of @tokens tokens for @model
 * with @seed (overridden by a `seed` key in the group).  Everything a user
 * can get wrong is a GError (MSIM_ERROR_INPUT, or _LIMIT for traces beyond
 * the trace memory limit) whose message starts "FILE:LINE: [group] key:".
 * (transfer full)
 */
MsimWorkload *msim_workload_new_from_ini (const MsimIni *ini, const char *group,
                                          const MsimModelSpec *model, guint64 tokens, guint64 seed,
                                          GError **error);
void msim_workload_free (MsimWorkload *workload);

/*
 * The `moesim run` entry point: as msim_workload_new_from_ini, returning
 * only the trace, which the step engine can replay (k = top_k, layers = the
 * model's MoE layers, E = experts; sequence ids and positions; gate weights
 * for routers).  Refuses expert-choice routing, whose traces have k = E
 * slots (router.h), with an error at the `router` key.  (transfer full)
 */
MsimTrace *msim_workload_generate_from_ini (const MsimIni *ini, const char *group,
                                            const MsimModelSpec *model, guint64 tokens_needed,
                                            guint64 seed, GError **error);

/* Every key a [router] group may hold, NULL-terminated, for documentation
 * and for callers that check keys themselves (transfer none). */
const char *const *msim_workload_keys (void);

/* TRUE when @key is taken by @kind ("generator" or "router") @name; FALSE
 * for unknown kinds, names or keys. */
gboolean msim_workload_key_applies (const char *kind, const char *name, const char *key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimWorkload, msim_workload_free)

G_END_DECLS
