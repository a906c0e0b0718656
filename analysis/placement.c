/* Expert placements: the type, CSV files, evaluation on a trace, the
 * problem the policies solve, the policy table and the checked runner. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ini.h"
#include "msim-error.h"
#include "placement-private.h"

/* ======================================================================
 * Cluster shape
 * ====================================================================== */

MsimClusterShape *
msim_cluster_shape_new (guint gpus, guint nodes, GError **error)
{
  if (gpus < 1 || gpus > MSIM_TOPOLOGY_MAX_GPUS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "GPUs: %u is outside 1..%u", gpus,
                   (guint)MSIM_TOPOLOGY_MAX_GPUS);
      return NULL;
    }
  if (nodes < 1 || nodes > gpus || gpus % nodes != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "nodes: %u does not divide %u GPUs into equal nodes", nodes, gpus);
      return NULL;
    }
  MsimClusterShape *s = g_new0 (MsimClusterShape, 1);
  s->gpus = gpus;
  s->nodes = nodes;
  s->uniform = TRUE;
  s->gpu_node = g_new (guint32, gpus);
  guint per = gpus / nodes;
  for (guint g = 0; g < gpus; g++)
    s->gpu_node[g] = g / per;
  return s;
}

MsimClusterShape *
msim_cluster_shape_new_from_topology (const MsimTopology *topo, GError **error)
{
  guint gpus = msim_topology_n_gpus (topo);
  if (gpus == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "topology '%s' has no GPUs",
                   msim_topology_name (topo));
      return NULL;
    }
  /* Hosts without GPUs are not nodes for placement: renumber the hosts that
   * have GPUs 0..N-1 in host order. */
  guint hosts = msim_topology_n_hosts (topo);
  g_autofree gint64 *node_of_host = g_new (gint64, MAX (hosts, 1));
  guint nodes = 0;
  for (guint h = 0; h < hosts; h++)
    {
      guint first, count;
      msim_topology_host_gpus (topo, h, &first, &count);
      node_of_host[h] = count > 0 ? (gint64)nodes++ : -1;
    }
  MsimClusterShape *s = g_new0 (MsimClusterShape, 1);
  s->gpus = gpus;
  s->nodes = MAX (nodes, 1);
  s->gpu_node = g_new (guint32, gpus);
  for (guint g = 0; g < gpus; g++)
    {
      guint host = msim_topology_gpu_host (topo, g);
      s->gpu_node[g] = host < hosts && node_of_host[host] >= 0 ? (guint32)node_of_host[host] : 0;
    }
  s->uniform = gpus % s->nodes == 0;
  for (guint g = 0; s->uniform && g < gpus; g++)
    if (s->gpu_node[g] != g / (gpus / s->nodes))
      s->uniform = FALSE;
  return s;
}

MsimClusterShape *
msim_cluster_shape_copy (const MsimClusterShape *shape)
{
  MsimClusterShape *s = g_new0 (MsimClusterShape, 1);
  *s = *shape;
  s->gpu_node = g_memdup2 (shape->gpu_node, sizeof (guint32) * shape->gpus);
  return s;
}

void
msim_cluster_shape_free (MsimClusterShape *shape)
{
  if (shape == NULL)
    return;
  g_free (shape->gpu_node);
  g_free (shape);
}

/* ======================================================================
 * Placement
 * ====================================================================== */

struct _MsimPlacement
{
  guint layers, experts, gpus;
  guint32 *gpu;   /* [L * E] primary copies */
  GArray **extra; /* [L * E] NULL or GArray of guint32: copies 1.. */
  guint n_extra;
};

MsimPlacement *
msim_placement_new (guint layers, guint experts, guint gpus)
{
  g_return_val_if_fail (layers > 0 && experts > 0 && gpus > 0, NULL);
  MsimPlacement *p = g_new0 (MsimPlacement, 1);
  p->layers = layers;
  p->experts = experts;
  p->gpus = gpus;
  gsize n = (gsize)layers * experts;
  p->gpu = g_new (guint32, n);
  for (gsize i = 0; i < n; i++)
    p->gpu[i] = MSIM_PLACEMENT_UNSET;
  p->extra = g_new0 (GArray *, n);
  return p;
}

MsimPlacement *
msim_placement_copy (const MsimPlacement *src)
{
  MsimPlacement *p = msim_placement_new (src->layers, src->experts, src->gpus);
  gsize n = (gsize)src->layers * src->experts;
  memcpy (p->gpu, src->gpu, n * sizeof (guint32));
  for (gsize i = 0; i < n; i++)
    if (src->extra[i])
      {
        p->extra[i] = g_array_sized_new (FALSE, FALSE, sizeof (guint32), src->extra[i]->len);
        g_array_append_vals (p->extra[i], src->extra[i]->data, src->extra[i]->len);
      }
  p->n_extra = src->n_extra;
  return p;
}

void
msim_placement_free (MsimPlacement *p)
{
  if (p == NULL)
    return;
  gsize n = (gsize)p->layers * p->experts;
  for (gsize i = 0; i < n; i++)
    if (p->extra[i])
      g_array_unref (p->extra[i]);
  g_free (p->extra);
  g_free (p->gpu);
  g_free (p);
}

guint
msim_placement_layers (const MsimPlacement *p)
{
  return p->layers;
}

guint
msim_placement_experts (const MsimPlacement *p)
{
  return p->experts;
}

guint
msim_placement_gpus (const MsimPlacement *p)
{
  return p->gpus;
}

void
msim_placement_set_gpu (MsimPlacement *p, guint layer, guint expert, guint gpu)
{
  g_return_if_fail (layer < p->layers && expert < p->experts);
  p->gpu[(gsize)layer * p->experts + expert] = gpu;
}

guint
msim_placement_get_gpu (const MsimPlacement *p, guint layer, guint expert)
{
  g_return_val_if_fail (layer < p->layers && expert < p->experts, MSIM_PLACEMENT_UNSET);
  return p->gpu[(gsize)layer * p->experts + expert];
}

const guint32 *
msim_placement_gpu_array (const MsimPlacement *p)
{
  return p->gpu;
}

