/* eplb: DeepSeek's Expert Parallelism Load Balancer (as used by vLLM,
 * SGLang and TensorRT-LLM), reimplemented from its published description.
 *
 * Input: the load of every expert of every layer (assignments over all
 * ranks, from the trace) and R extra physical slots per layer, so each
 * layer has P = E + R physical experts, P / G per GPU.  Per layer:
 *   replicate  give the R extra copies one at a time to the expert with the
 *              largest load per copy (a copy serves load / copies);
 *   pack       place the copies, heaviest first, on the GPU with the least
 *              load among those with a free slot ("balanced packing"),
 *              avoiding a second copy of an expert on one GPU when possible.
 * Hierarchical mode (DeepSeek's choice when expert groups divide among the
 * nodes): experts form `groups` contiguous groups; groups are packed onto
 * nodes first (balanced packing by group load), then replication and
 * packing happen inside each node, so a token's copies stay in its group's
 * node.  Global mode replicates and packs over all GPUs at once.
 *
 * base=affinity keeps the primary copies where affinity-local-search puts
 * them and adds the R copies on top (R / G extra slots per GPU), to show
 * how much balance costs in locality and the other way round.
 *
 * Reported: max/mean GPU load (mean over layers) before (contiguous, no
 * copies) and after, and cross-GPU/-node fractions before and after, for
 * both replica routing models of MsimPlacementEval (split: copies share
 * tokens regardless of where the token is, as EPLB deployments route;
 * local: a copy on the token's GPU or node is preferred).
 */
#include <math.h>
#include <string.h>

#include "msim-error.h"
#include "placement-private.h"

typedef enum
{
  EPLB_AUTO,
  EPLB_HIERARCHICAL,
  EPLB_GLOBAL,
} EplbMode;

typedef enum
{
  BASE_EPLB,
  BASE_AFFINITY,
} EplbBase;

typedef struct
{
  guint extra; /* G_MAXUINT = one per GPU */
  EplbMode mode;
  guint groups; /* 0 = number of nodes */
  EplbBase base;
} Eplb;

static const char *const eplb_keys[] = { "extra-slots", "mode", "groups", "base", NULL };
static const char *const eplb_modes[] = { "auto", "hierarchical", "global", NULL };
static const char *const eplb_bases[] = { "eplb", "affinity", NULL };

static gboolean
eplb_init (void **state, const char *const *options, GError **error)
{
  const char *name = "eplb";
  g_autoptr (GHashTable) opts = msim_policy_options_parse (name, options, eplb_keys, error);
  if (opts == NULL)
    return FALSE;
  Eplb e;
  int mode, base;
  if (!msim_policy_option_uint (opts, name, "extra-slots", G_MAXUINT, 0, G_MAXUINT, &e.extra, error)
      || !msim_policy_option_choice (opts, name, "mode", EPLB_AUTO, eplb_modes, &mode, error)
      || !msim_policy_option_uint (opts, name, "groups", 0, 0, 65536, &e.groups, error)
      || !msim_policy_option_choice (opts, name, "base", BASE_EPLB, eplb_bases, &base, error))
    return FALSE;
  e.mode = (EplbMode)mode;
  e.base = (EplbBase)base;
  *state = g_memdup2 (&e, sizeof e);
  return TRUE;
}

/* Replica counts: @extra copies, each to the expert with the largest load
 * per copy (ties: lowest index).  @items lists the experts considered. */
static void
replicate (const double *w, const guint *items, guint n, guint extra, guint *copies)
{
  for (guint i = 0; i < n; i++)
    copies[items[i]] = 1;
  for (guint r = 0; r < extra; r++)
    {
      guint best = items[0];
      for (guint i = 1; i < n; i++)
        {
          guint e = items[i];
          if (w[e] / copies[e] > w[best] / copies[best])
            best = e;
        }
      copies[best]++;
    }
}

typedef struct
{
  guint expert;
  guint copy;
  double load;
} Item;

static int
item_cmp (gconstpointer a, gconstpointer b)
{
  const Item *x = a, *y = b;
  if (x->load != y->load)
    return x->load > y->load ? -1 : 1;
  if (x->expert != y->expert)
    return x->expert < y->expert ? -1 : 1;
  return x->copy < y->copy ? -1 : (x->copy > y->copy ? 1 : 0);
}

