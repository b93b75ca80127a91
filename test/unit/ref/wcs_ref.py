"""Reference side of the WCS tests: astropy.wcs all_pix2world / all_world2pix (origin 0).

stdin: JSON [{"header": "<80-char cards>", "pix": [[x, y], ...], "sky": [[ra, dec], ...], "naxis": [w, h]}]
stdout: JSON [{"p2w": [[ra, dec]], "w2p": [[x, y]], "footprint": [[ra, dec] x4]}]
"""
import json
import sys
import warnings

import numpy as np

warnings.simplefilter('ignore')
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

out = []
for case in json.load(sys.stdin):
    h = fits.Header.fromstring(case['header'])
    w = WCS(h)
    pix = np.array(case['pix'], dtype=float).reshape(-1, 2)
    sky = np.array(case['sky'], dtype=float).reshape(-1, 2)
    p2w = w.all_pix2world(pix, 0)
    w2p = w.all_world2pix(sky, 0, tolerance=1e-12, maxiter=500, quiet=True) if len(sky) else np.zeros((0, 2))
    fp = w.calc_footprint(axes=tuple(case['naxis']), center=True)
    out.append({'p2w': p2w.tolist(), 'w2p': w2p.tolist(), 'footprint': fp.tolist()})
json.dump(out, sys.stdout)
