/* moesim-simgrid: run a `moesim flows` input on SimGrid and print each flow's
 * completion time, so moesim's flow model can be checked against an
 * independent implementation of the same semantics.
 *
 *   moesim-simgrid --topology T.ini --flows F.csv [-o OUT.csv] [--cfg=...]
 *
 * Input: a moesim topology file made of explicit [vertex.*] and [link.*]
 * groups (builders and include= are refused: this program does not
 * re-implement them) and a flows CSV `id,src,dst,bytes,start_s` exactly as
 * `moesim flows` reads it (src/dst: GPU index or vertex name).  Output: the
 * CSV `moesim flows` writes, `id,start_s,end_s,bytes,avg_rate_Bps`, with
 * times printed with 17 significant digits.
 *
 * Mapping (see README.md next to this file for the argument):
 *  - every vertex becomes a SimGrid host (speed irrelevant: no computation);
 *  - every moesim link (full duplex, one capacity per direction) becomes a
 *    SPLITDUPLEX link, i.e. two independent SHARED links NAME_UP (a -> b)
 *    and NAME_DOWN (b -> a), each with the link's bandwidth and latency;
 *  - routes: the topology must be a tree, so the route between two vertices
 *    is the unique simple path, whatever rule picks routes; each needed
 *    (src, dst) pair gets that path as an explicit route in one Full zone
 *    (not symmetrical: the reverse route uses the other direction);
 *  - network model: CM02, TCP-gamma 0, latency and bandwidth factors 1,
 *    weight-S 0, no cross-traffic (DESIGN.md section 5): plain max-min
 *    sharing, with the route latency paid first and using no bandwidth;
 *    and network/optim:Full and surf/precision:1e-12 (see main() for why);
 *  - one actor per flow: it sleeps until start_s, then Comm::sendto(src,
 *    dst, bytes) and records the clock when the transfer returns;
 *  - a flow from a vertex to itself completes at start_s (moesim's rule for
 *    a route with no links); SimGrid would send it over its loopback link
 *    instead, so it is never handed to SimGrid.
 *
 * SimGrid options (`--cfg=name:value`, `--log=...`) are passed through; the
 * settings above apply only to what no --cfg on the command line sets.
 * Exit status: 0 success, 2 bad input (message on stderr naming the file).
 */
#include <simgrid/s4u.hpp>
#include <xbt/config.hpp>
#include <xbt/log.h>

#include <glib.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sg4 = simgrid::s4u;

