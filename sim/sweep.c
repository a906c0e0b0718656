#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ini.h"
#include "msim-error.h"
#include "msim-json.h"
#include "offload.h"
#include "run-config.h"
#include "step.h"

typedef struct
{
  char *name; /* "group.key" */
  GPtrArray *values;
} Axis;

struct _MsimSweep
{
  char *config;
  GPtrArray *axes; /* Axis* */
  gboolean zip;
  guint n_points;
  char **metrics; /* NULL-terminated */
  gboolean offload; /* the config has an [offload] group: points run `moesim offload` */
  guint jobs;       /* of the current msim_sweep_run() */
};

static const char *const all_metrics[] = { "time_s",
                                           "tokens_per_s",
                                           "alltoall_time_s",
                                           "dispatch_bytes",
                                           "combine_bytes",
                                           "cross_gpu_fraction",
                                           "cross_node_fraction",
                                           "assignments",
                                           "dropped",
                                           "max_link_load_s",
                                           NULL };

/* The summary metrics of an offload sweep (moesim offload's offload.json). */
static const char *const offload_metrics[] = { "time_s",
                                               "tokens_per_s",
                                               "latency_per_token_s",
                                               "latency_p99_s",
                                               "hit_rate",
                                               "misses",
                                               "bytes_fetched",
                                               "stall_per_token_s",
                                               "sch",
                                               "memory_used_bytes",
                                               NULL };

static void
axis_free (gpointer p)
{
  Axis *a = p;
  g_free (a->name);
  if (a->values)
    g_ptr_array_free (a->values, TRUE);
  g_free (a);
}

void
msim_sweep_free (MsimSweep *sweep)
{
  if (sweep == NULL)
    return;
  g_free (sweep->config);
  g_ptr_array_free (sweep->axes, TRUE);
  g_strfreev (sweep->metrics);
  g_free (sweep);
}

guint
msim_sweep_n_points (const MsimSweep *sweep)
{
  return sweep->n_points;
}

guint
msim_sweep_n_axes (const MsimSweep *sweep)
{
  return sweep->axes->len;
}

const char *
msim_sweep_axis_name (const MsimSweep *sweep, guint i)
{
  return ((Axis *)g_ptr_array_index (sweep->axes, i))->name;
}

const char *
msim_sweep_value (const MsimSweep *sweep, guint p, guint i)
{
  const Axis *a = g_ptr_array_index (sweep->axes, i);
  guint idx;
  if (sweep->zip)
    idx = p;
  else
    {
      /* Mixed radix, last axis fastest. */
      guint stride = 1;
      for (guint j = sweep->axes->len; j-- > i + 1;)
        stride *= ((Axis *)g_ptr_array_index (sweep->axes, j))->values->len;
      idx = (p / stride) % a->values->len;
    }
  return g_ptr_array_index (a->values, idx);
}

/* "a;b;c" -> trimmed non-empty parts. */
static GPtrArray *
split_list (const MsimIni *ini, const char *key, GError **error)
{
  g_autofree char *raw = g_key_file_get_value (msim_ini_keyfile (ini), "sweep", key, NULL);
  g_auto (GStrv) parts = g_strsplit (raw ? raw : "", ";", -1);
  GPtrArray *vals = g_ptr_array_new_with_free_func (g_free);
  for (char **p = parts; *p; p++)
    {
      char *v = g_strstrip (*p);
      if (*v == '\0')
        {
          msim_ini_set_error (ini, error, "sweep", key, "empty value in the list '%s'", raw);
          g_ptr_array_free (vals, TRUE);
          return NULL;
        }
      g_ptr_array_add (vals, g_strdup (v));
    }
  if (vals->len == 0)
    {
      msim_ini_set_error (ini, error, "sweep", key, "needs at least one value");
      g_ptr_array_free (vals, TRUE);
      return NULL;
    }
  return vals;
}

