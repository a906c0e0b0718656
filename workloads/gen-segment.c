/* Segment locality: a token reuses its predecessor's experts.  Local
 * routing consistency studies (moe-lrc) measure exactly this as the share of
 * consecutive tokens whose expert sets agree; a per-layer coin keeps the
 * estimate simple (generators.h, MsimGenFit.reuse). */
#include "gen-private.h"

gboolean
gen_segment_reuses (const MsimGenParams *p, guint32 position, gsl_rng *rng)
{
  /* No draw when reuse is off or impossible, so traces without segment
   * locality consume the same random stream as before it existed. */
  if (position == 0 || p->reuse <= 0.0)
    return FALSE;
  return gsl_rng_uniform (rng) < p->reuse;
}