namespace
{

struct Vertex
{
  std::string name;
  std::string kind; /* gpu | switch | nic | host */
  std::string host; /* GPUs only */
};

struct Edge
{
  std::string name;
  int a;
  int b;
  double bandwidth_Bps;
  double latency_s;
};

struct Flow
{
  std::string id;
  std::string start_text; /* echoed as given */
  int src;
  int dst;
  uint64_t bytes;
  double start_s;
  double end_s;
  bool done;
};

struct Input
{
  std::vector<Vertex> vertices;
  std::map<std::string, int> vertex_index;
  std::vector<int> gpu_vertex; /* GPU index -> vertex */
  std::vector<Edge> edges;
  std::vector<Flow> flows;
};

/* A user-caused problem: message on stderr, exit status 2. */
[[noreturn]] void
fail (const std::string &msg)
{
  std::fprintf (stderr, "moesim-simgrid: %s\n", msg.c_str ());
  std::exit (2);
}

bool
parse_double (const char *text, double *out)
{
  if (text == nullptr || *text == '\0')
    return false;
  char *end = nullptr;
  double v = g_ascii_strtod (text, &end);
  if (*end != '\0' || !std::isfinite (v))
    return false;
  *out = v;
  return true;
}

std::string
key_string (GKeyFile *kf, const char *path, const char *group, const char *key, bool required)
{
  GError *error = nullptr;
  char *v = g_key_file_get_string (kf, group, key, &error);
  if (v == nullptr)
    {
      g_clear_error (&error);
      if (required)
        fail (std::string (path) + ": [" + group + "] " + key + ": missing (required)");
      return "";
    }
  std::string s = g_strstrip (v);
  g_free (v);
  return s;
}

double
key_double (GKeyFile *kf, const char *path, const char *group, const char *key, bool required,
            double fallback)
{
  std::string s = key_string (kf, path, group, key, required);
  if (s.empty ())
    return fallback;
  double v;
  if (!parse_double (s.c_str (), &v))
    fail (std::string (path) + ": [" + group + "] " + key + ": not a number: '" + s + "'");
  return v;
}

/* Explicit vertices and links only; anything moesim's builders would add is
 * refused rather than guessed. */
void
read_topology (const char *path, Input *in)
{
  GKeyFile *kf = g_key_file_new ();
  GError *error = nullptr;
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &error))
    fail (std::string (path) + ": " + error->message);
  gsize n_groups = 0;
  char **groups = g_key_file_get_groups (kf, &n_groups);
  std::vector<std::string> link_groups;
  for (gsize g = 0; g < n_groups; g++)
    {
      const char *grp = groups[g];
      gsize n_keys = 0;
      char **keys = g_key_file_get_keys (kf, grp, &n_keys, nullptr);
      std::set<std::string> allowed;
      if (std::strcmp (grp, "topology") == 0)
        {
          allowed = { "name", "description", "routing" };
          for (gsize k = 0; k < n_keys; k++)
            if (std::strcmp (keys[k], "builder") == 0 || std::strcmp (keys[k], "include") == 0)
              fail (std::string (path) + ": [topology] " + keys[k]
                    + ": not supported here; write the topology as explicit [vertex.*] and "
                      "[link.*] groups");
        }
      else if (g_str_has_prefix (grp, "vertex."))
        {
          allowed = { "kind", "host" };
          Vertex v;
          v.name = grp + std::strlen ("vertex.");
          v.kind = key_string (kf, path, grp, "kind", true);
          if (v.kind != "gpu" && v.kind != "switch" && v.kind != "nic" && v.kind != "host")
            fail (std::string (path) + ": [" + grp
                  + "] kind: expected gpu, switch, nic or host, got '" + v.kind + "'");
          v.host = key_string (kf, path, grp, "host", v.kind == "gpu");
          if (in->vertex_index.count (v.name))
            fail (std::string (path) + ": [" + grp + "]: duplicate vertex");
          in->vertex_index[v.name] = (int)in->vertices.size ();
          in->vertices.push_back (v);
        }
      else if (g_str_has_prefix (grp, "link."))
        {
          allowed = { "a", "b", "bandwidth", "latency", "type" };
          link_groups.emplace_back (grp);
        }
      else
        {
          fail (std::string (path) + ": [" + grp
                + "]: unknown group (expected [topology], [vertex.*] or [link.*])");
        }
      for (gsize k = 0; k < n_keys; k++)
        if (!allowed.count (keys[k]))
          fail (std::string (path) + ": [" + grp + "] " + keys[k] + ": unknown key");
      g_strfreev (keys);
    }
  g_strfreev (groups);

  /* Links may name vertices defined later in the file, so they are read
   * once every vertex is known. */
  for (const std::string &grp : link_groups)
    {
      const char *g = grp.c_str ();
      Edge e;
      e.name = grp.substr (std::strlen ("link."));
      std::string a = key_string (kf, path, g, "a", true);
      std::string b = key_string (kf, path, g, "b", true);
      e.bandwidth_Bps = key_double (kf, path, g, "bandwidth", true, 0.0);
      e.latency_s = key_double (kf, path, g, "latency", false, 0.0);
      if (!in->vertex_index.count (a))
        fail (std::string (path) + ": [" + g + "] a: no vertex '" + a + "'");
      if (!in->vertex_index.count (b))
        fail (std::string (path) + ": [" + g + "] b: no vertex '" + b + "'");
      if (!(e.bandwidth_Bps > 0.0) || !(e.latency_s >= 0.0))
        fail (std::string (path) + ": [" + g + "]: bandwidth must be > 0 and latency >= 0");
      e.a = in->vertex_index[a];
      e.b = in->vertex_index[b];
      if (e.a == e.b)
        fail (std::string (path) + ": [" + g + "]: a link from a vertex to itself");
      in->edges.push_back (e);
    }
  g_key_file_free (kf);

  /* moesim's GPU numbering: host by host (hosts in the order they are
   * defined), then in the order the GPUs are defined within their host. */
  for (const Vertex &h : in->vertices)
    {
      if (h.kind != "host")
        continue;
      for (const Vertex &v : in->vertices)
        if (v.kind == "gpu" && v.host == h.name)
          in->gpu_vertex.push_back (in->vertex_index[v.name]);
    }
  for (const Vertex &v : in->vertices)
    if (v.kind == "gpu"
        && (!in->vertex_index.count (v.host)
            || in->vertices[in->vertex_index[v.host]].kind != "host"))
      fail (std::string (path) + ": [vertex." + v.name + "] host: '" + v.host
            + "' is not a host vertex");
}

