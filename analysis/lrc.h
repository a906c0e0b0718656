#pragma once

#include <glib.h>

#include "trace.h"

G_BEGIN_DECLS

/*
 * Local routing consistency (Not All Models Suit Expert Offloading, the
 * moe-lrc metrics), per MoE layer and for the whole model.
 *
 * Sequences: tokens are grouped by sequence id and ordered by position when
 * the trace has sequence data; otherwise the whole trace, in token order, is
 * one sequence (msim_lrc_has_sequence_ids() says which).  Windows never
 * cross a sequence boundary.
 *
 * SRP(m), segment routing best performance.  Over every stride-1 window s of
 * m consecutive tokens of a sequence, with n_e(s) the tokens of s routed to
 * expert e (any rank) and a threshold tau in 1..m:
 *   TP   = sum over (s, e) with n_e(s) >= tau of n_e(s)
 *   Pred = m * #{(s, e) : n_e(s) >= tau}
 *   Act  = k * m * #windows
 *   F1   = 2 TP / (Pred + Act),   SRP = max over tau of F1.
 * A sequence shorter than m has no window; with no window at all SRP is NaN.
 *
 * SCH(m, C), segment cache best hit rate.  An oracle cache of C experts per
 * layer, emptied at the start of each sequence.  At token t, experts are
 * ranked by their uses in tokens [t, t+m) of the sequence (the window is cut
 * at the sequence end), ties broken by the most recent use before t (more
 * recent first; never-used experts last, then by id).  A demanded expert is
 * a hit if its rank is < C, or if it was never used before in the sequence
 * while fewer than C distinct experts have been used so far (a cold cache
 * with free slots does not count a miss); the token's own experts are taken
 * in rank order, each new one occupying a slot.  SCH = hits / (tokens * k).
 * SCH(m, E) = 1 by construction.
 *
 * Model level: the mean over layers of the per-layer values (for SCH this
 * equals pooling, as every layer has the same number of demands).
 *
 * Cost: O(T L k) per segment length for SRP, O(T L k E) for SCH (all C at
 * once: one rank per demand).
 */

/* The segment lengths the paper uses. */
#define MSIM_LRC_N_DEFAULT_SEGMENTS 4
extern const guint msim_lrc_default_segments[MSIM_LRC_N_DEFAULT_SEGMENTS];

/* Pass as @layer for the model-level value. */
#define MSIM_LRC_MODEL G_MAXUINT

typedef struct _MsimLrc MsimLrc;

/* Computes SRP and SCH for every layer and every segment length in
 * @segments (each >= 1).  (transfer full) */
MsimLrc *msim_lrc_compute (const MsimTrace *trace, const guint *segments, guint n_segments,
                           GError **error);
void msim_lrc_free (MsimLrc *lrc);

guint msim_lrc_n_segments (const MsimLrc *lrc);
guint msim_lrc_segment (const MsimLrc *lrc, guint index); /* m of segment @index */
guint msim_lrc_layers (const MsimLrc *lrc);
guint msim_lrc_experts (const MsimLrc *lrc);
guint msim_lrc_k (const MsimLrc *lrc);
guint64 msim_lrc_tokens (const MsimLrc *lrc);
guint msim_lrc_n_sequences (const MsimLrc *lrc);
gboolean msim_lrc_has_sequence_ids (const MsimLrc *lrc);

/* Windows of length m (per layer). */
guint64 msim_lrc_windows (const MsimLrc *lrc, guint index);

/* SRP of segment @index at @layer (or MSIM_LRC_MODEL); NaN without windows. */
double msim_lrc_srp (const MsimLrc *lrc, guint index, guint layer);
/* The tau achieving it (0 without windows; per layer only). */
guint msim_lrc_srp_threshold (const MsimLrc *lrc, guint index, guint layer);

/* SCH of segment @index at @layer (or MSIM_LRC_MODEL) for cache size
 * @cache in 1..E. */
double msim_lrc_sch (const MsimLrc *lrc, guint index, guint layer, guint cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimLrc, msim_lrc_free)

G_END_DECLS
