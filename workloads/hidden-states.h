#pragma once

/*
 * Synthetic token hidden states, the input of the routers (router.h).
 *
 * A Gaussian mixture of topics with per-token drift across layers.  Tokens
 * are cut into sequences of sequence_len tokens; each sequence has one topic
 * z (uniform over `topics`), and the state of token i of that sequence at
 * MoE layer l is
 *
 *   h[i, l] = mu[z] + token_scale * u[i] + drift * (xi[i, 1] + ... + xi[i, l])
 *
 * with mu[z] ~ N(0, topic_scale^2 I) the topic centres, u an AR(1) process
 * along the sequence, u[0] ~ N(0, I), u[i] = token_corr u[i-1] +
 * sqrt(1 - token_corr^2) eps[i] (so consecutive tokens look alike, and each
 * u[i] is N(0, I)), and xi[i, l] ~ N(0, I) a random walk over depth (the
 * state a layer sees moves away from what the previous layer saw, which is
 * what makes next-layer prediction imperfect).  All components are
 * independent across the `dim` coordinates.
 *
 * Routing structure then comes from geometry, not from a rule: tokens of a
 * topic are near each other, so they prefer the same experts (domain
 * locality), neighbours in a sequence more so (segment locality), and
 * adjacent layers see nearby states (inter-layer affinity through a shared
 * input, weakened by drift).
 *
 * Randomness: each sequence's topic and deviations and each (sequence,
 * layer) drift come from their own seeded mt19937 stream, so a token's
 * states do not depend on batching, on the number of tokens generated or on
 * which router reads them.
 */

#include <glib.h>
#include <gsl/gsl_matrix.h>

G_BEGIN_DECLS

typedef struct
{
  guint dim;          /* d, 1..65536 (default 256) */
  guint topics;       /* mixture components, 1..65536 (default 8) */
  double topic_scale; /* std of a topic centre coordinate (default 1.0) */
  double token_scale; /* std of a token's own deviation coordinate (default 0.5) */
  double token_corr;  /* AR(1) coefficient along a sequence, 0..1 (default 0.5) */
  double drift;       /* std of one layer's drift step per coordinate (default 0.1) */
  guint sequence_len; /* tokens per sequence (default 512) */
} MsimHiddenParams;

void msim_hidden_params_init (MsimHiddenParams *params);
/* Errors read "hidden states: KEY: what is wrong" (MSIM_ERROR_INPUT). */
gboolean msim_hidden_params_validate (const MsimHiddenParams *params, GError **error);

typedef struct _MsimHiddenStates MsimHiddenStates;

/* Draws the topic centres (topics x dim normals).  (transfer full) */
MsimHiddenStates *msim_hidden_states_new (const MsimHiddenParams *params, guint64 seed,
                                          GError **error);
void msim_hidden_states_free (MsimHiddenStates *states);

const MsimHiddenParams *msim_hidden_states_params (const MsimHiddenStates *states);

/* Topic of sequence @sequence. */
guint msim_hidden_states_topic (MsimHiddenStates *states, guint64 sequence);

/*
 * Writes the layer-0 states of tokens [@first, @first + n) into the n rows
 * of @h (n x dim).  @first must start a sequence (a multiple of
 * sequence_len).  O(n dim).
 */
void msim_hidden_states_fill (MsimHiddenStates *states, gsize first, gsize n, gsl_matrix *h);

/* Adds the drift step of layer @layer (>= 1) to rows of @h filled as above,
 * turning layer-(layer-1) states into layer-@layer states.  O(n dim). */
void msim_hidden_states_drift (MsimHiddenStates *states, gsize first, gsize n, guint layer,
                               gsl_matrix *h);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimHiddenStates, msim_hidden_states_free)

G_END_DECLS