/* The sets of point @p: "group.key=value" strings (transfer full). */
static char **
point_sets (const MsimSweep *s, guint p)
{
  GStrvBuilder *b = g_strv_builder_new ();
  for (guint i = 0; i < s->axes->len; i++)
    {
      g_autofree char *kv
          = g_strdup_printf ("%s=%s", msim_sweep_axis_name (s, i), msim_sweep_value (s, p, i));
      g_strv_builder_add (b, kv);
    }
  char **sets = g_strv_builder_end (b);
  g_strv_builder_unref (b);
  return sets;
}

MsimSweep *
msim_sweep_load (const char *config, GError **error)
{
  g_autoptr (MsimIni) ini = msim_ini_load (config, error);
  if (ini == NULL)
    return NULL;
  if (!msim_ini_has_group (ini, "sweep"))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: no [sweep] group (a sweep config is a run config plus [sweep] axes)",
                   config);
      return NULL;
    }
  static const char *const keys[] = { "axis.*", "mode", "seeds", "repetitions", "metrics", NULL };
  if (!msim_ini_check_keys (ini, "sweep", keys, error))
    return NULL;
  g_autoptr (MsimSweep) s = g_new0 (MsimSweep, 1);
  s->config = g_strdup (config);
  s->axes = g_ptr_array_new_with_free_func (axis_free);
  static const char *const modes[] = { "cartesian", "zip", NULL };
  int mode;
  gint64 reps;
  if (!msim_ini_get_choice (ini, "sweep", "mode", FALSE, 0, modes, &mode, error)
      || !msim_ini_get_int64 (ini, "sweep", "repetitions", FALSE, 0, 1, 100000, &reps, error))
    return NULL;
  s->zip = mode == 1;
  g_auto (GStrv) ks = msim_ini_keys (ini, "sweep");
  for (char **k = ks; *k; k++)
    {
      if (!g_str_has_prefix (*k, "axis."))
        continue;
      const char *name = *k + strlen ("axis.");
      const char *dot = strchr (name, '.');
      if (dot == NULL || dot == name || dot[1] == '\0')
        {
          msim_ini_set_error (ini, error, "sweep", *k,
                              "an axis is named axis.SECTION.KEY (e.g. axis.model.experts)");
          return NULL;
        }
      if (g_str_has_prefix (name, "sweep.") || g_str_has_prefix (name, "output."))
        {
          msim_ini_set_error (ini, error, "sweep", *k, "the [%.*s] group cannot be swept",
                              (int)(dot - name), name);
          return NULL;
        }
      Axis *a = g_new0 (Axis, 1);
      a->name = g_strdup (name);
      a->values = split_list (ini, *k, error);
      if (a->values == NULL)
        {
          axis_free (a);
          return NULL;
        }
      g_ptr_array_add (s->axes, a);
    }
  if (msim_ini_has_key (ini, "sweep", "seeds") && reps > 0)
    {
      msim_ini_set_error (ini, error, "sweep", "repetitions",
                          "give seeds or repetitions, not both");
      return NULL;
    }
  if (msim_ini_has_key (ini, "sweep", "seeds") || reps > 0)
    {
      Axis *a = g_new0 (Axis, 1);
      a->name = g_strdup ("engine.seed");
      if (reps > 0)
        {
          a->values = g_ptr_array_new_with_free_func (g_free);
          for (gint64 r = 1; r <= reps; r++)
            g_ptr_array_add (a->values, g_strdup_printf ("%" G_GINT64_FORMAT, r));
        }
      else if ((a->values = split_list (ini, "seeds", error)) == NULL)
        {
          axis_free (a);
          return NULL;
        }
      g_ptr_array_add (s->axes, a);
    }
  if (s->axes->len == 0)
    {
      msim_ini_set_error (ini, error, "sweep", NULL,
                          "no axis.SECTION.KEY and no seeds: nothing to sweep");
      return NULL;
    }
  guint64 n = s->zip ? ((Axis *)g_ptr_array_index (s->axes, 0))->values->len : 1;
  for (guint i = 0; i < s->axes->len; i++)
    {
      Axis *a = g_ptr_array_index (s->axes, i);
      if (s->zip && a->values->len != n)
        {
          g_autofree char *key = g_strdup_printf ("axis.%s", a->name);
          msim_ini_set_error (ini, error, "sweep", strcmp (a->name, "engine.seed") ? key : "seeds",
                              "mode = zip needs every axis to have %" G_GUINT64_FORMAT
                              " values, this one has %u",
                              n, a->values->len);
          return NULL;
        }
      if (!s->zip)
        n *= a->values->len;
      if (n > 10000000)
        {
          msim_ini_set_error (ini, error, "sweep", NULL,
                              "the grid has more than 10^7 points; split it into several sweeps");
          return NULL;
        }
    }
  s->n_points = (guint)n;
  s->offload = msim_ini_has_group (ini, "offload");
  const char *const *known_metrics = s->offload ? offload_metrics : all_metrics;
  if (msim_ini_has_key (ini, "sweep", "metrics"))
    {
      g_autoptr (GPtrArray) ms = split_list (ini, "metrics", error);
      if (ms == NULL)
        return NULL;
      for (guint i = 0; i < ms->len; i++)
        if (!g_strv_contains (known_metrics, g_ptr_array_index (ms, i)))
          {
            g_autofree char *known = g_strjoinv (", ", (char **)known_metrics);
            msim_ini_set_error (ini, error, "sweep", "metrics", "unknown %smetric '%s' (known: %s)",
                                s->offload ? "offload " : "", (char *)g_ptr_array_index (ms, i),
                                known);
            return NULL;
          }
      g_ptr_array_add (ms, NULL);
      s->metrics = (char **)g_ptr_array_steal (ms, NULL);
    }
  else
    s->metrics = g_strdupv ((char **)known_metrics);

  /* Check the axis names (and the base config) once, at the first point. */
  g_auto (GStrv) sets = point_sets (s, 0);
  msim_run_config_set_trace_cache (TRUE);
  g_autoptr (MsimRunConfig) cfg = msim_run_config_load (config, (const char *const *)sets, error);
  if (cfg == NULL)
    {
      g_prefix_error (error, "sweep point 0: ");
      return NULL;
    }
  if (s->offload)
    {
      MsimOffloadOptions opt;
      if (!msim_offload_options_from_ini (cfg->ini, &opt, error))
        {
          g_prefix_error (error, "sweep point 0: ");
          return NULL;
        }
      msim_offload_options_clear (&opt);
    }
  return g_steal_pointer (&s);
}

