#!/usr/bin/env python3
"""Parses every RIPE Atlas traceroute result of a newline-delimited file with
ripe-atlas-sagan (the official parser), touching each hop's packets as a
consumer would, and prints the count. Usage: sagan_parse.py FILE"""
import sys
from ripe.atlas.sagan import TracerouteResult

count = hops = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if not line.strip():
            continue
        r = TracerouteResult(line)
        for hop in r.hops:
            for packet in hop.packets:
                if packet.origin:
                    hops += 1
        count += 1
print(count, hops)
