#include "gpu-spec.h"

#include <math.h>
#include <stdarg.h>

#include "msim-error.h"
#include "spec-source-private.h"

/* Bounds that catch unit mistakes (TFLOP/s written as FLOP/s, GB/s as B/s,
 * milliseconds as seconds) while leaving room for GPUs to come: 1e9 FLOP/s is
 * below any accelerator, 1e18 a thousand times an H100. */
#define MIN_PEAK_FLOPS    1e9
#define MAX_PEAK_FLOPS    1e18
#define MIN_BANDWIDTH_BPS 1e8
#define MAX_BANDWIDTH_BPS 1e15
#define MIN_CAPACITY      ((gint64)1 << 20)
#define MAX_CAPACITY      ((gint64)1 << 50)
#define MAX_LAUNCH_S      1e-2
/* An efficiency of zero would make time infinite; the smallest accepted
 * value still allows modelling a kernel at 0.1 % of peak. */
#define MIN_EFFICIENCY 1e-3

static const MsimSpecKind gpu_kind = {
  .group = "gpu",
  .file_prefix = "gpu-",
  .exclude_prefix = NULL,
  .what = "GPU",
};

static const char *const class_names[] = { "gemm", "grouped_gemm", "attention", "elementwise" };

static const char *const gpu_keys[] = {
  "name",
  "peak_flops",
  "hbm_bandwidth_Bps",
  "hbm_capacity_bytes",
  "launch_overhead_s",
  "gemm_flops_efficiency",
  "gemm_bandwidth_efficiency",
  "grouped_gemm_flops_efficiency",
  "grouped_gemm_bandwidth_efficiency",
  "attention_flops_efficiency",
  "attention_bandwidth_efficiency",
  "elementwise_flops_efficiency",
  "elementwise_bandwidth_efficiency",
  NULL,
};

G_STATIC_ASSERT (G_N_ELEMENTS (class_names) == MSIM_KERNEL_N_CLASSES);

const char *
msim_kernel_class_name (MsimKernelClass klass)
{
  g_return_val_if_fail ((int)klass >= 0 && klass < MSIM_KERNEL_N_CLASSES, "?");
  return class_names[klass];
}

double
msim_gpu_kernel_time_s (const MsimGpuSpec *spec, MsimKernelClass klass, double flops, double bytes)
{
  g_return_val_if_fail (spec != NULL, NAN);
  g_return_val_if_fail ((int)klass >= 0 && klass < MSIM_KERNEL_N_CLASSES, NAN);
  g_return_val_if_fail (isfinite (flops) && flops >= 0.0, NAN);
  g_return_val_if_fail (isfinite (bytes) && bytes >= 0.0, NAN);
  double compute_s = flops / (spec->peak_flops * spec->flops_efficiency[klass]);
  double memory_s = bytes / (spec->hbm_bandwidth_Bps * spec->bandwidth_efficiency[klass]);
  return fmax (compute_s, memory_s) + spec->launch_overhead_s;
}

/* ---- validation ------------------------------------------------------ */

typedef struct
{
  const MsimSpecSource *src;
  const char *name;
} Where;

static gboolean fail (const Where *w, GError **error, const char *key, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

static gboolean
fail (const Where *w, GError **error, const char *key, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (w->src != NULL)
    msim_spec_source_set_error (w->src, error, key, "%s", msg);
  else
    g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "gpu '%s': %s: %s",
                 w->name ? w->name : "(unnamed)", key, msg);
  return FALSE;
}

static gboolean
check_double (const Where *w, GError **error, const char *key, double v, double min, double max)
{
  if (isfinite (v) && v >= min && v <= max)
    return TRUE;
  return fail (w, error, key, "value %g is out of range [%g, %g]", v, min, max);
}

static gboolean
validate (const MsimGpuSpec *s, const Where *w, GError **error)
{
  if (s->name == NULL || *s->name == '\0')
    return fail (w, error, "name", "must not be empty");
  if (!check_double (w, error, "peak_flops", s->peak_flops, MIN_PEAK_FLOPS, MAX_PEAK_FLOPS)
      || !check_double (w, error, "hbm_bandwidth_Bps", s->hbm_bandwidth_Bps, MIN_BANDWIDTH_BPS,
                        MAX_BANDWIDTH_BPS)
      || !check_double (w, error, "launch_overhead_s", s->launch_overhead_s, 0.0, MAX_LAUNCH_S))
    return FALSE;
  if (s->hbm_capacity_bytes < MIN_CAPACITY || s->hbm_capacity_bytes > MAX_CAPACITY)
    return fail (w, error, "hbm_capacity_bytes",
                 "value %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT
                 ", %" G_GINT64_FORMAT "]",
                 s->hbm_capacity_bytes, MIN_CAPACITY, MAX_CAPACITY);
  for (int c = 0; c < MSIM_KERNEL_N_CLASSES; c++)
    {
      g_autofree char *fkey = g_strconcat (class_names[c], "_flops_efficiency", NULL);
      g_autofree char *bkey = g_strconcat (class_names[c], "_bandwidth_efficiency", NULL);
      if (!check_double (w, error, fkey, s->flops_efficiency[c], MIN_EFFICIENCY, 1.0)
          || !check_double (w, error, bkey, s->bandwidth_efficiency[c], MIN_EFFICIENCY, 1.0))
        return FALSE;
    }
  return TRUE;
}