/* ---------- running ---------- */

typedef struct
{
  MsimSweep *sweep;
  GMutex lock;
  int fd;
  guint done, total, ran, failed;
  gint64 t0;
  gboolean progress;
} RunCtx;

static void
add_params (JsonBuilder *b, const MsimSweep *s, guint p)
{
  json_builder_set_member_name (b, "params");
  json_builder_begin_object (b);
  for (guint i = 0; i < s->axes->len; i++)
    {
      json_builder_set_member_name (b, msim_sweep_axis_name (s, i));
      json_builder_add_string_value (b, msim_sweep_value (s, p, i));
    }
  json_builder_end_object (b);
}

static char *
run_point (MsimSweep *s, guint p, gboolean *failed)
{
  g_auto (GStrv) sets = point_sets (s, p);
  GError *error = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, p);
  add_params (b, s, p);
  json_builder_set_member_name (b, "moesim_version");
  json_builder_add_string_value (b, MSIM_VERSION);
  g_autoptr (MsimRunConfig) cfg
      = msim_run_config_load (s->config, (const char *const *)sets, &error);
  g_autoptr (MsimStepRun) run = NULL;
  g_autoptr (MsimOffloadRun) orun = NULL;
  if (cfg && s->offload)
    {
      MsimOffloadOptions opt;
      if (msim_offload_options_from_ini (cfg->ini, &opt, &error))
        {
          orun = msim_offload_run (cfg, &opt, &error);
          msim_offload_options_clear (&opt);
        }
    }
  else if (cfg)
    {
      /* Points running side by side already use the cores: a routing
       * thread per point would only contend with them (same results). */
      if (s->jobs > 1 && cfg->options.route_thread == MSIM_ROUTE_THREAD_AUTO)
        cfg->options.route_thread = MSIM_ROUTE_THREAD_OFF;
      run = msim_step_run (cfg->topology, cfg->model, cfg->gpu, cfg->trace, cfg->placement,
                           &cfg->options, &error);
    }
  if (run == NULL && orun == NULL)
    {
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, error ? error->message : "unknown error");
      g_clear_error (&error);
      *failed = TRUE;
    }
  else
    {
      json_builder_set_member_name (b, "seed");
      json_builder_add_int_value (b, (gint64)cfg->seed);
      g_autoptr (JsonNode) full
          = orun ? msim_offload_run_to_json (orun) : msim_step_run_to_json (run);
      JsonObject *sum = json_object_get_object_member (json_node_get_object (full), "summary");
      json_builder_set_member_name (b, "metrics");
      json_builder_begin_object (b);
      for (char **m = s->metrics; *m; m++)
        {
          json_builder_set_member_name (b, *m);
          JsonNode *v = json_object_get_member (sum, *m);
          if (v)
            json_builder_add_value (b, json_node_copy (v));
          else
            json_builder_add_null_value (b);
        }
      json_builder_end_object (b);
      *failed = FALSE;
    }
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  char *line = msim_json_to_data (root, FALSE);
  return line;
}

