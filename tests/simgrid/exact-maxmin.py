#!/usr/bin/env python3
"""Exact max-min flow simulation in rational arithmetic: the referee when
moesim and SimGrid disagree (tests/simgrid/README.md).

    tests/simgrid/exact-maxmin.py T.ini F.csv > exact.csv
    build/tests/simgrid/xcheck-gen compare moesim.csv exact.csv

Same semantics and input restrictions as moesim-simgrid (a tree topology of
explicit [vertex.*] and [link.*] groups; flows `id,src,dst,bytes,start_s`
with src/dst a GPU index or a vertex name): each flow waits for its start,
then its route's latency, then shares link capacity max-min fairly with
equal weights (progressive filling), re-solved from scratch at every event.
Every number is a Fraction, so ties are exact and nothing is rounded until
the times are printed.  Slow (seconds for a few hundred flows): for
adjudicating small cases only.
"""
import configparser
import sys
from collections import defaultdict, deque
from fractions import Fraction


def load(topology_path, flows_path):
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    cp.optionxform = str
    cp.read(topology_path)
    vertices = [s[len("vertex."):] for s in cp.sections() if s.startswith("vertex.")]
    kind = {v: cp["vertex." + v]["kind"] for v in vertices}
    host = {v: cp["vertex." + v].get("host") for v in vertices}
    links = []
    for s in cp.sections():
        if s.startswith("link."):
            g = cp[s]
            links.append((g["a"], g["b"], Fraction(g["bandwidth"]), Fraction(g.get("latency", "0"))))
    if len(links) != len(vertices) - 1:
        sys.exit("exact-maxmin: the topology must be a tree (vertices - 1 links)")
    # moesim's GPU numbering: hosts in definition order, then GPUs in order.
    gpus = [g for h in vertices if kind[h] == "host" for g in vertices
            if kind[g] == "gpu" and host[g] == h]
    adj = defaultdict(list)
    capacity, latency = {}, {}
    for i, (a, b, bw, lat) in enumerate(links):
        adj[a].append((b, 2 * i))      # directed link 2i: a -> b
        adj[b].append((a, 2 * i + 1))  # 2i + 1: b -> a
        capacity[2 * i] = capacity[2 * i + 1] = bw
        latency[2 * i] = latency[2 * i + 1] = lat

    def route(src, dst):
        prev = {src: None}
        queue = deque([src])
        while queue:
            v = queue.popleft()
            for w, dl in adj[v]:
                if w not in prev:
                    prev[w] = (v, dl)
                    queue.append(w)
        path, v = [], dst
        while prev[v] is not None:
            v, dl = prev[v][0], prev[v][1]
            path.append(dl)
        return path[::-1]

    flows = []
    lines = [ln.strip() for ln in open(flows_path) if ln.strip() and not ln.startswith("#")]
    for ln in lines[1:]:
        fid, src, dst, nbytes, start = ln.split(",")
        ends = [gpus[int(x)] if x.isdigit() else x for x in (src, dst)]
        r = route(*ends) if ends[0] != ends[1] else []
        flows.append({"id": fid, "route": r, "left": Fraction(nbytes), "start_text": start,
                      "ready": Fraction(start) + sum((latency[l] for l in r), Fraction(0)),
                      "end": None})
    return capacity, flows


def maxmin(capacity, active):
    """Progressive filling: returns {index in active: rate}."""
    rate, left = {}, dict(capacity)
    unfrozen = set(range(len(active)))
    while unfrozen:
        count = defaultdict(int)
        for k in unfrozen:
            for l in active[k]["route"]:
                count[l] += 1
        share = min(left[l] / n for l, n in count.items())
        full = {l for l, n in count.items() if left[l] / n == share}
        for k in [k for k in unfrozen if full.intersection(active[k]["route"])]:
            rate[k] = share
            for l in active[k]["route"]:
                left[l] -= share
            unfrozen.discard(k)
    return rate


def simulate(capacity, flows):
    now = Fraction(0)
    while True:
        for f in flows:
            if f["end"] is None and f["ready"] <= now and (not f["route"] or f["left"] == 0):
                f["end"] = now
        pending = [f for f in flows if f["end"] is None]
        if not pending:
            return
        active = [f for f in pending if f["ready"] <= now]
        rate = maxmin(capacity, active)
        times = [f["ready"] for f in pending if f["ready"] > now]
        times += [now + f["left"] / rate[k] for k, f in enumerate(active)]
        nxt = min(times)
        for k, f in enumerate(active):
            f["left"] -= rate[k] * (nxt - now)
        now = nxt


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: exact-maxmin.py T.ini F.csv > OUT.csv")
    capacity, flows = load(sys.argv[1], sys.argv[2])
    simulate(capacity, flows)
    print("id,start_s,end_s,bytes,avg_rate_Bps")
    for f in flows:
        print("%s,%s,%.17g,," % (f["id"], f["start_text"], float(f["end"])))


if __name__ == "__main__":
    main()