gboolean
msim_gpu_spec_validate (const MsimGpuSpec *spec, GError **error)
{
  g_return_val_if_fail (spec != NULL, FALSE);
  Where w = { NULL, spec->name };
  return validate (spec, &w, error);
}

/* ---- loading --------------------------------------------------------- */

void
msim_gpu_spec_free (MsimGpuSpec *spec)
{
  if (spec == NULL)
    return;
  g_free (spec->name);
  g_free (spec);
}

MsimGpuSpec *
msim_gpu_spec_copy (const MsimGpuSpec *spec)
{
  g_return_val_if_fail (spec != NULL, NULL);
  MsimGpuSpec *copy = g_memdup2 (spec, sizeof *spec);
  copy->name = g_strdup (spec->name);
  return copy;
}

static MsimGpuSpec *
parse (const MsimSpecSource *src, GError **error)
{
  if (!msim_spec_source_check_keys (src, gpu_keys, error))
    return NULL;
  g_autoptr (MsimGpuSpec) s = g_new0 (MsimGpuSpec, 1);
  if (!msim_spec_source_get_string (src, "name", FALSE, msim_spec_source_default_name (src),
                                    &s->name, error))
    return NULL;
  Where w = { src, s->name };
  if (*s->name == '\0')
    {
      fail (&w, error, "name", "must not be empty");
      return NULL;
    }
  if (!msim_spec_source_get_double (src, "peak_flops", TRUE, 0, MIN_PEAK_FLOPS, MAX_PEAK_FLOPS,
                                    &s->peak_flops, error)
      || !msim_spec_source_get_double (src, "hbm_bandwidth_Bps", TRUE, 0, MIN_BANDWIDTH_BPS,
                                       MAX_BANDWIDTH_BPS, &s->hbm_bandwidth_Bps, error)
      || !msim_spec_source_get_int64 (src, "hbm_capacity_bytes", TRUE, 0, MIN_CAPACITY,
                                      MAX_CAPACITY, &s->hbm_capacity_bytes, error)
      || !msim_spec_source_get_double (src, "launch_overhead_s", TRUE, 0, 0.0, MAX_LAUNCH_S,
                                       &s->launch_overhead_s, error))
    return NULL;
  for (int c = 0; c < MSIM_KERNEL_N_CLASSES; c++)
    {
      g_autofree char *fkey = g_strconcat (class_names[c], "_flops_efficiency", NULL);
      g_autofree char *bkey = g_strconcat (class_names[c], "_bandwidth_efficiency", NULL);
      if (!msim_spec_source_get_double (src, fkey, TRUE, 0, MIN_EFFICIENCY, 1.0,
                                        &s->flops_efficiency[c], error)
          || !msim_spec_source_get_double (src, bkey, TRUE, 0, MIN_EFFICIENCY, 1.0,
                                           &s->bandwidth_efficiency[c], error))
        return NULL;
    }
  if (!validate (s, &w, error))
    return NULL;
  return g_steal_pointer (&s);
}

static gpointer
parse_any (const MsimSpecSource *src, GError **error)
{
  return parse (src, error);
}

MsimGpuSpec *
msim_gpu_spec_new_from_ini (const MsimIni *ini, const char *group, GError **error)
{
  return msim_spec_new_from_ini (&gpu_kind, parse_any, ini, group, error);
}

MsimGpuSpec *
msim_gpu_spec_load_file (const char *path, GError **error)
{
  return msim_spec_load_file (&gpu_kind, parse_any, path, error);
}

MsimGpuSpec *
msim_gpu_spec_load_preset (const char *name, GError **error)
{
  return msim_spec_load_preset (&gpu_kind, parse_any, name, error);
}

char **
msim_gpu_spec_list_presets (void)
{
  return msim_spec_list_presets (&gpu_kind);
}
