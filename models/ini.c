#include "ini.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "msim-error.h"

#define MAX_INCLUDE_DEPTH 16
/* Config files are small; anything larger is almost certainly the wrong
 * file given by mistake (a trace, a binary), which we refuse before reading. */
#define MAX_INI_BYTES (16 * 1024 * 1024)

typedef struct
{
  const char *file; /* owned by MsimIni.files */
  int line;
} Origin;

struct _MsimIni
{
  char *path;
  GKeyFile *keyfile;
  GHashTable *origins; /* "group\x1fkey" or "group" -> Origin* */
  GPtrArray *files;    /* file names referenced by origins */
};

static char *
origin_key (const char *group, const char *key)
{
  return key ? g_strconcat (group, "\x1f", key, NULL) : g_strdup (group);
}

static const Origin *
lookup_origin (const MsimIni *ini, const char *group, const char *key)
{
  g_autofree char *k = origin_key (group, key);
  const Origin *o = g_hash_table_lookup (ini->origins, k);
  if (o == NULL && key != NULL)
    {
      g_autofree char *g = origin_key (group, NULL);
      o = g_hash_table_lookup (ini->origins, g);
    }
  return o;
}

static void
set_origin (MsimIni *ini, const char *group, const char *key, const char *file, int line)
{
  Origin *o = g_new (Origin, 1);
  o->file = file;
  o->line = line;
  g_hash_table_insert (ini->origins, origin_key (group, key), o);
}

static const char *
intern_file (MsimIni *ini, const char *file)
{
  char *copy = g_strdup (file);
  g_ptr_array_add (ini->files, copy);
  return copy;
}

static MsimIni *
ini_new (const char *path)
{
  MsimIni *ini = g_new0 (MsimIni, 1);
  ini->path = g_strdup (path);
  ini->keyfile = g_key_file_new ();
  ini->origins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  ini->files = g_ptr_array_new_with_free_func (g_free);
  return ini;
}

void
msim_ini_free (MsimIni *ini)
{
  if (ini == NULL)
    return;
  g_free (ini->path);
  g_key_file_free (ini->keyfile);
  g_hash_table_destroy (ini->origins);
  g_ptr_array_free (ini->files, TRUE);
  g_free (ini);
}

const char *
msim_data_dir (void)
{
  const char *env = g_getenv ("MOESIM_DATA_DIR");
  if (env != NULL && *env != '\0')
    return env;
#ifdef MSIM_SOURCE_DIR
  return MSIM_SOURCE_DIR;
#else
  return ".";
#endif
}

/* @text for an error message: lines can be megabytes long when the wrong
 * file is given, so at most 60 characters of it, on one line. */
static char *
excerpt (const char *text)
{
  if (!g_utf8_validate (text, -1, NULL))
    return g_strdup ("(invalid UTF-8)");
  char *out;
  if (g_utf8_strlen (text, -1) <= 60)
    out = g_strdup (text);
  else
    {
      g_autofree char *head = g_utf8_substring (text, 0, 57);
      out = g_strconcat (head, "...", NULL);
    }
  /* One message, one line: a value set with --set may hold a newline. */
  for (char *c = out; *c; c++)
    if (g_ascii_iscntrl (*c))
      *c = '?';
  return out;
}

static gboolean
valid_key_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '-' || c == '.';
}

typedef struct
{
  char *group;
  char *path;
  int line;
} PendingInclude;

static void
pending_include_free (gpointer p)
{
  PendingInclude *inc = p;
  g_free (inc->group);
  g_free (inc->path);
  g_free (inc);
}

static gboolean load_into (MsimIni *ini, const char *data, gsize length, const char *name,
                           int depth, GHashTable *visiting, GError **error);

static char *
resolve_include (const char *including, const char *target)
{
  if (g_path_is_absolute (target))
    return g_file_test (target, G_FILE_TEST_EXISTS) ? g_strdup (target) : NULL;
  g_autofree char *dir = g_path_get_dirname (including);
  char *candidate = g_build_filename (dir, target, NULL);
  if (g_file_test (candidate, G_FILE_TEST_EXISTS))
    return candidate;
  g_free (candidate);
  candidate = g_build_filename (msim_data_dir (), target, NULL);
  if (g_file_test (candidate, G_FILE_TEST_EXISTS))
    return candidate;
  g_free (candidate);
  return NULL;
}

