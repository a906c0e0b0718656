/* Topology files: the [topology] group, optional builder, and explicit
 * [vertex.NAME] / [link.NAME] groups (see topology/README.md).
 *
 * Order of assembly: builder vertices and links first, then explicit
 * vertices in file order, then explicit links.  Links are read after all
 * vertices so that a link may name a vertex defined further down, and
 * explicit links may join builder vertices (heterogeneous extras such as a
 * direct cable between two nodes). */
#include "topology-private.h"

#include <math.h>
#include <string.h>

#include "msim-error.h"

/* A link faster than 1 PB/s per direction or slower than 1 s is a unit
 * mistake (bits for bytes, microseconds for seconds), not hardware. */
#define MAX_BANDWIDTH_BPS 1e15
#define MAX_LATENCY_S     1.0

static const char *const topology_groups[] = { "topology", "vertex.*", "link.*", NULL };
/* <type>_efficiency, in MsimLinkType order: the achievable fraction of the
 * line rate on every link of that type (see README "Link efficiency"). */
static const char *const efficiency_keys[]
    = { "other_efficiency",      "nvlink_efficiency",   "pcie_efficiency",
        "infiniband_efficiency", "ethernet_efficiency", NULL };
static const char *const common_keys[] = { "name",
                                           "description",
                                           "routing",
                                           "builder",
                                           "other_efficiency",
                                           "nvlink_efficiency",
                                           "pcie_efficiency",
                                           "infiniband_efficiency",
                                           "ethernet_efficiency",
                                           "gpu_arch",
                                           "nvls",
                                           NULL };
G_STATIC_ASSERT (G_N_ELEMENTS (efficiency_keys) == MSIM_N_LINK_TYPES + 1);
static const char *const vertex_keys[] = { "kind", "host", NULL };
static const char *const link_keys[]
    = { "a", "b", "bandwidth", "latency", "type", "efficiency", NULL };
static const char *const vertex_kind_names[] = { "gpu", "switch", "nic", "host", NULL };
static const char *const link_type_names[]
    = { "other", "nvlink", "pcie", "infiniband", "ethernet", NULL };
static const char *const routing_names[] = { "ecmp", "split", NULL };
/* In MsimGpuArch order. */
static const char *const gpu_arch_names[] = { "unknown", "volta", "ampere", "hopper", NULL };

const char *const *
msim_topology_ini_groups (void)
{
  return topology_groups;
}

static char *
default_name (const char *path)
{
  g_autofree char *base = g_path_get_basename (path ? path : "topology");
  if (g_str_has_suffix (base, ".ini"))
    base[strlen (base) - 4] = '\0';
  return g_strdup (base);
}

static gboolean
check_topology_keys (const MsimIni *ini, const char *builder, GError **error)
{
  const char *const *bkeys = NULL;
  if (builder != NULL)
    {
      bkeys = msim_topology_builder_keys (builder);
      if (bkeys == NULL)
        {
          g_autofree char *known = g_strjoinv (", ", (char **)msim_topology_builder_names ());
          msim_ini_set_error (ini, error, "topology", "builder",
                              "unknown builder '%s' (known builders: %s)", builder, known);
          return FALSE;
        }
    }
  g_autoptr (GPtrArray) allowed = g_ptr_array_new ();
  for (const char *const *k = common_keys; *k; k++)
    g_ptr_array_add (allowed, (gpointer)*k);
  for (const char *const *k = bkeys; k && *k; k++)
    g_ptr_array_add (allowed, (gpointer)*k);
  g_ptr_array_add (allowed, NULL);
  return msim_ini_check_keys (ini, "topology", (const char *const *)allowed->pdata, error);
}

/* Reads a bandwidth in bytes/s per direction: finite, > 0, not absurd. */
static gboolean
get_bandwidth (const MsimIni *ini, const char *group, const char *key, double *out, GError **error)
{
  if (!msim_ini_get_double (ini, group, key, TRUE, 0, -G_MAXDOUBLE, G_MAXDOUBLE, out, error))
    return FALSE;
  if (!(*out > 0))
    {
      msim_ini_set_error (ini, error, group, key,
                          "bandwidth must be positive (bytes/s per direction), got %g", *out);
      return FALSE;
    }
  if (*out > MAX_BANDWIDTH_BPS)
    {
      msim_ini_set_error (ini, error, group, key,
                          "%g bytes/s is more than %g (1 PB/s); bandwidths are in bytes/s, not "
                          "bits/s",
                          *out, MAX_BANDWIDTH_BPS);
      return FALSE;
    }
  return TRUE;
}