void
msim_placement_add_replica (MsimPlacement *p, guint layer, guint expert, guint gpu)
{
  g_return_if_fail (layer < p->layers && expert < p->experts);
  gsize i = (gsize)layer * p->experts + expert;
  if (p->extra[i] == NULL)
    p->extra[i] = g_array_new (FALSE, FALSE, sizeof (guint32));
  guint32 g = gpu;
  g_array_append_val (p->extra[i], g);
  p->n_extra++;
}

guint
msim_placement_n_replicas (const MsimPlacement *p, guint layer, guint expert)
{
  g_return_val_if_fail (layer < p->layers && expert < p->experts, 0);
  GArray *x = p->extra[(gsize)layer * p->experts + expert];
  return 1 + (x ? x->len : 0);
}

guint
msim_placement_replica_gpu (const MsimPlacement *p, guint layer, guint expert, guint replica)
{
  g_return_val_if_fail (layer < p->layers && expert < p->experts, MSIM_PLACEMENT_UNSET);
  gsize i = (gsize)layer * p->experts + expert;
  if (replica == 0)
    return p->gpu[i];
  g_return_val_if_fail (p->extra[i] != NULL && replica - 1 < p->extra[i]->len,
                        MSIM_PLACEMENT_UNSET);
  return g_array_index (p->extra[i], guint32, replica - 1);
}

guint
msim_placement_n_extra (const MsimPlacement *p)
{
  return p->n_extra;
}

guint
msim_placement_slots_used (const MsimPlacement *p, guint layer, guint gpu)
{
  g_return_val_if_fail (layer < p->layers, 0);
  guint used = 0;
  for (guint e = 0; e < p->experts; e++)
    {
      guint r = msim_placement_n_replicas (p, layer, e);
      for (guint k = 0; k < r; k++)
        if (msim_placement_replica_gpu (p, layer, e, k) == gpu)
          used++;
    }
  return used;
}

gboolean
msim_placement_validate (const MsimPlacement *p, guint slots_per_gpu, GError **error)
{
  g_autofree guint *used = g_new (guint, p->gpus);
  for (guint l = 0; l < p->layers; l++)
    {
      memset (used, 0, sizeof (guint) * p->gpus);
      guint copies = 0;
      for (guint e = 0; e < p->experts; e++)
        {
          guint r = msim_placement_n_replicas (p, l, e);
          for (guint k = 0; k < r; k++)
            {
              guint g = msim_placement_replica_gpu (p, l, e, k);
              if (g == MSIM_PLACEMENT_UNSET)
                {
                  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                               "layer %u expert %u is not placed on any GPU", l, e);
                  return FALSE;
                }
              if (g >= p->gpus)
                {
                  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                               "layer %u expert %u (copy %u) is on GPU %u, but there are only "
                               "%u GPUs",
                               l, e, k, g, p->gpus);
                  return FALSE;
                }
              used[g]++;
              copies++;
            }
        }
      guint cap = slots_per_gpu ? slots_per_gpu : (copies + p->gpus - 1) / p->gpus;
      if (slots_per_gpu == 0)
        cap = MAX (cap, (p->experts + p->gpus - 1) / p->gpus);
      for (guint g = 0; g < p->gpus; g++)
        if (used[g] > cap)
          {
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "layer %u: GPU %u holds %u experts, more than its %u slots", l, g, used[g],
                         cap);
            return FALSE;
          }
    }
  return TRUE;
}

MsimPlacement *
msim_placement_new_contiguous (guint layers, guint experts, guint gpus)
{
  MsimPlacement *p = msim_placement_new (layers, experts, gpus);
  for (guint l = 0; l < layers; l++)
    for (guint e = 0; e < experts; e++)
      p->gpu[(gsize)l * experts + e] = (guint32)(((guint64)e * gpus) / experts);
  return p;
}

/* ======================================================================
 * CSV files
 * ====================================================================== */

typedef struct
{
  guint64 layer, expert, gpu, replica;
  guint line;
} CsvRow;

static int
row_cmp (gconstpointer a, gconstpointer b)
{
  const CsvRow *x = a, *y = b;
  if (x->layer != y->layer)
    return x->layer < y->layer ? -1 : 1;
  if (x->expert != y->expert)
    return x->expert < y->expert ? -1 : 1;
  if (x->replica != y->replica)
    return x->replica < y->replica ? -1 : 1;
  return x->line < y->line ? -1 : (x->line > y->line ? 1 : 0);
}

static gboolean
parse_id (const char *text, guint64 *out)
{
  gint64 v;
  g_autofree char *t = g_strstrip (g_strdup (text));
  if (!msim_parse_int64 (t, &v) || v < 0 || v > G_MAXINT32)
    return FALSE;
  *out = (guint64)v;
  return TRUE;
}

static gboolean
line_has_letter (const char *s)
{
  for (; *s; s++)
    if (g_ascii_isalpha (*s))
      return TRUE;
  return FALSE;
}

static gboolean
check_dim (const char *name, guint64 seen_max, guint given, const char *what, guint64 limit,
           guint *out, GError **error)
{
  if (given == 0)
    {
      /* Taken from the file: refuse ids that would size arrays absurdly
       * before anything is allocated from them. */
      if (seen_max >= limit)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                       "%s: %s %" G_GUINT64_FORMAT " is beyond the limit of %" G_GUINT64_FORMAT,
                       name, what, seen_max, limit - 1);
          return FALSE;
        }
      *out = (guint)(seen_max + 1);
      return TRUE;
    }
  if (seen_max >= given)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: %s %" G_GUINT64_FORMAT " is out of range (expected fewer than %u)", name,
                   what, seen_max, given);
      return FALSE;
    }
  *out = given;
  return TRUE;
}

static MsimPlacement *load_data (const char *data, gsize length, const char *name,
                                  guint layers, guint experts, guint gpus, GError **error);

