#include "xcheck-case.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

typedef struct
{
  char *name;
  const char *kind; /* gpu | switch | nic | host */
  int host;         /* GPUs: vertex index of their host memory; else -1 */
} XVertex;

typedef struct
{
  guint a, b;
  double bandwidth_Bps; /* whole bytes/s, so both readers parse the same double */
  gint64 latency_ps;
} XLink;

typedef struct
{
  char *id;
  char *src; /* GPU index or vertex name, as written */
  char *dst;
  guint64 bytes;
  gint64 start_ps; /* whole picoseconds: moesim's clock represents them exactly */
} XFlow;

struct _XcheckCase
{
  GArray *vertices;
  GArray *links;
  GArray *flows;
  char *description;
};

static XcheckCase *
case_new (void)
{
  XcheckCase *c = g_new0 (XcheckCase, 1);
  c->vertices = g_array_new (FALSE, FALSE, sizeof (XVertex));
  c->links = g_array_new (FALSE, FALSE, sizeof (XLink));
  c->flows = g_array_new (FALSE, FALSE, sizeof (XFlow));
  return c;
}

void
xcheck_case_free (XcheckCase *c)
{
  if (c == NULL)
    return;
  for (guint i = 0; i < c->vertices->len; i++)
    g_free (g_array_index (c->vertices, XVertex, i).name);
  for (guint i = 0; i < c->flows->len; i++)
    {
      XFlow *f = &g_array_index (c->flows, XFlow, i);
      g_free (f->id);
      g_free (f->src);
      g_free (f->dst);
    }
  g_array_free (c->vertices, TRUE);
  g_array_free (c->links, TRUE);
  g_array_free (c->flows, TRUE);
  g_free (c->description);
  g_free (c);
}

const char *
xcheck_case_describe (const XcheckCase *c)
{
  return c->description;
}

guint
xcheck_case_n_flows (const XcheckCase *c)
{
  return c->flows->len;
}

static guint
add_vertex (XcheckCase *c, const char *kind, int host, char *name /* (transfer full) */)
{
  XVertex v = { name, kind, host };
  g_array_append_val (c->vertices, v);
  return c->vertices->len - 1;
}

static void
add_link (XcheckCase *c, guint a, guint b, double bandwidth_Bps, gint64 latency_ps)
{
  XLink l = { a, b, round (bandwidth_Bps), latency_ps };
  g_array_append_val (c->links, l);
}

static void
add_flow (XcheckCase *c, char *id, char *src, char *dst, guint64 bytes, gint64 start_ps)
{
  XFlow f = { id, src, dst, bytes, start_ps };
  g_array_append_val (c->flows, f);
}

/* ---- random tree cases ---- */

typedef struct
{
  XcheckCase *c;
  gsl_rng *rng;
  int depth;        /* 1 = star */
  gboolean nics;    /* GPU - NIC - switch instead of GPU - switch */
  gint64 lambda_ps; /* latency of every endpoint's attachment link */
  gboolean swap_ab; /* randomise which end of a link is `a` */
  GArray *gpus;     /* vertex indices, in moesim's GPU numbering */
  GArray *hosts;
  GArray *nic_list;
  double gpu_bw_sum; /* for the time scale of the start times */
} Build;

static double
flat (Build *b, double lo, double hi)
{
  return gsl_ran_flat (b->rng, lo, hi);
}

static int
uniform_int (Build *b, int lo, int hi) /* inclusive */
{
  return lo + (int)gsl_rng_uniform_int (b->rng, (unsigned long)(hi - lo + 1));
}

static void
link_random_order (Build *b, guint x, guint y, double bandwidth_Bps, gint64 latency_ps)
{
  if (b->swap_ab && gsl_rng_uniform (b->rng) < 0.5)
    add_link (b->c, y, x, bandwidth_Bps, latency_ps);
  else
    add_link (b->c, x, y, bandwidth_Bps, latency_ps);
}

/* A GPU's link: one of the common classes (PCIe/IB to NVLink), scaled by up
 * to +-40 % so that no two links are alike. */
static double
gpu_bandwidth (Build *b)
{
  static const double classes[] = { 10e9, 25e9, 50e9, 100e9, 200e9 };
  return round (classes[gsl_rng_uniform_int (b->rng, G_N_ELEMENTS (classes))] * flat (b, 0.6, 1.4)
                / 1e3)
         * 1e3;
}

