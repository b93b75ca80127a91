"""Reference side of the FITS tests, run with Debian's /usr/bin/python3 (astropy).

  fits_ref.py dump <file.fits> <outdir>   -> <outdir>/manifest.json + hdu<N>.bin
  fits_ref.py make <outdir>               -> writes reference FITS files made by astropy

manifest.json: {"hdus": [{"index", "kind", "name", "bitpix", "shape" (FITS order,
width first), "dtype" (numpy little-endian name) | null, "cards": [[key, value, comment]],
"error": str | null}], "error": str | null}
"""
import json
import os
import sys
import warnings

import numpy as np

warnings.simplefilter('ignore')
from astropy.io import fits  # noqa: E402


def jsonable(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return v if abs(v) < 2**53 else {'bigint': str(v)}
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, complex):
        return {'complex': [v.real, v.imag]}
    if type(v).__name__ == 'Undefined':
        return None
    return {'repr': repr(v)}


def kind_of(hdu):
    n = type(hdu).__name__
    return {'PrimaryHDU': 'image', 'ImageHDU': 'image', 'CompImageHDU': 'compressed-image',
            'BinTableHDU': 'bintable', 'TableHDU': 'table', 'GroupsHDU': 'random-groups'}.get(n, n)


def dump(path, outdir):
    os.makedirs(outdir, exist_ok=True)
    out = {'hdus': [], 'error': None}
    try:
        hl = fits.open(path)
    except Exception as e:  # noqa: BLE001
        out['error'] = f'{type(e).__name__}: {e}'
        json.dump(out, open(os.path.join(outdir, 'manifest.json'), 'w'))
        return
    with hl:
        for i, hdu in enumerate(hl):
            rec = {'index': i, 'kind': kind_of(hdu), 'name': hdu.name, 'error': None, 'dtype': None}
            try:
                h = hdu.header
                rec['cards'] = [[c.keyword, jsonable(c.value), c.comment] for c in h.cards]
                rec['bitpix'] = h.get('BITPIX')
                naxis = h.get('NAXIS', 0)
                rec['shape'] = [h.get(f'NAXIS{k}', 0) for k in range(1, naxis + 1)]
                if rec['kind'] in ('image', 'compressed-image'):
                    data = hdu.data
                    if data is not None and data.size > 0:
                        arr = np.ascontiguousarray(data)
                        le = arr.astype(arr.dtype.newbyteorder('<'), copy=False)
                        rec['dtype'] = le.dtype.name
                        with open(os.path.join(outdir, f'hdu{i}.bin'), 'wb') as f:
                            f.write(le.tobytes())
            except Exception as e:  # noqa: BLE001
                rec['error'] = f'{type(e).__name__}: {e}'
            out['hdus'].append(rec)
    json.dump(out, open(os.path.join(outdir, 'manifest.json'), 'w'))


