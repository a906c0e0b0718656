/* Synthetic hidden states: a Gaussian mixture of topics with drift across
 * layers (hidden-states.h). */
#include "hidden-states.h"

#include <gsl/gsl_randist.h>
#include <math.h>

#include "msim-error.h"
#include "workload-private.h"

struct _MsimHiddenStates
{
  MsimHiddenParams p;
  guint64 seed;
  gsl_matrix *centres; /* topics x dim */
  gsl_rng *rng;        /* reseeded per sequence / (sequence, layer) */
};

void
msim_hidden_params_init (MsimHiddenParams *p)
{
  g_return_if_fail (p != NULL);
  p->dim = 256;
  p->topics = 8;
  p->topic_scale = 1.0;
  p->token_scale = 0.5;
  p->token_corr = 0.5;
  p->drift = 0.1;
  p->sequence_len = 512;
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "hidden states: %s: %s", key, msg);
  return FALSE;
}

gboolean
msim_hidden_params_validate (const MsimHiddenParams *p, GError **error)
{
  g_return_val_if_fail (p != NULL, FALSE);
  if (p->dim == 0 || p->dim > 65536)
    return bad (error, "hidden_dim", "%u is outside 1..65536", p->dim);
  if (p->topics == 0 || p->topics > 65536)
    return bad (error, "topics", "%u is outside 1..65536", p->topics);
  if (!(p->topic_scale >= 0 && p->topic_scale <= 1e6))
    return bad (error, "topic_scale", "%g is outside 0..1e6", p->topic_scale);
  if (!(p->token_scale >= 0 && p->token_scale <= 1e6))
    return bad (error, "token_scale", "%g is outside 0..1e6", p->token_scale);
  if (!(p->token_corr >= 0 && p->token_corr <= 1))
    return bad (error, "token_corr", "%g is outside 0..1", p->token_corr);
  if (!(p->drift >= 0 && p->drift <= 1e6))
    return bad (error, "drift", "%g is outside 0..1e6", p->drift);
  if (p->sequence_len == 0)
    return bad (error, "sequence_len", "must be at least 1");
  return TRUE;
}

MsimHiddenStates *
msim_hidden_states_new (const MsimHiddenParams *p, guint64 seed, GError **error)
{
  g_return_val_if_fail (p != NULL, NULL);
  if (!msim_hidden_params_validate (p, error))
    return NULL;
  MsimHiddenStates *hs = g_new0 (MsimHiddenStates, 1);
  hs->p = *p;
  hs->seed = seed;
  hs->centres = gsl_matrix_alloc (p->topics, p->dim);
  g_autoptr (gsl_rng) rng = msim_workload_rng_new (seed, MSIM_STREAM_HIDDEN_TOPICS, 0, 0);
  for (guint z = 0; z < p->topics; z++)
    for (guint j = 0; j < p->dim; j++)
      gsl_matrix_set (hs->centres, z, j, gsl_ran_gaussian_ziggurat (rng, p->topic_scale));
  hs->rng = gsl_rng_alloc (gsl_rng_mt19937);
  return hs;
}

void
msim_hidden_states_free (MsimHiddenStates *hs)
{
  if (hs == NULL)
    return;
  gsl_matrix_free (hs->centres);
  gsl_rng_free (hs->rng);
  g_free (hs);
}

const MsimHiddenParams *
msim_hidden_states_params (const MsimHiddenStates *hs)
{
  g_return_val_if_fail (hs != NULL, NULL);
  return &hs->p;
}

/* The topic is the first draw of the sequence's stream, so fill() and
 * topic() agree without storing anything per sequence. */
static guint
draw_topic (MsimHiddenStates *hs, guint64 sequence)
{
  msim_workload_rng_reseed (hs->rng, hs->seed, MSIM_STREAM_HIDDEN_SEQUENCE, sequence, 0);
  return (guint)gsl_rng_uniform_int (hs->rng, hs->p.topics);
}

guint
msim_hidden_states_topic (MsimHiddenStates *hs, guint64 sequence)
{
  g_return_val_if_fail (hs != NULL, 0);
  return draw_topic (hs, sequence);
}

void
msim_hidden_states_fill (MsimHiddenStates *hs, gsize first, gsize n, gsl_matrix *h)
{
  g_return_if_fail (hs != NULL && h != NULL);
  g_return_if_fail (h->size1 >= n && h->size2 == hs->p.dim);
  g_return_if_fail (first % hs->p.sequence_len == 0);
  guint d = hs->p.dim, S = hs->p.sequence_len;
  double rho = hs->p.token_corr, innov = sqrt (1.0 - rho * rho), ts = hs->p.token_scale;
  for (gsize start = 0; start < n; start += S)
    {
      guint z = draw_topic (hs, (first + start) / S); /* positions the stream after the topic */
      const double *mu = gsl_matrix_const_ptr (hs->centres, z, 0);
      gsize end = MIN (n, start + S);
      for (gsize i = start; i < end; i++)
        {
          double *row = gsl_matrix_ptr (h, i, 0);
          if (i == start)
            for (guint j = 0; j < d; j++)
              row[j] = mu[j] + ts * gsl_ran_gaussian_ziggurat (hs->rng, 1.0);
          else
            {
              /* h[i] - mu = rho (h[i-1] - mu) + ts innov eps: the AR(1)
               * deviation, carried in the rows themselves. */
              const double *prev = gsl_matrix_const_ptr (h, i - 1, 0);
              for (guint j = 0; j < d; j++)
                row[j] = (1.0 - rho) * mu[j] + rho * prev[j]
                         + ts * innov * gsl_ran_gaussian_ziggurat (hs->rng, 1.0);
            }
        }
    }
}

void
msim_hidden_states_drift (MsimHiddenStates *hs, gsize first, gsize n, guint layer, gsl_matrix *h)
{
  g_return_if_fail (hs != NULL && h != NULL);
  g_return_if_fail (h->size1 >= n && h->size2 == hs->p.dim);
  g_return_if_fail (first % hs->p.sequence_len == 0 && layer >= 1);
  if (hs->p.drift == 0.0)
    return;
  guint d = hs->p.dim, S = hs->p.sequence_len;
  for (gsize start = 0; start < n; start += S)
    {
      msim_workload_rng_reseed (hs->rng, hs->seed, MSIM_STREAM_HIDDEN_DRIFT, (first + start) / S,
                                layer);
      gsize end = MIN (n, start + S);
      for (gsize i = start; i < end; i++)
        {
          double *row = gsl_matrix_ptr (h, i, 0);
          for (guint j = 0; j < d; j++)
            row[j] += gsl_ran_gaussian_ziggurat (hs->rng, hs->p.drift);
        }
    }
}