/* Reads a latency in seconds (default 0) and returns it in picoseconds. */
static gboolean
get_latency (const MsimIni *ini, const char *group, const char *key, gint64 *out_ps, GError **error)
{
  double s = 0;
  if (!msim_ini_get_double (ini, group, key, FALSE, 0, -G_MAXDOUBLE, G_MAXDOUBLE, &s, error))
    return FALSE;
  if (s < 0)
    {
      msim_ini_set_error (ini, error, group, key, "latency must not be negative, got %g s", s);
      return FALSE;
    }
  if (s > MAX_LATENCY_S)
    {
      msim_ini_set_error (ini, error, group, key,
                          "%g s is not a link latency (latencies are in seconds; limit %g s)", s,
                          MAX_LATENCY_S);
      return FALSE;
    }
  *out_ps = msim_topology_seconds_to_ps (s);
  return TRUE;
}

/* Reads an achievable fraction of a line rate: in (0, 1]; @def when absent.
 * Below 0.05 it is a percentage or unit mistake, not a protocol overhead. */
static gboolean
get_efficiency (const MsimIni *ini, const char *group, const char *key, double def, double *out,
                GError **error)
{
  if (!msim_ini_has_key (ini, group, key))
    {
      *out = def;
      return TRUE;
    }
  if (!msim_ini_get_double (ini, group, key, TRUE, 0, -G_MAXDOUBLE, G_MAXDOUBLE, out, error))
    return FALSE;
  if (!(*out >= 0.05 && *out <= 1.0))
    {
      msim_ini_set_error (ini, error, group, key,
                          "efficiency is the achievable fraction of the line rate, in [0.05, 1]; "
                          "got %g",
                          *out);
      return FALSE;
    }
  return TRUE;
}

/* Builders read their keys through these, so that every bandwidth and
 * latency key in every group follows the same rules. */
gboolean
msim_topology_get_bandwidth (const MsimIni *ini, const char *group, const char *key, double *out,
                             GError **error)
{
  return get_bandwidth (ini, group, key, out, error);
}

gboolean
msim_topology_get_latency (const MsimIni *ini, const char *group, const char *key, gint64 *out_ps,
                           GError **error)
{
  return get_latency (ini, group, key, out_ps, error);
}

static gboolean
add_explicit_vertices (MsimTopology *topo, const MsimIni *ini, char **groups, GError **error)
{
  /* Pass 1: create every vertex in file order, so vertex ids follow the
   * file; GPUs get their host in pass 2 because a host may be defined
   * after its GPUs. */
  for (char **g = groups; *g; g++)
    {
      if (!g_str_has_prefix (*g, "vertex."))
        continue;
      if (!msim_ini_check_keys (ini, *g, vertex_keys, error))
        return FALSE;
      int kind = 0;
      if (!msim_ini_get_choice (ini, *g, "kind", TRUE, 0, vertex_kind_names, &kind, error))
        return FALSE;
      const char *name = *g + strlen ("vertex.");
      if (kind != MSIM_VERTEX_GPU && msim_ini_has_key (ini, *g, "host"))
        {
          msim_ini_set_error (ini, error, *g, "host",
                              "only GPUs take 'host' (a %s does not belong to a host here)",
                              vertex_kind_names[kind]);
          return FALSE;
        }
      gint64 id;
      if (kind == MSIM_VERTEX_HOST)
        id = msim_topology_add_host (topo, name, *g, ini, NULL, error);
      else
        id = msim_topology_add_vertex (topo, name, (MsimVertexKind)kind, -1, *g, ini, error);
      if (id < 0)
        return FALSE;
    }
  for (char **g = groups; *g; g++)
    {
      if (!g_str_has_prefix (*g, "vertex."))
        continue;
      guint id = (guint)msim_topology_find_vertex (topo, *g + strlen ("vertex."));
      if (g_array_index (topo->vertex_kinds, MsimVertexKind, id) != MSIM_VERTEX_GPU)
        continue;
      g_autofree char *host = NULL;
      if (!msim_ini_get_string (ini, *g, "host", TRUE, NULL, &host, error))
        return FALSE;
      gint64 hv = msim_topology_find_vertex (topo, host);
      if (hv < 0)
        {
          msim_ini_set_error (ini, error, *g, "host",
                              "unknown host '%s' (a [vertex.NAME] group with kind = host, or a "
                              "builder's nodeN.host)",
                              host);
          return FALSE;
        }
      if (g_array_index (topo->vertex_kinds, MsimVertexKind, hv) != MSIM_VERTEX_HOST)
        {
          msim_ini_set_error (
              ini, error, *g, "host", "'%s' is a %s, not a host", host,
              msim_vertex_kind_name (g_array_index (topo->vertex_kinds, MsimVertexKind, hv)));
          return FALSE;
        }
      g_array_index (topo->vertex_hosts, gint32, id)
          = g_array_index (topo->vertex_hosts, gint32, hv);
    }
  return TRUE;
}

