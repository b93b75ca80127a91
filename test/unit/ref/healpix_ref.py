"""Reference values from healpy for test/unit/healpix-*.test.ts.

Usage: /usr/bin/python3 healpix_ref.py COMMAND[,COMMAND...] DIR
Inputs and outputs are raw little-endian float64 / int64 files inside DIR;
the command names which files it reads and writes (see each function).
"""
import math
import os
import sys

import numpy as np


def _load_healpy():
    """healpy's pixel functions without running healpy/__init__.py, which imports
    matplotlib and most of astropy (5+ s per spawn on a busy 2-core VM). The
    functions are the very objects the package re-exports."""
    import importlib.util
    import types
    try:
        spec = importlib.util.find_spec('healpy')
        pkg = types.ModuleType('healpy')
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules['healpy'] = pkg
        import healpy.pixelfunc as pf
        import healpy._query_disc as qd
        ns = types.SimpleNamespace(**{n: getattr(pf, n) for n in (
            'ang2pix', 'pix2ang', 'get_all_neighbours', 'vec2ang', 'ang2vec')})
        ns.query_disc = qd.query_disc
        ns.boundaries = qd.boundaries
        return ns
    except Exception:  # layout changed: fall back to the full (slow) import
        for name in [m for m in sys.modules if m == 'healpy' or m.startswith('healpy.')]:
            del sys.modules[name]
        import healpy
        return healpy


hp = _load_healpy()


def rd(d, name, dtype=np.float64):
    return np.fromfile(os.path.join(d, name), dtype=dtype)


def wr(d, name, arr, dtype=np.float64):
    np.ascontiguousarray(arr, dtype=dtype).tofile(os.path.join(d, name))


def cmd_ang2pix(d):
    """ra.f64, dec.f64 (+ corner_req.f64 = (order, pix, step) triples, optional)
    -> corner_ra.f64, corner_dec.f64: the healpy.boundaries points of the requested pixels;
       pix_<order>.i64 for orders 0, 3, 10, 18, 24, 29 over ra/dec followed by the corners;
       glibc_cos.f64, glibc_sin.f64: C-library cos/sin of theta = pi/2 - radians(dec) for the
       same points, i.e. exactly what healpix_cxx computed."""
    ra, dec = rd(d, 'ra.f64'), rd(d, 'dec.f64')
    if os.path.exists(os.path.join(d, 'corner_req.f64')):
        req = rd(d, 'corner_req.f64').reshape(-1, 3)
        ras, decs = [], []
        for order, pix, step in req:
            v = hp.boundaries(2 ** int(order), int(pix), step=int(step), nest=True)
            lon, lat = hp.vec2ang(v.T, lonlat=True)
            ras.append(lon)
            decs.append(lat)
        cra, cdec = np.concatenate(ras), np.concatenate(decs)
        wr(d, 'corner_ra.f64', cra)
        wr(d, 'corner_dec.f64', cdec)
        ra, dec = np.concatenate([ra, cra]), np.concatenate([dec, cdec])
    for order in (0, 3, 10, 18, 24, 29):
        wr(d, 'pix_%d.i64' % order, hp.ang2pix(2 ** order, ra, dec, nest=True, lonlat=True), np.int64)
    theta = np.pi / 2.0 - np.radians(dec)
    wr(d, 'glibc_cos.f64', np.array([math.cos(x) for x in theta]))
    wr(d, 'glibc_sin.f64', np.array([math.sin(x) for x in theta]))


def cmd_pix2ang(d):
    """p2a_order.f64, p2a_pix.i64 -> p2a_ra.f64, p2a_dec.f64."""
    orders = rd(d, 'p2a_order.f64').astype(np.int64)
    pix = rd(d, 'p2a_pix.i64', np.int64)
    ra = np.empty(len(pix))
    dec = np.empty(len(pix))
    for order in np.unique(orders):
        m = orders == order
        ra[m], dec[m] = hp.pix2ang(2 ** int(order), pix[m], nest=True, lonlat=True)
    wr(d, 'p2a_ra.f64', ra)
    wr(d, 'p2a_dec.f64', dec)


def cmd_neighbours(d):
    """nb_order.f64, nb_pix.i64 -> nb_out.i64 (8 per pixel, healpy order SW W NW N NE E SE S)."""
    orders = rd(d, 'nb_order.f64').astype(np.int64)
    pix = rd(d, 'nb_pix.i64', np.int64)
    out = np.empty((len(pix), 8), dtype=np.int64)
    for order in np.unique(orders):
        m = orders == order
        out[m] = hp.get_all_neighbours(2 ** int(order), pix[m], nest=True).T
    wr(d, 'nb_out.i64', out, np.int64)


def cmd_query_disc(d):
    """qd_cones.f64 = (order, ra, dec, radius_deg, inclusive, fact) rows
    -> qd_counts.i64 (one per cone), qd_pix.i64 (all results concatenated)."""
    cones = rd(d, 'qd_cones.f64').reshape(-1, 6)
    counts, chunks = [], []
    for order, ra, dec, radius, inclusive, fact in cones:
        vec = hp.ang2vec(ra, dec, lonlat=True)
        p = hp.query_disc(2 ** int(order), vec, np.radians(radius), inclusive=bool(inclusive),
                          fact=int(fact), nest=True)
        counts.append(len(p))
        chunks.append(np.asarray(p, dtype=np.int64))
    wr(d, 'qd_counts.i64', np.array(counts), np.int64)
    wr(d, 'qd_pix.i64', np.concatenate(chunks) if chunks else np.zeros(0), np.int64)


def cmd_boundaries(d):
    """bd_req.f64 = (order, pix, step) rows -> bd_xyz.f64 (x, y, z per point, 4*step points per row)."""
    req = rd(d, 'bd_req.f64').reshape(-1, 3)
    out = []
    for order, pix, step in req:
        out.append(hp.boundaries(2 ** int(order), int(pix), step=int(step), nest=True).T.ravel())
    wr(d, 'bd_xyz.f64', np.concatenate(out))


def cmd_ping(d):
    """Checks that healpy's pixel functions load."""
    print(hp.ang2pix(1, 0.0, 0.0, nest=True, lonlat=True))


def cmd_libm(d):
    """theta.f64 -> cos.f64, sin.f64 computed by the C library (as healpix_cxx does)."""
    t = rd(d, 'theta.f64')
    wr(d, 'cos.f64', np.array([math.cos(x) for x in t]))
    wr(d, 'sin.f64', np.array([math.sin(x) for x in t]))


COMMANDS = {name[4:]: fn for name, fn in globals().items() if name.startswith('cmd_')}

if __name__ == '__main__':
    for command in sys.argv[1].split(','):  # several commands share one interpreter start
        COMMANDS[command](sys.argv[2])
