"""Production and chronology functions against their closed forms and craterstats 3.6.11's figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selenite.cratering import basilevsky_class, chronology, production_function


def test_neukum2001_n1_closed_form():
    c = chronology("neukum2001")
    for t in (0.1, 1.0, 3.5, 4.0):
        assert c.n1(t) == pytest.approx(5.44e-14 * (np.exp(6.93 * t) - 1) + 8.38e-4 * t, rel=1e-12)
    assert c.age(c.n1(0.855)) == pytest.approx(0.855, abs=1e-8)


def test_against_craterstats_reference(shared_data):
    ref = json.loads((shared_data / "csfd" / "reference_craterstats_3.6.11.json").read_text())["functions"]
    names = {"Moon, Neukum et al. (2001)": "neukum2001", "Moon, Neukum (1983)": "neukum1983",
             "Moon, Yue et al. (2022)": "yue2022"}
    for name, key in names.items():
        c = chronology(key)
        for t, n1 in ref[name]["N1_of_T"].items():
            assert c.n1(float(t)) == pytest.approx(n1, rel=1e-9)
        for d, n in ref[name].get("cumulative_density_at_a0_of_1Ga", {}).items():
            assert production_function(key).cumulative(float(d), c.n1(1.0)) == pytest.approx(n, rel=1e-9)


def test_differential_is_minus_derivative_of_cumulative():
    pf = production_function()
    d = np.array([0.02, 0.2, 2.0])
    h = d * 1e-5
    numeric = -(pf.cumulative(d + h, 1e-3) - pf.cumulative(d - h, 1e-3)) / (2 * h)
    np.testing.assert_allclose(pf.differential(d, 1e-3), numeric, rtol=1e-6)


def test_basilevsky_classes_follow_lifetime_fractions():
    # D = 20 m: lifetime 50 Myr; boundaries at 1 %, 3 %, 20 %, 50 % of it
    ages = np.array([0.4, 1.0, 5.0, 20.0, 40.0, 60.0])
    assert list(basilevsky_class(ages, 20.0)) == ["A", "AB", "B", "BC", "C", "-"]
