"""The attack job's configuration (``doublecross attack``), resolved and saved with each run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import from_dict
from ..data.targets import TARGET_MAP_MODES
from .selection import SELECTIONS


@dataclass(frozen=True)
class JobConfig:
    """What one ``doublecross attack`` run does (CLI flags override these defaults)."""

    model: str = "scenes-resnet"
    weights: str | None = None
    dataset: str = "scenes"
    images: str | None = None
    labels: str | None = None  # label map for --images: {sub-folder: class name or index} (YAML/JSON)
    limit: int = field(default=8, metadata={"min": 1})
    batch_size: int = field(default=8, metadata={"min": 1})
    seed: int = 0
    interpreters: tuple[str, ...] = ("grad", "cam", "mask", "rts")
    threats: tuple[str, ...] = ("linf",)
    preset: str = "scenes-resnet"
    target_map: str = field(default="benign", metadata={"choices": TARGET_MAP_MODES})
    device: str = "cpu"
    history_every: int = 0
    early_stop: bool = False  # stage 1 and the baseline stop each sample at its first success (issue 15)
    # your own model (``model: path/file.py:factory``, see models/user.py); ignored by registered models
    num_classes: int | None = field(default=None, metadata={"min": 1})
    input_size: int | None = field(default=None, metadata={"min": 8})
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    normalise: bool = True
    rts_weights: str | None = None
    # attack set (spec §1.4): class-balanced seeded draw, or the first correct images (experiments/selection.py)
    selection: str = field(default="balanced", metadata={"choices": SELECTIONS})
    # shorten / adjust the preset (attacks/overrides.py)
    steps_scale: float = field(default=1.0, metadata={"min": 1e-9})
    overrides: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict) -> JobConfig:
        return from_dict(cls, data, source="attack job")