/* Builds the subtree under a new switch at @level and returns the switch;
 * *@down_Bps is the sum of the capacities of its downward links. */
static guint
build_switch (Build *b, int level, double *down_Bps)
{
  XcheckCase *c = b->c;
  guint sw = add_vertex (c, "switch", -1, g_strdup_printf ("sw%u", c->vertices->len));
  double down = 0.0;
  if (level < b->depth)
    {
      int children = b->depth == 2 ? uniform_int (b, 2, 6) : uniform_int (b, 2, 3);
      for (int i = 0; i < children; i++)
        {
          double child_down;
          guint child = build_switch (b, level + 1, &child_down);
          /* Uplinks from 0.15x (heavily oversubscribed) to 1.3x their
           * subtree's capacity. */
          double up = round (child_down * flat (b, 0.15, 1.3));
          link_random_order (b, child, sw, up, 0);
          down += up;
        }
    }
  else
    {
      guint h = add_vertex (c, "host", -1, g_strdup_printf ("h%u", b->hosts->len));
      g_array_append_val (b->hosts, h);
      double hbw = round (flat (b, 8e9, 64e9));
      link_random_order (b, h, sw, hbw, b->lambda_ps);
      down += hbw;
      int m = b->depth == 1 ? uniform_int (b, 3, 40) : uniform_int (b, 1, 8);
      for (int i = 0; i < m; i++)
        {
          guint g = add_vertex (c, "gpu", (int)h, g_strdup_printf ("g%u", b->gpus->len));
          g_array_append_val (b->gpus, g);
          double bw = gpu_bandwidth (b);
          if (b->nics)
            {
              guint n = add_vertex (c, "nic", -1, g_strdup_printf ("n%u", b->nic_list->len));
              g_array_append_val (b->nic_list, n);
              link_random_order (b, g, n, round (flat (b, 16e9, 64e9)), b->lambda_ps);
              link_random_order (b, n, sw, bw, 0);
            }
          else
            link_random_order (b, g, sw, bw, b->lambda_ps);
          b->gpu_bw_sum += bw;
          down += bw;
        }
    }
  *down_Bps = down;
  return sw;
}

/* A GPU by index or by name (both spellings are part of the format), host
 * memory sometimes and, without latency, a NIC sometimes. */
static char *
endpoint_text (Build *b, guint *vertex_out)
{
  double u = gsl_rng_uniform (b->rng);
  guint v;
  if (u < 0.85 || (u >= 0.95 && (b->lambda_ps > 0 || b->nic_list->len == 0)))
    {
      guint gi = (guint)gsl_rng_uniform_int (b->rng, b->gpus->len);
      v = g_array_index (b->gpus, guint, gi);
      *vertex_out = v;
      if (gsl_rng_uniform (b->rng) < 0.5)
        return g_strdup_printf ("%u", gi);
      return g_strdup (g_array_index (b->c->vertices, XVertex, v).name);
    }
  if (u < 0.95)
    v = g_array_index (b->hosts, guint, gsl_rng_uniform_int (b->rng, b->hosts->len));
  else
    v = g_array_index (b->nic_list, guint, gsl_rng_uniform_int (b->rng, b->nic_list->len));
  *vertex_out = v;
  return g_strdup (g_array_index (b->c->vertices, XVertex, v).name);
}