int
parse_endpoint (const Input &in, const std::string &text)
{
  char *end = nullptr;
  errno = 0;
  long long gpu = std::strtoll (text.c_str (), &end, 10);
  if (!text.empty () && *end == '\0' && errno == 0)
    {
      if (gpu < 0 || gpu >= (long long)in.gpu_vertex.size ())
        return -1;
      return in.gpu_vertex[(size_t)gpu];
    }
  auto it = in.vertex_index.find (text);
  return it == in.vertex_index.end () ? -1 : it->second;
}

void
read_flows (const char *path, Input *in)
{
  char *data = nullptr;
  GError *error = nullptr;
  if (!g_file_get_contents (path, &data, nullptr, &error))
    fail (error->message);
  char **lines = g_strsplit (data, "\n", -1);
  g_free (data);
  bool header = false;
  std::set<std::string> ids;
  for (guint ln = 0; lines[ln]; ln++)
    {
      char *line = g_strstrip (lines[ln]);
      if (*line == '\0' || *line == '#')
        continue;
      std::string where = std::string (path) + ":" + std::to_string (ln + 1) + ": ";
      char **cells = g_strsplit (line, ",", -1);
      guint n = g_strv_length (cells);
      for (guint c = 0; c < n; c++)
        g_strstrip (cells[c]);
      if (!header)
        {
          if (std::strcmp (line, "id,src,dst,bytes,start_s") != 0)
            fail (where + "expected the header 'id,src,dst,bytes,start_s'");
          header = true;
          g_strfreev (cells);
          continue;
        }
      if (n != 5)
        fail (where + "expected 5 comma-separated cells");
      Flow f;
      f.id = cells[0];
      if (f.id.empty () || !ids.insert (f.id).second)
        fail (where + "empty or duplicate flow id '" + f.id + "'");
      f.src = parse_endpoint (*in, cells[1]);
      f.dst = parse_endpoint (*in, cells[2]);
      if (f.src < 0 || f.dst < 0)
        fail (where + "src/dst must be a GPU index or a vertex name");
      double bytes;
      /* Comm::sendto takes whole bytes. */
      if (!parse_double (cells[3], &bytes) || bytes < 0.0 || bytes > 9e15
          || bytes != std::floor (bytes))
        fail (where + "bytes must be a whole number in [0, 9e15] (SimGrid sends whole bytes), got '"
              + cells[3] + "'");
      f.bytes = (uint64_t)bytes;
      if (!parse_double (cells[4], &f.start_s) || f.start_s < 0.0)
        fail (where + "start_s must be a finite number >= 0");
      f.start_text = cells[4];
      f.end_s = -1.0;
      f.done = false;
      in->flows.push_back (f);
      g_strfreev (cells);
    }
  g_strfreev (lines);
  if (!header)
    fail (std::string (path) + ": empty file (expected the header 'id,src,dst,bytes,start_s')");
}

/* The unique path between two vertices of a tree, as (edge, a->b?) pairs:
 * parent pointers from a BFS from vertex 0, then both ends climb to their
 * lowest common ancestor. */
struct Tree
{
  std::vector<int> parent;
  std::vector<int> parent_edge;
  std::vector<int> depth;
};