/* Messages echo file contents: keep them one line of valid UTF-8. */
MsimPlacement *
msim_placement_load_data (const char *data, gsize length, const char *name, guint layers,
                          guint experts, guint gpus, GError **error)
{
  GError *local = NULL;
  MsimPlacement *p = load_data (data, length, name, layers, experts, gpus, &local);
  if (p == NULL && local != NULL)
    {
      char *valid = g_utf8_make_valid (local->message, -1);
      for (char *c = valid; *c; c++)
        if ((guchar)*c < 0x20)
          *c = '?';
      g_free (local->message);
      local->message = valid;
      g_propagate_error (error, local);
    }
  return p;
}

static MsimPlacement *
load_data (const char *data, gsize length, const char *name, guint layers, guint experts,
           guint gpus, GError **error)
{
  g_autofree char *text = g_strndup (data, length);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  MsimPlacementCsvFormat fmt = MSIM_PLACEMENT_CSV_AUTO;
  int col_layer = 0, col_expert = 1, col_gpu = 2, col_replica = -1, ncols = 0;
  gboolean header_seen = FALSE;
  g_autoptr (GArray) rows = g_array_new (FALSE, FALSE, sizeof (CsvRow));

  for (guint li = 0; lines[li] != NULL; li++)
    {
      guint lineno = li + 1;
      char *line = g_strstrip (lines[li]);
      if (*line == '\0' || *line == '#')
        continue;
      g_auto (GStrv) f = g_strsplit (line, ",", -1);
      int nf = (int)g_strv_length (f);
      if (!header_seen)
        {
          header_seen = TRUE;
          if (line_has_letter (line))
            {
              /* A header: find the columns by name. */
              int cl = -1, ce = -1, cg = -1, cr = -1, cn = -1;
              for (int c = 0; c < nf; c++)
                {
                  g_autofree char *h = g_ascii_strdown (g_strstrip (f[c]), -1);
                  if (strcmp (h, "layer") == 0)
                    cl = c;
                  else if (strcmp (h, "expert") == 0)
                    ce = c;
                  else if (strcmp (h, "gpu") == 0)
                    cg = c;
                  else if (strcmp (h, "replica") == 0)
                    cr = c;
                  else if (strcmp (h, "node") == 0)
                    cn = c;
                }
              if (cl >= 0 && ce >= 0 && cg >= 0)
                {
                  fmt = MSIM_PLACEMENT_CSV_MOESIM;
                  col_layer = cl, col_expert = ce, col_gpu = cg, col_replica = cr;
                }
              else if (ce >= 0 && cn >= 0 && cl < 0)
                {
                  fmt = MSIM_PLACEMENT_CSV_EXFLOW;
                  col_expert = ce, col_gpu = cn;
                }
              else
                {
                  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                               "%s:%u: unknown header '%s' (expected layer,expert,gpu[,replica] "
                               "or ExFlow's Expert,Node)",
                               name, lineno, line);
                  return NULL;
                }
              ncols = nf;
              continue;
            }
          /* No header: the column count decides. */
          if (nf == 3 || nf == 4)
            {
              fmt = MSIM_PLACEMENT_CSV_MOESIM;
              col_replica = nf == 4 ? 3 : -1;
            }
          else if (nf == 2)
            {
              fmt = MSIM_PLACEMENT_CSV_EXFLOW;
              col_expert = 0, col_gpu = 1;
            }
          else
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s:%u: expected 3 or 4 columns (layer,expert,gpu[,replica]) or 2 "
                           "(ExFlow Expert,Node), found %d",
                           name, lineno, nf);
              return NULL;
            }
          ncols = nf;
        }
      if (nf != ncols)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s:%u: expected %d columns, found %d",
                       name, lineno, ncols, nf);
          return NULL;
        }
      CsvRow r = { 0, 0, 0, 0, lineno };
      const char *what = NULL;
      if (fmt == MSIM_PLACEMENT_CSV_MOESIM)
        {
          if (!parse_id (f[col_layer], &r.layer))
            what = "layer";
          else if (!parse_id (f[col_expert], &r.expert))
            what = "expert";
          else if (!parse_id (f[col_gpu], &r.gpu))
            what = "gpu";
          else if (col_replica >= 0 && !parse_id (f[col_replica], &r.replica))
            what = "replica";
        }
      else
        {
          if (!parse_id (f[col_expert], &r.expert))
            what = "Expert";
          else if (!parse_id (f[col_gpu], &r.gpu))
            what = "Node";
        }
      if (what)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%u: %s: expected a non-negative integer", name, lineno, what);
          return NULL;
        }
      g_array_append_val (rows, r);
    }
  if (rows->len == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no placement rows", name);
      return NULL;
    }

  if (fmt == MSIM_PLACEMENT_CSV_EXFLOW)
    {
      if (experts == 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: an ExFlow Expert,Node file numbers experts globally (layer * E + "
                       "expert); the number of experts per layer E is needed (give a trace or "
                       "--experts)",
                       name);
          return NULL;
        }
      for (guint i = 0; i < rows->len; i++)
        {
          CsvRow *r = &g_array_index (rows, CsvRow, i);
          r->layer = r->expert / experts;
          r->expert %= experts;
        }
    }

  guint64 max_l = 0, max_e = 0, max_g = 0;
  for (guint i = 0; i < rows->len; i++)
    {
      const CsvRow *r = &g_array_index (rows, CsvRow, i);
      max_l = MAX (max_l, r->layer);
      max_e = MAX (max_e, r->expert);
      max_g = MAX (max_g, r->gpu);
    }
  guint L, E, G;
  if (!check_dim (name, max_l, layers, "layer", 100000, &L, error)
      || !check_dim (name, max_e, experts, "expert", 65536, &E, error)
      || !check_dim (name, max_g, gpus, "GPU", MSIM_TOPOLOGY_MAX_GPUS, &G, error))
    {
      /* Name the offending line too. */
      guint64 lim_l = layers ? layers : G_MAXUINT64, lim_e = experts ? experts : G_MAXUINT64,
              lim_g = gpus ? gpus : G_MAXUINT64;
      for (guint i = 0; i < rows->len; i++)
        {
          const CsvRow *r = &g_array_index (rows, CsvRow, i);
          if (r->layer >= MIN (lim_l, 100000) || r->expert >= MIN (lim_e, 65536)
              || r->gpu >= MIN (lim_g, (guint64)MSIM_TOPOLOGY_MAX_GPUS))
            {
              /* "NAME: msg" becomes "NAME:LINE: msg". */
              GError *e = *error;
              gsize n = strlen (name);
              const char *msg = e->message;
              if (strncmp (msg, name, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
                msg += n + 2;
              GError *lined = g_error_new (e->domain, e->code, "%s:%u: %s", name, r->line, msg);
              g_clear_error (error);
              g_propagate_error (error, lined);
              break;
            }
        }
      return NULL;
    }
  if ((guint64)L * E > (guint64)1 << 26)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT, "%s: %u layers x %u experts is too large",
                   name, L, E);
      return NULL;
    }

  g_array_sort (rows, row_cmp);
  g_autoptr (MsimPlacement) p = msim_placement_new (L, E, G);
  for (guint i = 0; i < rows->len; i++)
    {
      const CsvRow *r = &g_array_index (rows, CsvRow, i);
      guint have = p->gpu[r->layer * E + r->expert] == MSIM_PLACEMENT_UNSET
                       ? 0
                       : msim_placement_n_replicas (p, (guint)r->layer, (guint)r->expert);
      if (r->replica < have)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%u: layer %" G_GUINT64_FORMAT " expert %" G_GUINT64_FORMAT
                       " copy %" G_GUINT64_FORMAT " is placed twice",
                       name, r->line, r->layer, r->expert, r->replica);
          return NULL;
        }
      if (r->replica > have)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%u: layer %" G_GUINT64_FORMAT " expert %" G_GUINT64_FORMAT
                       " copy %" G_GUINT64_FORMAT " without copy %u (copies are numbered from 0, "
                       "the primary)",
                       name, r->line, r->layer, r->expert, r->replica, have);
          return NULL;
        }
      if (have == 0)
        p->gpu[r->layer * E + r->expert] = (guint32)r->gpu;
      else
        msim_placement_add_replica (p, (guint)r->layer, (guint)r->expert, (guint)r->gpu);
    }
  for (guint l = 0; l < L; l++)
    for (guint e = 0; e < E; e++)
      if (p->gpu[(gsize)l * E + e] == MSIM_PLACEMENT_UNSET)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s: layer %u expert %u has no row (every expert of every layer needs a "
                       "GPU)",
                       name, l, e);
          return NULL;
        }
  return g_steal_pointer (&p);
}

