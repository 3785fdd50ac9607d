"""Grid figures over every attacked image of a run: arrays gathered across batches, drawn in pages."""

from __future__ import annotations

import os
from typing import Any

import torch

from .figures import grid_figure
from .safe_paths import output_path, safe_name
from .tables import method_label

#: Images per grid page, and at most this many pages per interpreter and threat (the per-image table lists all).
PAGE_ROWS = 8
MAX_PAGES = 4


def grid_units(samples: list[dict[str, Any]], out: str) -> dict[tuple[str, str, str, str], str]:
    """(interpreter, baseline method, ADV² method, ADV² unit) -> path of the grid's first page.

    The baseline's unit carries its method's name (``pgd``, ``stadv``); L∞ grids are
    ``grid_<interp>.png``, other threats ``grid_<interp>_<threat>.png``; page k > 1 adds ``-p<k>``.
    """
    found: dict[tuple[str, str, str, str], str] = {}
    methods: dict[tuple[str, str], set[str]] = {}
    for s in samples:
        if s["interpreter"]:
            methods.setdefault((s["interpreter"], s["unit"]), set()).add(s["method"])
    for (interp, unit), ms in sorted(methods.items()):
        adv = unit[: -len(interp) - 1]
        base = next(iter(ms - {adv}), None)
        if base is None:
            continue
        suffix = "" if adv == "adv2" else "_" + adv.removeprefix("adv2-")
        found[(interp, base, adv, unit)] = output_path(out, safe_name(f"grid_{interp}{suffix}.png"))
    return found


def page_path(first: str, page: int) -> str:
    """``grid_cam.png`` for page 1, ``grid_cam-p2.png`` for page 2, ...: beside the first page, never a symlink."""
    if page == 1:
        return first
    root, ext = os.path.splitext(os.path.basename(first))
    return output_path(os.path.dirname(first), f"{root}-p{page}{ext}")


def gather_unit(store: Any, unit: str, base: str, batches: list[int]) -> dict[str, torch.Tensor] | None:
    """Arrays of ``unit`` and its baseline concatenated over those ``batches`` that hold both, in image order.

    A unit's arrays are committed with it, so these are the batches where both units finished.
    """
    batches = sorted(b for b in set(batches) if store.has_array(b, unit, "x") and store.has_array(b, base, "x"))
    if not batches:
        return None
    names = {
        "x": (unit, "x"),
        "x_base": (base, "x"),
        "x_adv": (unit, "adv_x"),
        "benign": (unit, "benign_map"),
        "base": (unit, "base_map"),
        "adv2": (unit, "adv_map"),
        "mag_base": (base, "magnitude"),
        "mag_adv": (unit, "adv_magnitude"),
    }
    out: dict[str, torch.Tensor] = {"batches": torch.tensor(batches)}
    for key, (u, name) in names.items():
        if key == "base" and not store.has_array(batches[0], u, name):
            name = "pgd_map"  # runs written before StAdv existed stored the baseline's map as ``pgd_map``
        if not all(store.has_array(b, u, name) for b in batches):
            continue
        out[key] = torch.cat([store.array(b, u, name) for b in batches])
    return out


def draw_unit_grids(
    store: Any,
    samples: list[dict[str, Any]],
    key: tuple[str, str, str, str],
    first_png: str,
    caption: Any,
) -> tuple[list[str], int]:
    """Draw every image of one ADV² unit in pages of :data:`PAGE_ROWS` rows; return (PNG paths, images drawn).

    Perturbation magnitudes share one scale over all pages, so the pages compare directly.
    """
    interp, base, adv, unit = key
    arr = gather_unit(store, unit, base, [s["batch"] for s in samples if s["unit"] == unit])
    if arr is None:
        return [], 0
    batches = set(arr["batches"].tolist())
    by: dict[str, list[dict[str, Any]]] = {}
    for s in sorted(samples, key=lambda s: (s["batch"], s["idx"])):
        if s["unit"] == unit and s["batch"] in batches:
            by.setdefault(s["method"], []).append(s)
    labels = {
        "benign": [caption(s["label"], None) for s in by.get(adv, [])],
        "base": [caption(s["pred"], s["confidence"]) for s in by.get(base, [])],
        "adv2": [caption(s["pred"], s["confidence"]) for s in by.get(adv, [])],
    }
    n = min(len(arr["x"]), PAGE_ROWS * MAX_PAGES)
    mags = (arr["mag_base"], arr["mag_adv"]) if "mag_base" in arr and "mag_adv" in arr else None
    vmax = max(float(m[:n].max()) for m in mags) if mags is not None else None
    paths = []
    for page, start in enumerate(range(0, n, PAGE_ROWS), 1):
        sl = slice(start, min(start + PAGE_ROWS, n))
        path = page_path(first_png, page)
        grid_figure(
            path,
            interp,
            arr["x"][sl],
            arr["x_base"][sl],
            arr["x_adv"][sl],
            {k: arr[k][sl] for k in ("benign", "base", "adv2")},
            {k: v[sl] for k, v in labels.items()},
            titles=(method_label(base), method_label(adv)),
            magnitudes=(mags[0][sl], mags[1][sl]) if mags is not None else None,
            rows=sl.stop - sl.start,
            magnitude_max=vmax,
            first_index=start,
        )
        paths.append(path)
    return paths, n