static gboolean
add_explicit_links (MsimTopology *topo, const MsimIni *ini, char **groups, GError **error)
{
  for (char **g = groups; *g; g++)
    {
      if (!g_str_has_prefix (*g, "link."))
        continue;
      if (!msim_ini_check_keys (ini, *g, link_keys, error))
        return FALSE;
      guint ends[2];
      static const char *const end_keys[] = { "a", "b" };
      for (int i = 0; i < 2; i++)
        {
          g_autofree char *vname = NULL;
          if (!msim_ini_get_string (ini, *g, end_keys[i], TRUE, NULL, &vname, error))
            return FALSE;
          gint64 v = msim_topology_find_vertex (topo, vname);
          if (v < 0)
            {
              msim_ini_set_error (ini, error, *g, end_keys[i],
                                  "unknown vertex '%s' (vertices come from [vertex.NAME] groups "
                                  "and the builder)",
                                  vname);
              return FALSE;
            }
          ends[i] = (guint)v;
        }
      if (ends[0] == ends[1])
        {
          /* Accessors are valid only after finalize; read the name directly. */
          msim_ini_set_error (ini, error, *g, "b", "link connects vertex '%s' to itself",
                              (const char *)topo->vertex_names->pdata[ends[0]]);
          return FALSE;
        }
      double bw = 0, eff = 0;
      gint64 lat = 0;
      int type = MSIM_LINK_OTHER;
      if (!get_bandwidth (ini, *g, "bandwidth", &bw, error)
          || !get_latency (ini, *g, "latency", &lat, error)
          || !msim_ini_get_choice (ini, *g, "type", FALSE, MSIM_LINK_OTHER, link_type_names, &type,
                                   error)
          || !get_efficiency (ini, *g, "efficiency", 0.0, &eff, error))
        return FALSE;
      if (!msim_topology_add_link (topo, ends[0], ends[1], bw, lat, (MsimLinkType)type, *g, ini,
                                   error))
        return FALSE;
      /* 0 (not set) means: the [topology] value for the link's type. */
      g_array_index (topo->phys, MsimPhysLink, topo->phys->len - 1).efficiency = eff;
    }
  return TRUE;
}

MsimTopology *
msim_topology_new_from_ini (const MsimIni *ini, GError **error)
{
  g_return_val_if_fail (ini != NULL, NULL);
  if (!msim_ini_has_group (ini, "topology"))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: no [topology] group (a topology file starts with [topology])",
                   msim_ini_path (ini));
      return NULL;
    }
  g_autofree char *builder = NULL;
  if (!msim_ini_get_string (ini, "topology", "builder", FALSE, NULL, &builder, error)
      || !check_topology_keys (ini, builder, error))
    return NULL;

  g_autoptr (MsimTopology) topo = msim_topology_alloc (msim_ini_path (ini));
  g_autofree char *def_name = default_name (msim_ini_path (ini));
  int routing = MSIM_ROUTING_ECMP;
  if (!msim_ini_get_string (ini, "topology", "name", FALSE, def_name, &topo->name, error)
      || !msim_ini_get_choice (ini, "topology", "routing", FALSE, MSIM_ROUTING_ECMP, routing_names,
                               &routing, error))
    return NULL;
  topo->routing = (MsimRoutingMode)routing;
  int arch = MSIM_GPU_ARCH_UNKNOWN;
  if (!msim_ini_get_string (ini, "topology", "description", FALSE, "", &topo->description, error)
      || !msim_ini_get_choice (ini, "topology", "gpu_arch", FALSE, MSIM_GPU_ARCH_UNKNOWN,
                               gpu_arch_names, &arch, error)
      || !msim_ini_get_bool (ini, "topology", "nvls", FALSE, FALSE, &topo->nvls, error))
    return NULL;
  topo->gpu_arch = (MsimGpuArch)arch;
  if (topo->nvls && topo->gpu_arch != MSIM_GPU_ARCH_HOPPER)
    {
      msim_ini_set_error (ini, error, "topology", "nvls",
                          "NVLink SHARP needs third-generation NVSwitch: set gpu_arch = hopper "
                          "(got gpu_arch = %s)",
                          gpu_arch_names[topo->gpu_arch]);
      return NULL;
    }
  for (guint t = 0; efficiency_keys[t]; t++)
    if (!get_efficiency (ini, "topology", efficiency_keys[t], 1.0, &topo->type_efficiency[t],
                         error))
      return NULL;

  if (builder != NULL && !msim_topology_run_builder (topo, ini, builder, error))
    return NULL;
  g_auto (GStrv) groups = msim_ini_groups (ini);
  if (!add_explicit_vertices (topo, ini, groups, error)
      || !add_explicit_links (topo, ini, groups, error))
    return NULL;
  if (!msim_topology_finalize (topo, ini, error))
    return NULL;
  return g_steal_pointer (&topo);
}