Tree
build_tree (const char *path, const Input &in)
{
  size_t nv = in.vertices.size ();
  if (nv == 0)
    fail (std::string (path) + ": no vertices");
  if (in.edges.size () != nv - 1)
    fail (std::string (path) + ": " + std::to_string (in.edges.size ()) + " links for "
          + std::to_string (nv)
          + " vertices: this cross-check needs a tree (exactly vertices - 1 links), so that every "
            "route is "
            "the unique path and cannot depend on a tie-breaking rule");
  std::vector<std::vector<int> > adj (nv);
  for (size_t e = 0; e < in.edges.size (); e++)
    {
      adj[(size_t)in.edges[e].a].push_back ((int)e);
      adj[(size_t)in.edges[e].b].push_back ((int)e);
    }
  Tree t;
  t.parent.assign (nv, -2);
  t.parent_edge.assign (nv, -1);
  t.depth.assign (nv, 0);
  std::vector<int> queue{ 0 };
  t.parent[0] = -1;
  for (size_t q = 0; q < queue.size (); q++)
    {
      int v = queue[q];
      for (int e : adj[(size_t)v])
        {
          int w = in.edges[(size_t)e].a == v ? in.edges[(size_t)e].b : in.edges[(size_t)e].a;
          if (t.parent[(size_t)w] != -2)
            continue;
          t.parent[(size_t)w] = v;
          t.parent_edge[(size_t)w] = e;
          t.depth[(size_t)w] = t.depth[(size_t)v] + 1;
          queue.push_back (w);
        }
    }
  /* vertices - 1 links and connected <=> a tree. */
  if (queue.size () != nv)
    {
      for (size_t v = 0; v < nv; v++)
        if (t.parent[v] == -2)
          fail (std::string (path) + ": vertex '" + in.vertices[v].name + "' is not connected to '"
                + in.vertices[0].name + "'");
    }
  return t;
}

std::vector<sg4::LinkInRoute>
tree_route (const Input &in, const Tree &t, const std::vector<sg4::SplitDuplexLink *> &links,
            int src, int dst)
{
  std::vector<sg4::LinkInRoute> up;
  std::vector<sg4::LinkInRoute> down;
  int s = src;
  int d = dst;
  /* Going up from a child to its parent through edge e is the direction
   * e.a -> e.b (UP) when the child is e.a. */
  auto dir = [&] (int child, int e, bool towards_parent) {
    bool a_to_b = (in.edges[(size_t)e].a == child) == towards_parent;
    return a_to_b ? sg4::LinkInRoute::Direction::UP : sg4::LinkInRoute::Direction::DOWN;
  };
  while (s != d)
    {
      if (t.depth[(size_t)s] >= t.depth[(size_t)d])
        {
          int e = t.parent_edge[(size_t)s];
          up.emplace_back (links[(size_t)e], dir (s, e, true));
          s = t.parent[(size_t)s];
        }
      else
        {
          int e = t.parent_edge[(size_t)d];
          down.emplace_back (links[(size_t)e], dir (d, e, false));
          d = t.parent[(size_t)d];
        }
    }
  up.insert (up.end (), down.rbegin (), down.rend ());
  return up;
}

std::string
fmt17 (double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd (buf, sizeof buf, "%.17g", v);
  return buf;
}

} // namespace

