/* libFuzzer harness: the flows CSV reader of `moesim flows` and, for
 * inputs that parse, the simulation itself (max-min or analytical, ECMP or
 * split routing, network invariant checks on).  The reader is static in
 * sim/cli/cmd-flows.c, so this file includes that source (with stand-ins
 * for the two helpers sim/cli/main.c defines).  The first input byte picks
 * the model and routing; the rest is the CSV. */
#include "fuzz-common.h"

/* cmd-flows.c, with its static functions, in this translation unit. */
#include "cmd-flows.c"

int
msim_cli_fail (GError *error)
{
  g_clear_error (&error);
  return 2;
}

gboolean
msim_cli_parse (GOptionContext *context, int *argc, char ***argv)
{
  return FALSE;
}

/* A leaf-spine fabric with several equal-cost paths between nodes, slow
 * enough (1 kB/s NIC uplinks next to 100 GB/s NVLink) that large flows
 * reach the end of simulated time. */
static const char *const fabric
    = "[topology]\nname = fabric\nbuilder = leaf-spine\nnodes = 4\ngpus_per_node = 2\n"
      "nics_per_node = 2\nnodes_per_leaf = 1\nspines = 2\nnvlink_bandwidth = 100e9\n"
      "nvlink_latency = 1e-7\npcie_bandwidth = 20e9\nnic_bandwidth = 1e3\n"
      "nic_latency = 1e-6\nspine_latency = 2e-6\nrouting = %s\n";

static MsimTopology *topologies[2];

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *text = g_strdup_printf (fabric, i ? "split" : "ecmp");
      GError *error = NULL;
      topologies[i] = msim_topology_load_data (text, -1, "fabric.ini", &error);
      if (topologies[i] == NULL)
        g_error ("%s", error->message);
    }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  guint8 mode = data[0];
  MsimTopology *topo = topologies[mode & 1];
  MsimNetworkModel model = mode & 2 ? MSIM_NETWORK_ANALYTICAL : MSIM_NETWORK_MAXMIN;
  /* The reader gets what g_file_get_contents gives: the bytes, then a NUL. */
  gsize len = size - 1;
  g_autofree char *text = g_malloc (len + 1);
  memcpy (text, data + 1, len);
  text[len] = '\0';
  GError *error = NULL;
  g_autoptr (GPtrArray) rows = parse_flows (text, len, "fuzz.csv", topo, &error);
  if (rows == NULL)
    {
      fuzz_check_error (error, "parse_flows");
      g_clear_error (&error);
      return 0;
    }
  if (rows->len > 200)
    return 0; /* keep executions fast; parsing is what scales */
  /* MSIM_FUZZ_NO_NETWORK_CHECK=1 turns the network invariant checks off,
   * to look past a known check failure for other bugs. */
  static int check = -1;
  if (check < 0)
    check = g_getenv ("MSIM_FUZZ_NO_NETWORK_CHECK") == NULL;
  g_autoptr (MsimEngine) engine = msim_engine_new ();
  g_autoptr (MsimNetwork) net
      = simulate_flows (topo, rows, "fuzz.csv", engine, model, check, &error);
  if (net == NULL)
    {
      fuzz_check_error (error, "simulate_flows");
      g_clear_error (&error);
      return 0;
    }
  for (guint i = 0; i < rows->len; i++)
    {
      FlowRow *r = g_ptr_array_index (rows, i);
      if (r->pending != 0 || r->end < r->start)
        abort ();
    }
  return 0;
}
