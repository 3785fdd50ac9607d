"""Tables derived from the result store: the paper's layout, per interpreter baseline vs ADV², per threat."""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any

from ..metrics import IOU_KS, Accumulator
from .degenerate import FLAGS, degenerate_report, is_flagged, is_map_metric

COLUMNS = (
    [
        "interpreter",
        "method",
        "n",
        "successes",
        "success_rate",
        "confidence",
        "confidence_std",
        "l1",
        "l1_std",
        "l2",
        "l2_std",
        "iou",
        "iou_std",
    ]
    + [f"iou{k}" for k in IOU_KS]
    + ["gt_iou", "linf", "l2_pert", "flow_loss", "flow_mean", "flow_max"]
    + ["degenerate", "benign_degenerate", "target_degenerate", "excluded", "map_n"]
)
METHOD_LABELS = {"pgd": "PGD", "adv2": "ADV²", "stadv": "StAdv", "adv2-stadv": "ADV²-StAdv"}
METHOD_ORDER = tuple(METHOD_LABELS)


def method_label(method: str) -> str:
    """Display name of a stored method (``adv2-stadv`` -> ``ADV²-StAdv``)."""
    return METHOD_LABELS.get(method, method)


def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def summarise(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (interpreter, method), statistics over each method's successful samples.

    Map metrics leave out samples whose attacked or target map is degenerate (``map_n``: how many
    successful samples they average; ``excluded``: how many samples were left out); ``degenerate``,
    ``benign_degenerate``, ``target_degenerate`` count those maps among all ``n`` samples.
    """
    groups: dict[tuple[str, str], Accumulator] = defaultdict(Accumulator)
    maps: dict[tuple[str, str], Accumulator] = defaultdict(Accumulator)
    flags: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys((*FLAGS, "excluded"), 0))
    import torch

    for s in samples:
        if not s["interpreter"]:
            continue
        keys = [
            k
            for k in s
            if k not in ("batch", "idx", "unit", "interpreter", "method", "success", "label", "target", "pred", *FLAGS)
        ]
        key = (s["interpreter"], s["method"])
        ok = torch.tensor([s["success"]])
        groups[key].add(ok, **{k: torch.tensor([float(s[k])]) for k in keys if not is_map_metric(k)})
        if any(f in s for f in FLAGS):
            for f in FLAGS:
                flags[key][f] += int(bool(s.get(f)))
            flags[key]["excluded"] += int(is_flagged(s))
        maps[key].add(
            ok & torch.tensor([not is_flagged(s)]), **{k: torch.tensor([float(s[k])]) for k in keys if is_map_metric(k)}
        )
    rows = []
    for key, acc in sorted(groups.items(), key=lambda kv: (kv[0][0], _method_rank(kv[0][1]))):
        map_summary = maps[key].summary()
        row = {"interpreter": key[0], "method": key[1], **acc.summary()}
        row.update({k: v for k, v in map_summary.items() if is_map_metric(k.removesuffix("_std"))})
        if key in flags:
            row.update(flags[key])
            row["map_n"] = map_summary["successes"]
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
    cols = COLUMNS + sorted({k for r in rows for k in r} - set(COLUMNS))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: interpreter, method, success, confidence, L1, L2, mean IoU (± std)."""

    def pm(r: dict[str, Any], k: str) -> str:
        v, s = r.get(k, float("nan")), r.get(f"{k}_std", float("nan"))
        return f"{v:.3f}±{s:.3f}" if s == s else f"{v:.3f}"

    head = (
        f"{'interp.':<8} {'attack':<10} {'success':>12} {'confidence':>13} {'L1':>13} {'L2':>13} {'IoU':>13}"
        f" {'degen.':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        succ = f"{r['successes']}/{r['n']} {100 * r['success_rate']:.0f}%"
        deg = f"{r['degenerate']}/{r['n']}" if "degenerate" in r else "-"
        lines.append(
            f"{r['interpreter']:<8} {method_label(r['method']):<10} {succ:>12} "
            f"{pm(r, 'confidence'):>13} {pm(r, 'l1'):>13} {pm(r, 'l2'):>13} {pm(r, 'iou'):>13} {deg:>7}"
        )
    footer, warnings = degenerate_report(rows)
    return "\n".join(lines + footer + warnings)
