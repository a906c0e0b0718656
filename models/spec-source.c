#include "spec-source-private.h"

#include <stdarg.h>
#include <string.h>

#include "msim-error.h"

/* A preset naming a preset naming a preset... eight levels is far more than
 * any sensible family of presets needs, and bounds the work on a mistake. */
#define MAX_PRESET_DEPTH 8

typedef struct
{
  MsimIni *owned;     /* preset files we loaded; NULL for the caller's ini */
  const MsimIni *ini; /* == owned, or the caller's */
  char *group;        /* the caller's group, or kind->group in preset files */
} Layer;

struct _MsimSpecSource
{
  const MsimSpecKind *kind;
  GPtrArray *layers; /* Layer*, index 0 = highest priority */
  char *default_name;
};

static void
layer_free (gpointer p)
{
  Layer *l = p;
  msim_ini_free (l->owned);
  g_free (l->group);
  g_free (l);
}

void
msim_spec_source_free (MsimSpecSource *src)
{
  if (src == NULL)
    return;
  g_ptr_array_free (src->layers, TRUE);
  g_free (src->default_name);
  g_free (src);
}

static gboolean
valid_preset_name (const char *name)
{
  /* Names become file names: refuse anything that could leave the presets
   * directory or hide a file (leading dot, separators). */
  if (name == NULL || !g_ascii_isalnum (name[0]))
    return FALSE;
  for (const char *c = name; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_' && *c != '.')
      return FALSE;
  return strstr (name, "..") == NULL;
}

static char *
presets_dir (void)
{
  return g_build_filename (msim_data_dir (), "models", "presets", NULL);
}

/* g_ptr_array_sort passes pointers to the elements. */
static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

char **
msim_spec_list_presets (const MsimSpecKind *kind)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autofree char *dir_path = presets_dir ();
  GDir *dir = g_dir_open (dir_path, 0, NULL);
  if (dir != NULL)
    {
      const char *entry;
      gsize plen = strlen (kind->file_prefix);
      while ((entry = g_dir_read_name (dir)) != NULL)
        {
          if (!g_str_has_suffix (entry, ".ini") || !g_str_has_prefix (entry, kind->file_prefix))
            continue;
          if (kind->exclude_prefix != NULL && g_str_has_prefix (entry, kind->exclude_prefix))
            continue;
          gsize len = strlen (entry) - plen - strlen (".ini");
          if (len == 0)
            continue;
          g_ptr_array_add (names, g_strndup (entry + plen, len));
        }
      g_dir_close (dir);
    }
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return (char **)g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

char *
msim_spec_preset_path (const MsimSpecKind *kind, const char *name, GError **error)
{
  g_return_val_if_fail (kind != NULL, NULL);
  if (!valid_preset_name (name))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "invalid %s preset name '%s' (letters, digits, '-', '_', '.'; no path)",
                   kind->what, name ? name : "(null)");
      return NULL;
    }
  const char *bare = name;
  if (*kind->file_prefix != '\0' && g_str_has_prefix (name, kind->file_prefix))
    bare = name + strlen (kind->file_prefix);
  g_autofree char *file = g_strconcat (kind->file_prefix, bare, ".ini", NULL);
  g_autofree char *dir = presets_dir ();
  char *path = g_build_filename (dir, file, NULL);
  gboolean excluded = kind->exclude_prefix != NULL && g_str_has_prefix (file, kind->exclude_prefix);
  if (!excluded && g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  g_free (path);
  g_auto (GStrv) known = msim_spec_list_presets (kind);
  g_autofree char *list = g_strjoinv (", ", known);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
               "unknown %s preset '%s' (known presets in %s: %s)", kind->what, name, dir,
               *list ? list : "none");
  return NULL;
}

MsimSpecSource *
msim_spec_source_new (const MsimIni *ini, const char *group, const MsimSpecKind *kind,
                      GError **error)
{
  g_return_val_if_fail (ini != NULL && group != NULL && kind != NULL, NULL);
  if (!msim_ini_has_group (ini, group))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no [%s] group", msim_ini_path (ini),
                   group);
      return NULL;
    }

  g_autoptr (MsimSpecSource) src = g_new0 (MsimSpecSource, 1);
  src->kind = kind;
  src->layers = g_ptr_array_new_with_free_func (layer_free);
  Layer *top = g_new0 (Layer, 1);
  top->ini = ini;
  top->group = g_strdup (group);
  g_ptr_array_add (src->layers, top);

  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* The top file counts as visited, so a preset that names it back is
   * reported where the loop closes. */
  g_hash_table_add (seen, g_canonicalize_filename (msim_ini_path (ini), NULL));
  const MsimIni *cur = ini;
  const char *cur_group = group;
  for (int depth = 0; msim_ini_has_key (cur, cur_group, "preset"); depth++)
    {
      g_autofree char *name = NULL;
      if (!msim_ini_get_string (cur, cur_group, "preset", TRUE, NULL, &name, error))
        return NULL;
      if (depth >= MAX_PRESET_DEPTH)
        {
          msim_ini_set_error (cur, error, cur_group, "preset", "presets nest deeper than %d levels",
                              MAX_PRESET_DEPTH);
          return NULL;
        }
      g_autoptr (GError) local = NULL;
      g_autofree char *path = msim_spec_preset_path (kind, name, &local);
      if (path == NULL)
        {
          msim_ini_set_error (cur, error, cur_group, "preset", "%s", local->message);
          return NULL;
        }
      g_autofree char *canon = g_canonicalize_filename (path, NULL);
      if (g_hash_table_contains (seen, canon))
        {
          msim_ini_set_error (cur, error, cur_group, "preset",
                              "preset '%s' includes itself (cycle)", name);
          return NULL;
        }
      g_hash_table_add (seen, g_strdup (canon));
      MsimIni *sub = msim_ini_load (path, &local);
      if (sub == NULL)
        {
          msim_ini_set_error (cur, error, cur_group, "preset", "%s", local->message);
          return NULL;
        }
      Layer *layer = g_new0 (Layer, 1);
      layer->owned = sub;
      layer->ini = sub;
      layer->group = g_strdup (kind->group);
      g_ptr_array_add (src->layers, layer);
      /* A preset file describes one thing; a stray [topology] in it would be
       * silently ignored otherwise. */
      const char *const only[] = { kind->group, NULL };
      if (!msim_ini_check_groups (sub, only, error))
        return NULL;
      if (!msim_ini_has_group (sub, kind->group))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no [%s] group", path, kind->group);
          return NULL;
        }
      if (src->default_name == NULL)
        {
          const char *bare = name;
          if (*kind->file_prefix != '\0' && g_str_has_prefix (name, kind->file_prefix))
            bare = name + strlen (kind->file_prefix);
          src->default_name = g_strdup (bare);
        }
      cur = sub;
      cur_group = kind->group;
    }

  if (src->default_name == NULL)
    {
      g_autofree char *base = g_path_get_basename (msim_ini_path (ini));
      if (g_str_has_suffix (base, ".ini"))
        base[strlen (base) - 4] = '\0';
      if (*kind->file_prefix != '\0' && g_str_has_prefix (base, kind->file_prefix))
        src->default_name = g_strdup (base + strlen (kind->file_prefix));
      else
        src->default_name = g_strdup (base);
    }
  return g_steal_pointer (&src);
}