XcheckCase *
xcheck_case_random (guint64 seed, XcheckLatency latency)
{
  XcheckCase *c = case_new ();
  Build b = { 0 };
  b.c = c;
  b.rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (b.rng, (unsigned long)seed);
  double u = gsl_rng_uniform (b.rng);
  b.depth = u < 0.35 ? 1 : u < 0.8 ? 2 : 3;
  b.nics = gsl_rng_uniform (b.rng) < 0.3;
  b.swap_ab = TRUE;
  /* 1 us to 1 ms: long enough that latency phases overlap other flows'
   * transfers, which is where a wrong latency rule would show. */
  b.lambda_ps = latency == XCHECK_LATENCY_EQUAL
                    ? (gint64)(1e6 + gsl_rng_uniform_int (b.rng, 999000001))
                    : 0;
  b.gpus = g_array_new (FALSE, FALSE, sizeof (guint));
  b.hosts = g_array_new (FALSE, FALSE, sizeof (guint));
  b.nic_list = g_array_new (FALSE, FALSE, sizeof (guint));
  double root_down;
  build_switch (&b, 1, &root_down);

  int n_flows = uniform_int (&b, 20, 500);
  double p_hot = flat (&b, 0.0, 0.6);
  guint hot[3];
  guint hot_v[3];
  guint n_hot = (guint)uniform_int (&b, 1, 3);
  for (guint h = 0; h < n_hot; h++)
    {
      hot[h] = (guint)gsl_rng_uniform_int (b.rng, b.gpus->len);
      hot_v[h] = g_array_index (b.gpus, guint, hot[h]);
    }
  guint64 *bytes = g_new (guint64, n_flows);
  double total = 0.0;
  for (int i = 0; i < n_flows; i++)
    {
      double v = gsl_rng_uniform (b.rng);
      if (v < 0.02)
        bytes[i] = 0;
      else if (v < 0.07)
        bytes[i] = 1 + gsl_rng_uniform_int (b.rng, 10000);
      else
        bytes[i] = (guint64)MAX (1.0, round (32e6 * gsl_ran_lognormal (b.rng, -0.72, 1.2)));
      total += (double)bytes[i];
    }
  /* Starts over about the time the GPUs' links need for all the bytes, so
   * that most flows overlap others. */
  double horizon_s = total / b.gpu_bw_sum * flat (&b, 0.2, 1.5);
  double m = gsl_rng_uniform (b.rng);
  const char *mode = m < 0.25 ? "burst" : m < 0.6 ? "waves" : "spread";
  gint64 waves[6];
  int n_waves = uniform_int (&b, 2, 6);
  for (int w = 0; w < n_waves; w++)
    waves[w] = w == 0 ? 0 : (gint64)(gsl_rng_uniform (b.rng) * horizon_s * 1e12);
  for (int i = 0; i < n_flows; i++)
    {
      guint sv, dv;
      char *src = endpoint_text (&b, &sv);
      char *dst = NULL;
      do
        {
          g_free (dst);
          if (gsl_rng_uniform (b.rng) < p_hot)
            {
              guint h = (guint)gsl_rng_uniform_int (b.rng, n_hot);
              dv = hot_v[h];
              dst = g_strdup_printf ("%u", hot[h]);
            }
          else
            dst = endpoint_text (&b, &dv);
        }
      while (dv == sv);
      gint64 start_ps = 0;
      if (mode[0] == 'w')
        start_ps = waves[gsl_rng_uniform_int (b.rng, (unsigned long)n_waves)];
      else if (mode[0] == 's')
        start_ps = (gint64)(gsl_rng_uniform (b.rng) * horizon_s * 1e12);
      add_flow (c, g_strdup_printf ("f%d", i), src, dst, bytes[i], start_ps);
    }
  g_free (bytes);
  guint n_switches = c->vertices->len - b.gpus->len - b.hosts->len - b.nic_list->len;
  c->description = g_strdup_printf (
      "seed %" G_GUINT64_FORMAT ": depth-%d tree, %u GPUs, %u hosts, %u switches, %s, %d flows, "
      "%s starts over %.3g s, %.0f%% to %u hot GPUs, latency %s%.12g s",
      seed, b.depth, b.gpus->len, b.hosts->len, n_switches, b.nics ? "NICs" : "no NICs", n_flows,
      mode, horizon_s, 100 * p_hot, n_hot, b.lambda_ps > 0 ? "2 x " : "",
      (double)b.lambda_ps / 1e12);
  g_array_free (b.gpus, TRUE);
  g_array_free (b.hosts, TRUE);
  g_array_free (b.nic_list, TRUE);
  gsl_rng_free (b.rng);
  return c;
}

/* ---- the all-to-all benchmark case ---- */

