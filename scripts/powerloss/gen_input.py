#!/usr/bin/env python3
"""Writes the explorer's input: 300 events with unique ids, then 100 that overwrite earlier
ids (so flushes and compactions drop versions and the drop log is written), payloads of
varied size. Usage: gen_input.py > input.jsonl"""
import json, random

rng = random.Random(7)
for i in range(1, 401):
    rid = i if i <= 300 else rng.randint(1, 150)
    print(json.dumps({
        "id": rid,
        "timestamp": 1700000000000000000 + i,
        "type": f"t{i % 3}",
        "source": "s",
        "payload": {"i": i, "pad": "x" * rng.randint(0, 150)},
    }, separators=(",", ":")))
