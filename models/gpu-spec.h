#pragma once

/*
 * MsimGpuSpec: what one GPU can do, for a per-kernel roofline.
 *
 * Read from a [gpu] group or a preset `models/presets/gpu-NAME.ini`
 * (msim_gpu_spec_load_preset ("h100-sxm5-80gb") or "gpu-h100-sxm5-80gb").  In a
 * config, `preset = NAME` or `include = FILE` inside [gpu] pulls in a preset
 * and keys next to it override.  All keys are required (a preset supplies
 * them) except name; unknown keys are errors.
 *
 * [gpu] keys:
 *   name                 free text; default: the preset name or file stem
 *   peak_flops           dense bf16/fp16 tensor-core FLOP/s (no sparsity)
 *   hbm_bandwidth_Bps    HBM bytes/s
 *   hbm_capacity_bytes   HBM bytes
 *   launch_overhead_s    fixed cost added to every kernel, seconds
 *   <class>_flops_efficiency      achievable fraction of peak_flops
 *   <class>_bandwidth_efficiency  achievable fraction of hbm_bandwidth_Bps
 *     for class = gemm, grouped_gemm, attention, elementwise; each in (0, 1].
 *
 * Each kernel class has its own compute and bandwidth fraction because
 * they differ in practice: a large GEMM reaches most of the tensor-core peak
 * while an elementwise kernel runs on CUDA cores at a fraction of it, and
 * all of them stream HBM at about the same rate.  With both fractions equal
 * to one value e, the roofline is max(F / (peak e), B / (bw e)) + launch.
 */

#include <glib.h>

#include "ini.h"

G_BEGIN_DECLS

typedef enum
{
  MSIM_KERNEL_GEMM,         /* dense GEMM: attention projections, gate, dense FFN */
  MSIM_KERNEL_GROUPED_GEMM, /* one launch over all local experts' GEMMs */
  MSIM_KERNEL_ATTENTION,    /* fused attention (FlashAttention-style), prefill or decode */
  MSIM_KERNEL_ELEMENTWISE,  /* memory-bound: norms, activations, combine, permute */
  MSIM_KERNEL_N_CLASSES,
} MsimKernelClass;

/* Public for the same reason as MsimModelSpec: plain data the compute
 * model reads per kernel.  Call msim_gpu_spec_validate() on one built in
 * memory. */
typedef struct
{
  char *name;
  double peak_flops;
  double hbm_bandwidth_Bps;
  gint64 hbm_capacity_bytes;
  double launch_overhead_s;
  double flops_efficiency[MSIM_KERNEL_N_CLASSES];
  double bandwidth_efficiency[MSIM_KERNEL_N_CLASSES];
} MsimGpuSpec;

/* Loads models/presets/gpu-@name.ini under msim_data_dir(); @name may carry
 * the "gpu-" prefix.  An unknown name lists the known ones.  (transfer full) */
MsimGpuSpec *msim_gpu_spec_load_preset (const char *name, GError **error);

/* A key file whose only group is [gpu].  (transfer full) */
MsimGpuSpec *msim_gpu_spec_load_file (const char *path, GError **error);

/* Reads [@group] (normally "gpu") of a larger config, following
 * `preset = NAME`.  (transfer full) */
MsimGpuSpec *msim_gpu_spec_new_from_ini (const MsimIni *ini, const char *group, GError **error);

/* Sorted preset names without the "gpu-" prefix (transfer full). */
char **msim_gpu_spec_list_presets (void);

MsimGpuSpec *msim_gpu_spec_copy (const MsimGpuSpec *spec);
void msim_gpu_spec_free (MsimGpuSpec *spec);

/* Range checks for a spec built in memory ("gpu 'NAME': key: ..."). */
gboolean msim_gpu_spec_validate (const MsimGpuSpec *spec, GError **error);

/* "gemm", "grouped_gemm", "attention", "elementwise". */
const char *msim_kernel_class_name (MsimKernelClass klass);

/*
 * Roofline time of one kernel of class @klass that performs @flops
 * floating-point operations and moves @bytes to or from HBM:
 *
 *   max (flops / (peak_flops * flops_eff), bytes / (hbm_bandwidth_Bps * bw_eff))
 *     + launch_overhead_s
 *
 * in seconds.  @flops and @bytes must be finite and >= 0; a kernel with no
 * work still pays the launch overhead (callers skip kernels they do not
 * launch).  O(1), no allocation.
 */
double msim_gpu_kernel_time_s (const MsimGpuSpec *spec, MsimKernelClass klass, double flops,
                               double bytes);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimGpuSpec, msim_gpu_spec_free)

G_END_DECLS