static gboolean
read_file_checked (const char *path, char **data, gsize *length, GError **error)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s: is a directory, expected a file", path);
      return FALSE;
    }
  GStatBuf st;
  /* A device, FIFO or socket is never a config file, and reading one would
   * block (a FIFO, a terminal) or never end (/dev/zero); refuse it before
   * opening.  A missing file falls through to the reader's own message. */
  gboolean have_st = g_stat (path, &st) == 0;
  if (have_st && !S_ISREG (st.st_mode))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO,
                   "%s: not a regular file (a device, FIFO or socket), expected a file", path);
      return FALSE;
    }
  if (have_st && st.st_size > MAX_INI_BYTES)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_LIMIT,
                   "%s: %lld bytes is too large for a configuration file (limit %d)", path,
                   (long long) st.st_size, MAX_INI_BYTES);
      return FALSE;
    }
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, data, length, &local))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "%s", local->message);
      return FALSE;
    }
  return TRUE;
}

/* Merges @inc (lower priority) into @ini: only groups/keys @ini lacks. */
static void
merge_defaults (MsimIni *ini, MsimIni *inc)
{
  gsize ngroups = 0;
  g_auto (GStrv) groups = g_key_file_get_groups (inc->keyfile, &ngroups);
  for (gsize g = 0; g < ngroups; g++)
    {
      if (!g_key_file_has_group (ini->keyfile, groups[g]))
        {
          const Origin *go = lookup_origin (inc, groups[g], NULL);
          set_origin (ini, groups[g], NULL, intern_file (ini, go->file), go->line);
        }
      gsize nkeys = 0;
      g_auto (GStrv) keys = g_key_file_get_keys (inc->keyfile, groups[g], &nkeys, NULL);
      /* An included file that holds a group with no keys still creates it. */
      if (nkeys == 0 && !g_key_file_has_group (ini->keyfile, groups[g]))
        {
          g_key_file_set_value (ini->keyfile, groups[g], "__placeholder__", "");
          g_key_file_remove_key (ini->keyfile, groups[g], "__placeholder__", NULL);
        }
      for (gsize k = 0; k < nkeys; k++)
        {
          if (g_key_file_has_key (ini->keyfile, groups[g], keys[k], NULL))
            continue;
          g_autofree char *value = g_key_file_get_value (inc->keyfile, groups[g], keys[k], NULL);
          g_key_file_set_value (ini->keyfile, groups[g], keys[k], value);
          const Origin *ko = lookup_origin (inc, groups[g], keys[k]);
          set_origin (ini, groups[g], keys[k], intern_file (ini, ko->file), ko->line);
        }
    }
}