static void
progress_line (RunCtx *c)
{
  if (!c->progress)
    return;
  double el = (double)(g_get_monotonic_time () - c->t0) / 1e6;
  double rate = el > 0 ? c->ran / el : 0.0;
  double eta = rate > 0 ? (c->total - c->done) / rate : 0.0;
  fprintf (stderr, "\rsweep: %u/%u points, %.1f points/s, ETA %.0f s, %u failed   ", c->done,
           c->total, rate, eta, c->failed);
}

static void
worker (gpointer data, gpointer user)
{
  RunCtx *c = user;
  guint p = GPOINTER_TO_UINT (data) - 1;
  gboolean failed = FALSE;
  g_autofree char *line = run_point (c->sweep, p, &failed);
  g_autofree char *nl = g_strconcat (line, "\n", NULL);
  g_mutex_lock (&c->lock);
  /* One write per point and an fsync: a crash leaves whole lines, plus at
   * most a torn last one that the next run drops. */
  gsize len = strlen (nl);
  if (write (c->fd, nl, len) != (gssize)len || fsync (c->fd) != 0)
    g_printerr ("moesim: warning: sweep journal write failed: %s\n", g_strerror (errno));
  c->done++;
  c->ran++;
  c->failed += failed;
  progress_line (c);
  g_mutex_unlock (&c->lock);
}

typedef struct
{
  GHashTable *by_index; /* index -> JsonNode* (line) */
} Journal;

/* Reads every journal*.jsonl of @dir; checks each line's params against
 * the grid (a journal of another sweep is an error); ignores torn lines. */
static gboolean
read_journals (MsimSweep *s, const char *dir, GHashTable *by_index, GError **error)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return TRUE;
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      if (!g_str_has_prefix (name, "journal") || !g_str_has_suffix (name, ".jsonl"))
        continue;
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      if (!g_file_get_contents (path, &data, NULL, NULL))
        continue;
      g_auto (GStrv) lines = g_strsplit (data, "\n", -1);
      guint nlines = g_strv_length (lines);
      for (guint i = 0; i < nlines; i++)
        {
          if (lines[i][0] == '\0' || i + 1 == nlines) /* the last part has no newline: torn */
            continue;
          g_autoptr (JsonParser) p = json_parser_new ();
          if (!json_parser_load_from_data (p, lines[i], -1, NULL))
            continue;
          JsonNode *root = json_parser_get_root (p);
          if (!JSON_NODE_HOLDS_OBJECT (root))
            continue;
          JsonObject *o = json_node_get_object (root);
          if (!json_object_has_member (o, "index") || !json_object_has_member (o, "params"))
            continue;
          gint64 idx = json_object_get_int_member (o, "index");
          if (idx < 0 || idx >= s->n_points)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s:%u: point %" G_GINT64_FORMAT " is outside this sweep's %u points: "
                           "the directory holds results of another sweep (use another -o)",
                           path, i + 1, idx, s->n_points);
              return FALSE;
            }
          JsonObject *params = json_object_get_object_member (o, "params");
          for (guint a = 0; params && a < s->axes->len; a++)
            {
              const char *want = msim_sweep_value (s, (guint)idx, a);
              const char *name_a = msim_sweep_axis_name (s, a);
              if (!json_object_has_member (params, name_a)
                  || g_strcmp0 (json_object_get_string_member (params, name_a), want) != 0)
                {
                  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                               "%s:%u: point %" G_GINT64_FORMAT " has %s different from this "
                               "sweep's '%s': the directory holds results of another sweep (use "
                               "another -o)",
                               path, i + 1, idx, name_a, want);
                  return FALSE;
                }
            }
          g_hash_table_replace (by_index, GINT_TO_POINTER ((int)idx), json_node_copy (root));
        }
    }
  return TRUE;
}

