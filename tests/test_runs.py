"""The run archive: atomic outputs, skip-if-done, fingerprints, verification."""

from __future__ import annotations

import json

import pytest

from selenite.errors import RunError
from selenite.runs import Run, atomic_path, verify_run


def _writer(text):
    def make(tmp):
        for p in tmp.values():
            p.write_text(text)
    return make


def test_step_runs_once_then_skips_and_force_redoes(tmp_path):
    calls = []

    def make(tmp):
        calls.append(1)
        tmp["a.txt"].write_text("A")

    with Run(tmp_path / "r", command="t", params={"x": 1}) as run:
        assert not run.step("s", ["a.txt"], make).skipped
    with Run(tmp_path / "r", command="t", params={"x": 1}) as run:
        assert run.step("s", ["a.txt"], make).skipped
    with Run(tmp_path / "r", command="t", params={"x": 1}, force=True) as run:
        assert not run.step("s", ["a.txt"], make).skipped
    assert len(calls) == 2
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["outputs"][0]["path"] == "a.txt" and len(m["outputs"][0]["sha256"]) == 64
    assert "s" in m["timings_s"] and "numpy" in m["versions"]


def test_changed_params_or_upstream_redo_a_step(tmp_path):
    root = tmp_path / "r"
    with Run(root, command="t", params={}) as run:
        run.step("up", ["u.txt"], _writer("1"))
        run.step("down", ["d.txt"], _writer("x"), reads=["u.txt"])
    with Run(root, command="t", params={}) as run:
        assert not run.step("up", ["u.txt"], _writer("2"), params={"v": 2}).skipped
        assert not run.step("down", ["d.txt"], _writer("x"), reads=["u.txt"]).skipped


def test_modified_output_is_redone_and_detected_by_verify(tmp_path):
    root = tmp_path / "r"
    with Run(root, command="t", params={}) as run:
        run.step("s", ["a.txt"], _writer("original"))
    assert verify_run(root).ok
    (root / "a.txt").write_text("tampered")
    report = verify_run(root)
    assert not report.ok and "modified output: a.txt" in report.problems[0]
    with Run(root, command="t", params={}) as run:
        assert not run.step("s", ["a.txt"], _writer("original")).skipped
    assert verify_run(root).ok


def test_failed_step_leaves_no_output_and_no_temp(tmp_path):
    root = tmp_path / "r"

    def boom(tmp):
        tmp["a.txt"].write_text("half")
        raise ValueError("disk on fire")

    with pytest.raises(ValueError), Run(root, command="t", params={}) as run:
        run.step("s", ["a.txt"], boom)
    assert sorted(p.name for p in root.iterdir()) == [".selenite.lock", "manifest.json"]


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_run_refuses_foreign_folders_and_concurrent_use(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "stuff.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty"):
        Run(tmp_path / "f", command="t", params={})
    with Run(tmp_path / "r", command="t", params={}):
        with pytest.raises(RunError, match="in use"):
            Run(tmp_path / "r", command="t", params={})
    with pytest.raises(RunError, match="holds a 't' run"):
        Run(tmp_path / "r", command="other", params={})