static gboolean
load_into (MsimIni *ini, const char *data, gsize length, const char *name, int depth,
           GHashTable *visiting, GError **error)
{
  const char *file = intern_file (ini, name);
  const char *bad_utf8 = NULL;
  if (!g_utf8_validate_len (data, length, &bad_utf8))
    {
      int line = 1;
      for (const char *p = data; p < bad_utf8; p++)
        line += *p == '\n';
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s:%d: invalid UTF-8 at byte offset %" G_GSIZE_FORMAT, name, line,
                   (gsize) (bad_utf8 - data));
      return FALSE;
    }

  g_autoptr (GPtrArray) includes = g_ptr_array_new_with_free_func (pending_include_free);
  g_autoptr (GHashTable) seen_groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *group = NULL;
  int lineno = 0;
  const char *p = data;
  const char *end = data + length;

  while (p < end)
    {
      const char *eol = memchr (p, '\n', end - p);
      const char *next = eol ? eol + 1 : end;
      if (eol == NULL)
        eol = end;
      lineno++;
      g_autofree char *raw = g_strndup (p, eol - p);
      p = next;
      g_strstrip (raw); /* also drops a trailing '\r' */
      if (raw[0] == '\0' || raw[0] == '#')
        continue;

      if (raw[0] == '[')
        {
          char *close = strchr (raw, ']');
          if (close == NULL || close[1] != '\0' || close == raw + 1)
            {
              g_autofree char *text = excerpt (raw);
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s:%d: malformed group header '%s' (expected [name])", name, lineno,
                           text);
              return FALSE;
            }
          *close = '\0';
          const char *gname = raw + 1;
          if (strchr (gname, '[') != NULL)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s:%d: malformed group header '[%s]'", name, lineno, gname);
              return FALSE;
            }
          /* GKeyFile refuses such names with a critical warning and drops
           * the group, so it would otherwise vanish without an error. */
          for (const char *c = gname; *c; c++)
            if (g_ascii_iscntrl (*c))
              {
                g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                             "%s:%d: control character 0x%02x in group name", name, lineno,
                             (guint) (guchar) *c);
                return FALSE;
              }
          gpointer prev = g_hash_table_lookup (seen_groups, gname);
          if (prev != NULL)
            {
              g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                           "%s:%d: duplicate group [%s] (first defined at line %d)", name, lineno,
                           gname, GPOINTER_TO_INT (prev));
              return FALSE;
            }
          g_hash_table_insert (seen_groups, g_strdup (gname), GINT_TO_POINTER (lineno));
          g_free (group);
          group = g_strdup (gname);
          /* Make the group exist even if it stays empty. */
          g_key_file_set_value (ini->keyfile, group, "__placeholder__", "");
          g_key_file_remove_key (ini->keyfile, group, "__placeholder__", NULL);
          set_origin (ini, group, NULL, file, lineno);
          continue;
        }

      char *eq = strchr (raw, '=');
      if (eq == NULL)
        {
          g_autofree char *text = excerpt (raw);
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%d: expected '[group]' or 'key = value', got '%s'", name, lineno, text);
          return FALSE;
        }
      *eq = '\0';
      char *key = g_strstrip (raw);
      char *value = g_strstrip (eq + 1);
      if (*key == '\0')
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s:%d: empty key before '='", name,
                       lineno);
          return FALSE;
        }
      for (const char *c = key; *c; c++)
        if (!valid_key_char (*c))
          {
            /* A byte of a multi-byte character or a control character would
             * garble the message; name those by value. */
            g_autofree char *what = g_ascii_isprint (*c)
                                        ? g_strdup_printf ("'%c'", *c)
                                        : g_strdup_printf ("0x%02x", (guint) (guchar) *c);
            g_autofree char *text = excerpt (key);
            g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                         "%s:%d: invalid character %s in key '%s' (allowed: letters, digits, "
                         "'_', '-', '.')",
                         name, lineno, what, text);
            return FALSE;
          }
      if (group == NULL)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%d: key '%s' appears before any [group]", name, lineno, key);
          return FALSE;
        }
      g_autofree char *okey = origin_key (group, key);
      Origin *prev = g_hash_table_lookup (ini->origins, okey);
      if (prev != NULL && prev->file == file)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%d: [%s] duplicate key '%s' (first set at line %d)", name, lineno,
                       group, key, prev->line);
          return FALSE;
        }
      set_origin (ini, group, key, file, lineno);
      if (strcmp (key, "include") == 0)
        {
          PendingInclude *inc = g_new0 (PendingInclude, 1);
          inc->group = g_strdup (group);
          inc->path = g_strdup (value);
          inc->line = lineno;
          g_ptr_array_add (includes, inc);
          continue;
        }
      g_key_file_set_value (ini->keyfile, group, key, value);
    }

  /* Later includes take precedence over earlier ones; the file's own keys
   * over all of them.  Filling from the last include backwards gives both. */
  for (guint i = includes->len; i-- > 0;)
    {
      PendingInclude *inc = g_ptr_array_index (includes, i);
      if (depth + 1 > MAX_INCLUDE_DEPTH)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%d: [%s] include: nesting deeper than %d levels", name, inc->line,
                       inc->group, MAX_INCLUDE_DEPTH);
          return FALSE;
        }
      g_autofree char *resolved = resolve_include (name, inc->path);
      if (resolved == NULL)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%d: [%s] include: file '%s' not found (looked next to %s and in %s)",
                       name, inc->line, inc->group, inc->path, name, msim_data_dir ());
          return FALSE;
        }
      g_autofree char *canon = g_canonicalize_filename (resolved, NULL);
      if (g_hash_table_contains (visiting, canon))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "%s:%d: [%s] include: '%s' includes itself (cycle)", name, inc->line,
                       inc->group, inc->path);
          return FALSE;
        }
      g_autofree char *idata = NULL;
      gsize ilen = 0;
      g_autoptr (GError) ierr = NULL;
      if (!read_file_checked (resolved, &idata, &ilen, &ierr))
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s:%d: [%s] include: %s", name,
                       inc->line, inc->group, ierr->message);
          return FALSE;
        }
      g_hash_table_add (visiting, g_strdup (canon));
      g_autoptr (MsimIni) sub = ini_new (resolved);
      gboolean ok = load_into (sub, idata, ilen, resolved, depth + 1, visiting, error);
      g_hash_table_remove (visiting, canon);
      if (!ok)
        return FALSE;
      merge_defaults (ini, sub);
    }
  return TRUE;
}

