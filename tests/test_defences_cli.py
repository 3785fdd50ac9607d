"""End to end: attack run -> detect squeeze|lid, defend ensemble|aid, train-rts --aid, report (slow)."""

import os

import pytest

from doublecross.cli import main

pytestmark = pytest.mark.slow


def test_defence_commands_end_to_end(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["attack", "--limit", "6", "--batch-size", "6", "--interpreter", "cam", "--out", run, "--quiet"]) == 0
    assert main(["detect", "--detector", "squeeze", "--run", run, "--heldout", "40"]) == 0
    assert main(["detect", "--detector", "lid", "--run", run, "--heldout", "60"]) == 0
    assert (
        main(["defend", "ensemble", "--run", run, "--members", "cam,rts", "--heldout", "20", "--steps-scale", "0.05"])
        == 0
    )
    rts = str(tmp_path / "aid.pt")
    args = ["train-rts", "--aid", "--out", rts, "--aid-rounds", "1", "--steps", "2", "--batch-size", "4"]
    assert main([*args, "--aid-images", "4", "--aid-scale", "0.02", "--limit", "64", "--quiet"]) == 0
    assert main(["defend", "aid", "--run", run, "--rts", rts, "--fidelity", "20", "--steps-scale", "0.05"]) == 0
    md = open(os.path.join(run, "defences", "report.md")).read()
    for title in ("feature squeezing", "LID", "ensemble interpretation (cam+rts, attack steps ×0.05)", "AID for RTS"):
        assert title in md
    assert md.count("[our decision") >= 3  # squeezing NLM mapping, ensemble, AID
    assert os.path.isfile(os.path.join(run, "defences", "report.html"))
    # resumable: a second call reuses the stored steps
    assert (
        main(["defend", "ensemble", "--run", run, "--members", "cam,rts", "--heldout", "20", "--steps-scale", "0.05"])
        == 0
    )
    assert main(["defend", "ensemble", "--run", str(tmp_path / "nope"), "--members", "cam,rts"]) == 2