XcheckCase *
xcheck_case_alltoall (guint gpus, double skew, guint64 seed, double mean_bytes,
                      double bandwidth_Bps)
{
  g_return_val_if_fail (gpus >= 2, NULL);
  XcheckCase *c = case_new ();
  guint h = add_vertex (c, "host", -1, g_strdup ("h0"));
  guint sw = add_vertex (c, "switch", -1, g_strdup ("sw"));
  /* Host memory is connected only so that the file is a valid topology; no
   * flow uses it. */
  add_link (c, h, sw, bandwidth_Bps, 0);
  for (guint i = 0; i < gpus; i++)
    {
      guint g = add_vertex (c, "gpu", (int)h, g_strdup_printf ("g%u", i));
      add_link (c, g, sw, bandwidth_Bps, 0);
    }
  /* The same draws, in the same order, as moesim's bench network. */
  gsl_rng *rng = gsl_rng_alloc (gsl_rng_mt19937);
  gsl_rng_set (rng, (unsigned long)seed);
  for (guint i = 0; i < gpus; i++)
    for (guint j = 0; j < gpus; j++)
      if (i != j)
        {
          double bytes = skew > 0.0 ? mean_bytes * gsl_ran_lognormal (rng, -0.5 * skew * skew, skew)
                                    : mean_bytes;
          add_flow (c, g_strdup_printf ("%u-%u", i, j), g_strdup_printf ("%u", i),
                    g_strdup_printf ("%u", j), (guint64)MAX (1.0, round (bytes)), 0);
        }
  gsl_rng_free (rng);
  c->description = g_strdup_printf ("all-to-all of %u GPUs on one switch at %.6g B/s, skew %g, "
                                    "seed %" G_GUINT64_FORMAT ", mean %.6g bytes",
                                    gpus, bandwidth_Bps, skew, seed, mean_bytes);
  return c;
}

/* ---- files ---- */

static void
append_ps (GString *s, gint64 ps)
{
  g_string_append_printf (s, "%" G_GINT64_FORMAT ".%012" G_GINT64_FORMAT, ps / 1000000000000,
                          ps % 1000000000000);
}

gboolean
xcheck_case_write (const XcheckCase *c, const char *topology_path, const char *flows_path,
                   GError **error)
{
  GString *t = g_string_new ("# Written by the SimGrid cross-check (tests/simgrid).\n");
  g_string_append_printf (t, "# %s\n[topology]\nname = xcheck\n", c->description);
  for (guint i = 0; i < c->vertices->len; i++)
    {
      const XVertex *v = &g_array_index (c->vertices, XVertex, i);
      g_string_append_printf (t, "\n[vertex.%s]\nkind = %s\n", v->name, v->kind);
      if (v->host >= 0)
        g_string_append_printf (t, "host = %s\n",
                                g_array_index (c->vertices, XVertex, v->host).name);
    }
  for (guint i = 0; i < c->links->len; i++)
    {
      const XLink *l = &g_array_index (c->links, XLink, i);
      g_string_append_printf (t, "\n[link.l%u]\na = %s\nb = %s\nbandwidth = %.17g\nlatency = ", i,
                              g_array_index (c->vertices, XVertex, l->a).name,
                              g_array_index (c->vertices, XVertex, l->b).name, l->bandwidth_Bps);
      append_ps (t, l->latency_ps);
      g_string_append_c (t, '\n');
    }
  GString *f = g_string_new ("id,src,dst,bytes,start_s\n");
  for (guint i = 0; i < c->flows->len; i++)
    {
      const XFlow *x = &g_array_index (c->flows, XFlow, i);
      g_string_append_printf (f, "%s,%s,%s,%" G_GUINT64_FORMAT ",", x->id, x->src, x->dst,
                              x->bytes);
      append_ps (f, x->start_ps);
      g_string_append_c (f, '\n');
    }
  gboolean ok = g_file_set_contents (topology_path, t->str, (gssize)t->len, error)
                && g_file_set_contents (flows_path, f->str, (gssize)f->len, error);
  g_string_free (t, TRUE);
  g_string_free (f, TRUE);
  return ok;
}

/* ---- comparison ---- */

typedef struct
{
  double start_s;
  double end_s;
} Times;

