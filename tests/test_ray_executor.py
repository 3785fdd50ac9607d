"""The Ray executor (issue 15): same stored numbers as the local executor, a killed worker, resume, no Ray.

A local Ray instance (``ray.init(num_cpus=2)``) serves the module. The job is tiny but has every
dependency the runner knows: two threats (each ADV² unit reads its threat's baseline unit) and two
interpreters whose benign map both threats share (MASK and GRAD, 4 images in batches of 2).
Faults are injected by replacing the executor's task function with a wrapper pickled by value.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import sys

import pytest
import yaml

from doublecross.cli import main
from doublecross.config import ConfigError
from doublecross.experiments.executors import ExecutorError, create_executor
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.report import build_report

S = 5
PRESET = {
    "kind": "attack",
    "description": "tiny Ray test preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "interpreter_options": {"mask": {"perturbation": "noise", "steps": S}},
    "linf": {
        "threat": {"eps": 0.0784, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 3},
        "interpreters": {
            "mask": {"n_warm": 2, "n_total": 3, "n_step": 1, "n_plain": 1, "n_reset": 2, "n_bs": 2, "kappa_bs": 0.0},
            "grad": {"n_warm": 2, "n_total": 3, "lam": 10.0, "check_every": 2},
        },
    },
    "stadv": {
        "threat": {"tau": 0.0005, "lr": 0.05},
        "baseline": {"n_warm": 0, "n_total": 3},
        "interpreters": {
            "mask": {"n_warm": 2, "n_total": 2, "n_step": 1, "n_plain": 1, "outer": "joint", "lam": 1.0},
            "grad": {"n_warm": 2, "n_total": 2, "lam": 10.0, "check_every": 2},
        },
    },
}
UNITS = {
    (b, u) for b in (0, 1) for u in ("pgd", "adv2-mask", "adv2-grad", "stadv", "adv2-stadv-mask", "adv2-stadv-grad")
}


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "ray.yaml"
    path.write_text(yaml.safe_dump(PRESET))
    return str(path)


def _cfg(preset):
    return JobConfig.from_dict(
        {"limit": 4, "batch_size": 2, "interpreters": ("mask", "grad"), "threats": ("linf", "stadv"), "preset": preset}
    )


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fault-injecting task wrappers below
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, preset):
    out = str(tmp_path_factory.mktemp("local") / "run")
    manifest = run_job(_cfg(preset), out, progress=False, threads=1)
    assert manifest["units_run"] == len(UNITS) and manifest["executor"] == {"name": "local"}
    build_report(out)
    return out


def _contents(out):
    """Every stored array and sample row of a run (timings left out), and its summary.csv."""
    db = sqlite3.connect(os.path.join(out, "results.sqlite"))
    try:
        arrays = {(b, u, n): d for b, u, n, d in db.execute("SELECT batch, unit, name, data FROM arrays")}
        samples = sorted(db.execute("SELECT * FROM samples"))
        infos = dict(((b, u), i) for b, u, i in db.execute("SELECT * FROM unit_info"))
        units = {(b, u) for b, u in db.execute("SELECT batch, unit FROM units")}
    finally:
        db.close()
    build_report(out)
    with open(os.path.join(out, "summary.csv"), "rb") as fh:
        summary = fh.read()
    return {"arrays": arrays, "samples": samples, "infos": infos, "units": units, "summary": summary}


def _assert_same(out, reference):
    got, want = _contents(out), _contents(reference)
    assert got["units"] == want["units"] == UNITS
    assert got["summary"] == want["summary"]
    assert got["samples"] == want["samples"]
    assert got["arrays"].keys() == want["arrays"].keys()
    assert [k for k in want["arrays"] if got["arrays"][k] != want["arrays"][k]] == []  # byte-identical
    assert got["infos"] == want["infos"]  # 1 thread, cpu, in both


def _counting(log, fn):
    """A task function recording each unit it runs (one line per execution, any process)."""

    def task(*args):
        job = args[3]
        if hasattr(job, "name"):
            with open(log, "a") as fh:
                fh.write(f"{job.batch} {job.name}\n")
        return fn(*args)

    return task


def _executed(log):
    if not os.path.exists(log):
        return []
    with open(log) as fh:
        return [(int(b), u) for b, u in (line.split() for line in fh)]


def test_ray_gives_the_local_results(ray_cluster, preset, local_run, tmp_path):
    out = str(tmp_path / "ray")
    with create_executor("ray", cpus_per_task=1) as ex:
        manifest = run_job(_cfg(preset), out, progress=False, threads=1, executor=ex)
    assert manifest["executor"]["name"] == "ray" and manifest["executor"]["cpus_per_task"] == 1
    assert manifest["units_run"] == len(UNITS) and manifest["unit_threads"] == [1]
    assert ray_cluster.is_initialized()  # an instance the caller started is left running
    _assert_same(out, local_run)


def test_a_worker_killed_mid_task_is_retried(ray_cluster, preset, local_run, tmp_path):
    marker, log = str(tmp_path / "killed"), str(tmp_path / "executed")

    def crash_once(*args):
        job = args[3]
        if getattr(job, "name", "") == "adv2-mask" and job.batch == 0 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies in the middle of the unit
        from doublecross.experiments.executors.ray import run_task

        return _counting(log, run_task)(*args)

    out = str(tmp_path / "ray")
    with create_executor("ray", cpus_per_task=1, max_retries=2) as ex:
        ex.task_fn = crash_once
        manifest = run_job(_cfg(preset), out, progress=False, threads=1, executor=ex)
    assert os.path.exists(marker)  # the first attempt did die
    assert sorted(_executed(log)) == sorted(UNITS)  # the killed attempt recorded nothing; its retry ran once
    assert manifest["units_run"] == len(UNITS)
    _assert_same(out, local_run)


def test_an_error_keeps_the_finished_units_and_resume_skips_them(ray_cluster, preset, local_run, tmp_path):
    log = str(tmp_path / "executed")

    def fail_one(*args):
        job = args[3]
        if getattr(job, "name", "") == "adv2-stadv-grad" and job.batch == 1:
            raise ValueError("injected failure")
        from doublecross.experiments.executors.ray import run_task

        return run_task(*args)

    out = str(tmp_path / "ray")
    with create_executor("ray", cpus_per_task=1) as ex:
        ex.task_fn = fail_one
        with pytest.raises(ExecutorError, match=r"batch 1 adv2-stadv-grad failed .*ValueError: injected failure"):
            run_job(_cfg(preset), out, progress=False, threads=1, executor=ex)
    stored = _contents(out)["units"]
    assert (1, "adv2-stadv-grad") not in stored and (1, "stadv") in stored  # its baseline ran before it
    with create_executor("ray", cpus_per_task=1) as ex:
        from doublecross.experiments.executors.ray import run_task

        ex.task_fn = _counting(log, run_task)
        manifest = run_job(_cfg(preset), out, resume=True, progress=False, threads=1, executor=ex)
    assert sorted(_executed(log)) == sorted(UNITS - stored)  # nothing stored is computed again
    assert manifest["units_run"] == len(UNITS - stored)
    _assert_same(out, local_run)


def test_executor_ray_without_ray_names_the_extra(monkeypatch, tmp_path, preset, capsys):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r'pip install "doublecross\[ray\]"'):
        create_executor("ray")
    out = tmp_path / "run"
    assert main(["attack", "--preset", preset, "--limit", "2", "--out", str(out), "--executor", "ray"]) == 2
    assert 'pip install "doublecross[ray]"' in capsys.readouterr().err
    assert not out.exists()  # refused before the run directory is made


def test_tasks_no_node_can_hold_are_refused(ray_cluster, preset, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"each needs 4 CPU\(s\), the largest node has 2 CPU\(s\)"):
        run_job(_cfg(preset), str(out), progress=False, threads=1, executor=create_executor("ray", cpus_per_task=4))
    assert not out.exists()  # nothing was stored: the fresh run directory is removed


def test_bad_executor_options_are_refused(tmp_path, preset, capsys):
    out = str(tmp_path / "run")
    assert main(["attack", "--preset", preset, "--out", out, "--ray-address", "auto"]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        create_executor("dask")
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="cpus_per_task must be an integer >= 1, got 0"):
        create_executor("ray", cpus_per_task=0)


TINY_CAM = {
    "kind": "attack",
    "description": "tiny CAM preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "linf": {
        "threat": {"eps": 0.0784, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 5},
        "interpreters": {"cam": {"n_warm": 3, "n_total": 3, "lam": 10.0}},
    },
}


def _same_runs(a, b):
    """Two run directories hold the same units, sample rows and byte-identical arrays."""
    ca, cb = _contents(a), _contents(b)
    assert ca["units"] == cb["units"] and ca["units"]
    assert ca["samples"] == cb["samples"] and ca["arrays"] == cb["arrays"] and ca["summary"] == cb["summary"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["class-exemplar", "shape"])
def test_target_map_modes_on_ray_match_local(ray_cluster, tmp_path, mode):
    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(TINY_CAM))
    cfg = JobConfig.from_dict(
        {"limit": 4, "batch_size": 2, "interpreters": ("cam",), "preset": str(path), "target_map": mode}
    )
    run_job(cfg, str(tmp_path / "local"), progress=False, threads=1)
    run_job(cfg, str(tmp_path / "ray"), progress=False, threads=1, executor=create_executor("ray"))
    _same_runs(str(tmp_path / "local"), str(tmp_path / "ray"))


@pytest.mark.slow
def test_reproduce_on_ray_matches_local(ray_cluster, tmp_path):
    from doublecross.experiments.reproduce import ReproduceConfig, reproduce

    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(TINY_CAM))
    cfg = ReproduceConfig.from_dict(
        {"experiments": ("q1", "q4"), "limit": 2, "batch_size": 2, "interpreters": ("cam",), "preset": str(path)}
    )
    reproduce(cfg, str(tmp_path / "local"), progress=False, threads=1)
    with create_executor("ray") as ex:
        manifest = reproduce(cfg, str(tmp_path / "ray"), progress=False, threads=1, executor=ex)
    runs = ("linf-benign", "linf-exemplar", "linf-shape")
    for run in runs:
        _same_runs(*(str(tmp_path / side / "scenes-resnet" / run) for side in ("local", "ray")))
    assert manifest["units_done"] == {f"scenes-resnet/{r}": "2/2" for r in runs}
