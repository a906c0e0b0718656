/* Placement policies from shared objects (see placement-plugin.h for the
 * ABI).  The descriptor's ABI version is read and compared before anything
 * else in it is touched: a descriptor of another version may have another
 * layout, so its other fields cannot be trusted. */
#include <gmodule.h>
#include <string.h>

#include "msim-error.h"
#include "placement.h"

struct _MsimPlacementPlugin
{
  GModule *module;
  const MsimPlacementPolicy *policy;
  char *path;
};

MsimPlacementPlugin *
msim_placement_plugin_open (const char *path, GError **error)
{
  if (!g_module_supported ())
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: this platform cannot load placement plugins", path);
      return NULL;
    }
  if (path == NULL || *path == '\0')
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "plugin: empty path (use plugin:PATH)");
      return NULL;
    }
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: no such plugin file", path);
      return NULL;
    }
  /* A path without a directory would make the dynamic loader search the
   * library path instead of opening the file named. */
  g_autofree char *full = g_path_is_absolute (path) || strchr (path, '/')
                              ? g_strdup (path)
                              : g_build_filename (".", path, NULL);
  g_autoptr (GError) local = NULL;
  GModule *m = g_module_open_full (full, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY, &local);
  if (m == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT, "%s: cannot load plugin: %s", path,
                   local ? local->message : "unknown error");
      return NULL;
    }
  gpointer sym = NULL;
  if (!g_module_symbol (m, MSIM_PLACEMENT_PLUGIN_SYMBOL, &sym) || sym == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: not a moesim placement plugin (no '%s' descriptor exported with "
                   "G_MODULE_EXPORT)",
                   path, MSIM_PLACEMENT_PLUGIN_SYMBOL);
      g_module_close (m);
      return NULL;
    }
  const MsimPlacementPluginDescriptor *d = sym;
  if (d->abi_version != MSIM_PLACEMENT_ABI_VERSION)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: plugin ABI version %u, but this moesim supports version %u; rebuild the "
                   "plugin against this moesim's analysis/placement-plugin.h",
                   path, d->abi_version, MSIM_PLACEMENT_ABI_VERSION);
      g_module_close (m);
      return NULL;
    }
  if (d->descriptor_size < sizeof (MsimPlacementPluginDescriptor))
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: plugin descriptor is %u bytes, expected at least %u", path,
                   d->descriptor_size, (guint)sizeof (MsimPlacementPluginDescriptor));
      g_module_close (m);
      return NULL;
    }
  const MsimPlacementPolicy *pol = d->policy;
  if (pol == NULL || pol->name == NULL || pol->init == NULL || pol->place == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "%s: plugin descriptor has no policy, or the policy lacks a name, init() or "
                   "place()",
                   path);
      g_module_close (m);
      return NULL;
    }
  MsimPlacementPlugin *pl = g_new0 (MsimPlacementPlugin, 1);
  pl->module = m;
  pl->policy = pol;
  pl->path = g_strdup (path);
  return pl;
}

const MsimPlacementPolicy *
msim_placement_plugin_policy (const MsimPlacementPlugin *plugin)
{
  return plugin->policy;
}

const char *
msim_placement_plugin_path (const MsimPlacementPlugin *plugin)
{
  return plugin->path;
}

void
msim_placement_plugin_free (MsimPlacementPlugin *plugin)
{
  if (plugin == NULL)
    return;
  g_module_close (plugin->module);
  g_free (plugin->path);
  g_free (plugin);
}