MsimIni *
msim_ini_load_data (const char *data, gsize length, const char *name, GError **error)
{
  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_autoptr (MsimIni) ini = ini_new (name);
  g_autoptr (GHashTable) visiting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_add (visiting, g_canonicalize_filename (name, NULL));
  if (!load_into (ini, data ? data : "", length, name, 0, visiting, error))
    return NULL;
  return g_steal_pointer (&ini);
}

MsimIni *
msim_ini_load (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize length = 0;
  if (!read_file_checked (path, &data, &length, error))
    return NULL;
  return msim_ini_load_data (data, length, path, error);
}

static gboolean
valid_group_name (const char *group)
{
  if (*group == '\0')
    return FALSE;
  for (const char *c = group; *c; c++)
    if (*c == '[' || *c == ']' || g_ascii_iscntrl (*c))
      return FALSE;
  return g_utf8_validate (group, -1, NULL);
}

gboolean
msim_ini_override (MsimIni *ini, const char *group, const char *key, const char *value,
                   const char *origin, GError **error)
{
  g_return_val_if_fail (ini != NULL && group != NULL && key != NULL && value != NULL, FALSE);
  g_return_val_if_fail (origin != NULL, FALSE);
  gboolean key_ok = *key != '\0' && strcmp (key, "include") != 0;
  for (const char *c = key; key_ok && *c; c++)
    key_ok = valid_key_char (*c);
  if (!valid_group_name (group) || !key_ok)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: invalid %s name (groups: no brackets or control characters; keys: letters, "
                   "digits, '_', '-', '.', not include)",
                   origin, key_ok ? "group" : "key");
      return FALSE;
    }
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: the value is not valid UTF-8",
                   origin);
      return FALSE;
    }
  const char *file = intern_file (ini, origin);
  if (!g_key_file_has_group (ini->keyfile, group))
    set_origin (ini, group, NULL, file, 0);
  g_key_file_set_value (ini->keyfile, group, key, value);
  set_origin (ini, group, key, file, 0);
  return TRUE;
}

const char *
msim_ini_path (const MsimIni *ini)
{
  return ini->path;
}

GKeyFile *
msim_ini_keyfile (const MsimIni *ini)
{
  return ini->keyfile;
}

gboolean
msim_ini_has_group (const MsimIni *ini, const char *group)
{
  return g_key_file_has_group (ini->keyfile, group);
}

gboolean
msim_ini_has_key (const MsimIni *ini, const char *group, const char *key)
{
  return g_key_file_has_key (ini->keyfile, group, key, NULL);
}

char **
msim_ini_groups (const MsimIni *ini)
{
  return g_key_file_get_groups (ini->keyfile, NULL);
}

char **
msim_ini_keys (const MsimIni *ini, const char *group)
{
  char **keys = g_key_file_get_keys (ini->keyfile, group, NULL, NULL);
  if (keys == NULL)
    keys = g_new0 (char *, 1);
  return keys;
}

static char *
where (const MsimIni *ini, const char *group, const char *key)
{
  const Origin *o = group ? lookup_origin (ini, group, key) : NULL;
  GString *s = g_string_new (NULL);
  if (o != NULL && o->line > 0)
    g_string_append_printf (s, "%s:%d:", o->file, o->line);
  else if (o != NULL) /* an override: the origin names itself */
    g_string_append_printf (s, "%s:", o->file);
  else
    g_string_append_printf (s, "%s:", ini->path);
  if (group != NULL)
    g_string_append_printf (s, " [%s]", group);
  if (key != NULL)
    g_string_append_printf (s, " %s", key);
  /* Callers append ": message"; without a group or key the location would
   * end in "::" ("FILE:: message"). */
  if (group == NULL && key == NULL)
    g_string_truncate (s, s->len - 1);
  return g_string_free (s, FALSE);
}

void
msim_ini_set_error (const MsimIni *ini, GError **error, const char *group, const char *key,
                    const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *raw = g_strdup_vprintf (format, ap);
  va_end (ap);
  /* Messages quote values, and a value can hold anything an escape makes
   * (\n) or a wrapped error carries: keep the message one line of UTF-8. */
  g_autofree char *msg = g_utf8_make_valid (raw, -1);
  for (char *c = msg; *c; c++)
    if (g_ascii_iscntrl (*c))
      *c = '?';
  g_autofree char *loc = where (ini, group, key);
  g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: %s", loc, msg);
}

