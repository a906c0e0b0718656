#!/usr/bin/env python3
"""ExFlow-style expert placement on the real Mixtral-8x7B MT-Bench traces.

Leave-one-category-out: for each of the four MT-Bench categories, placements
are fitted on the other three categories (their traces concatenated) and
evaluated on the held-out one, so every number in the table is measured on
tokens the placement never saw.  Shapes: 2, 4 and 8 GPUs in one node, and
2 nodes x 4 GPUs.  Policies: contiguous (the DeepSpeed/ExFlow baseline),
affinity-local-search (moesim's default) and exflow-ilp (GLPK, with a time
limit).  "in-sample" is the default policy fitted on the held-out category
itself: the best any balanced placement without copies can do there.

A second table shows the balance/affinity tension on 8 GPUs: EPLB's copies
balance the load but, routed the way EPLB deployments route (copies share
tokens regardless of where a token is), they cost locality.

Only the Python standard library is used.  moesim is taken from $MOESIM,
else build/sim/moesim, else the development driver of build-analysis.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TRACES = os.path.join(ROOT, "workloads", "traces", "mixtral-8x7b-mtbench")
CATEGORIES = ["coding", "humanities", "math", "writing"]
SHAPES = [("2 GPUs", 2, 1), ("4 GPUs", 4, 1), ("8 GPUs", 8, 1), ("2 nodes x 4 GPUs", 8, 2)]


def find_moesim():
    candidates = [os.environ.get("MOESIM"),
                  os.path.join(ROOT, "build-release", "sim", "moesim"),
                  os.path.join(ROOT, "build", "sim", "moesim")]
    for c in candidates:
        if not c or not os.access(c, os.X_OK):
            continue
        probe = subprocess.run([c, "place", "list"], capture_output=True, text=True)
        if probe.returncode == 0:
            return c
    sys.exit("run.py: no moesim with the 'place' command found; build it and set MOESIM")


def run_json(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("run.py: command failed (%d): %s\n%s" % (res.returncode, " ".join(cmd), res.stderr))
    return json.loads(res.stdout)


def trace(cat):
    return os.path.join(TRACES, cat + ".json")


def fit(moesim, cats, gpus, nodes, policy, options, out, seed):
    cmd = [moesim, "place", "--gpus", str(gpus), "--nodes", str(nodes), "--policy", policy,
           "--seed", str(seed), "--experts", "8", "--json", "-o", out]
    for c in cats:
        cmd += ["--trace", trace(c)]
    for o in options:
        cmd += ["--option", o]
    return run_json(cmd)


def evaluate(moesim, cat, gpus, nodes, placement):
    return run_json([moesim, "place", "eval", "--trace", trace(cat), "--placement", placement,
                     "--gpus", str(gpus), "--nodes", str(nodes), "--experts", "8", "--json"])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ilp-time-limit", type=float, default=60.0,
                    help="GLPK time limit per fit in seconds (ExFlow used 60 s); 0 skips the ILP")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="directory for results.csv and results.md")
    args = ap.parse_args()
    moesim = find_moesim()
    os.makedirs(args.out, exist_ok=True)
    policies = [("contiguous", []), ("affinity-local-search", [])]
    if args.ilp_time_limit > 0:
        policies.append(("exflow-ilp", ["time-limit=%g" % args.ilp_time_limit]))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "p.csv")
        for held in CATEGORIES:
            train = [c for c in CATEGORIES if c != held]
            for label, gpus, nodes in SHAPES:
                for policy, opts in policies:
                    f = fit(moesim, train, gpus, nodes, policy, opts, p, args.seed)
                    e = evaluate(moesim, held, gpus, nodes, p)
                    st = f["stats"]
                    rows.append({
                        "held_out": held, "shape": label, "gpus": gpus, "nodes": nodes,
                        "policy": policy, "fitted_on": "+".join(train),
                        "cross_gpu": e["placement_eval"]["cross_gpu"],
                        "cross_node": e["placement_eval"]["cross_node"] if nodes > 1 else "",
                        "fit_cross_gpu": f["fit"]["cross_gpu"],
                        "seconds": st.get("seconds"),
                        "mip_gap": st.get("mip_gap", "") if policy == "exflow-ilp" else "",
                        "exact": st.get("exact", ""),
                    })
                    print("%-10s %-17s %-22s held-out cross-GPU %.4f" %
                          (held, label, policy, rows[-1]["cross_gpu"]), flush=True)
                f = fit(moesim, [held], gpus, nodes, "affinity-local-search", [], p, args.seed)
                rows.append({
                    "held_out": held, "shape": label, "gpus": gpus, "nodes": nodes,
                    "policy": "in-sample", "fitted_on": held,
                    "cross_gpu": f["fit"]["cross_gpu"],
                    "cross_node": f["fit"]["cross_node"] if nodes > 1 else "",
                    "fit_cross_gpu": f["fit"]["cross_gpu"], "seconds": f["stats"]["seconds"],
                    "mip_gap": "", "exact": f["stats"].get("exact", ""),
                })

        # Balance versus affinity on 8 GPUs (one node), same protocol.
        balance = []
        variants = [("contiguous", "contiguous", []),
                    ("affinity-local-search", "affinity-local-search", []),
                    ("eplb (8 extra slots)", "eplb", ["extra-slots=8", "mode=global"]),
                    ("eplb base=affinity (8 extra)", "eplb",
                     ["extra-slots=8", "base=affinity"])]
        for held in CATEGORIES:
            train = [c for c in CATEGORIES if c != held]
            for label, policy, opts in variants:
                fit(moesim, train, 8, 1, policy, opts, p, args.seed)
                e = evaluate(moesim, held, 8, 1, p)["placement_eval"]
                balance.append({"held_out": held, "variant": label,
                                "cross_gpu_split": e["cross_gpu"],
                                "cross_gpu_local": e["cross_gpu_local"],
                                "load_imbalance": e["load_imbalance"],
                                "load_imbalance_local": e["load_imbalance_local"],
                                "load_imbalance_max": e["load_imbalance_max"]})

    with open(os.path.join(args.out, "results.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(args.out, "balance.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(balance[0].keys()))
        w.writeheader()
        w.writerows(balance)

    # Markdown: one row per held-out category and policy, one column per shape.
    def cell(r):
        s = "%.3f" % r["cross_gpu"]
        if r["nodes"] > 1:
            s += " / %.3f" % r["cross_node"]
        if r["policy"] == "exflow-ilp" and r["mip_gap"] not in ("", None):
            s += " (gap %.2f)" % r["mip_gap"] if r["mip_gap"] > 0 else " (opt)"
        return s

    order = [p for p, _ in policies] + ["in-sample"]
    lines = ["| held-out category | policy | " + " | ".join(s[0] for s in SHAPES) + " |",
             "|---|---|" + "---|" * len(SHAPES)]
    for held in CATEGORIES:
        for pol in order:
            cells = []
            for label, _, _ in SHAPES:
                r = [x for x in rows if x["held_out"] == held and x["shape"] == label
                     and x["policy"] == pol][0]
                cells.append(cell(r))
            lines.append("| %s | %s | %s |" % (held, pol, " | ".join(cells)))
    lines += ["", "| held-out category | layout (8 GPUs) | cross-GPU, split | "
              "cross-GPU, local-first | load max/mean, split | load max/mean, local-first |",
              "|---|---|---|---|---|---|"]
    for b in balance:
        lines.append("| %s | %s | %.3f | %.3f | %.3f | %.3f |" %
                     (b["held_out"], b["variant"], b["cross_gpu_split"], b["cross_gpu_local"],
                      b["load_imbalance"], b["load_imbalance_local"]))
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    # The figure (gnuplot), from the results just written.
    if os.path.abspath(args.out) == os.path.join(HERE, "results"):
        subprocess.run([os.path.join(HERE, "plot.sh")], check=True)


if __name__ == "__main__":
    main()
