"""Reference sky backgrounds for the imaging tests and benchmark.

Usage: /usr/bin/python3 imaging_background.py IN.f32 WIDTH HEIGHT OUTDIR [--box 64] [--filter 3]
           [--methods sep,photutils] [--mask MASK.u8] [--repeat 1]
Reads a raw little-endian float32 image (row-major, HEIGHT rows of WIDTH pixels), runs each
method with the same box and filter sizes, writes OUTDIR/<method>_back.f32 and
OUTDIR/<method>_rms.f32, and prints one JSON line per method with the best wall time (seconds) and best
process CPU time (cpuSeconds) over --repeat runs, measured inside Python (file I/O excluded).
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def run_sep(data, mask, box, filt):
    import sep
    bkg = sep.Background(data, mask=mask, bw=box, bh=box, fw=filt, fh=filt)
    back = bkg.back()
    rms = bkg.rms()
    return back, rms, {"globalback": float(bkg.globalback), "globalrms": float(bkg.globalrms)}


def run_photutils(data, mask, box, filt):
    from photutils.background import Background2D, MedianBackground
    from astropy.stats import SigmaClip
    bkg = Background2D(data, (box, box), filter_size=(filt, filt), mask=mask,
                       sigma_clip=SigmaClip(sigma=3.0), bkg_estimator=MedianBackground())
    return (np.asarray(bkg.background, dtype=np.float32), np.asarray(bkg.background_rms, dtype=np.float32),
            {"globalback": float(bkg.background_median), "globalrms": float(bkg.background_rms_median)})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("infile")
    p.add_argument("width", type=int)
    p.add_argument("height", type=int)
    p.add_argument("outdir")
    p.add_argument("--box", type=int, default=64)
    p.add_argument("--filter", type=int, default=3)
    p.add_argument("--methods", default="sep")
    p.add_argument("--mask", default=None)
    p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    data = np.fromfile(a.infile, dtype="<f4").reshape(a.height, a.width)
    data = np.ascontiguousarray(data.astype(np.float32))
    mask = None
    if a.mask:
        mask = np.fromfile(a.mask, dtype=np.uint8).reshape(a.height, a.width).astype(bool)
    for method in a.methods.split(","):
        fn = {"sep": run_sep, "photutils": run_photutils}[method]
        best = None
        best_cpu = None
        for _ in range(max(1, a.repeat)):
            c0 = time.process_time()
            t0 = time.perf_counter()
            back, rms, extra = fn(data, mask, a.box, a.filter)
            dt = time.perf_counter() - t0
            dc = time.process_time() - c0
            best = dt if best is None else min(best, dt)
            best_cpu = dc if best_cpu is None else min(best_cpu, dc)
        np.asarray(back, dtype="<f4").tofile(os.path.join(a.outdir, method + "_back.f32"))
        np.asarray(rms, dtype="<f4").tofile(os.path.join(a.outdir, method + "_rms.f32"))
        print(json.dumps({"method": method, "seconds": best, "cpuSeconds": best_cpu, **extra}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