/* Opens the journal for appending, dropping a torn last line. */
static int
open_journal (const char *path, GError **error)
{
  int fd = g_open (path, O_RDWR | O_CREAT | O_APPEND, 0666);
  if (fd < 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot open %s: %s", path,
                   g_strerror (errno));
      return -1;
    }
  off_t size = lseek (fd, 0, SEEK_END);
  if (size > 0)
    {
      g_autofree char *data = NULL;
      gsize len = 0;
      if (g_file_get_contents (path, &data, &len, NULL) && len > 0 && data[len - 1] != '\n')
        {
          const char *last = g_strrstr_len (data, len, "\n");
          off_t keep = last ? (off_t)(last - data + 1) : 0;
          if (ftruncate (fd, keep) != 0)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot repair %s: %s", path,
                           g_strerror (errno));
              close (fd);
              return -1;
            }
        }
    }
  return fd;
}

static char *
csv_cell (JsonNode *n)
{
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return g_strdup ("");
  if (json_node_get_value_type (n) == G_TYPE_STRING)
    {
      const char *v = json_node_get_string (n);
      if (strpbrk (v, ",\"\n"))
        {
          GString *q = g_string_new ("\"");
          for (const char *c = v; *c; c++)
            {
              if (*c == '"')
                g_string_append_c (q, '"');
              g_string_append_c (q, *c == '\n' ? ' ' : *c);
            }
          g_string_append_c (q, '"');
          return g_string_free (q, FALSE);
        }
      return g_strdup (v);
    }
  if (json_node_get_value_type (n) == G_TYPE_DOUBLE)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      g_ascii_formatd (buf, sizeof buf, "%.17g", json_node_get_double (n));
      return g_strdup (buf);
    }
  if (json_node_get_value_type (n) == G_TYPE_INT64)
    return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (n));
  return g_strdup ("");
}

