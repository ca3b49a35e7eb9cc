"""How tests/data/rliable_reference.json was made: rliable itself on small score matrices.

rliable needs pandas < 3, which does not install beside this project's pins, so it runs in a
venv of its own:  python -m venv /tmp/rlv && /tmp/rlv/bin/pip install "pandas<3" rliable scipy
                  /tmp/rlv/bin/python tests/data/rliable_reference.py tests/data/rliable_reference.json
(rliable 1.2.0, pandas 2.3.3, 2026-12-04). tests/test_comparisons.py reads the JSON.
"""
import json
import sys

import numpy as np
from rliable import library as rly
from rliable import metrics

rng = np.random.default_rng(7)
x = rng.normal(1.0, 1.0, (10, 3)).round(1)   # [runs, tasks], ties from rounding
y = rng.normal(0.6, 1.0, (12, 3)).round(1)
taus = np.linspace(-1, 3, 9)
poi = metrics.probability_of_improvement(x, y)
prof, prof_cis = rly.create_performance_profile({"x": x}, taus)
curves = rng.normal(size=(10, 3, 5)).cumsum(-1)
iqm_curve = np.array([metrics.aggregate_iqm(curves[:, :, p]) for p in range(5)])
poi_est, poi_ci = rly.get_interval_estimates({"x,y": (x, y)}, metrics.probability_of_improvement, reps=2000)
json.dump({"x": x.tolist(), "y": y.tolist(), "taus": taus.tolist(), "poi": float(poi),
           "poi_ci": np.asarray(poi_ci["x,y"]).reshape(-1).tolist(),
           "profile": prof["x"].tolist(), "profile_ci": np.asarray(prof_cis["x"]).tolist(),
           "curves": curves.tolist(), "iqm_curve": iqm_curve.tolist()}, open(sys.argv[1], "w"))
print("poi", poi, np.asarray(poi_ci["x,y"]).reshape(-1), "profile", prof["x"])
