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
"""
import json
import os
import sys
import time

import numpy as np
from astropy.timeseries import LombScargle


def load(workdir, name):
    return None if name is None else np.fromfile(os.path.join(workdir, name), dtype="<f8")


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
        else:
            raise ValueError(f"unknown case kind {kind!r}")
    with open(os.path.join(workdir, "results.json"), "w") as fh:
        json.dump({"results": results}, fh)


if __name__ == "__main__":
    main()