static MsimTopology *
load_checked (MsimIni *ini, GError **error)
{
  if (ini == NULL)
    return NULL;
  if (!msim_ini_check_groups (ini, topology_groups, error))
    return NULL;
  return msim_topology_new_from_ini (ini, error);
}

MsimTopology *
msim_topology_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (MsimIni) ini = msim_ini_load (path, error);
  return load_checked (ini, error);
}

MsimTopology *
msim_topology_load_data (const char *data, gssize length, const char *name, GError **error)
{
  g_return_val_if_fail (data != NULL && name != NULL, NULL);
  gsize len = length < 0 ? strlen (data) : (gsize)length;
  g_autoptr (MsimIni) ini = msim_ini_load_data (data, len, name, error);
  return load_checked (ini, error);
}

/* Preset names are plain words: no directory parts, so a name can never
 * escape the presets directory. */
static gboolean
valid_preset_name (const char *preset)
{
  if (preset == NULL || *preset == '\0' || strlen (preset) > 100)
    return FALSE;
  for (const char *c = preset; *c; c++)
    if (!g_ascii_isalnum (*c) && *c != '-' && *c != '_' && *c != '.')
      return FALSE;
  return strstr (preset, "..") == NULL;
}

char *
msim_topology_preset_path (const char *preset)
{
  if (!valid_preset_name (preset))
    return NULL;
  g_autofree char *file
      = g_str_has_suffix (preset, ".ini") ? g_strdup (preset) : g_strconcat (preset, ".ini", NULL);
  char *path = g_build_filename (msim_data_dir (), "topology", "presets", file, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  g_free (path);
  return NULL;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *)a, *(char *const *)b);
}

char **
msim_topology_list_presets (void)
{
  g_autofree char *dir = g_build_filename (msim_data_dir (), "topology", "presets", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  GPtrArray *names = g_ptr_array_new ();
  const char *entry;
  while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (entry, ".ini"))
      g_ptr_array_add (names, g_strndup (entry, strlen (entry) - 4));
  g_ptr_array_sort (names, compare_strings);
  g_ptr_array_add (names, NULL);
  return (char **)g_ptr_array_free (names, FALSE);
}

static char *
list_presets (void)
{
  g_auto (GStrv) names = msim_topology_list_presets ();
  return names[0] ? g_strjoinv (", ", names) : g_strdup ("none");
}

MsimTopology *
msim_topology_load_preset (const char *preset, const char *const *overrides, GError **error)
{
  g_autofree char *path = msim_topology_preset_path (preset);
  if (path == NULL)
    {
      g_autofree char *known = list_presets ();
      g_set_error (
          error, MSIM_ERROR, MSIM_ERROR_INPUT,
          "unknown topology preset '%s' (known presets: %s; looked in %s/topology/presets)",
          preset ? preset : "(null)", known, msim_data_dir ());
      return NULL;
    }
  /* The overrides become a small key file that includes the preset: the
   * including file's keys win, and every error still names the preset file
   * and line, or the override by its position. */
  g_autoptr (GString) text = g_string_new ("[topology]\n");
  g_string_append_printf (text, "include = %s\n", path);
  for (const char *const *o = overrides; o && *o; o++)
    {
      const char *eq = strchr (*o, '=');
      if (eq == NULL || eq == *o || strpbrk (*o, "\n\r[") != NULL)
        {
          g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                       "topology preset '%s': override '%s' is not of the form key=value", preset,
                       *o);
          return NULL;
        }
      g_string_append_printf (text, "%.*s = %s\n", (int)(eq - *o), *o, eq + 1);
    }
  g_autofree char *name = g_strdup_printf ("%s (overrides of %s)", preset, path);
  return msim_topology_load_data (text->str, (gssize)text->len, name, error);
}