MsimPlacement *
msim_placement_load (const char *path, guint layers, guint experts, guint gpus, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &data, &len, &local))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s", local->message);
      return NULL;
    }
  return msim_placement_load_data (data, len, path, layers, experts, gpus, error);
}

char *
msim_placement_to_csv (const MsimPlacement *p, MsimPlacementCsvFormat format, GError **error)
{
  GString *s = g_string_new (NULL);
  if (format == MSIM_PLACEMENT_CSV_EXFLOW)
    {
      if (p->n_extra > 0)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "ExFlow's Expert,Node CSV holds one GPU per expert; this placement has "
                       "%u extra copies (write the moesim CSV instead)",
                       p->n_extra);
          g_string_free (s, TRUE);
          return NULL;
        }
      g_string_append (s, "Expert,Node\n");
      for (guint l = 0; l < p->layers; l++)
        for (guint e = 0; e < p->experts; e++)
          g_string_append_printf (s, "%" G_GUINT64_FORMAT ",%u\n", (guint64)l * p->experts + e,
                                  p->gpu[(gsize)l * p->experts + e]);
      return g_string_free (s, FALSE);
    }
  gboolean reps = p->n_extra > 0;
  g_string_append (s, reps ? "layer,expert,gpu,replica\n" : "layer,expert,gpu\n");
  for (guint l = 0; l < p->layers; l++)
    for (guint e = 0; e < p->experts; e++)
      {
        guint r = msim_placement_n_replicas (p, l, e);
        for (guint k = 0; k < r; k++)
          {
            g_string_append_printf (s, "%u,%u,%u", l, e, msim_placement_replica_gpu (p, l, e, k));
            if (reps)
              g_string_append_printf (s, ",%u", k);
            g_string_append_c (s, '\n');
          }
      }
  return g_string_free (s, FALSE);
}

gboolean
msim_placement_save (const MsimPlacement *p, const char *path, MsimPlacementCsvFormat format,
                     GError **error)
{
  g_autofree char *csv = msim_placement_to_csv (p, format, error);
  if (csv == NULL)
    return FALSE;
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents (path, csv, -1, &local))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s", local->message);
      return FALSE;
    }
  return TRUE;
}

/* ======================================================================
 * Evaluation
 * ====================================================================== */

/* A token's location: a distribution over GPUs (few entries). */
typedef struct
{
  guint32 gpu;
  double p;
} Loc;

static void
loc_add (GArray *loc, guint32 gpu, double p)
{
  for (guint i = 0; i < loc->len; i++)
    if (g_array_index (loc, Loc, i).gpu == gpu)
      {
        g_array_index (loc, Loc, i).p += p;
        return;
      }
  Loc x = { gpu, p };
  g_array_append_val (loc, x);
}

static double
max_over_mean (const double *v, guint n)
{
  double mx = 0, tot = 0;
  for (guint i = 0; i < n; i++)
    {
      mx = MAX (mx, v[i]);
      tot += v[i];
    }
  return tot > 0 ? mx / (tot / n) : 1.0;
}

void
msim_placement_layer_loads (const MsimPlacement *p, const MsimTrace *trace, guint layer,
                            double *loads)
{
  g_return_if_fail (layer < p->layers && trace->experts <= p->experts);
  g_autofree guint64 *load = g_new0 (guint64, trace->experts);
  msim_trace_count_layer (trace, layer, load, NULL);
  for (guint g = 0; g < p->gpus; g++)
    loads[g] = 0.0;
  for (guint e = 0; e < trace->experts; e++)
    {
      guint r = msim_placement_n_replicas (p, layer, e);
      for (guint k = 0; k < r; k++)
        loads[msim_placement_replica_gpu (p, layer, e, k)] += (double)load[e] / r;
    }
}

