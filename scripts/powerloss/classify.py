#!/usr/bin/env python3
"""Lists the failures of an explorer run outside the zeros and reorder models (their findings
must be checked against what ext4 and the device can really leave). Usage: classify.py RECDIR
[MODEL]: with MODEL (zeros, reorder), that model's failures instead, from results-MODEL.json
when the run checked only that model."""
import json,os,sys
rec=sys.argv[1]; model=sys.argv[2] if len(sys.argv)>2 else None
f=rec+'/results-%s.json'%model if model and os.path.exists(rec+'/results-%s.json'%model) else rec+'/results.json'
r=json.load(open(f))
for k,v in r.items():
    mine=lambda d: model in d if model else not ('zeros' in d or 'reorder' in d)
    real=[x for x in v[:-1] if mine(json.dumps(x[0]))]
    if real:
        print(v[-1][1], k[:200].replace('\n',' '))
        for x in real[:3]: print('    ', x[0], 'acked', x[1], x[3])
