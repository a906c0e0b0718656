#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * MsimIni: a GKeyFile with the strictness a simulator's inputs need.
 *
 * GKeyFile silently merges duplicate groups, keeps the last of duplicate
 * keys, and reports neither file names nor line numbers.  MsimIni scans the
 * text first (UTF-8, line structure, duplicates), remembers where every
 * group and key came from, resolves `include = FILE` keys, and then hands the
 * data to GKeyFile.  Every error it produces reads
 * "FILE:LINE: [group] key: what is wrong".
 *
 * Include semantics: a key `include = PATH` in any group loads PATH (relative
 * to the including file, then to the moesim data directory) and merges every
 * group and key of it that the including file does not set itself.  Includes
 * nest (depth limit 16); cycles are errors.
 */

typedef struct _MsimIni MsimIni;

/* Loads and validates @path.  Returns (transfer full) or NULL with @error. */
MsimIni *msim_ini_load (const char *path, GError **error);

/* Same, from memory; @name is used in messages and to resolve includes
 * relative to its directory. */
MsimIni *msim_ini_load_data (const char *data, gsize length, const char *name, GError **error);

void msim_ini_free (MsimIni *ini);

/* The file name given to msim_ini_load() (transfer none). */
const char *msim_ini_path (const MsimIni *ini);

/* The underlying key file (transfer none). */
GKeyFile *msim_ini_keyfile (const MsimIni *ini);

gboolean msim_ini_has_group (const MsimIni *ini, const char *group);
gboolean msim_ini_has_key (const MsimIni *ini, const char *group, const char *key);

/* Groups in file order (transfer full, free with g_strfreev). */
char **msim_ini_groups (const MsimIni *ini);

/* Keys of @group in file order, `include` excluded (transfer full). */
char **msim_ini_keys (const MsimIni *ini, const char *group);

/* Sets [@group] @key = @value as a command-line override (`--set`), after
 * checking the names by the rules of files (no control characters or
 * brackets in @group; letters, digits, '_', '-', '.' in @key; not
 * `include`).  Messages about the key then name @origin (e.g. "--set
 * engine.seed=2") instead of a file and line.  FALSE with MSIM_ERROR_INPUT
 * for an invalid name. */
gboolean msim_ini_override (MsimIni *ini, const char *group, const char *key, const char *value,
                            const char *origin, GError **error);

/* Formats "FILE:LINE: [group] key: message" using the origin of @key (or of
 * @group when @key is NULL) and sets @error to MSIM_ERROR_INPUT. */
void msim_ini_set_error (const MsimIni *ini, GError **error, const char *group, const char *key,
                         const char *format, ...) G_GNUC_PRINTF (5, 6);

/* Fails on any key of @group that is not in the NULL-terminated @allowed.
 * An entry ending in '*' matches any key with that prefix. */
gboolean msim_ini_check_keys (const MsimIni *ini, const char *group, const char *const *allowed,
                              GError **error);

/* Fails on any group that is not in @allowed (same pattern rules). */
gboolean msim_ini_check_groups (const MsimIni *ini, const char *const *allowed, GError **error);

/* Typed getters.  When the key is absent: if @required, an error; otherwise
 * *out is set to @def and TRUE is returned.  Values are range-checked
 * (inclusive) and NaN/inf are rejected. */
gboolean msim_ini_get_string (const MsimIni *ini, const char *group, const char *key,
                              gboolean required, const char *def, char **out, GError **error);
gboolean msim_ini_get_double (const MsimIni *ini, const char *group, const char *key,
                              gboolean required, double def, double min, double max, double *out,
                              GError **error);
gboolean msim_ini_get_int64 (const MsimIni *ini, const char *group, const char *key,
                             gboolean required, gint64 def, gint64 min, gint64 max, gint64 *out,
                             GError **error);
gboolean msim_ini_get_bool (const MsimIni *ini, const char *group, const char *key,
                            gboolean required, gboolean def, gboolean *out, GError **error);

/* One of the NULL-terminated @choices; *out is its index. */
gboolean msim_ini_get_choice (const MsimIni *ini, const char *group, const char *key,
                              gboolean required, int def, const char *const *choices, int *out,
                              GError **error);

/* Parses a number the way the getters do: a full decimal/exponent literal,
 * finite.  Exposed for list parsing and CSV readers. */
gboolean msim_parse_double (const char *text, double *out);
gboolean msim_parse_int64 (const char *text, gint64 *out);

/* The directory searched for presets after the including file's own
 * directory: $MOESIM_DATA_DIR if set, else the source tree it was built from. */
const char *msim_data_dir (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimIni, msim_ini_free)

G_END_DECLS