gboolean
msim_placement_evaluate (const MsimPlacement *p, const MsimTrace *trace,
                         const MsimClusterShape *shape, MsimPlacementEval *out, GError **error)
{
  memset (out, 0, sizeof *out);
  if (trace->layers != p->layers)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the trace has %u layers but the placement %u", trace->layers, p->layers);
      return FALSE;
    }
  if (trace->experts > p->experts)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the trace has %u experts per layer but the placement %u", trace->experts,
                   p->experts);
      return FALSE;
    }
  if (shape && shape->gpus != p->gpus)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "the placement uses %u GPUs but the cluster has %u", p->gpus, shape->gpus);
      return FALSE;
    }
  if (!msim_placement_validate (p, G_MAXUINT, error))
    return FALSE;
  g_autoptr (MsimClusterShape) one = shape ? NULL : msim_cluster_shape_new (p->gpus, 1, NULL);
  if (!shape)
    shape = one;
  const guint32 *node = shape->gpu_node;
  const double gc = 1.0, nc = shape->nodes > 1 ? 2.0 : 1.0;
  const guint L = p->layers, E = p->experts, k = trace->k;
  const gsize T = trace->tokens;
  out->tokens = T;
  out->boundaries = (guint64)T * (L - 1);

  /* Split routing: from the top-1 pair counts of each boundary. */
  g_autofree guint64 *pc = g_new (guint64, (gsize)E * E);
  double same_gpu = 0, same_node = 0;
  for (guint l = 0; l + 1 < L; l++)
    {
      memset (pc, 0, sizeof (guint64) * E * E);
      const MsimExpertId *a = msim_trace_layer_ids (trace, l);
      const MsimExpertId *b = msim_trace_layer_ids (trace, l + 1);
      for (gsize t = 0; t < T; t++)
        pc[(gsize)a[t * k] * E + b[t * k]]++;
      for (guint i = 0; i < E; i++)
        for (guint j = 0; j < E; j++)
          {
            guint64 c = pc[(gsize)i * E + j];
            if (c == 0)
              continue;
            guint ri = msim_placement_n_replicas (p, l, i);
            guint rj = msim_placement_n_replicas (p, l + 1, j);
            double sg = 0, sn = 0;
            for (guint x = 0; x < ri; x++)
              for (guint y = 0; y < rj; y++)
                {
                  guint g = msim_placement_replica_gpu (p, l, i, x);
                  guint h = msim_placement_replica_gpu (p, l + 1, j, y);
                  sg += g == h;
                  sn += node[g] == node[h];
                }
            same_gpu += (double)c * sg / ((double)ri * rj);
            same_node += (double)c * sn / ((double)ri * rj);
          }
    }
  double nb = (double)out->boundaries;
  if (nb > 0)
    {
      out->cross_gpu = 1.0 - same_gpu / nb;
      out->cross_node = 1.0 - same_node / nb;
      out->mean_cost = (gc * (same_node - same_gpu) + nc * (nb - same_node)) / nb;
    }

  /* Locality-first routing: follow each token's location distribution.
   * Loads under it: the top-1 assignment goes where the token goes, the
   * other ranks split over their expert's copies. */
  const guint G = p->gpus;
  g_autofree double *lload = g_new0 (double, (gsize)L *G);
  if (p->n_extra == 0)
    {
      out->cross_gpu_local = out->cross_gpu;
      out->cross_node_local = out->cross_node;
    }
  else
    {
      g_autoptr (GArray) loc = g_array_new (FALSE, FALSE, sizeof (Loc));
      g_autoptr (GArray) next = g_array_new (FALSE, FALSE, sizeof (Loc));
      double xg = 0, xn = 0;
      for (gsize t = 0; t < T; t++)
        {
          g_array_set_size (loc, 0);
          guint e0 = (guint)msim_trace_expert (trace, t, 0, 0);
          guint r0 = msim_placement_n_replicas (p, 0, e0);
          for (guint x = 0; x < r0; x++)
            loc_add (loc, msim_placement_replica_gpu (p, 0, e0, x), 1.0 / r0);
          for (guint l = 0; l < L; l++)
            for (guint rank = 1; rank < k; rank++)
              {
                guint e = (guint)msim_trace_expert (trace, t, l, rank);
                guint r = msim_placement_n_replicas (p, l, e);
                for (guint x = 0; x < r; x++)
                  lload[(gsize)l * G + msim_placement_replica_gpu (p, l, e, x)] += 1.0 / r;
              }
          for (guint a = 0; a < loc->len; a++)
            lload[g_array_index (loc, Loc, a).gpu] += g_array_index (loc, Loc, a).p;
          for (guint l = 1; l < L; l++)
            {
              guint j = (guint)msim_trace_expert (trace, t, l, 0);
              guint rj = msim_placement_n_replicas (p, l, j);
              g_array_set_size (next, 0);
              for (guint a = 0; a < loc->len; a++)
                {
                  Loc cur = g_array_index (loc, Loc, a);
                  guint on_gpu = 0, in_node = 0;
                  for (guint y = 0; y < rj; y++)
                    {
                      guint h = msim_placement_replica_gpu (p, l, j, y);
                      on_gpu += h == cur.gpu;
                      in_node += node[h] == node[cur.gpu];
                    }
                  if (on_gpu > 0)
                    loc_add (next, cur.gpu, cur.p);
                  else if (in_node > 0)
                    {
                      xg += cur.p;
                      for (guint y = 0; y < rj; y++)
                        {
                          guint h = msim_placement_replica_gpu (p, l, j, y);
                          if (node[h] == node[cur.gpu])
                            loc_add (next, h, cur.p / in_node);
                        }
                    }
                  else
                    {
                      xg += cur.p;
                      xn += cur.p;
                      for (guint y = 0; y < rj; y++)
                        loc_add (next, msim_placement_replica_gpu (p, l, j, y), cur.p / rj);
                    }
                }
              GArray *tmp = loc;
              loc = next;
              next = tmp;
              for (guint a = 0; a < loc->len; a++)
                lload[(gsize)l * G + g_array_index (loc, Loc, a).gpu]
                    += g_array_index (loc, Loc, a).p;
            }
        }
      out->cross_gpu_local = nb > 0 ? xg / nb : 0.0;
      out->cross_node_local = nb > 0 ? xn / nb : 0.0;
    }

  /* Loads. */
  g_autofree double *loads = g_new (double, G);
  double sum_imb = 0, sum_local = 0;
  for (guint l = 0; l < L; l++)
    {
      msim_placement_layer_loads (p, trace, l, loads);
      double imb = max_over_mean (loads, G);
      sum_imb += imb;
      if (imb > out->load_imbalance_max)
        {
          out->load_imbalance_max = imb;
          out->worst_layer = l;
        }
      double loc_imb = p->n_extra ? max_over_mean (lload + (gsize)l * G, G) : imb;
      sum_local += loc_imb;
      out->load_imbalance_local_max = MAX (out->load_imbalance_local_max, loc_imb);
    }
  out->load_imbalance = sum_imb / L;
  out->load_imbalance_local = sum_local / L;
  return TRUE;
}

