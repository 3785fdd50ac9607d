"""The attack job's configuration (``doublecross attack``), resolved and saved with each run."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import from_dict
from ..data.targets import TARGET_MAP_MODES


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

    @classmethod
    def from_dict(cls, data: dict) -> JobConfig:
        return from_dict(cls, data, source="attack job")