static const Layer *
layer_for (const MsimSpecSource *src, const char *key)
{
  for (guint i = 0; key != NULL && i < src->layers->len; i++)
    {
      const Layer *l = g_ptr_array_index (src->layers, i);
      if (msim_ini_has_key (l->ini, l->group, key))
        return l;
    }
  return g_ptr_array_index (src->layers, 0);
}

gboolean
msim_spec_source_has_key (const MsimSpecSource *src, const char *key)
{
  const Layer *l = layer_for (src, key);
  return msim_ini_has_key (l->ini, l->group, key);
}

const char *
msim_spec_source_default_name (const MsimSpecSource *src)
{
  return src->default_name;
}

gboolean
msim_spec_source_check_keys (const MsimSpecSource *src, const char *const *allowed, GError **error)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  for (const char *const *a = allowed; *a; a++)
    g_ptr_array_add (all, (gpointer)*a);
  g_ptr_array_add (all, (gpointer) "preset");
  g_ptr_array_add (all, NULL);
  for (guint i = 0; i < src->layers->len; i++)
    {
      const Layer *l = g_ptr_array_index (src->layers, i);
      if (!msim_ini_check_keys (l->ini, l->group, (const char *const *)all->pdata, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
msim_spec_source_get_string (const MsimSpecSource *src, const char *key, gboolean required,
                             const char *def, char **out, GError **error)
{
  const Layer *l = layer_for (src, key);
  return msim_ini_get_string (l->ini, l->group, key, required, def, out, error);
}

gboolean
msim_spec_source_get_double (const MsimSpecSource *src, const char *key, gboolean required,
                             double def, double min, double max, double *out, GError **error)
{
  const Layer *l = layer_for (src, key);
  return msim_ini_get_double (l->ini, l->group, key, required, def, min, max, out, error);
}

gboolean
msim_spec_source_get_int64 (const MsimSpecSource *src, const char *key, gboolean required,
                            gint64 def, gint64 min, gint64 max, gint64 *out, GError **error)
{
  const Layer *l = layer_for (src, key);
  return msim_ini_get_int64 (l->ini, l->group, key, required, def, min, max, out, error);
}

gboolean
msim_spec_source_get_bool (const MsimSpecSource *src, const char *key, gboolean required,
                           gboolean def, gboolean *out, GError **error)
{
  const Layer *l = layer_for (src, key);
  return msim_ini_get_bool (l->ini, l->group, key, required, def, out, error);
}

gboolean
msim_spec_source_get_choice (const MsimSpecSource *src, const char *key, gboolean required, int def,
                             const char *const *choices, int *out, GError **error)
{
  const Layer *l = layer_for (src, key);
  return msim_ini_get_choice (l->ini, l->group, key, required, def, choices, out, error);
}

void
msim_spec_source_set_error (const MsimSpecSource *src, GError **error, const char *key,
                            const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  const Layer *l = layer_for (src, key);
  msim_ini_set_error (l->ini, error, l->group, key, "%s", msg);
}

gpointer
msim_spec_new_from_ini (const MsimSpecKind *kind, MsimSpecParseFunc parse, const MsimIni *ini,
                        const char *group, GError **error)
{
  g_return_val_if_fail (ini != NULL && group != NULL, NULL);
  g_autoptr (MsimSpecSource) src = msim_spec_source_new (ini, group, kind, error);
  if (src == NULL)
    return NULL;
  return parse (src, error);
}

gpointer
msim_spec_load_file (const MsimSpecKind *kind, MsimSpecParseFunc parse, const char *path,
                     GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (MsimIni) ini = msim_ini_load (path, error);
  if (ini == NULL)
    return NULL;
  const char *const groups[] = { kind->group, NULL };
  if (!msim_ini_check_groups (ini, groups, error))
    return NULL;
  return msim_spec_new_from_ini (kind, parse, ini, kind->group, error);
}

gpointer
msim_spec_load_preset (const MsimSpecKind *kind, MsimSpecParseFunc parse, const char *name,
                       GError **error)
{
  g_autofree char *path = msim_spec_preset_path (kind, name, error);
  if (path == NULL)
    return NULL;
  return msim_spec_load_file (kind, parse, path, error);
}
