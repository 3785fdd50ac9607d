"""A run directory under stress: lock, changed inputs on resume, threads, progress, Ctrl-C, CLI errors."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys

import pytest
import torch
import yaml

from doublecross.attacks import ATTACKS
from doublecross.cli import main
from doublecross.config import ConfigError
from doublecross.experiments.job import JobConfig
from doublecross.experiments.lock import RunLock, RunLockedError
from doublecross.experiments.progress_bars import JobProgress
from doublecross.experiments.provenance import provenance_changes, resolve_provenance
from doublecross.experiments.runner import run_job
from doublecross.progress import step_reporter

TINY = {
    "kind": "attack",
    "description": "tiny test preset",
    "model": "scenes-resnet",
    "linf": {
        "threat": {"eps": 0.0784, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 3},
        "interpreters": {"cam": {"n_warm": 2, "n_total": 2, "lam": 10.0}},
    },
}


def _preset(tmp_path, **linf_threat):
    d = json.loads(json.dumps(TINY))
    d["linf"]["threat"].update(linf_threat)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def _cfg(preset, **kw):
    return JobConfig.from_dict({"limit": 2, "batch_size": 1, "interpreters": ("cam",), "preset": preset, **kw})


def _interrupt_after(monkeypatch, n_attacks):
    """Raise KeyboardInterrupt when attack number ``n_attacks + 1`` starts (the first n finish)."""
    real_create = ATTACKS.create
    calls = []

    def create(name, **kw):
        attack = real_create(name, **kw)
        original = attack.run

        def run(*a, **k):
            calls.append(name)
            if len(calls) > n_attacks:
                raise KeyboardInterrupt
            return original(*a, **k)

        attack.run = run
        return attack

    monkeypatch.setattr(ATTACKS, "create", create)
    return calls


def _units(out):
    db = sqlite3.connect(os.path.join(out, "results.sqlite"))
    try:
        return db.execute("SELECT batch, unit FROM units ORDER BY batch, unit").fetchall()
    finally:
        db.close()


# --- resume with changed inputs ----------------------------------------------------------------


def test_resume_refuses_an_edited_preset_naming_the_field(tmp_path, monkeypatch):
    preset, out = _preset(tmp_path), str(tmp_path / "run")
    _interrupt_after(monkeypatch, 2)  # batch 0: pgd + adv2-cam stored, killed in batch 1
    with pytest.raises(KeyboardInterrupt):
        run_job(_cfg(preset), out, progress=False)
    monkeypatch.undo()
    assert _units(out) == [(0, "adv2-cam"), (0, "pgd")]
    prov = json.loads(open(os.path.join(out, "provenance.json")).read())
    assert prov["preset"]["contents"]["linf"]["threat"]["eps"] == 0.0784 and len(prov["weights"]["sha256"]) == 64
    _preset(tmp_path, eps=0.5)  # same path, new contents: the old check compared only the path
    with pytest.raises(ConfigError, match=r"preset .*tiny.yaml changed .*linf\.threat\.eps 0\.0784 -> 0\.5"):
        run_job(_cfg(preset), out, resume=True, progress=False)
    assert _units(out) == [(0, "adv2-cam"), (0, "pgd")]  # nothing run, nothing lost
    _preset(tmp_path)  # restored: the resume goes on
    manifest = run_job(_cfg(preset), out, resume=True, progress=False)
    assert manifest["images"] == 2 and len(_units(out)) == 4


def test_provenance_names_changed_weights_and_images(tmp_path, scenes_resnet):
    from doublecross.models.checkpoint import save_checkpoint
    from doublecross.models.zoo import embedded_checkpoint

    weights = tmp_path / "w.pt"
    weights.write_bytes(open(embedded_checkpoint("scenes-resnet"), "rb").read())
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        (images / f"{i}.png").write_bytes(b"png %d" % i)  # contents only are hashed here
    cfg = JobConfig.from_dict({"preset": "scenes-resnet", "weights": str(weights), "images": str(images)})
    before = resolve_provenance(cfg)
    assert provenance_changes(before, resolve_provenance(cfg)) == []
    state = {k: v + 1e-3 if v.is_floating_point() else v for k, v in scenes_resnet.net.state_dict().items()}
    save_checkpoint(str(weights), state, scenes_resnet.meta, overwrite=True)  # "retrained"
    (images / "1.png").write_bytes(b"changed")
    (images / "3.png").write_bytes(b"new")
    (images / "0.png").unlink()
    changes = provenance_changes(before, resolve_provenance(cfg))
    assert len(changes) == 2
    assert re.search(r"weights file .*w\.pt changed .*sha256 \w+… -> \w+…", changes[0])
    assert "added 3.png; removed 0.png; modified 1.png" in changes[1]


# --- lock ----------------------------------------------------------------------------------------

_HOLDER = """
import fcntl, json, os, time
fd = os.open({lock!r}, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)  # what another doublecross process holds while it runs
os.write(fd, json.dumps({{"pid": os.getpid(), "host": "{host}"}}).encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_second_process_is_refused_and_a_killed_owner_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    import socket

    code = _HOLDER.format(lock=str(run / ".lock"), host=socket.gethostname())
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"in use by process {holder.pid}"):
            RunLock(str(run)).acquire()
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs
        holder.wait()
    with RunLock(str(run)):  # the kernel dropped the dead owner's lock
        with pytest.raises(RunLockedError):
            RunLock(str(run)).acquire()  # and this process's own lock excludes a second opener