def make(outdir):
    """FITS files written by astropy, for our reader."""
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(42)
    # every BITPIX, plain
    for name, dt in [('u8', np.uint8), ('i16', np.int16), ('i32', np.int32), ('i64', np.int64),
                     ('f32', np.float32), ('f64', np.float64)]:
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=(13, 17), dtype=dt, endpoint=True)
        else:
            a = rng.normal(0, 1e3, size=(13, 17)).astype(dt)
            a[0, 0] = np.nan
            a[1, 1] = np.inf
        fits.PrimaryHDU(a).writeto(os.path.join(outdir, f'plain_{name}.fits'), overwrite=True)
    # unsigned conventions
    fits.PrimaryHDU(rng.integers(0, 65535, size=(9, 11), dtype=np.uint16, endpoint=True)).writeto(os.path.join(outdir, 'uint16.fits'), overwrite=True)
    fits.PrimaryHDU(rng.integers(0, 2**32 - 1, size=(9, 11), dtype=np.uint32, endpoint=True)).writeto(os.path.join(outdir, 'uint32.fits'), overwrite=True)
    fits.PrimaryHDU(rng.integers(-128, 127, size=(9, 11), dtype=np.int8, endpoint=True)).writeto(os.path.join(outdir, 'int8.fits'), overwrite=True)
    # scaled integers with BLANK
    h = fits.PrimaryHDU(rng.normal(100, 10, size=(20, 30)).astype(np.float32))
    h.scale('int16', bscale=0.01, bzero=100.0)
    h.header['BLANK'] = -32768
    h.writeto(os.path.join(outdir, 'scaled_i16.fits'), overwrite=True)
    with fits.open(os.path.join(outdir, 'scaled_i16.fits'), mode='update', do_not_scale_image_data=True) as hl:
        hl[0].data[0, :5] = -32768
    h = fits.PrimaryHDU(rng.normal(0, 1e6, size=(7, 8)))
    h.scale('int32', bscale=3.5, bzero=-12.25)
    h.writeto(os.path.join(outdir, 'scaled_i32.fits'), overwrite=True)
    # calexp-like MEF with long strings and history
    img = rng.normal(0, 5, size=(40, 50)).astype(np.float32)
    mask = rng.integers(0, 2**16 - 1, size=(40, 50), dtype=np.int32)
    var = np.abs(rng.normal(25, 2, size=(40, 50))).astype(np.float32)
    p = fits.PrimaryHDU()
    p.header['FILTER'] = 'r'
    p.header['LONGSTR'] = 'this is a very long string value ' * 6 + 'with an ampersand & inside'
    p.header['QUOTED'] = "it's quoted"
    p.header['HISTORY'] = 'first history line'
    p.header['HISTORY'] = 'second history line which is long ' * 3
    p.header['COMMENT'] = 'a comment card'
    p.header['HIERARCH ESO DET CHIP TEMP'] = -120.5
    p.header['BIGINT'] = 2**60
    p.header['TINY'] = 1.5e-300
    p.header['NEG'] = -0.0
    p.header['UNDEF'] = None
    hl = fits.HDUList([p, fits.ImageHDU(img, name='IMAGE'), fits.ImageHDU(mask, name='MASK'), fits.ImageHDU(var, name='VARIANCE')])
    hl.writeto(os.path.join(outdir, 'calexp.fits'), overwrite=True)
    # tile-compressed images
    ints = rng.integers(-500, 3000, size=(37, 53)).astype(np.int16)
    ints32 = rng.integers(-10**8, 10**8, size=(37, 53)).astype(np.int32)
    u8 = rng.integers(0, 255, size=(37, 53)).astype(np.uint8)
    flt = rng.normal(1000, 30, size=(37, 53)).astype(np.float32)
    flt[3, 4] = np.nan
    flt64 = rng.normal(0, 1, size=(37, 53))
    mask = (rng.random(size=(37, 53)) < 0.1).astype(np.int32) * rng.integers(1, 200, size=(37, 53)).astype(np.int32)
    cases = [
        ('rice_i16', ints, dict(compression_type='RICE_1')),
        ('rice_i32', ints32, dict(compression_type='RICE_1')),
        ('rice_u8', u8, dict(compression_type='RICE_1')),
        ('gzip1_i16', ints, dict(compression_type='GZIP_1')),
        ('gzip2_i32', ints32, dict(compression_type='GZIP_2')),
        ('gzip1_u8', u8, dict(compression_type='GZIP_1')),
        ('rice_f32_dither1', flt, dict(compression_type='RICE_1', quantize_method=1, tile_size=(10, 53))),
        ('rice_f32_nodither', flt, dict(compression_type='RICE_1', quantize_method=-1)),
        ('rice_f32_dither2', np.where(rng.random(size=flt.shape) < 0.2, 0, flt).astype(np.float32), dict(compression_type='RICE_1', quantize_method=2, dither_seed=1234)),
        ('gzip2_f32_dither1', flt, dict(compression_type='GZIP_2', quantize_method=1, tile_size=(7, 9))),
        ('gzip1_f64_lossless', flt64, dict(compression_type='GZIP_1', quantize_level=0.0)),
        ('gzip2_f32_lossless', flt, dict(compression_type='GZIP_2', quantize_level=0.0)),
        ('plio_i32', mask, dict(compression_type='PLIO_1')),
        ('hcompress_i16', ints, dict(compression_type='HCOMPRESS_1')),
    ]
    for name, data, kw in cases:
        try:
            hdu = fits.CompImageHDU(data, name='SCI', **kw)
            hdu.header['OBSERVER'] = 'tester'
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(os.path.join(outdir, f'comp_{name}.fits'), overwrite=True)
        except Exception as e:  # noqa: BLE001
            print(f'skip {name}: {e}', file=sys.stderr)


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'dump':
        dump(sys.argv[2], sys.argv[3])
    elif cmd == 'dumpmany':
        # dumpmany <outroot> <file>... : one subfolder per file (index order)
        for k, f in enumerate(sys.argv[3:]):
            dump(f, os.path.join(sys.argv[2], str(k)))
    elif cmd == 'make':
        make(sys.argv[2])
    else:
        raise SystemExit(f'unknown command {cmd}')
