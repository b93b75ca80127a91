"""Reference for test/unit/crossmatch-astropy.test.ts and bench/crossmatch.ts.

Usage: crossmatch_astropy.py DIR
Reads DIR/left_ra.f64, left_dec.f64, right_ra.f64, right_dec.f64 (little-endian
float64, degrees), runs astropy's SkyCoord.match_to_catalog_sky (nearest
neighbour on the sky, KD-tree built inside), and writes DIR/idx.i64 (index into
right), DIR/sep.f64 (arcsec) and DIR/timing.json (seconds, including the tree
build and SkyCoord construction).
"""
import json
import sys
import time

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

d = sys.argv[1]
lra = np.fromfile(f"{d}/left_ra.f64", dtype="<f8")
ldec = np.fromfile(f"{d}/left_dec.f64", dtype="<f8")
rra = np.fromfile(f"{d}/right_ra.f64", dtype="<f8")
rdec = np.fromfile(f"{d}/right_dec.f64", dtype="<f8")
t0 = time.perf_counter()
left = SkyCoord(ra=lra * u.deg, dec=ldec * u.deg)
right = SkyCoord(ra=rra * u.deg, dec=rdec * u.deg)
idx, sep2d, _ = left.match_to_catalog_sky(right)
sep = sep2d.to_value(u.arcsec)
t1 = time.perf_counter()
idx.astype("<i8").tofile(f"{d}/idx.i64")
np.asarray(sep, dtype="<f8").tofile(f"{d}/sep.f64")
import astropy

with open(f"{d}/timing.json", "w") as f:
    json.dump({"seconds": t1 - t0, "astropy": astropy.__version__, "numpy": np.__version__}, f)
