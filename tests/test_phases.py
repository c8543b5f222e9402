"""Descent phases, speeds and the divert read off a trajectory with known answers; frame times from names."""

from __future__ import annotations

import numpy as np
import pytest

from selenite.errors import InputError
from selenite.locate.phases import descent_phases, frame_times


def test_times_come_from_clock_names_and_shared_seconds_are_spread():
    names = ["LVS_15_50_40.jpg", "LVS_15_50_41.jpg", "LVS_15_50_41.jpg", "LVS_15_51_02.jpg"]
    t, src = frame_times(names)
    assert src == "file names"
    assert t.tolist() == [0.0, 1.0, 1.5, 22.0]
    t, src = frame_times(["img_235959.png", "img_000001.png"])
    assert src == "file names" and t.tolist() == [0.0, 2.0]          # past midnight
    t, src = frame_times(["a.png", "b.png", "c.png"])
    assert src == "frame" and t.tolist() == [0.0, 1.0, 2.0]


def test_times_from_a_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("file,time_s\na.png,10.0\nb.png,10.5\n")
    t, src = frame_times(["a.png", "b.png"], p)
    assert src == "csv" and t.tolist() == [0.0, 0.5]
    with pytest.raises(InputError, match="no time for c.png"):
        frame_times(["a.png", "c.png"], p)


def _mars_like(rng):
    """Parachute 11 km → 2.1 km at ~80 m/s easing, powered descent braking to 0.75 m/s with a 600 m divert to the
    south-east, a 26 s sky-crane lowering at 0.75 m/s; a frame every 0.8–2.6 s."""
    t = np.cumsum(rng.uniform(0.8, 2.6, 110))
    t -= t[0]
    t1, t2 = 110.0, 158.0
    h = np.empty_like(t)
    e = np.zeros_like(t)
    n = np.zeros_like(t)
    v0 = 95.0
    for k, tk in enumerate(t):
        if tk <= t1:                                     # parachute: speed easing from 95 to 75 m/s
            h[k] = 11200 - (v0 * tk - 0.09 * tk ** 2)
        elif tk <= t2:                                   # powered: constant braking to 0.75 m/s
            h1 = 11200 - (v0 * t1 - 0.09 * t1 ** 2)
            vs = v0 - 0.18 * t1
            a = (vs - 0.75) / (t2 - t1)
            dt = tk - t1
            h[k] = h1 - (vs * dt - 0.5 * a * dt ** 2)
            s = min(max((tk - 120) / 25, 0), 1)          # the divert: 120 s → 145 s
            e[k], n[k] = 600 * np.sin(np.radians(135)) * s, 600 * np.cos(np.radians(135)) * s
        else:
            h2 = h[np.searchsorted(t, t2) - 1]
            h[k] = h2 - 0.75 * (tk - t2)
            e[k], n[k] = 600 * np.sin(np.radians(135)), 600 * np.cos(np.radians(135))
    keep = h > 0.5
    return t[keep], e[keep], n[keep], h[keep], t1, t2


def test_phases_and_the_divert_of_a_mars_like_descent():
    rng = np.random.default_rng(4)
    t, e, n, h, t1, t2 = _mars_like(rng)
    noisy = h * (1 + rng.normal(0, 0.005, len(h)))      # 0.5 % white height noise
    out = descent_phases(t, e + rng.normal(0, 2, len(e)), n + rng.normal(0, 2, len(n)), noisy, list(range(len(t))))
    names = [p["name"] for p in out["phases"]]
    assert names == ["parachute", "powered descent", "final vertical descent"]
    # the boundaries within one frame gap (≤ 2.6 s) of the truth
    assert out["phases"][1]["start_time_s"] == pytest.approx(t1, abs=2 * 2.6)
    assert out["phases"][2]["start_time_s"] == pytest.approx(t2, abs=2 * 2.6)
    d = out["divert"]
    assert d["distance"] == pytest.approx(600, rel=0.05)
    assert d["azimuth_deg"] == pytest.approx(135, abs=3)
    assert d["start_time_s"] == pytest.approx(122.5, abs=3) and d["end_time_s"] == pytest.approx(142.5, abs=3)
    last = out["phases"][2]
    assert last["mean_descent_speed"] == pytest.approx(0.75, rel=0.25)
    assert last["mean_horizontal_speed"] < 2.0
