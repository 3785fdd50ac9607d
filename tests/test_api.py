"""The one-call Python API (``doublecross.attack``), its README example, and the lazy imports behind ``--help``."""

import os
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

import doublecross
from doublecross.api import AttackOutcome, attack
from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.attacks.presets import load_attack_preset
from doublecross.config import ConfigError
from doublecross.interpreters import create_interpreter
from doublecross.metrics import map_metrics
from doublecross.models import Classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")


def readme_block(heading: str) -> str:
    """The first ```python block under the README heading ``heading``."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    section = text.split(f"## {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_attack_from_python_runs(monkeypatch, capsys):
    code = readme_block("Attack from Python in 5 lines")
    assert len([line for line in code.splitlines() if line.strip()]) <= 5
    calls = []

    def quick(*args, **kwargs):  # the README's call at a tenth of the preset's steps, to keep the test fast
        calls.append(kwargs)
        out = attack(*args, steps_scale=0.1, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(doublecross, "attack", quick)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert len(calls) == 2 and calls[0]["interpreter"] == "cam" and calls[0]["baseline"]
    out = calls[1]
    assert isinstance(out, AttackOutcome) and out.x_adv.shape == (1, 3, 64, 64)
    assert printed.startswith("#0 circle -> square:") and "adv2 ok" in printed and "pgd ok" in printed
    assert bool(out.success.all()) and bool(out.baseline.success.all())
    # ADV² keeps the CAM map closer to the benign map than PGD does (the point of the attack)
    assert float(out.metrics["l1"][0]) < float(out.baseline.metrics["l1"][0])


class TinyNet(nn.Module):
    """A plain classifier on [0, 1] inputs (conv -> ReLU -> global average pool -> linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return TinyNet(), torch.rand(3, 3, 16, 16)


def test_attack_takes_a_plain_module_and_matches_the_attack_it_wraps(tiny):
    net, x = tiny
    x0 = x.clone()
    opts = {"n_warm": 3, "n_total": 4, "lam": 5.0}
    out = attack(net, x, target=[1, 2, 3], interpreter="grad", preset="scenes-resnet", attack_options=opts)
    assert torch.equal(x, x0)  # the input is left alone
    assert out.method == "adv2" and out.interpreter == "grad" and out.preset == "scenes-resnet"
    assert out.x_adv.shape == x.shape and out.maps["adversarial"].shape == out.maps["target"].shape
    eps = load_attack_preset("scenes-resnet").for_threat("linf").params["eps"]
    assert float((out.x_adv - torch.round(x * 255) / 255).abs().max()) <= eps + 1e-6  # the ε-ball is kept
    assert out.config["attack"]["n_total"] == 4 and out.config["threat"]["eps"] == pytest.approx(eps)
    # the plain module sees the pixels unchanged (identity normalisation), so its prediction is the label
    assert torch.equal(out.label, net(x).argmax(1))
    assert torch.equal(out.maps["target"], out.maps["benign"])  # target_map="benign"
    # metrics are those of the returned maps; success is argmax == target
    ref = map_metrics(out.maps["adversarial"], out.maps["target"])
    assert torch.allclose(out.metrics["l1"], ref["l1"]) and torch.allclose(out.metrics["iou"], ref["iou"])
    assert torch.equal(out.success, out.pred == out.target)
    # oracle: the same attack built by hand from the registry gives the same image
    clf = Classifier(net, normalise=False)
    g = create_interpreter("grad", clf)
    settings = load_attack_preset("scenes-resnet").for_threat("linf")
    cfg = AttackConfig.from_dict(out.config["attack"])
    torch.manual_seed(0)
    res = ATTACKS.create("adv2", threat=settings.create_threat(cfg), config=cfg)(
        clf, x, torch.tensor([1, 2, 3]), g, g.explain(x, clf(x).argmax(1)).map
    )
    assert torch.equal(res.x_adv, out.x_adv)


def test_attack_single_image_baseline_and_threat_options(tiny):
    net, x = tiny
    out = attack(
        net, x[0], target=2, interpreter="grad", preset="scenes-resnet", baseline=True,
        attack_options={"n_warm": 2, "n_total": 2}, threat_options={"eps": 4 / 255}, steps_scale=0.01,
        class_names=["a", "b", "c", "d"],
    )
    assert out.x_adv.shape == (1, 3, 16, 16) and out.config["threat"]["eps"] == pytest.approx(4 / 255)
    assert float((out.x_adv - torch.round(x[:1] * 255) / 255).abs().max()) <= 4 / 255 + 1e-6
    assert out.baseline is not None and out.baseline.method == "pgd"
    assert out.baseline.config["attack"]["n_total"] == 3  # 300 preset steps × 0.01
    assert out.summary().startswith("#0 ") and " -> c:" in out.summary()


def test_attack_rejects_bad_arguments(tiny):
    net, x = tiny
    with pytest.raises(TypeError, match="model must be"):
        attack(b"scenes-resnet", x, 0)
    with pytest.raises(ConfigError, match="unknown preset"):
        attack(net, x, 0, interpreter="grad", preset="no-such-preset")
    with pytest.raises(ConfigError, match="steps_scale"):
        attack(net, x, 0, interpreter="grad", preset="scenes-resnet", steps_scale=0)
    with pytest.raises(ValueError, match="target classes"):
        attack(net, x, 7, interpreter="grad", preset="scenes-resnet")
    other = create_interpreter("grad", Classifier(TinyNet()))
    with pytest.raises(ValueError, match="built on the attacked model"):
        attack(net, x, 0, interpreter=other, preset="scenes-resnet")
    with pytest.raises(ConfigError, match="target_map"):
        attack(net, x, 0, interpreter="grad", preset="scenes-resnet", target_map="nope")


def _fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_import_and_help_do_not_load_torch():
    code = (
        "import sys, contextlib, io\n"
        "import doublecross\n"
        "from doublecross.cli import build_parser, main\n"
        "build_parser().format_help()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['list', 'presets'])\n"
        "print('torch' in sys.modules)\n"
    )
    assert _fresh(code).split() == ["False"]


def test_lazy_choices_still_validate(capsys):
    from doublecross.cli import main

    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--dataset", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["attack", "--help"])
    assert "scenes, fashion-mnist, folder" in capsys.readouterr().out
