#pragma once

#include <glib.h>

#include "trace.h"

G_BEGIN_DECLS

/*
 * A small seeded generator of routing traces with inter-layer affinity, for
 * benchmarks and tests of placement at sizes no real trace in the repository
 * has (e.g. 48 layers x 64 experts).  It is not a model of any real router.
 *
 * Each token's top-1 path is a Markov chain over layers: layer 0 draws from
 * a skewed popularity (Dirichlet(0.5) weights); at each boundary, expert i
 * goes on to its preferred successor pi_l(i) (a random permutation per
 * boundary) with probability @affinity, and otherwise to a successor drawn
 * from row i of a random transition matrix (Dirichlet(0.3) rows).  The
 * other k - 1 choices are drawn from the layer's popularity without
 * replacement.  Tokens form sequences of @sequence_length (sequence id and
 * position are set).  Same arguments give the same trace.
 */
MsimTrace *msim_synthetic_affinity_trace_new (gsize tokens, guint layers, guint experts, guint k,
                                              double affinity, guint sequence_length, guint64 seed,
                                              GError **error);

G_END_DECLS