gboolean
msim_sweep_merge (MsimSweep *sweep, const char *dir, GError **error)
{
  g_autoptr (GHashTable) by_index = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                                           (GDestroyNotify)json_node_unref);
  if (!read_journals (sweep, dir, by_index, error))
    return FALSE;
  if (g_hash_table_size (by_index) != sweep->n_points)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: %u of %u points have results; run the missing shards first", dir,
                   g_hash_table_size (by_index), sweep->n_points);
      return FALSE;
    }
  GString *jsonl = g_string_new (NULL);
  GString *csv = g_string_new ("index");
  for (guint a = 0; a < sweep->axes->len; a++)
    g_string_append_printf (csv, ",%s", msim_sweep_axis_name (sweep, a));
  g_string_append (csv, ",moesim_version,status");
  for (char **m = sweep->metrics; *m; m++)
    g_string_append_printf (csv, ",%s", *m);
  g_string_append (csv, ",error\n");
  for (guint p = 0; p < sweep->n_points; p++)
    {
      JsonNode *n = g_hash_table_lookup (by_index, GINT_TO_POINTER ((int)p));
      g_autofree char *line = msim_json_to_data (n, FALSE);
      g_string_append_printf (jsonl, "%s\n", line);
      JsonObject *o = json_node_get_object (n);
      g_string_append_printf (csv, "%u", p);
      for (guint a = 0; a < sweep->axes->len; a++)
        g_string_append_printf (csv, ",%s", msim_sweep_value (sweep, p, a));
      const char *ver = json_object_has_member (o, "moesim_version")
                            ? json_object_get_string_member (o, "moesim_version")
                            : "";
      gboolean failed = json_object_has_member (o, "error");
      g_string_append_printf (csv, ",%s,%s", ver, failed ? "failed" : "ok");
      JsonObject *met = failed ? NULL : json_object_get_object_member (o, "metrics");
      for (char **m = sweep->metrics; *m; m++)
        {
          g_autofree char *cell = csv_cell (
              met && json_object_has_member (met, *m) ? json_object_get_member (met, *m) : NULL);
          g_string_append_printf (csv, ",%s", cell);
        }
      g_autofree char *err = csv_cell (failed ? json_object_get_member (o, "error") : NULL);
      g_string_append_printf (csv, ",%s\n", err);
    }
  g_autofree char *jp = g_build_filename (dir, "points.jsonl", NULL);
  g_autofree char *cp = g_build_filename (dir, "points.csv", NULL);
  gboolean ok = g_file_set_contents (jp, jsonl->str, (gssize)jsonl->len, error)
                && g_file_set_contents (cp, csv->str, (gssize)csv->len, error);
  g_string_free (jsonl, TRUE);
  g_string_free (csv, TRUE);
  return ok;
}

gboolean
msim_sweep_run (MsimSweep *sweep, const char *dir, const MsimSweepOptions *options,
                MsimSweepReport *report, GError **error)
{
  memset (report, 0, sizeof *report);
  g_return_val_if_fail (options->shard_count >= 1 && options->shard_index < options->shard_count,
                        FALSE);
  if (g_file_test (dir, G_FILE_TEST_EXISTS) && !g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s exists and is not a directory", dir);
      return FALSE;
    }
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot create %s: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  g_autoptr (GHashTable) by_index = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                                           (GDestroyNotify)json_node_unref);
  if (!read_journals (sweep, dir, by_index, error))
    return FALSE;
  g_autofree char *jname
      = options->shard_count > 1
            ? g_strdup_printf ("journal-%u-of-%u.jsonl", options->shard_index, options->shard_count)
            : g_strdup ("journal.jsonl");
  g_autofree char *jpath = g_build_filename (dir, jname, NULL);
  RunCtx c = { 0 };
  c.sweep = sweep;
  g_mutex_init (&c.lock);
  c.fd = open_journal (jpath, error);
  if (c.fd < 0)
    return FALSE;
  c.progress = options->progress;
  c.t0 = g_get_monotonic_time ();
  msim_run_config_set_trace_cache (TRUE);

  sweep->jobs = MAX (options->jobs, 1u);
  GThreadPool *pool = g_thread_pool_new (worker, &c, (gint)MAX (options->jobs, 1u), TRUE, NULL);
  for (guint p = options->shard_index; p < sweep->n_points; p += options->shard_count)
    {
      c.total++;
      JsonNode *old = g_hash_table_lookup (by_index, GINT_TO_POINTER ((int)p));
      if (old)
        {
          c.done++;
          report->skipped++;
          if (json_object_has_member (json_node_get_object (old), "error"))
            c.failed++;
          continue;
        }
      g_thread_pool_push (pool, GUINT_TO_POINTER (p + 1), NULL);
    }
  g_thread_pool_free (pool, FALSE, TRUE);
  close (c.fd);
  if (c.progress)
    fputc ('\n', stderr);
  g_mutex_clear (&c.lock);
  report->total = c.total;
  report->ran = c.ran;
  report->failed = c.failed;
  if (options->merge)
    {
      g_autoptr (GError) merr = NULL;
      report->merged = msim_sweep_merge (sweep, dir, &merr);
    }
  return TRUE;
}
