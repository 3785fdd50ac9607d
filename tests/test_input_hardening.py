"""Hostile and malformed inputs: YAML, config values, folders of images, weights, checkpoints, reports."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import time
import zlib

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from doublecross.attacks.config import AttackConfig
from doublecross.attacks.presets import load_attack_preset
from doublecross.cli import main
from doublecross.config import ConfigError
from doublecross.data.folder import ImageFolderDataset
from doublecross.data.safe_image import UnreadableImage, readable_items
from doublecross.data.scenes import ScenesDataset
from doublecross.models.checkpoint import save_checkpoint
from doublecross.models.train import stack_dataset
from doublecross.models.weights import WeightsError
from doublecross.models.zoo import create_model
from doublecross.safe_yaml import YamlError, load_yaml

GOOD = {
    "kind": "attack",
    "model": "scenes-resnet",
    "linf": {
        "threat": {"eps": 0.0784, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 2},
        "interpreters": {"cam": {"n_warm": 1, "n_total": 1, "lam": 10.0}},
    },
}


def _write(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def _bomb_png(path, side):
    """A valid 1-bit PNG of side x side black pixels: a few KB on disk, side² pixels decoded."""
    raw = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    body = b"".join(raw.compress(row) for _ in range(side)) + raw.flush()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


# --- YAML and config values ----------------------------------------------------------------------


def test_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ["kind: attack", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines.append("linf: {threat: {eps: 0.03}, baseline: {}, interpreters: {cam: {extra: *a9}}}")
    path = _write(tmp_path, "\n".join(lines))
    t0 = time.time()
    with pytest.raises(ConfigError, match="alias bomb"):
        load_attack_preset(path)
    assert main(["attack", "--preset", path, "--out", str(tmp_path / "run")]) == 2
    assert "alias bomb" in capsys.readouterr().err and time.time() - t0 < 5
    assert not (tmp_path / "run").exists()
    assert load_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}  # ordinary aliases still work
    with pytest.raises(YamlError, match="recursive"):
        load_yaml("&a [*a]")
    with pytest.raises(YamlError, match="more than the 10 allowed"):
        load_yaml("a: 1234567890", max_bytes=10)


def test_yaml_syntax_error_is_one_line_with_its_position(tmp_path):
    path = _write(tmp_path, "kind: attack\nlinf: {threat: {eps: 0.1}\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line 3, column 1") as e:
        load_attack_preset(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "where, value, match",
    [
        ("lam", float("nan"), r"linf\.cam: AttackConfig\.lam: must be a finite number, got nan"),
        ("lam", float("inf"), r"AttackConfig\.lam: must be a finite number"),
        ("kappa_sel", 2, r"linf\.cam: AttackConfig\.kappa_sel: must be <= 1\.0, got 2"),
        ("extra", {"encoder": float("nan")}, r"AttackConfig\.extra\.encoder: must be a finite number"),
        ("extra", {"encoder": "lots"}, r"AttackConfig\.extra: expected \{term name: weight\}"),
        ("phases", [[1.0, float("nan")]], r"AttackConfig\.phases\[0\]\[1\]: must be a finite number"),
        ("phases", [[1.0, 2.5]], r"phases\[0\]: the step count must be an integer"),
    ],
)
def test_bad_attack_values_are_named(tmp_path, where, value, match):
    data = json.loads(json.dumps(GOOD))
    data["linf"]["interpreters"]["cam"][where] = value
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=match) as e:
        load_attack_preset(path)
    assert "\n" not in str(e.value)


def test_nan_threat_values_and_missing_baseline(tmp_path):
    data = json.loads(json.dumps(GOOD))
    data["linf"]["threat"]["eps"] = float("nan")
    with pytest.raises(ConfigError, match=r"linf\.threat\.eps: must be a finite number"):
        load_attack_preset(_write(tmp_path, data))
    data = json.loads(json.dumps(GOOD))
    del data["linf"]["baseline"]
    with pytest.raises(ConfigError, match=r"linf: missing 'baseline' block"):
        load_attack_preset(_write(tmp_path, data))
    assert load_attack_preset(_write(tmp_path, GOOD)).threats["linf"].baseline.n_total == 2


def test_unknown_extra_term_is_refused_before_any_work(tmp_path, capsys):
    data = json.loads(json.dumps(GOOD))
    data["linf"]["interpreters"]["cam"]["extra"] = {"encoder": 0.1}  # an RTS term: CAM has none
    path, out = _write(tmp_path, data), tmp_path / "run"
    assert main(["attack", "--interpreter", "cam", "--limit", "1", "--preset", path, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "linf.cam.extra: unknown term(s) ['encoder'] for interpreter 'cam' (its terms: none)" in err
    assert not out.exists()


def test_nan_target_map_is_refused(scene_batch, scenes_resnet):
    from doublecross.attacks import ATTACKS
    from doublecross.interpreters import create_interpreter
    from doublecross.threats import THREATS

    x, y, _ = scene_batch
    cam = create_interpreter("cam", scenes_resnet)
    m_t = cam.explain(x[:2], y[:2]).map.clone()
    m_t[1, 0, 0, 0] = float("nan")
    attack = ATTACKS.create("adv2", threat=THREATS.create("linf"), config=AttackConfig(n_warm=1, n_total=1, lam=1.0))
    with pytest.raises(ValueError, match=r"NaN/inf values \(samples \[1\]\)"):
        attack(scenes_resnet, x[:2], 1, cam, m_t)


# --- folders of images ---------------------------------------------------------------------------


def _scene_folder(root, classes, per_class=3):
    """PNGs of correctly drawn scenes, one sub-folder per class named ``classes[label]``."""
    ds = ScenesDataset("test", size=60)
    counts = {}
    for i in range(len(ds)):
        x, label, _ = ds[i]
        name = classes.get(int(label))
        if name is None or counts.get(name, 0) >= per_class:
            continue
        counts[name] = counts.get(name, 0) + 1
        (root / name).mkdir(parents=True, exist_ok=True)
        arr = (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(root / name / f"{i}.png")
    return counts


def test_folder_labels_are_class_names_not_folder_order(tmp_path, capsys, scenes_resnet):
    star, tee = scenes_resnet.classes.index("star"), scenes_resnet.classes.index("tee")
    _scene_folder(tmp_path / "named", {star: "star", tee: "tee"})
    ds = ImageFolderDataset(str(tmp_path / "named"), size=64, class_names=scenes_resnet.classes)
    assert ds.folder_labels == {"star": 3, "tee": 9}  # not 0 and 1 (circle, square)
    assert main(["evaluate", "--images", str(tmp_path / "named"), "--batch-size", "8"]) == 0
    assert "top-1 accuracy 1.0000 (6 images)" in capsys.readouterr().out
    # case, '_' and '-' are ignored; digits are class indices
    ds = ImageFolderDataset(str(tmp_path / "named"), size=64, class_names=[c.upper() for c in scenes_resnet.classes])
    assert ds.folder_labels == {"star": 3, "tee": 9}


def test_folder_label_map_and_unmatched_folders(tmp_path, capsys, scenes_resnet):
    star, tee = scenes_resnet.classes.index("star"), scenes_resnet.classes.index("tee")
    _scene_folder(tmp_path / "odd", {star: "s", tee: "t"})
    assert main(["evaluate", "--images", str(tmp_path / "odd")]) == 2
    err = capsys.readouterr().err
    assert "sub-folder(s) ['s', 't'] match none of the model's 10 class names" in err and "--labels" in err
    labels = _write(tmp_path, {"s": "star", "t": 9}, "labels.yaml")
    assert main(["evaluate", "--images", str(tmp_path / "odd"), "--labels", labels]) == 0
    assert "top-1 accuracy 1.0000 (6 images)" in capsys.readouterr().out
    bad = _write(tmp_path, {"s": "star"}, "partial.yaml")
    assert main(["evaluate", "--images", str(tmp_path / "odd"), "--labels", bad]) == 2
    assert "has no entry for sub-folder(s) ['t']" in capsys.readouterr().err
    bad = _write(tmp_path, {"s": "star", "t": 10}, "range.yaml")
    with pytest.raises(ConfigError, match="class index 10 is out of range"):
        ImageFolderDataset(str(tmp_path / "odd"), class_names=scenes_resnet.classes, labels=bad)


def test_folder_decodes_only_what_the_limit_needs(tmp_path, monkeypatch):
    for i in range(12):
        Image.new("RGB", (40, 30), (i * 20, 0, 0)).save(tmp_path / f"{i:02d}.png")
    import sys

    folder = sys.modules["doublecross.data.folder"]  # (the package exports a factory of the same name)
    decoded = []
    real = folder.decode_image
    monkeypatch.setattr(folder, "decode_image", lambda path, *a: decoded.append(path) or real(path, *a))
    ds = ImageFolderDataset(str(tmp_path), size=32)
    assert len(ds) == 12 and decoded == []  # construction reads headers only
    x, y = stack_dataset(ds, 3)
    assert x.shape == (3, 3, 32, 32) and len(decoded) == 3 and (y == -1).all()


def test_decompression_bomb_is_skipped_with_a_warning_and_the_rest_goes_on(tmp_path, caplog):
    _bomb_png(tmp_path / "bomb.png", 20_000)  # 400 M pixels: PIL's DecompressionBombError at open
    _bomb_png(tmp_path / "big.png", 10_000)  # 100 M pixels: over our limit (PIL only warns)
    assert os.path.getsize(tmp_path / "bomb.png") < 200_000
    Image.new("RGB", (50, 50), (0, 0, 255)).save(tmp_path / "ok.png")
    ds = ImageFolderDataset(str(tmp_path), size=32)
    assert [os.path.basename(p) for p in ds.paths] == ["ok.png"]
    reasons = {os.path.basename(e.path): e.reason for e in ds.errors}
    assert "DecompressionBombError" in reasons["bomb.png"] and "DecompressionBomb" in reasons["big.png"]
    assert "skipping unreadable image" in caplog.text
    (tmp_path / "small").mkdir()
    Image.new("RGB", (50, 50)).save(tmp_path / "small" / "x.png")
    with pytest.raises(ValueError, match="none of the 1 images .*50×50 = 2500 pixels is over the limit of 100"):
        ImageFolderDataset(str(tmp_path / "small"), size=32, max_pixels=100)  # our own limit, configurable


def test_attack_on_a_folder_with_a_bomb_and_a_truncated_file_goes_on(tmp_path, capsys, caplog, scenes_resnet):
    star = scenes_resnet.classes.index("star")
    _scene_folder(tmp_path / "imgs", {star: "star"}, per_class=2)
    _bomb_png(tmp_path / "imgs" / "star" / "0000-bomb.png", 20_000)
    good = sorted((tmp_path / "imgs" / "star").glob("[1-9]*.png"))[0].read_bytes()
    (tmp_path / "imgs" / "star" / "0001-truncated.png").write_bytes(good[: len(good) // 2])
    preset, out = _write(tmp_path, GOOD), tmp_path / "run"
    argv = ["attack", "--images", str(tmp_path / "imgs"), "--interpreter", "cam", "--limit", "2", "--quiet"]
    assert main(argv + ["--preset", preset, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "scenes-resnet, 2 images" in captured.out
    assert "0000-bomb.png: DecompressionBombError" in caplog.text  # warned, skipped
    assert "0001-truncated.png: OSError: image file is truncated" in caplog.text


def test_readable_items_skips_files_that_fail_late(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[: len(data) // 2])  # header fine, pixels missing
    Image.new("RGB", (64, 64), (0, 0, 200)).save(tmp_path / "c.png")
    ds = ImageFolderDataset(str(tmp_path), size=32)
    assert len(ds) == 3 and ds.errors == []
    with pytest.raises(UnreadableImage, match="b.png"):
        ds[1]
    got = [i for i, _ in readable_items(ds)]
    assert got == [0, 2] and [os.path.basename(e.path) for e in ds.errors] == ["b.png"]


# --- weights and checkpoints --------------------------------------------------------------------


def test_huge_arch_kwargs_are_refused_before_allocating(tmp_path, tiny_resnet):
    meta = {
        "arch": "small-resnet",
        "classes": [str(i) for i in range(10)],
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "input_size": [64, 64],
    }
    tiny = {"w": torch.zeros(1)}
    path = str(tmp_path / "bomb.pt")
    save_checkpoint(path, tiny, {**meta, "arch_kwargs": {"width": 4096}})
    assert os.path.getsize(path) < 4096
    t0 = time.time()
    with pytest.raises(WeightsError, match=r"arch_kwargs.width = 4096 is outside \[1, 512\]"):
        create_model("small-resnet", weights=path)
    save_checkpoint(path, tiny, {**meta, "arch_kwargs": {"width": 512, "depth": 32}}, overwrite=True)
    with pytest.raises(WeightsError, match="do not fit the network its metadata describes"):
        create_model("small-resnet", weights=path)  # in bounds but not what the file holds: meta-device check
    assert time.time() - t0 < 10
    save_checkpoint(path, tiny, {**meta, "arch_kwargs": {"evil": 1}}, overwrite=True)
    with pytest.raises(WeightsError, match=r"arch_kwargs.evil is not an argument of 'small-resnet'"):
        create_model("small-resnet", weights=path)
    save_checkpoint(path, tiny, {**meta, "std": [0.0, 1.0, 1.0]}, overwrite=True)
    with pytest.raises(WeightsError, match="'std' must be 1 or 3 finite numbers > 0"):
        create_model("small-resnet", weights=path)
    state = tiny_resnet.net.state_dict()  # a genuine small checkpoint still loads
    save_checkpoint(path, state, {**meta, "arch_kwargs": {"width": 8, "depth": 1}}, overwrite=True)
    assert create_model("small-resnet", weights=path).num_classes == 10


def test_text_file_as_weights_is_named(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello, these are my notes\n")
    with pytest.raises(WeightsError, match=r"is not a weights file \(it is a text file starting with 'hello"):
        create_model("scenes-resnet", weights=str(path))
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsError, match="it is empty"):
        create_model("scenes-resnet", weights=str(tmp_path / "empty.pt"))


def test_checkpoint_temp_file_never_follows_a_symlink(tmp_path, tiny_resnet):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "ckpt.pt"
    for name in (f"ckpt.pt.tmp-{os.getpid()}", "ckpt.pt.tmp"):  # the old, guessable temp names
        os.symlink(victim, tmp_path / name)
    meta = {
        "arch": "small-resnet",
        "classes": [str(i) for i in range(10)],
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "input_size": [64, 64],
        "arch_kwargs": {"width": 8, "depth": 1},
    }
    save_checkpoint(str(path), tiny_resnet.net.state_dict(), meta)
    assert victim.read_text() == "precious"
    assert create_model(str(path)).num_classes == 10
    leftovers = sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink())
    assert leftovers == ["ckpt.pt", "victim.txt"]


# --- reports of crafted runs --------------------------------------------------------------------


def test_report_of_a_crafted_run_writes_only_inside_it(tmp_path, capsys):
    preset, run = _write(tmp_path, GOOD), tmp_path / "sub" / "run"
    argv = ["attack", "--interpreter", "cam", "--limit", "1", "--preset", preset, "--quiet"]
    assert main(argv + ["--out", str(run)]) == 0
    capsys.readouterr()
    evil = "../../../escaped"
    db = sqlite3.connect(run / "results.sqlite")
    with db:
        db.execute("UPDATE samples SET interpreter=?, unit=? WHERE unit='adv2-cam'", (evil, f"adv2-{evil}"))
        db.execute("UPDATE arrays SET unit=? WHERE unit='adv2-cam'", (f"adv2-{evil}",))
    db.close()
    victim = tmp_path / "victim.csv"
    victim.write_text("precious")
    (run / "summary.csv").unlink()
    os.symlink(victim, run / "summary.csv")
    before = {p for p in tmp_path.rglob("*")}
    assert main(["report", str(run)]) == 0
    after = {p for p in tmp_path.rglob("*")}
    assert victim.read_text() == "precious"
    assert {p.relative_to(run).as_posix() for p in after - before} == {"grid_.._.._.._escaped.png"}
    assert not (run / "summary.csv").is_symlink() and (run / "summary.csv").stat().st_size > 0


def test_rts_checkpoint_with_huge_widths_is_refused(tmp_path, scenes_resnet):
    from doublecross.interpreters.rts import load_rts_net
    from doublecross.models.checkpoint import load_checkpoint
    from doublecross.models.zoo import embedded_checkpoint

    state, meta = load_checkpoint(embedded_checkpoint("rts-scenes-resnet"))
    path = str(tmp_path / "rts.pt")
    save_checkpoint(path, {"w": torch.zeros(1)}, {**meta, "widths": [4096 * 16] * len(meta["widths"])})
    with pytest.raises(WeightsError, match="do not fit the network its metadata describes"):
        load_rts_net(path, scenes_resnet)
    save_checkpoint(path, state, meta, overwrite=True)
    assert load_rts_net(path, scenes_resnet)[0].num_classes == 10
