"""healpy reference for image HEALPix coverage.

stdin: JSON [{"order": 8, "ra": [4 corners], "dec": [4 corners]}]
stdout: JSON [{"inclusive": [...], "strict": [...]}]  (healpy.query_polygon, nest=True)
"""
import json
import sys

import healpy as hp
import numpy as np

out = []
for case in json.load(sys.stdin):
    nside = 2 ** case['order']
    vec = hp.ang2vec(np.array(case['ra']), np.array(case['dec']), lonlat=True)
    inc = hp.query_polygon(nside, vec, inclusive=True, fact=16, nest=True)
    strict = hp.query_polygon(nside, vec, inclusive=False, nest=True)
    out.append({'inclusive': sorted(int(p) for p in inc), 'strict': sorted(int(p) for p in strict)})
json.dump(out, sys.stdout)