/* ======================================================================
 * Problems
 * ====================================================================== */

/* The public struct first, so a MsimPlacementProblem * is also one of these. */
typedef struct
{
  MsimPlacementProblem pub;
  guint32 *gpu_node;
  guint64 *pair_counts, *load, *top1_load;
} ProblemImpl;

static ProblemImpl *
problem_alloc (guint layers, guint experts, const MsimClusterShape *shape, guint64 seed)
{
  ProblemImpl *pi = g_new0 (ProblemImpl, 1);
  MsimPlacementProblem *pb = &pi->pub;
  pb->layers = layers;
  pb->experts = experts;
  pb->gpus = shape->gpus;
  pb->nodes = shape->nodes;
  pb->slots_per_gpu = (experts + shape->gpus - 1) / shape->gpus;
  pb->gpu_cost = 1;
  pb->node_cost = shape->nodes > 1 ? 2 : 1;
  pi->gpu_node = g_memdup2 (shape->gpu_node, sizeof (guint32) * shape->gpus);
  pb->gpu_node = pi->gpu_node;
  gsize pairs = (gsize)(layers > 1 ? layers - 1 : 0) * experts * experts;
  pi->pair_counts = g_new0 (guint64, MAX (pairs, 1));
  pi->load = g_new0 (guint64, (gsize)layers * experts);
  pi->top1_load = g_new0 (guint64, (gsize)layers * experts);
  pb->pair_counts = pi->pair_counts;
  pb->load = pi->load;
  pb->top1_load = pi->top1_load;
  pb->seed = seed;
  return pi;
}

MsimPlacementProblem *
msim_placement_problem_new (const MsimTrace *trace, const MsimClusterShape *shape, guint64 seed,
                            GError **error)
{
  if (trace->tokens == 0 || trace->layers == 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "the trace is empty");
      return NULL;
    }
  if ((guint64)trace->layers * trace->experts * trace->experts > (guint64)1 << 28)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%u layers x %u^2 expert pairs is beyond what placement handles", trace->layers,
                   trace->experts);
      return NULL;
    }
  const guint L = trace->layers, E = trace->experts, k = trace->k;
  ProblemImpl *pi = problem_alloc (L, E, shape, seed);
  pi->pub.tokens = trace->tokens;
  pi->pub.top_k = k;
  pi->pub.trace = trace;
  for (guint l = 0; l < L; l++)
    msim_trace_count_layer (trace, l, pi->load + (gsize)l * E, pi->top1_load + (gsize)l * E);
  for (guint l = 0; l + 1 < L; l++)
    {
      guint64 *pc = pi->pair_counts + (gsize)l * E * E;
      const MsimExpertId *a = msim_trace_layer_ids (trace, l);
      const MsimExpertId *b = msim_trace_layer_ids (trace, l + 1);
      for (gsize t = 0; t < trace->tokens; t++)
        if (a[t * k] >= 0 && b[t * k] >= 0)
          pc[(gsize)a[t * k] * E + b[t * k]]++;
    }
  return &pi->pub;
}

MsimPlacementProblem *
msim_placement_problem_new_from_counts (guint layers, guint experts, const guint64 *pair_counts,
                                        const MsimClusterShape *shape, guint64 seed, GError **error)
{
  if (layers < 1 || experts < 1 || experts > MSIM_TRACE_MAX_EXPERTS)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "a placement problem needs layers >= 1 and 1..%u experts",
                   MSIM_TRACE_MAX_EXPERTS);
      return NULL;
    }
  const guint L = layers, E = experts;
  ProblemImpl *pi = problem_alloc (L, E, shape, seed);
  pi->pub.top_k = 1;
  gsize pairs = (gsize)(L - 1) * E * E;
  if (pairs)
    memcpy (pi->pair_counts, pair_counts, pairs * sizeof (guint64));
  /* Loads: layer l from its outgoing pairs, the last layer from the incoming. */
  guint64 tokens = 0;
  for (guint l = 0; l + 1 < L; l++)
    for (guint i = 0; i < E; i++)
      for (guint j = 0; j < E; j++)
        {
          guint64 c = pair_counts[((gsize)l * E + i) * E + j];
          pi->load[(gsize)l * E + i] += c;
          if (l + 2 == L)
            pi->load[(gsize)(l + 1) * E + j] += c;
          if (l == 0)
            tokens += c;
        }
  memcpy (pi->top1_load, pi->load, sizeof (guint64) * L * E);
  pi->pub.tokens = tokens;
  return &pi->pub;
}

void
msim_placement_problem_free (MsimPlacementProblem *problem)
{
  if (problem == NULL)
    return;
  ProblemImpl *pi = (ProblemImpl *)problem;
  g_free (pi->gpu_node);
  g_free (pi->pair_counts);
  g_free (pi->load);
  g_free (pi->top1_load);
  g_free (pi);
}

