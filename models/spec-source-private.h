#pragma once

/*
 * Where the keys of a model or GPU spec come from.  Shared by model-spec.c
 * and gpu-spec.c; not part of the public API.
 *
 * A spec is read from one [group] of an MsimIni.  That group may say
 * `preset = NAME`, which adds the group of the preset file
 * `models/presets/<prefix>NAME.ini` (under msim_data_dir()) as a lower-priority
 * layer; the preset file may itself name a preset, and so on (depth limit 8,
 * cycles are errors).  A key is read from the highest-priority layer that sets
 * it, so every value, and every error about it, carries the file and line
 * where it was actually written.  `include = FILE` needs no help here: MsimIni
 * has already merged included keys, with their own origins.
 */

#include "ini.h"

G_BEGIN_DECLS

typedef struct
{
  const char *group;          /* group of the preset files: "model" or "gpu" */
  const char *file_prefix;    /* prefix of the preset file names: "" or "gpu-" */
  const char *exclude_prefix; /* files to skip when listing (another kind's prefix), or NULL */
  const char *what;           /* "model" or "GPU", for messages */
} MsimSpecKind;

typedef struct _MsimSpecSource MsimSpecSource;

/* Resolves the preset chain of [@group] in @ini (transfer none; must outlive
 * the source).  Preset files may hold only [kind->group]. */
MsimSpecSource *msim_spec_source_new (const MsimIni *ini, const char *group,
                                      const MsimSpecKind *kind, GError **error);
void msim_spec_source_free (MsimSpecSource *src);

/* Unknown keys in any layer are errors; `preset` is always allowed. */
gboolean msim_spec_source_check_keys (const MsimSpecSource *src, const char *const *allowed,
                                      GError **error);

gboolean msim_spec_source_has_key (const MsimSpecSource *src, const char *key);

/* The name of the first preset in the chain, else the stem of the top file
 * (transfer none). */
const char *msim_spec_source_default_name (const MsimSpecSource *src);

/* Typed getters with the semantics of msim_ini_get_*, reading the layer that
 * sets @key (the top layer when none does). */
gboolean msim_spec_source_get_string (const MsimSpecSource *src, const char *key, gboolean required,
                                      const char *def, char **out, GError **error);
gboolean msim_spec_source_get_double (const MsimSpecSource *src, const char *key, gboolean required,
                                      double def, double min, double max, double *out,
                                      GError **error);
gboolean msim_spec_source_get_int64 (const MsimSpecSource *src, const char *key, gboolean required,
                                     gint64 def, gint64 min, gint64 max, gint64 *out,
                                     GError **error);
gboolean msim_spec_source_get_bool (const MsimSpecSource *src, const char *key, gboolean required,
                                    gboolean def, gboolean *out, GError **error);
gboolean msim_spec_source_get_choice (const MsimSpecSource *src, const char *key, gboolean required,
                                      int def, const char *const *choices, int *out,
                                      GError **error);

/* "FILE:LINE: [group] key: message" at the origin of @key (or of the top
 * group when no layer sets it, or when @key is NULL). */
void msim_spec_source_set_error (const MsimSpecSource *src, GError **error, const char *key,
                                 const char *format, ...) G_GNUC_PRINTF (4, 5);

/* Path of preset @name of @kind, or NULL with an error that lists the known
 * presets.  @name may carry kind->file_prefix already.  (transfer full) */
char *msim_spec_preset_path (const MsimSpecKind *kind, const char *name, GError **error);

/* Sorted names of the presets of @kind, without prefix or ".ini"
 * (transfer full, g_strfreev). */
char **msim_spec_list_presets (const MsimSpecKind *kind);

/* A kind's parser: the spec from its resolved source (transfer full). */
typedef gpointer (*MsimSpecParseFunc) (const MsimSpecSource *src, GError **error);

/* The spec in [@group] of @ini, its preset chain resolved. */
gpointer msim_spec_new_from_ini (const MsimSpecKind *kind, MsimSpecParseFunc parse,
                                 const MsimIni *ini, const char *group, GError **error);
/* The spec of a file holding only [kind->group]. */
gpointer msim_spec_load_file (const MsimSpecKind *kind, MsimSpecParseFunc parse, const char *path,
                              GError **error);
/* The spec of preset @name. */
gpointer msim_spec_load_preset (const MsimSpecKind *kind, MsimSpecParseFunc parse,
                                const char *name, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimSpecSource, msim_spec_source_free)

G_END_DECLS