/* Balanced packing of the copies of @items into bins @bins[0..nb) with
 * @per_bin slots each; @bin_load holds the bins' current loads and is
 * updated; @holds[bin * E + e] marks copies already there.  Calls @emit for
 * each copy placed. */
static void
pack (const double *w, const guint *items, guint n, const guint *copies, const guint *bins,
      guint nb, guint per_bin, guint *bin_used, double *bin_load, guint8 *holds, guint E,
      guint32 *primary, GArray *extra_out, guint layer)
{
  g_autoptr (GArray) list = g_array_new (FALSE, FALSE, sizeof (Item));
  for (guint i = 0; i < n; i++)
    {
      guint e = items[i];
      for (guint c = 0; c < copies[e]; c++)
        {
          Item it = { e, c, w[e] / copies[e] };
          g_array_append_val (list, it);
        }
    }
  g_array_sort (list, item_cmp);
  for (guint i = 0; i < list->len; i++)
    {
      const Item *it = &g_array_index (list, Item, i);
      gint best = -1;
      for (int pass = 0; pass < 2 && best < 0; pass++)
        for (guint b = 0; b < nb; b++)
          {
            guint g = bins[b];
            if (bin_used[g] >= per_bin || (pass == 0 && holds[(gsize)g * E + it->expert]))
              continue;
            if (best < 0 || bin_load[g] < bin_load[bins[best]])
              best = (gint)b;
          }
      g_assert (best >= 0);
      guint g = bins[best];
      bin_used[g]++;
      bin_load[g] += it->load;
      holds[(gsize)g * E + it->expert] = 1;
      if (primary[(gsize)layer * E + it->expert] == MSIM_PLACEMENT_UNSET)
        primary[(gsize)layer * E + it->expert] = g;
      else
        {
          MsimPlacementReplica r = { layer, it->expert, g };
          g_array_append_val (extra_out, r);
        }
    }
}

/* Group loads packed onto nodes: balanced packing with groups/N per node. */
static void
pack_groups (const double *gload, guint ng, guint N, guint *group_node)
{
  g_autoptr (GArray) list = g_array_new (FALSE, FALSE, sizeof (Item));
  for (guint g = 0; g < ng; g++)
    {
      Item it = { g, 0, gload[g] };
      g_array_append_val (list, it);
    }
  g_array_sort (list, item_cmp);
  g_autofree double *nload = g_new0 (double, N);
  g_autofree guint *nused = g_new0 (guint, N);
  guint per = ng / N;
  for (guint i = 0; i < list->len; i++)
    {
      const Item *it = &g_array_index (list, Item, i);
      guint best = G_MAXUINT;
      for (guint n = 0; n < N; n++)
        if (nused[n] < per && (best == G_MAXUINT || nload[n] < nload[best]))
          best = n;
      group_node[it->expert] = best;
      nused[best]++;
      nload[best] += it->load;
    }
}

/* Mean over layers of max/mean GPU load, and the worst layer's value. */
static void
imbalance (const MsimPlacementProblem *pb, const guint32 *gpu, const GArray *reps, double *mean,
           double *worst)
{
  const guint L = pb->layers, E = pb->experts, G = pb->gpus;
  g_autofree guint *copies = g_new (guint, (gsize)L * E);
  for (gsize i = 0; i < (gsize)L * E; i++)
    copies[i] = 1;
  for (guint i = 0; reps && i < reps->len; i++)
    {
      const MsimPlacementReplica *r = &g_array_index (reps, MsimPlacementReplica, i);
      copies[(gsize)r->layer * E + r->expert]++;
    }
  g_autofree double *load = g_new (double, G);
  double sum = 0;
  *worst = 0;
  for (guint l = 0; l < L; l++)
    {
      memset (load, 0, sizeof (double) * G);
      double tot = 0;
      for (guint e = 0; e < E; e++)
        {
          gsize i = (gsize)l * E + e;
          double share = (double)pb->load[i] / copies[i];
          load[gpu[i]] += share;
          tot += (double)pb->load[i];
        }
      for (guint i = 0; reps && i < reps->len; i++)
        {
          const MsimPlacementReplica *r = &g_array_index (reps, MsimPlacementReplica, i);
          if (r->layer == l)
            load[r->gpu]
                += (double)pb->load[(gsize)l * E + r->expert] / copies[(gsize)l * E + r->expert];
        }
      double mx = 0;
      for (guint g = 0; g < G; g++)
        mx = MAX (mx, load[g]);
      double imb = tot > 0 ? mx / (tot / G) : 1.0;
      sum += imb;
      *worst = MAX (*worst, imb);
    }
  *mean = sum / L;
}

