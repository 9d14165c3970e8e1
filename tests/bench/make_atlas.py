#!/usr/bin/env python3
"""Writes N RIPE Atlas traceroute results, one per line, to stdout: the real
published results of the corpus (collector/tests/corpus/*atlas-json*) and the
reader fixtures, cycled, each copy with its own probe id and timestamp so no
two lines are identical. Usage: make_atlas.py N"""
import glob, json, os, sys

root = os.path.join(os.path.dirname(__file__), "..", "..", "collector", "tests")
results = []
for path in sorted(glob.glob(os.path.join(root, "corpus", "*atlas-json*"))):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for r in doc if isinstance(doc, list) else [doc]:
        if r.get("type", "traceroute") == "traceroute" and r.get("result"):
            results.append(r)
if not results:
    sys.exit("no Atlas results found in the corpus")
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    r = dict(results[i % len(results)])
    r["prb_id"] = 1000 + i
    r["timestamp"] = 1500000000 + i
    out.write(json.dumps(r, separators=(",", ":")))
    out.write("\n")