int
main (int argc, char **argv)
{
  /* Quiet SimGrid's "Configuration change" notes, then let it take its own
   * options (--cfg, --log) out of argv. */
  xbt_log_control_set ("xbt_cfg.thres:warning");
  sg4::Engine engine (&argc, argv);

  char *topo_path = nullptr;
  char *flows_path = nullptr;
  char *out_path = nullptr;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "topology", 't', 0, G_OPTION_ARG_FILENAME, &topo_path,
      "moesim topology file of explicit vertices and links (a tree)", "T.ini" },
    { "flows", 'f', 0, G_OPTION_ARG_FILENAME, &flows_path, "Flows CSV id,src,dst,bytes,start_s",
      "F.csv" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "Output CSV (default: standard output)",
      "OUT.csv" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "Do not print the summary on standard error",
      nullptr },
    { nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr },
  };
  GOptionContext *ctx
      = g_option_context_new ("- run moesim flows on SimGrid (CM02, plain max-min)");
  g_option_context_add_main_entries (ctx, entries, nullptr);
  GError *error = nullptr;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    fail (error->message);
  g_option_context_free (ctx);
  if (topo_path == nullptr || flows_path == nullptr || argc > 1)
    fail ("usage: moesim-simgrid --topology T.ini --flows F.csv [-o OUT.csv] [--cfg=...]");

  /* DESIGN.md section 5: plain max-min sharing, latency paid first.  Plus
   * two settings that DESIGN.md does not list (README.md has the evidence):
   *  - network/optim:Full: SimGrid 3.32's default lazy update gives wrong
   *    rates when several flows leave their latency phase at the same
   *    instant (in a two-flow reproducer a flow gets twice the capacity of
   *    its bottleneck), and with the default precision below it is off by
   *    up to 1.5e-4 relative on zero-latency all-to-alls;
   *  - surf/precision:1e-12 (default 1e-9 s): SimGrid treats events closer
   *    than this as simultaneous, which moved some completions by ~1e-8 s
   *    (1.7e-6 relative in one of 1000 random cases).  One picosecond is
   *    moesim's clock quantum; with it SimGrid matched an exact rational
   *    max-min simulation to ~1e-14 relative.
   * A --cfg on the command line wins over all of these. */
  const char *const settings[][2] = {
    { "network/model", "CM02" },       { "network/TCP-gamma", "0" },
    { "network/latency-factor", "1" }, { "network/bandwidth-factor", "1" },
    { "network/weight-S", "0" },       { "network/crosstraffic", "0" },
    { "network/optim", "Full" },       { "surf/precision", "1e-12" },
  };
  for (const auto &kv : settings)
    if (simgrid::config::is_default (kv[0]))
      sg4::Engine::set_config (std::string (kv[0]) + ":" + kv[1]);

  Input in;
  read_topology (topo_path, &in);
  read_flows (flows_path, &in);
  Tree tree = build_tree (topo_path, in);

  auto *zone = sg4::create_full_zone ("moesim");
  std::vector<sg4::Host *> hosts;
  for (const Vertex &v : in.vertices)
    hosts.push_back (zone->create_host (v.name, 1e9)->seal ());
  std::vector<sg4::SplitDuplexLink *> links;
  for (const Edge &e : in.edges)
    {
      sg4::SplitDuplexLink *l = zone->create_split_duplex_link (e.name, e.bandwidth_Bps);
      l->set_latency (e.latency_s);
      l->seal ();
      links.push_back (l);
    }
  std::set<std::pair<int, int> > routed;
  for (const Flow &f : in.flows)
    {
      if (f.src == f.dst || !routed.insert ({ f.src, f.dst }).second)
        continue;
      zone->add_route (hosts[(size_t)f.src]->get_netpoint (), hosts[(size_t)f.dst]->get_netpoint (),
                       nullptr, nullptr, tree_route (in, tree, links, f.src, f.dst), false);
    }
  zone->seal ();

  for (size_t i = 0; i < in.flows.size (); i++)
    {
      Flow *f = &in.flows[i];
      if (f->src == f->dst)
        {
          f->end_s = f->start_s;
          f->done = true;
          continue;
        }
      sg4::Host *src = hosts[(size_t)f->src];
      sg4::Host *dst = hosts[(size_t)f->dst];
      sg4::Actor::create (f->id, src, [f, src, dst] () {
        sg4::this_actor::sleep_until (f->start_s);
        sg4::Comm::sendto (src, dst, f->bytes);
        f->end_s = sg4::Engine::get_clock ();
        f->done = true;
      });
    }

  auto t0 = std::chrono::steady_clock::now ();
  engine.run ();
  auto t1 = std::chrono::steady_clock::now ();
  double wall = std::chrono::duration<double> (t1 - t0).count ();

  std::string out = "id,start_s,end_s,bytes,avg_rate_Bps\n";
  double makespan = 0.0;
  for (const Flow &f : in.flows)
    {
      if (!f.done)
        fail ("flow '" + f.id + "' did not complete");
      makespan = std::max (makespan, f.end_s);
      double dur = f.end_s - f.start_s;
      out += f.id + "," + fmt17 (f.start_s) + "," + fmt17 (f.end_s) + "," + std::to_string (f.bytes)
             + "," + (dur > 0.0 ? fmt17 ((double)f.bytes / dur) : std::string ("inf")) + "\n";
    }
  if (out_path != nullptr)
    {
      if (!g_file_set_contents (out_path, out.c_str (), (gssize)out.size (), &error))
        fail (error->message);
    }
  else
    {
      std::fwrite (out.data (), 1, out.size (), stdout);
    }
  if (!quiet)
    std::fprintf (stderr,
                  "moesim-simgrid: %zu flows, %zu vertices, %zu links, makespan %.9f s, simulation "
                  "wall %.3f s\n",
                  in.flows.size (), in.vertices.size (), in.edges.size (), makespan, wall);
  g_free (topo_path);
  g_free (flows_path);
  g_free (out_path);
  return 0;
}