static gboolean
name_allowed (const char *name, const char *const *allowed)
{
  for (const char *const *a = allowed; *a; a++)
    {
      gsize n = strlen (*a);
      if (n > 0 && (*a)[n - 1] == '*')
        {
          if (strncmp (name, *a, n - 1) == 0 && name[n - 1] != '\0')
            return TRUE;
        }
      else if (strcmp (name, *a) == 0)
        return TRUE;
    }
  return FALSE;
}

static char *
join_allowed (const char *const *allowed)
{
  return g_strjoinv (", ", (char **) allowed);
}

gboolean
msim_ini_check_keys (const MsimIni *ini, const char *group, const char *const *allowed,
                     GError **error)
{
  g_auto (GStrv) keys = msim_ini_keys (ini, group);
  for (char **k = keys; *k; k++)
    if (!name_allowed (*k, allowed))
      {
        g_autofree char *list = join_allowed (allowed);
        msim_ini_set_error (ini, error, group, *k, "unknown key (known keys: %s)", list);
        return FALSE;
      }
  return TRUE;
}

gboolean
msim_ini_check_groups (const MsimIni *ini, const char *const *allowed, GError **error)
{
  g_auto (GStrv) groups = msim_ini_groups (ini);
  for (char **g = groups; *g; g++)
    if (!name_allowed (*g, allowed))
      {
        g_autofree char *list = join_allowed (allowed);
        msim_ini_set_error (ini, error, *g, NULL, "unknown group (known groups: %s)", list);
        return FALSE;
      }
  return TRUE;
}

static gboolean
missing (const MsimIni *ini, const char *group, const char *key, gboolean required,
         GError **error, gboolean *absent)
{
  *absent = !g_key_file_has_key (ini->keyfile, group, key, NULL);
  if (*absent && required)
    {
      g_autofree char *loc = where (ini, group, NULL);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: missing required key '%s'", loc,
                   key);
      return TRUE;
    }
  return FALSE;
}

gboolean
msim_ini_get_string (const MsimIni *ini, const char *group, const char *key, gboolean required,
                     const char *def, char **out, GError **error)
{
  gboolean absent;
  if (missing (ini, group, key, required, error, &absent))
    return FALSE;
  if (absent)
    {
      *out = g_strdup (def);
      return TRUE;
    }
  /* GKeyFile unescapes \s \n \t \r \\; for a value with an invalid
   * escape followed by a trailing backslash it sets its GError twice (a
   * GLib warning on stderr) and still returns a value.  Check the escapes
   * here instead (found by tests/fuzz). */
  g_autofree char *raw = g_key_file_get_value (ini->keyfile, group, key, NULL);
  for (const char *c = raw; c && *c; c++)
    if (*c == '\\')
      {
        c++;
        if (*c != '\0' && strchr ("sntr\\", *c) != NULL)
          continue;
        g_autofree char *seq
            = *c == '\0' ? g_strdup ("a backslash at the end")
              : g_ascii_isprint (*c)
                  ? g_strdup_printf ("'\\%c'", *c)
                  : g_strdup_printf ("a backslash before byte 0x%02x", (guint)(guchar)*c);
        msim_ini_set_error (ini, error, group, key,
                            "invalid escape: %s (escapes are \\s \\n \\t \\r \\\\)", seq);
        return FALSE;
      }
  g_autoptr (GError) local = NULL;
  char *v = g_key_file_get_string (ini->keyfile, group, key, &local);
  if (v == NULL || local != NULL)
    {
      g_free (v);
      msim_ini_set_error (ini, error, group, key, "%s",
                          local ? local->message : "cannot read the value");
      return FALSE;
    }
  if (required && *v == '\0')
    {
      g_free (v);
      msim_ini_set_error (ini, error, group, key, "must not be empty");
      return FALSE;
    }
  *out = v;
  return TRUE;
}

gboolean
msim_parse_double (const char *text, double *out)
{
  if (text == NULL)
    return FALSE;
  while (g_ascii_isspace (*text))
    text++;
  if (*text == '\0')
    return FALSE;
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod (text, &end);
  while (end && g_ascii_isspace (*end))
    end++;
  if (end == NULL || *end != '\0' || !isfinite (v) || errno == ERANGE)
    return FALSE;
  /* Reject hexadecimal floats and the literal words strtod accepts. */
  for (const char *c = text; *c && c < end; c++)
    if (g_ascii_isalpha (*c) && *c != 'e' && *c != 'E')
      return FALSE;
  *out = v;
  return TRUE;
}