static gboolean
eplb_place (void *state, const MsimPlacementProblem *pb, MsimPlacementOutput *out, GError **error)
{
  const Eplb *o = state;
  const guint L = pb->layers, E = pb->experts, G = pb->gpus, N = pb->nodes;
  guint R = o->extra == G_MAXUINT ? G : o->extra;
  guint P = E + R;
  g_autofree double *w = g_new (double, E);
  g_autofree guint *copies = g_new (guint, E);
  g_autofree guint *items = g_new (guint, E);
  g_autofree guint *bins = g_new (guint, G);
  g_autofree guint *bin_used = g_new (guint, G);
  g_autofree double *bin_load = g_new (double, G);
  g_autofree guint8 *holds = g_new (guint8, (gsize)G * E);
  const char *mode_name;

  if (o->base == BASE_AFFINITY)
    {
      if (R % G != 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "extra-slots=%u: base=affinity adds R / G extra slots per GPU, so R must "
                       "be a multiple of %u GPUs",
                       R, G);
          return FALSE;
        }
      mode_name = "affinity";
      msim_search_best (pb, out->gpu, 24, 512, 0, NULL);
      out->slots_per_gpu = pb->slots_per_gpu + R / G;
      for (guint l = 0; l < L; l++)
        {
          for (guint e = 0; e < E; e++)
            {
              w[e] = (double)pb->load[(gsize)l * E + e];
              items[e] = e;
            }
          replicate (w, items, E, R, copies);
          memset (bin_used, 0, sizeof (guint) * G);
          memset (bin_load, 0, sizeof (double) * G);
          memset (holds, 0, (gsize)G * E);
          for (guint e = 0; e < E; e++)
            {
              guint g = out->gpu[(gsize)l * E + e];
              bin_load[g] += w[e] / copies[e];
              holds[(gsize)g * E + e] = 1;
            }
          /* Only the extra copies are packed, into R / G slots per GPU. */
          g_autoptr (GArray) list = g_array_new (FALSE, FALSE, sizeof (Item));
          for (guint e = 0; e < E; e++)
            for (guint c = 1; c < copies[e]; c++)
              {
                Item it = { e, c, w[e] / copies[e] };
                g_array_append_val (list, it);
              }
          g_array_sort (list, item_cmp);
          for (guint i = 0; i < list->len; i++)
            {
              const Item *it = &g_array_index (list, Item, i);
              gint best = -1;
              for (int pass = 0; pass < 2 && best < 0; pass++)
                for (guint g = 0; g < G; g++)
                  {
                    if (bin_used[g] >= R / G || (pass == 0 && holds[(gsize)g * E + it->expert]))
                      continue;
                    if (best < 0 || bin_load[g] < bin_load[best])
                      best = (gint)g;
                  }
              bin_used[best]++;
              bin_load[best] += it->load;
              holds[(gsize)best * E + it->expert] = 1;
              msim_placement_output_add_replica (out, l, it->expert, (guint)best);
            }
        }
    }
  else
    {
      if (P % G != 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "extra-slots=%u: %u experts + %u extra slots = %u physical experts per "
                       "layer must be a multiple of %u GPUs",
                       R, E, R, P, G);
          return FALSE;
        }
      guint ng = o->groups ? o->groups : N;
      gboolean can_hier = N > 1 && G % N == 0 && ng > 0 && E % ng == 0 && ng % N == 0 && P % N == 0
                          && (P / N) % (G / N) == 0;
      for (guint g = 0; can_hier && g < G; g++)
        can_hier = pb->gpu_node[g] == g / (G / N);
      gboolean hier = o->mode == EPLB_HIERARCHICAL || (o->mode == EPLB_AUTO && can_hier);
      if (hier && !can_hier)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "mode=hierarchical needs several equal nodes numbered node by node, "
                       "groups (%u) dividing %u experts and a multiple of %u nodes, and %u "
                       "physical experts dividing evenly over nodes and GPUs (use mode=global)",
                       ng, E, N, P);
          return FALSE;
        }
      mode_name = hier ? "hierarchical" : "global";
      out->slots_per_gpu = P / G;
      for (guint l = 0; l < L; l++)
        {
          for (guint e = 0; e < E; e++)
            w[e] = (double)pb->load[(gsize)l * E + e];
          memset (bin_used, 0, sizeof (guint) * G);
          memset (bin_load, 0, sizeof (double) * G);
          memset (holds, 0, (gsize)G * E);
          if (!hier)
            {
              for (guint e = 0; e < E; e++)
                items[e] = e;
              for (guint g = 0; g < G; g++)
                bins[g] = g;
              replicate (w, items, E, R, copies);
              pack (w, items, E, copies, bins, G, P / G, bin_used, bin_load, holds, E, out->gpu,
                    out->replicas, l);
              continue;
            }
          guint gsz = E / ng, q = G / N;
          g_autofree double *gload = g_new0 (double, ng);
          g_autofree guint *group_node = g_new (guint, ng);
          for (guint e = 0; e < E; e++)
            gload[e / gsz] += w[e];
          pack_groups (gload, ng, N, group_node);
          for (guint node = 0; node < N; node++)
            {
              guint n = 0;
              for (guint e = 0; e < E; e++)
                if (group_node[e / gsz] == node)
                  items[n++] = e;
              for (guint x = 0; x < q; x++)
                bins[x] = node * q + x;
              replicate (w, items, n, P / N - n, copies);
              pack (w, items, n, copies, bins, q, P / G, bin_used, bin_load, holds, E, out->gpu,
                    out->replicas, l);
            }
        }
    }

  /* Before (contiguous, no copies) and after. */
  g_autofree guint32 *contig = g_new (guint32, (gsize)L * E);
  msim_search_contiguous (pb, contig);
  double imb_b, imb_bw, imb_a, imb_aw;
  imbalance (pb, contig, NULL, &imb_b, &imb_bw);
  imbalance (pb, out->gpu, out->replicas, &imb_a, &imb_aw);
  msim_placement_output_add_stat (out, "extra_slots", R);
  msim_placement_output_add_stat (out, "hierarchical", strcmp (mode_name, "hierarchical") == 0);
  msim_placement_output_add_stat (out, "affinity_base", o->base == BASE_AFFINITY);
  msim_placement_output_add_stat (out, "load_imbalance_before", imb_b);
  msim_placement_output_add_stat (out, "load_imbalance_after", imb_a);
  msim_placement_output_add_stat (out, "load_imbalance_worst_before", imb_bw);
  msim_placement_output_add_stat (out, "load_imbalance_worst_after", imb_aw);
  if (pb->trace != NULL)
    {
      MsimClusterShape shape = { G, N, (guint32 *)pb->gpu_node, FALSE };
      g_autoptr (MsimPlacement) before = msim_placement_new_contiguous (L, E, G);
      g_autoptr (MsimPlacement) after = msim_placement_from_output (pb, out);
      MsimPlacementEval eb, ea;
      if (!msim_placement_evaluate (before, pb->trace, &shape, &eb, error)
          || !msim_placement_evaluate (after, pb->trace, &shape, &ea, error))
        return FALSE;
      msim_placement_output_add_stat (out, "cross_gpu_before", eb.cross_gpu);
      msim_placement_output_add_stat (out, "cross_gpu_after_split", ea.cross_gpu);
      msim_placement_output_add_stat (out, "cross_gpu_after_local", ea.cross_gpu_local);
      msim_placement_output_add_stat (out, "cross_node_before", eb.cross_node);
      msim_placement_output_add_stat (out, "cross_node_after_split", ea.cross_node);
      msim_placement_output_add_stat (out, "cross_node_after_local", ea.cross_node_local);
      msim_placement_output_add_stat (out, "load_imbalance_after_local", ea.load_imbalance_local);
    }
  return TRUE;
}

const MsimPlacementPolicy msim_placement_policy_eplb = {
  .name = "eplb",
  .summary = "DeepSeek EPLB: copies of heavy experts in extra slots, balanced packing",
  .options_help = "extra-slots=R  extra physical experts per layer (default G, one per GPU)\n"
                  "mode=auto|hierarchical|global  (default auto: hierarchical when groups "
                  "divide among nodes)\n"
                  "groups=N       expert groups for hierarchical mode (default: nodes)\n"
                  "base=eplb|affinity  primary copies from EPLB or from "
                  "affinity-local-search (default eplb)\n",
  .init = eplb_init,
  .free_state = g_free,
  .place = eplb_place,
};