def test_pid_file_fallback_takes_over_a_stale_lock_only(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (run / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    lock = RunLock(str(run), use_flock=False).acquire()  # stale: taken over
    assert json.loads((run / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (run / ".lock").exists()
    (run / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))  # alive
    with pytest.raises(RunLockedError, match=f"process {os.getppid()}"):
        RunLock(str(run), use_flock=False).acquire()


def test_resume_of_a_locked_run_is_refused_before_any_work(tmp_path, monkeypatch):
    preset, out = _preset(tmp_path), str(tmp_path / "run")
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_job(_cfg(preset), out, progress=False)
    calls = _interrupt_after(monkeypatch, 99)
    with RunLock(out):  # another process resuming the same run
        with pytest.raises(RunLockedError, match="in use by process"):
            run_job(_cfg(preset), out, resume=True, progress=False)
    assert calls == [] and _units(out) == [(0, "pgd")]


def test_detect_and_defend_refuse_a_run_another_process_holds_and_lock_their_output(tmp_path, capsys):
    from doublecross.cli import main

    run = tmp_path / "run"
    run.mkdir()
    with RunLock(str(run)):  # an attack still writing this run
        assert main(["detect", "--detector", "squeeze", "--run", str(run)]) == 2
        assert main(["defend", "ensemble", "--run", str(run), "--members", "cam,rts"]) == 2
    assert capsys.readouterr().err.count("is in use by process") == 2
    assert main(["detect", "--detector", "squeeze", "--run", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- threads per unit ---------------------------------------------------------------------------


def test_threads_are_recorded_per_unit_and_a_resume_with_another_count_warns(tmp_path, monkeypatch, caplog):
    preset, out = _preset(tmp_path), str(tmp_path / "run")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _interrupt_after(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            run_job(_cfg(preset), out, progress=False)
        monkeypatch.undo()
        torch.set_num_threads(2)
        with caplog.at_level(logging.WARNING):
            manifest = run_job(_cfg(preset), out, resume=True, progress=False)
    finally:
        torch.set_num_threads(before)
    assert "2 thread(s), but 2 finished unit(s) ran with 1" in caplog.text
    assert manifest["unit_threads"] == [1, 2]
    db = sqlite3.connect(os.path.join(out, "results.sqlite"))
    info = dict(((b, u), json.loads(i)["threads"]) for b, u, i in db.execute("SELECT * FROM unit_info"))
    db.close()
    assert info == {(0, "pgd"): 1, (0, "adv2-cam"): 1, (1, "pgd"): 2, (1, "adv2-cam"): 2}


# --- progress -----------------------------------------------------------------------------------


def test_attack_steps_reach_the_reporter(scene_batch, scenes_resnet):
    from doublecross.attacks.config import AttackConfig
    from doublecross.interpreters import create_interpreter
    from doublecross.threats import THREATS

    x, y, _ = scene_batch
    seen = []
    cfg = AttackConfig(n_warm=3, n_total=4, lam=1.0)
    cam = create_interpreter("cam", scenes_resnet)
    with step_reporter(seen.append):
        ATTACKS.create("pgd", threat=THREATS.create("linf"), config=cfg)(scenes_resnet, x[:1], 1)
        assert len(seen) == 7
        m_t = cam.explain(x[:1], y[:1]).map
        ATTACKS.create("adv2", threat=THREATS.create("linf"), config=cfg)(scenes_resnet, x[:1], 1, cam, m_t)
    assert len(seen) == 14
    ATTACKS.create("pgd", threat=THREATS.create("linf"), config=cfg)(scenes_resnet, x[:1], 1)
    assert len(seen) == 14  # no reporter outside the block


def test_unit_bar_never_shows_done_while_the_last_unit_runs():
    buf = io.StringIO()
    bars = JobProgress(total_units=3, done_units=1, show=True, file=buf)
    seen = []
    for k in range(2):
        with bars.unit(f"unit {k}", steps=5) as inner:
            seen.append(bars.outer.n)
            with step_reporter(None):
                pass
            from doublecross import progress

            for _ in range(5):
                progress.step()
            assert inner.n == 5
    bars.close()
    assert seen == [1, 2] and bars.outer.n == 3  # resumed at 1 of 3; 3/3 only after the last unit
    assert "step" in buf.getvalue() and "3/3" in buf.getvalue()


def test_job_progress_counts_each_unit_once(tmp_path, capsys):
    preset, out = _preset(tmp_path), str(tmp_path / "run")
    run_job(_cfg(preset), out, progress=True)  # 2 batches x (pgd + adv2-cam) = 4 units
    err = capsys.readouterr().err
    counts = [int(n) for n in re.findall(r"attack: .*?(\d+)/4 ", err)]
    assert counts and max(counts) == 4 and "5/4" not in err and "6/4" not in err
    for unit, steps in (("batch 0 pgd", 3), ("batch 1 adv2-cam", 4)):  # a step bar per unit, with its length
        assert re.search(rf"{unit}: .*0/{steps} \[", err)


def test_evaluate_interpreters_shows_progress(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    assert main(["evaluate-interpreters", "--models", "scenes-resnet", "--interpreters", "cam", "--limit", "4"]) == 0
    captured = capsys.readouterr()
    assert "cam" in captured.out
    assert re.search(r"scenes-resnet: +0%\|.*\| 0/4 \[.*img/s", captured.err)  # images of all its interpreters


def test_evaluate_interpreters_quiet_has_no_bar(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    argv = ["evaluate-interpreters", "--models", "scenes-resnet", "--interpreters", "cam", "--limit", "2", "--quiet"]
    assert main(argv) == 0
    assert "2/2" not in capsys.readouterr().err


# --- Ctrl-C and CLI errors ------------------------------------------------------------------------


def test_ctrl_c_prints_one_line_with_the_exact_resume_command(tmp_path, monkeypatch, capsys):
    preset, out = _preset(tmp_path), str(tmp_path / "run")
    _interrupt_after(monkeypatch, 2)
    argv = ["attack", "--interpreter", "cam", "--limit", "2", "--batch-size", "1", "--preset", preset, "--quiet"]
    assert main(argv + ["--out", out]) == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    expected = "doublecross " + " ".join(argv) + f" --resume --out {out}"
    assert err.endswith("Continue with: " + expected)
    monkeypatch.undo()
    assert main(expected.split()[1:]) == 0  # the hint works as printed
    assert len(_units(out)) == 4


def test_ctrl_c_before_the_first_unit_keeps_nothing(tmp_path, monkeypatch, capsys):
    preset, out = _preset(tmp_path), str(tmp_path / "run")
    _interrupt_after(monkeypatch, 0)
    assert main(["attack", "--interpreter", "cam", "--limit", "1", "--preset", preset, "--out", out, "--quiet"]) == 130
    assert "nothing was kept" in capsys.readouterr().err
    assert not os.path.exists(out)


def _cli_error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("doublecross: error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_cli_errors_are_one_line_and_a_failed_start_leaves_no_directory(tmp_path, capsys, monkeypatch):
    preset = _preset(tmp_path)
    base = ["attack", "--interpreter", "cam", "--limit", "1", "--preset", preset, "--quiet"]
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert "is a file" in _cli_error(base + ["--out", str(a_file)], capsys)
    out = str(tmp_path / "run")
    assert "CUDA is not available" in _cli_error(base + ["--device", "cuda", "--out", out], capsys)
    assert "not a device name" in _cli_error(base + ["--device", "gpu0", "--out", out], capsys)
    text = tmp_path / "weights.pt"
    text.write_text("these are not weights\n")
    err = _cli_error(base + ["--weights", str(text), "--out", out], capsys)
    assert "is not a weights file (it is a text file starting with 'these are not weights')" in err
    assert not os.path.exists(out)  # the failed start left nothing that would demand --resume
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: attack\nlinf: {threat: {eps: 0.1}\n")
    assert "invalid YAML at line" in _cli_error(base[:-3] + ["--preset", str(bad), "--out", out], capsys)
    with monkeypatch.context() as m:  # read-only parent (root ignores chmod, so the OS error is simulated)

        def denied(path, *a, **k):
            raise PermissionError(13, "Permission denied", path)

        m.setattr(os, "makedirs", denied)
        assert "cannot create run directory" in _cli_error(base + ["--out", out], capsys)
    assert not os.path.exists(out)
    assert main(base + ["--out", out]) == 0  # and the same --out then works without --resume


def test_a_user_models_source_file_is_part_of_the_provenance(tmp_path):
    """Editing the .py file of --model file.py:factory between a kill and --resume is named, not mixed in."""
    src = tmp_path / "net.py"
    src.write_text("def make(num_classes=10):\n    raise NotImplementedError\n")
    cfg = JobConfig(model=f"{src}:make", interpreters=("cam",))
    before = resolve_provenance(cfg)
    assert before["model_code"]["path"] == str(src)
    assert provenance_changes(before, resolve_provenance(cfg)) == []
    src.write_text("def make(num_classes=10):\n    return None\n")
    changes = provenance_changes(before, resolve_provenance(cfg))
    assert len(changes) == 1 and "model source file" in changes[0] and "net.py" in changes[0]
    old_run = {k: v for k, v in before.items() if k != "model_code"}  # written before the file was recorded
    assert provenance_changes(old_run, resolve_provenance(cfg)) == []


def test_reproduce_directory_is_locked_and_threads_restored(tmp_path):
    from doublecross.experiments.reproduce import ReproduceConfig, reproduce

    out = tmp_path / "rep"
    out.mkdir()
    before = torch.get_num_threads()
    holder = RunLock(str(out)).acquire()
    try:
        with pytest.raises(RunLockedError):
            reproduce(ReproduceConfig.from_dict({"experiments": ("q1",)}), str(out), threads=1)
    finally:
        holder.release()
    assert torch.get_num_threads() == before
