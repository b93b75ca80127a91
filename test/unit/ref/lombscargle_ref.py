"""Reference values from astropy's LombScargle for test/unit/lombscargle-*.test.ts.

Usage: /usr/bin/python3 lombscargle_ref.py <workdir>
Reads <workdir>/manifest.json, arrays as little-endian float64 files in <workdir>,
writes result arrays next to them and <workdir>/results.json.

Case kinds:
  power     {t, y, dy?, fmin, df, n, normalization, methods, fitMean, centerData}
            -> <id>.<method>.f64 for each method ('cython', 'slow', 'fast')
  autofreq  {t, samplesPerPeak?, nyquistFactor?, minimumFrequency?, maximumFrequency?}
            -> <id>.freq.f64 and {fmax} (the limits astropy's FAP uses)
  fap       {t, y, dy?, normalization, powers, method?}  (astropy's default fmax rule)
            -> {fap: [...]}
  longdouble {t, y, dy, fmin, df, n, picks}: astropy cython at grid indices `picks`
            and the same least-squares power in numpy long double (80-bit on x86)
            with times relative to min(t) -> {cython: [...], ref: [...], eps}
  multiband {bands: [{t, y, dy}], freqs}: 1 - sum chi2_b(f) / sum chi2_0,b with a
            free offset + sine + cosine per band, by numpy lstsq -> {power: [...]}
"""
import json
import os
import sys
import time

import numpy as np
from astropy.timeseries import LombScargle


def load(workdir, name):
    return None if name is None else np.fromfile(os.path.join(workdir, name), dtype="<f8")


def long_double_power(t, y, dy, freqs):
    """Standard generalized LS power in long double, times relative to min(t)."""
    L = np.longdouble
    tt = np.array(t, dtype=L) - L(np.min(t))
    w = 1 / np.array(dy, dtype=L) ** 2
    w /= w.sum()
    yl = np.array(y, dtype=L)
    yc = yl - (w * yl).sum()
    out = []
    for fk in freqs:
        a = 2 * L(np.pi) * L(fk) * tt
        c, s = np.cos(a), np.sin(a)
        C, S = (w * c).sum(), (w * s).sum()
        CC, SS, CS = (w * c * c).sum() - C * C, (w * s * s).sum() - S * S, (w * c * s).sum() - C * S
        YC, YS = (w * yc * c).sum(), (w * yc * s).sum()
        p = (SS * YC * YC + CC * YS * YS - 2 * CS * YC * YS) / (CC * SS - CS * CS) / (w * yc * yc).sum()
        out.append(float(p))
    return out


def main():
    workdir = sys.argv[1]
    with open(os.path.join(workdir, "manifest.json")) as fh:
        manifest = json.load(fh)
    results = {}
    for case in manifest["cases"]:
        cid = case["id"]
        t = load(workdir, case["t"])
        kind = case["kind"]
        if kind == "power":
            y = load(workdir, case["y"])
            dy = load(workdir, case.get("dy"))
            ls = LombScargle(
                t, y, dy,
                fit_mean=case.get("fitMean", True),
                center_data=case.get("centerData", True),
                normalization=case["normalization"],
            )
            freq = case["fmin"] + case["df"] * np.arange(case["n"])
            timings = {}
            for method in case["methods"]:
                t0 = time.perf_counter()
                power = ls.power(freq, method=method, assume_regular_frequency=True)
                timings[method] = time.perf_counter() - t0
                np.asarray(power, dtype="<f8").tofile(os.path.join(workdir, f"{cid}.{method}.f64"))
            results[cid] = {"timings": timings}
        elif kind == "autofreq":
            ls = LombScargle(t, np.zeros_like(t))
            kw = dict(
                samples_per_peak=case.get("samplesPerPeak", 5),
                nyquist_factor=case.get("nyquistFactor", 5),
                minimum_frequency=case.get("minimumFrequency"),
                maximum_frequency=case.get("maximumFrequency"),
            )
            freq = ls.autofrequency(**kw)
            fmin, fmax = ls.autofrequency(return_freq_limits=True, **kw)
            np.asarray(freq, dtype="<f8").tofile(os.path.join(workdir, f"{cid}.freq.f64"))
            results[cid] = {"n": int(freq.size), "fmin": float(fmin), "fmax": float(fmax)}
        elif kind == "fap":
            y = load(workdir, case["y"])
            dy = load(workdir, case.get("dy"))
            ls = LombScargle(t, y, dy, normalization=case["normalization"])
            fap = ls.false_alarm_probability(np.array(case["powers"]), method=case.get("method", "baluev"))
            results[cid] = {"fap": [float(v) for v in np.atleast_1d(fap)]}
        elif kind == "longdouble":
            y = load(workdir, case["y"])
            dy = load(workdir, case["dy"])
            f = case["fmin"] + case["df"] * np.arange(case["n"])
            picks = np.array(case["picks"], dtype=int)
            cy = LombScargle(t, y, dy).power(f, method="cython")[picks]
            results[cid] = {
                "cython": [float(v) for v in cy],
                "ref": long_double_power(t, y, dy, f[picks]),
                "eps": float(np.finfo(np.longdouble).eps),
            }
        elif kind == "multiband":
            out = []
            bands = [(load(workdir, b["t"]), load(workdir, b["y"]), load(workdir, b["dy"])) for b in case["bands"]]
            for f in case["freqs"]:
                chi2 = chi20 = 0.0
                for bt, by, bdy in bands:
                    w = 1 / bdy**2
                    ybar = np.sum(w * by) / np.sum(w)
                    chi20 += np.sum(w * (by - ybar) ** 2)
                    X = np.stack([np.ones_like(bt), np.sin(2 * np.pi * f * bt), np.cos(2 * np.pi * f * bt)], axis=1) / bdy[:, None]
                    coef, *_ = np.linalg.lstsq(X, by / bdy, rcond=None)
                    chi2 += np.sum((by / bdy - X @ coef) ** 2)
                out.append(float(1 - chi2 / chi20))
            results[cid] = {"power": out}
        else:
            raise ValueError(f"unknown case kind {kind!r}")
    with open(os.path.join(workdir, "results.json"), "w") as fh:
        json.dump({"results": results}, fh)


if __name__ == "__main__":
    main()