void
msim_placement_problem_crossings (const MsimPlacementProblem *pb, const guint32 *gpu,
                                  guint64 *cross_gpu, guint64 *cross_node, guint64 *total)
{
  const guint E = pb->experts;
  guint64 xg = 0, xn = 0, tot = 0;
  for (guint l = 0; l + 1 < pb->layers; l++)
    {
      const guint64 *pc = pb->pair_counts + (gsize)l * E * E;
      const guint32 *ga = gpu + (gsize)l * E, *gb = gpu + (gsize)(l + 1) * E;
      for (guint i = 0; i < E; i++)
        for (guint j = 0; j < E; j++)
          {
            guint64 c = pc[(gsize)i * E + j];
            tot += c;
            if (ga[i] != gb[j])
              {
                xg += c;
                if (pb->gpu_node[ga[i]] != pb->gpu_node[gb[j]])
                  xn += c;
              }
          }
    }
  if (cross_gpu)
    *cross_gpu = xg;
  if (cross_node)
    *cross_node = xn;
  if (total)
    *total = tot;
}

guint64
msim_placement_problem_cost (const MsimPlacementProblem *pb, const guint32 *gpu)
{
  guint64 xg, xn;
  msim_placement_problem_crossings (pb, gpu, &xg, &xn, NULL);
  return (xg - xn) * pb->gpu_cost + xn * pb->node_cost;
}

/* ======================================================================
 * Policy options
 * ====================================================================== */

GHashTable *
msim_policy_options_parse (const char *policy, const char *const *options,
                           const char *const *allowed, GError **error)
{
  g_autoptr (GHashTable) t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (gsize i = 0; options && options[i]; i++)
    {
      const char *eq = strchr (options[i], '=');
      if (eq == NULL || eq == options[i])
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "policy %s: option '%s': expected KEY=VALUE", policy, options[i]);
          return NULL;
        }
      g_autofree char *key = g_strstrip (g_strndup (options[i], (gsize)(eq - options[i])));
      gboolean known = FALSE;
      for (gsize a = 0; allowed && allowed[a]; a++)
        if (strcmp (allowed[a], key) == 0)
          known = TRUE;
      if (!known)
        {
          g_autofree char *list
              = allowed && allowed[0] ? g_strjoinv (", ", (char **)allowed) : g_strdup ("none");
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "policy %s: unknown option '%s' (known: %s)", policy, key, list);
          return NULL;
        }
      if (g_hash_table_contains (t, key))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "policy %s: option '%s' given twice",
                       policy, key);
          return NULL;
        }
      g_hash_table_insert (t, g_steal_pointer (&key), g_strstrip (g_strdup (eq + 1)));
    }
  return g_steal_pointer (&t);
}

gboolean
msim_policy_option_uint (GHashTable *opts, const char *policy, const char *key, guint def,
                         guint min, guint max, guint *out, GError **error)
{
  const char *v = g_hash_table_lookup (opts, key);
  gint64 x;
  if (v == NULL)
    {
      *out = def;
      return TRUE;
    }
  if (!msim_parse_int64 (v, &x) || x < min || x > max)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "policy %s: option '%s': '%s' is not an integer in %u..%u", policy, key, v, min,
                   max);
      return FALSE;
    }
  *out = (guint)x;
  return TRUE;
}

gboolean
msim_policy_option_double (GHashTable *opts, const char *policy, const char *key, double def,
                           double min, double max, double *out, GError **error)
{
  const char *v = g_hash_table_lookup (opts, key);
  double x;
  if (v == NULL)
    {
      *out = def;
      return TRUE;
    }
  if (!msim_parse_double (v, &x) || x < min || x > max)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "policy %s: option '%s': '%s' is not a number in %g..%g", policy, key, v, min,
                   max);
      return FALSE;
    }
  *out = x;
  return TRUE;
}

gboolean
msim_policy_option_choice (GHashTable *opts, const char *policy, const char *key, int def,
                           const char *const *choices, int *out, GError **error)
{
  const char *v = g_hash_table_lookup (opts, key);
  if (v == NULL)
    {
      *out = def;
      return TRUE;
    }
  for (int i = 0; choices[i]; i++)
    if (strcmp (choices[i], v) == 0)
      {
        *out = i;
        return TRUE;
      }
  g_autofree char *list = g_strjoinv (", ", (char **)choices);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "policy %s: option '%s': '%s' is not one of %s",
               policy, key, v, list);
  return FALSE;
}

/* ======================================================================
 * Policy table and runner
 * ====================================================================== */

static const MsimPlacementPolicy *const builtin_policies[] = {
  &msim_placement_policy_contiguous,      &msim_placement_policy_round_robin,
  &msim_placement_policy_local_search,    &msim_placement_policy_exflow_ilp,
  &msim_placement_policy_graph_partition, &msim_placement_policy_eplb,
};

const MsimPlacementPolicy *
msim_placement_policy_find (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (builtin_policies); i++)
    if (strcmp (builtin_policies[i]->name, name) == 0)
      return builtin_policies[i];
  return NULL;
}

const MsimPlacementPolicy *const *
msim_placement_policy_list (guint *n_policies)
{
  *n_policies = G_N_ELEMENTS (builtin_policies);
  return builtin_policies;
}

const MsimPlacementPolicy *
msim_placement_policy_resolve (const char *spec, MsimPlacementPlugin **plugin, GError **error)
{
  *plugin = NULL;
  if (g_str_has_prefix (spec, "plugin:"))
    {
      MsimPlacementPlugin *pl = msim_placement_plugin_open (spec + strlen ("plugin:"), error);
      if (pl == NULL)
        return NULL;
      *plugin = pl;
      return msim_placement_plugin_policy (pl);
    }
  const MsimPlacementPolicy *p = msim_placement_policy_find (spec);
  if (p == NULL)
    {
      GString *names = g_string_new (NULL);
      for (gsize i = 0; i < G_N_ELEMENTS (builtin_policies); i++)
        g_string_append_printf (names, "%s%s", i ? ", " : "", builtin_policies[i]->name);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "unknown placement policy '%s' (known: %s, or plugin:PATH)", spec, names->str);
      g_string_free (names, TRUE);
    }
  return p;
}