static GHashTable *
read_results (const char *path, GPtrArray *order, GError **error)
{
  g_autofree char *data = NULL;
  if (!g_file_get_contents (path, &data, NULL, error))
    return NULL;
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto (GStrv) lines = g_strsplit (data, "\n", -1);
  gboolean header = FALSE;
  for (guint ln = 0; lines[ln]; ln++)
    {
      char *line = g_strstrip (lines[ln]);
      if (*line == '\0')
        continue;
      if (!header)
        {
          if (!g_str_has_prefix (line, "id,start_s,end_s,"))
            {
              g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                           "%s:%u: expected a header 'id,start_s,end_s,...'", path, ln + 1);
              g_hash_table_destroy (h);
              return NULL;
            }
          header = TRUE;
          continue;
        }
      g_auto (GStrv) cells = g_strsplit (line, ",", -1);
      char *e1 = NULL, *e2 = NULL;
      Times *t = g_new (Times, 1);
      if (g_strv_length (cells) < 3 || (t->start_s = g_ascii_strtod (cells[1], &e1), *e1 != '\0')
          || (t->end_s = g_ascii_strtod (cells[2], &e2), *e2 != '\0')
          || g_hash_table_contains (h, cells[0]))
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s:%u: bad or duplicate row '%s'",
                       path, ln + 1, line);
          g_free (t);
          g_hash_table_destroy (h);
          return NULL;
        }
      if (order)
        g_ptr_array_add (order, g_strdup (cells[0]));
      g_hash_table_insert (h, g_strdup (cells[0]), t);
    }
  return h;
}

gboolean
xcheck_compare (const char *csv, const char *ref_csv, double rel_tol, double abs_tol_s,
                XcheckDiff *diff, GError **error)
{
  memset (diff, 0, sizeof *diff);
  g_autoptr (GPtrArray) order = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) a = read_results (csv, NULL, error);
  if (a == NULL)
    return FALSE;
  g_autoptr (GHashTable) ref = read_results (ref_csv, order, error);
  if (ref == NULL)
    return FALSE;
  if (g_hash_table_size (a) != g_hash_table_size (ref))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s has %u flows, %s has %u", csv,
                   g_hash_table_size (a), ref_csv, g_hash_table_size (ref));
      return FALSE;
    }
  double worst_dur = -1.0;
  for (guint i = 0; i < order->len; i++)
    {
      const char *id = g_ptr_array_index (order, i);
      const Times *r = g_hash_table_lookup (ref, id);
      const Times *x = g_hash_table_lookup (a, id);
      if (x == NULL)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "flow '%s' of %s is not in %s", id,
                       ref_csv, csv);
          return FALSE;
        }
      if (fabs (x->start_s - r->start_s) > 1e-12 * MAX (1.0, r->start_s))
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "flow '%s': start %.17g in %s, %.17g in %s", id, x->start_s, csv, r->start_s,
                       ref_csv);
          return FALSE;
        }
      double d = fabs (x->end_s - r->end_s);
      diff->n_flows++;
      diff->max_abs_s = MAX (diff->max_abs_s, d);
      if (r->end_s > 0.0)
        diff->max_rel_end = MAX (diff->max_rel_end, d / r->end_s);
      double dur = r->end_s - r->start_s;
      if (dur > 0.0)
        {
          diff->max_rel_dur = MAX (diff->max_rel_dur, d / dur);
          if (d / dur > worst_dur)
            {
              worst_dur = d / dur;
              g_free (diff->worst_id);
              diff->worst_id = g_strdup (id);
            }
        }
      double tol = rel_tol * r->end_s + abs_tol_s;
      if (tol > 0.0)
        diff->max_tol_used = MAX (diff->max_tol_used, d / tol);
      if (d > tol)
        {
          if (diff->n_bad == 0)
            diff->first_bad = g_strdup_printf (
                "flow '%s' (start %.12f s): end %.17g s in %s, %.17g s in %s (diff %.3g s)", id,
                r->start_s, x->end_s, csv, r->end_s, ref_csv, x->end_s - r->end_s);
          diff->n_bad++;
        }
    }
  return TRUE;
}

void
xcheck_diff_clear (XcheckDiff *diff)
{
  g_clear_pointer (&diff->worst_id, g_free);
  g_clear_pointer (&diff->first_bad, g_free);
}

int
xcheck_spawn (const char *const *argv, const char *const *unset_env, char **out, char **err)
{
  int wait_status = 0;
  GError *error = NULL;
  char *o = NULL, *e = NULL;
  g_auto (GStrv) envp = g_get_environ ();
  for (const char *const *u = unset_env; u && *u; u++)
    envp = g_environ_unsetenv (envp, *u);
  if (!g_spawn_sync (NULL, (char **)argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e,
                     &wait_status, &error))
    {
      if (err)
        *err = g_strdup (error->message);
      if (out)
        *out = g_strdup ("");
      g_error_free (error);
      return -1;
    }
  if (out)
    *out = o;
  else
    g_free (o);
  if (err)
    *err = e;
  else
    g_free (e);
  return WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : -1;
}
