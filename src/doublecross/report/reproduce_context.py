"""The context the reproduction's table and figure builders read: config, output folder, cached summaries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..experiments.results import Summary, load_summary


def _register(registry: dict, name: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        registry[name] = fn
        return fn

    return deco


@dataclass
class Context:
    """What the builders read: the config, the output folder and cached run summaries."""

    cfg: Any
    out: str
    _cache: dict[tuple[str, str], Summary] = field(default_factory=dict)

    @property
    def interpreters(self) -> list[str]:
        return list(self.cfg.interpreters)

    @property
    def models(self) -> list[str]:
        return list(self.cfg.models)

    def run(self, model: str, run: str) -> str:
        from ..experiments.reproduce import run_dir

        return run_dir(self.out, model, run)

    def summary(self, model: str, run: str) -> Summary:
        if (model, run) not in self._cache:
            self._cache[(model, run)] = load_summary(self.run(model, run))
        return self._cache[(model, run)]

    def transfer(self, model: str) -> dict[tuple[str, str], dict[str, Any]]:
        from ..experiments.passes import transfer_store
        from ..experiments.transfer import transfer_matrix

        key = (model, "transfer")
        if key not in self._cache:
            self._cache[key] = transfer_matrix(transfer_store(self.out, model))
        return self._cache[key]

    def notes(self, exp: Any, run: str | None = None) -> list[str]:
        run = run or exp.runs[0]
        sizes = []
        for model in self.models:
            s = self.summary(model, run)
            n = max((r["n"] for r in s.values()), default=0)
            sizes.append(f"{model}: n = {n} attacked images")
        from ..experiments.spec import load_runs

        variant = getattr(load_runs().get(run), "preset_variant", None)
        presets = ", ".join(f"{m}: {self.cfg.preset_for(m, variant)}" for m in self.models)
        return [
            "Sample size: " + "; ".join(sizes) + " (statistics are mean ± sample std over each attack's successful "
            "inputs; map distances at the interpreter's native resolution; L2 = ‖a − b‖₂ / √cells).",
            f"Seed {self.cfg.seed}; preset {presets}; run {run}; dataset {self.cfg.images or self.cfg.dataset}.",
            "Tests spec §12 claim(s): " + ", ".join(str(c) for c in exp.claims) + ".",
        ]


def _iname(i: str) -> str:
    return i.upper()