MsimPlacement *
msim_placement_from_output (const MsimPlacementProblem *problem, const MsimPlacementOutput *out)
{
  MsimPlacement *p = msim_placement_new (problem->layers, problem->experts, problem->gpus);
  memcpy (p->gpu, out->gpu, sizeof (guint32) * problem->layers * problem->experts);
  for (guint i = 0; out->replicas && i < out->replicas->len; i++)
    {
      const MsimPlacementReplica *r = &g_array_index (out->replicas, MsimPlacementReplica, i);
      msim_placement_add_replica (p, r->layer, r->expert, r->gpu);
    }
  return p;
}

/* Prefixes a policy's error with its name.  Errors in another domain (a
 * plugin's own) become @foreign_code: MSIM_ERROR_INPUT for option parsing,
 * MSIM_ERROR_RUNTIME for placing. */
static void
set_policy_error (GError **error, const MsimPlacementPolicy *policy, GError *local,
                  MsimErrorCode foreign_code)
{
  if (local == NULL)
    g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                 "placement policy '%s' failed without saying why", policy->name);
  else if (local->domain == MSIM_ERROR)
    g_set_error (error, MSIM_ERROR, local->code, "placement policy '%s': %s", policy->name,
                 local->message);
  else
    g_set_error (error, MSIM_ERROR, foreign_code, "placement policy '%s': %s", policy->name,
                 local->message);
  g_clear_error (&local);
}

MsimPlacement *
msim_placement_run (const MsimPlacementPolicy *policy, const char *const *options,
                    const MsimPlacementProblem *problem, GArray **stats, GError **error)
{
  static const char *const no_options[] = { NULL };
  g_return_val_if_fail (policy != NULL && problem != NULL, NULL);
  if (options == NULL)
    options = no_options;
  if (problem->gpus < 1 || problem->slots_per_gpu * problem->gpus < problem->experts)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "placement problem: %u GPUs x %u slots cannot hold %u experts", problem->gpus,
                   problem->slots_per_gpu, problem->experts);
      return NULL;
    }
  if (problem->gpu_cost < 1 || problem->node_cost < problem->gpu_cost)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "placement problem: costs must satisfy 1 <= gpu_cost <= node_cost (got %u "
                   "and %u)",
                   problem->gpu_cost, problem->node_cost);
      return NULL;
    }
  void *state = NULL;
  GError *local = NULL;
  if (!policy->init (&state, options, &local))
    {
      set_policy_error (error, policy, local, MSIM_ERROR_INPUT);
      return NULL;
    }
  const gsize n = (gsize)problem->layers * problem->experts;
  MsimPlacementOutput out;
  out.gpu = g_new (guint32, n);
  for (gsize i = 0; i < n; i++)
    out.gpu[i] = MSIM_PLACEMENT_UNSET;
  out.replicas = g_array_new (FALSE, FALSE, sizeof (MsimPlacementReplica));
  out.stats = g_array_new (FALSE, FALSE, sizeof (MsimPlacementStat));
  out.slots_per_gpu = problem->slots_per_gpu;

  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = policy->place (state, problem, &out, &local);
  gint64 t1 = g_get_monotonic_time ();
  if (policy->free_state)
    policy->free_state (state);

  MsimPlacement *p = NULL;
  if (!ok)
    set_policy_error (error, policy, local, MSIM_ERROR_RUNTIME);
  else
    {
      g_clear_error (&local); /* an error set on success is ignored */
      for (gsize i = 0; i < n && ok; i++)
        if (out.gpu[i] == MSIM_PLACEMENT_UNSET || out.gpu[i] >= problem->gpus)
          {
            ok = FALSE;
            guint l = (guint)(i / problem->experts), e = (guint)(i % problem->experts);
            if (out.gpu[i] == MSIM_PLACEMENT_UNSET)
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                           "placement policy '%s' left layer %u expert %u unplaced", policy->name,
                           l, e);
            else
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                           "placement policy '%s' put layer %u expert %u on GPU %u of %u",
                           policy->name, l, e, out.gpu[i], problem->gpus);
          }
      for (guint i = 0; ok && i < out.replicas->len; i++)
        {
          const MsimPlacementReplica *r = &g_array_index (out.replicas, MsimPlacementReplica, i);
          if (r->layer >= problem->layers || r->expert >= problem->experts
              || r->gpu >= problem->gpus)
            {
              ok = FALSE;
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                           "placement policy '%s' returned an out-of-range replica (layer %u, "
                           "expert %u, GPU %u)",
                           policy->name, r->layer, r->expert, r->gpu);
            }
        }
      guint slots = out.replicas->len > 0 ? MAX (out.slots_per_gpu, problem->slots_per_gpu)
                                          : problem->slots_per_gpu;
      if (ok)
        {
          p = msim_placement_from_output (problem, &out);
          if (!msim_placement_validate (p, slots, &local))
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME,
                           "placement policy '%s' returned an invalid placement: %s", policy->name,
                           local->message);
              g_clear_error (&local);
              g_clear_pointer (&p, msim_placement_free);
            }
        }
    }
  g_free (out.gpu);
  g_array_unref (out.replicas);
  if (p != NULL)
    msim_placement_output_add_stat (&out, "seconds", (double)(t1 - t0) / 1e6);
  if (p != NULL && stats != NULL)
    *stats = out.stats;
  else
    g_array_unref (out.stats);
  return p;
}

double
msim_placement_stats_get (const GArray *stats, const char *name)
{
  for (guint i = 0; stats && i < stats->len; i++)
    if (strcmp (g_array_index (stats, MsimPlacementStat, i).name, name) == 0)
      return g_array_index (stats, MsimPlacementStat, i).value;
  return NAN;
}

gsl_rng *
msim_placement_rng_new (guint64 seed)
{
  gsl_rng *r = gsl_rng_alloc (gsl_rng_mt19937);
  /* mt19937 takes an unsigned long seed; fold the high half in so that
   * seeds differing only above bit 32 still differ on 32-bit longs. */
  gsl_rng_set (r, (unsigned long)(seed ^ (seed >> 32)));
  return r;
}