gboolean
msim_parse_int64 (const char *text, gint64 *out)
{
  if (text == NULL)
    return FALSE;
  g_autofree char *t = g_strstrip (g_strdup (text));
  gint64 s = 0;
  if (g_ascii_string_to_signed (t, 10, G_MININT64, G_MAXINT64, &s, NULL))
    {
      *out = s;
      return TRUE;
    }
  /* Allow exact integers written in exponent form (1e6), up to 2^53. */
  double d;
  if (msim_parse_double (t, &d) && d == floor (d) && fabs (d) <= 9007199254740992.0)
    {
      *out = (gint64) d;
      return TRUE;
    }
  return FALSE;
}

static char *
raw_value (const MsimIni *ini, const char *group, const char *key)
{
  return g_key_file_get_value (ini->keyfile, group, key, NULL);
}

gboolean
msim_ini_get_double (const MsimIni *ini, const char *group, const char *key, gboolean required,
                     double def, double min, double max, double *out, GError **error)
{
  gboolean absent;
  if (missing (ini, group, key, required, error, &absent))
    return FALSE;
  if (absent)
    {
      *out = def;
      return TRUE;
    }
  g_autofree char *v = raw_value (ini, group, key);
  double d;
  if (!msim_parse_double (v, &d))
    {
      g_autofree char *text = excerpt (v);
      msim_ini_set_error (ini, error, group, key, "expected a finite number, got '%s'", text);
      return FALSE;
    }
  if (d < min || d > max)
    {
      msim_ini_set_error (ini, error, group, key, "value %g is out of range [%g, %g]", d, min, max);
      return FALSE;
    }
  *out = d;
  return TRUE;
}

gboolean
msim_ini_get_int64 (const MsimIni *ini, const char *group, const char *key, gboolean required,
                    gint64 def, gint64 min, gint64 max, gint64 *out, GError **error)
{
  gboolean absent;
  if (missing (ini, group, key, required, error, &absent))
    return FALSE;
  if (absent)
    {
      *out = def;
      return TRUE;
    }
  g_autofree char *v = raw_value (ini, group, key);
  gint64 i;
  if (!msim_parse_int64 (v, &i))
    {
      g_autofree char *text = excerpt (v);
      msim_ini_set_error (ini, error, group, key, "expected an integer, got '%s'", text);
      return FALSE;
    }
  if (i < min || i > max)
    {
      msim_ini_set_error (ini, error, group, key,
                          "value %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT
                          ", %" G_GINT64_FORMAT "]",
                          i, min, max);
      return FALSE;
    }
  *out = i;
  return TRUE;
}

gboolean
msim_ini_get_bool (const MsimIni *ini, const char *group, const char *key, gboolean required,
                   gboolean def, gboolean *out, GError **error)
{
  gboolean absent;
  if (missing (ini, group, key, required, error, &absent))
    return FALSE;
  if (absent)
    {
      *out = def;
      return TRUE;
    }
  g_autofree char *v = raw_value (ini, group, key);
  static const char *const yes[] = { "true", "yes", "1", "on", NULL };
  static const char *const no[] = { "false", "no", "0", "off", NULL };
  for (int i = 0; yes[i]; i++)
    if (g_ascii_strcasecmp (v, yes[i]) == 0)
      {
        *out = TRUE;
        return TRUE;
      }
  for (int i = 0; no[i]; i++)
    if (g_ascii_strcasecmp (v, no[i]) == 0)
      {
        *out = FALSE;
        return TRUE;
      }
  g_autofree char *text = excerpt (v);
  msim_ini_set_error (ini, error, group, key, "expected true or false, got '%s'", text);
  return FALSE;
}

gboolean
msim_ini_get_choice (const MsimIni *ini, const char *group, const char *key, gboolean required,
                     int def, const char *const *choices, int *out, GError **error)
{
  g_autofree char *v = NULL;
  if (!msim_ini_get_string (ini, group, key, required, NULL, &v, error))
    return FALSE;
  if (v == NULL)
    {
      *out = def;
      return TRUE;
    }
  for (int i = 0; choices[i]; i++)
    if (strcmp (v, choices[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  g_autofree char *list = join_allowed (choices);
  g_autofree char *text = excerpt (v);
  msim_ini_set_error (ini, error, group, key, "'%s' is not one of: %s", text, list);
  return FALSE;
}
