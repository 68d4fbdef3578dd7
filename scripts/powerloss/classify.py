#!/usr/bin/env python3
"""Lists the failures of an explorer run outside the zeros model. Usage: classify.py RECDIR"""
import json,sys
r=json.load(open(sys.argv[1]+'/results.json'))
for k,v in r.items():
    real=[x for x in v[:-1] if 'zeros' not in json.dumps(x[0])]
    if real:
        print(v[-1][1], k[:200].replace('\n',' '))
        for x in real[:3]: print('    ', x[0], 'acked', x[1], x[3])
