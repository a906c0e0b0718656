/* Export of the topology graph through igraph's GraphML and DOT writers.
 *
 * igraph writes to a FILE *; writing straight to the destination would
 * leave a truncated file behind on any failure.  Instead the writer fills
 * an in-memory stream and g_file_set_contents() moves the result into place
 * with a temporary file and rename(), so readers see the old file or the
 * complete new one.  Topologies are at most a few MB of XML, so holding the
 * text in memory costs nothing that matters. */
#include "topology-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msim-error.h"

/* DOT viewers label nodes by id unless told otherwise; a copy of the graph
 * carries a "label" attribute so that Graphviz shows vertex names.  The copy
 * keeps the shared graph free of export-only attributes. */
static igraph_error_t
write_dot (const MsimTopology *topo, FILE *out)
{
  igraph_t copy;
  IGRAPH_CHECK (igraph_copy (&copy, &topo->graph));
  IGRAPH_FINALLY (igraph_destroy, &copy);
  igraph_strvector_t labels;
  IGRAPH_CHECK (igraph_strvector_init (&labels, topo->n_vertices));
  IGRAPH_FINALLY (igraph_strvector_destroy, &labels);
  for (guint v = 0; v < topo->n_vertices; v++)
    IGRAPH_CHECK (igraph_strvector_set (&labels, v, topo->vertex_names->pdata[v]));
  IGRAPH_CHECK (SETVASV (&copy, "label", &labels));
  IGRAPH_CHECK (igraph_write_graph_dot (&copy, out));
  igraph_strvector_destroy (&labels);
  igraph_destroy (&copy);
  IGRAPH_FINALLY_CLEAN (2);
  return IGRAPH_SUCCESS;
}

gboolean
msim_topology_export (const MsimTopology *topo, const char *format, const char *path,
                      GError **error)
{
  g_return_val_if_fail (topo != NULL && format != NULL && path != NULL, FALSE);
  gboolean graphml = g_ascii_strcasecmp (format, "graphml") == 0;
  if (!graphml && g_ascii_strcasecmp (format, "dot") != 0)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_INPUT,
                   "unknown topology export format '%s' (known: graphml, dot)", format);
      return FALSE;
    }
  char *text = NULL;
  size_t length = 0;
  FILE *out = open_memstream (&text, &length);
  if (out == NULL)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME, "cannot open a memory stream: %s",
                   g_strerror (errno));
      return FALSE;
    }
  msim_topology_igraph_lock ();
  igraph_error_t rc
      = graphml ? igraph_write_graph_graphml (&topo->graph, out, FALSE) : write_dot (topo, out);
  msim_topology_igraph_unlock ();
  gboolean flushed = fclose (out) == 0;
  if (rc != IGRAPH_SUCCESS || !flushed)
    {
      free (text);
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_RUNTIME, "igraph failed to write %s for '%s'",
                   graphml ? "GraphML" : "DOT", path);
      return FALSE;
    }
  g_autoptr (GError) local = NULL;
  gboolean ok = g_file_set_contents (path, text, (gssize)length, &local);
  free (text);
  if (!ok)
    {
      g_set_error (error, MSIM_ERROR, MSIM_ERROR_IO, "cannot write '%s': %s", path, local->message);
      return FALSE;
    }
  return TRUE;
}
