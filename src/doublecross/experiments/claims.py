"""The qualitative claims of spec §12, each checked from the measured numbers: PASS / FAIL / UNCLEAR.

Thresholds (fixed here, before any run; every verdict prints the numbers it used):

* ``MIN_SUCCESSES`` = 3: a group with fewer successful inputs gives UNCLEAR (too little data).
* Claim 1 (ADV² fools the classifier as well as PGD): PASS if for every interpreter ADV²'s success
  rate is at least PGD's minus ``SUCCESS_GAP`` (0.15; 0.25 for MASK, "slightly lower" in §12) and its
  mean confidence at least ``CONF_RATIO`` (0.7) × PGD's; FAIL if some gap exceeds twice that or
  a confidence ratio is below 0.5; otherwise UNCLEAR.
* Claims 2 and 5 (ADV² maps "several times" closer): PASS if for every interpreter L1 and L2 of
  ADV² are at most ``DIST_RATIO`` (0.5) × the baseline's and IoU_k is higher at every k. "Several
  times smaller" is read at its weakest, at least twice smaller: a stricter bar (1/3) would be as
  defensible, a looser one would not say "several"; the ratio is printed, so a reader can apply
  their own. FAIL if
  some L1 ratio is ≥ 1 or some mean IoU is not higher; otherwise UNCLEAR. Claim 5 also needs the
  success condition of claim 1 against regular StAdv.
* Claim 3 (MASK hardest): PASS if MASK has the largest ADV² L1 and the lowest ADV² success rate
  (ties count), FAIL if neither, UNCLEAR if one.
* Claim 4 (arbitrary targets): PASS if, in every target mode and for every interpreter, ADV²'s L1 to
  m_t is at most ``DIST_RATIO`` × the smaller of the benign map's and PGD's map's L1 to m_t and its
  IoU to m_t is higher than both; FAIL if some ADV² L1 is ≥ that smaller reference; else UNCLEAR.
  "Far closer" is the word §12 glosses, for claim 2, as "several times smaller", hence the same 0.5.
* Degenerate maps (claims 2, 4, 5): a constant / empty ADV² map is excluded from the means (it is no
  match), so a group whose means rest on fewer than ``MIN_SUCCESSES`` maps is UNCLEAR, and one where
  more than ``WARN_FRACTION`` (0.10) of ADV²'s maps are degenerate cannot PASS (at most UNCLEAR;
  the evidence names the count): otherwise an attack that empties the map would pass on the rest.
* Claim 6 (low transferability): PASS if in every column B the diagonal L1 is below every
  off-diagonal L1 and the off-diagonal mean is at least ``NEAR_PGD`` (0.5) × the PGD row's L1;
  FAIL if some diagonal is not the smallest of its column; otherwise UNCLEAR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_SUCCESSES = 3
SUCCESS_GAP = {"mask": 0.25}
DEFAULT_GAP = 0.15
CONF_RATIO = 0.7
DIST_RATIO = 0.5
NEAR_PGD = 0.5
WARN_FRACTION = 0.10  # as doublecross.metrics.degenerate.WARN_FRACTION

STATEMENTS = {
    1: "ADV² fools the classifier as well as PGD (success rate and confidence close to PGD's).",
    2: "ADV² fools the interpreter, PGD does not: L1/L2 several times smaller, IoU_k higher at every k.",
    3: "MASK is the hardest interpreter: largest ADV² distance, lowest success.",
    4: "Arbitrary target maps are reachable: g(x*) far closer to m_t than the benign or PGD maps are.",
    5: "The StAdv variant works too: ADV²-StAdv fools classifier and interpreter like ADV² does.",
    6: "Transferability is low: diagonal distances small, off-diagonal ones near PGD's level.",
}


@dataclass
class Claim:
    """The verdict on one claim for one model, with the evidence (numbers) and the rule used."""

    number: int
    model: str
    verdict: str
    evidence: list[str] = field(default_factory=list)

    @property
    def statement(self) -> str:
        return STATEMENTS[self.number]

    def line(self) -> str:
        return f"Claim {self.number} [{self.model}]: {self.verdict} — {self.statement} " + "; ".join(self.evidence)


def _few(rows: list[dict[str, Any] | None]) -> bool:
    return any(r is None or r.get("successes", 0) < MIN_SUCCESSES for r in rows)


def _why(rows: list[dict[str, Any] | None]) -> str:
    return "not computed yet (run incomplete)" if any(r is None for r in rows) else f"< {MIN_SUCCESSES} successes"


def _degenerate(a: dict[str, Any]) -> tuple[bool, str]:
    """(too few usable maps or too many degenerate ones for a PASS, evidence) of ADV²'s summary row ``a``."""
    deg, usable = int(a.get("degenerate", 0)), int(a.get("map_n", a["successes"]))
    if usable < MIN_SUCCESSES:
        return True, f"only {usable} non-degenerate ADV² maps"
    if deg > WARN_FRACTION * a["n"]:
        return True, f"{deg}/{a['n']} ADV² maps degenerate (excluded from the means)"
    return False, f"{deg}/{a['n']} ADV² maps degenerate" if deg else ""


def fools_classifier(s: dict, interps: list[str], base: str, adv: str) -> tuple[str, list[str]]:
    verdicts, ev = [], []
    for i in interps:
        b, a = s.get((i, base)), s.get((i, adv))
        if a is None or b is None or a["n"] < MIN_SUCCESSES or b["successes"] < MIN_SUCCESSES:
            verdicts.append("UNCLEAR")
            ev.append(f"{i}: {_why([a, b]) if a is None or b is None else 'too few inputs'}")
            continue
        gap = b["success_rate"] - a["success_rate"]
        ratio = a["confidence"] / b["confidence"] if a["successes"] else 0.0
        lim = SUCCESS_GAP.get(i, DEFAULT_GAP)
        ev.append(f"{i}: success {a['success_rate']:.2f} vs {b['success_rate']:.2f}, confidence ratio {ratio:.2f}")
        if gap <= lim and ratio >= CONF_RATIO:
            verdicts.append("PASS")
        elif gap > 2 * lim or ratio < 0.5:
            verdicts.append("FAIL")
        else:
            verdicts.append("UNCLEAR")
    return _combine(verdicts), ev


def closer_maps(s: dict, interps: list[str], base: str, adv: str) -> tuple[str, list[str]]:
    from ..metrics import IOU_KS

    verdicts, ev = [], []
    for i in interps:
        b, a = s.get((i, base)), s.get((i, adv))
        if _few([b, a]):
            verdicts.append("UNCLEAR")
            ev.append(f"{i}: {_why([b, a])}")
            continue
        r1, r2 = a["l1"] / b["l1"], a["l2"] / b["l2"]
        above = sum(a[f"iou{k}"] > b[f"iou{k}"] for k in IOU_KS)
        bad, note = _degenerate(a)
        ev.append(
            f"{i}: L1 ratio {r1:.2f}, L2 ratio {r2:.2f}, IoU_k higher at {above}/{len(IOU_KS)} k"
            + (f" ({note})" if note else "")
        )
        if r1 <= DIST_RATIO and r2 <= DIST_RATIO and above == len(IOU_KS) and not bad:
            verdicts.append("PASS")
        elif r1 >= 1 or a["iou"] <= b["iou"]:
            verdicts.append("FAIL")
        else:
            verdicts.append("UNCLEAR")
    return _combine(verdicts), ev


def _combine(verdicts: list[str]) -> str:
    if not verdicts:
        return "UNCLEAR"
    if "FAIL" in verdicts:
        return "FAIL"
    return "PASS" if all(v == "PASS" for v in verdicts) else "UNCLEAR"


def claim1(ctx: Any, model: str) -> Claim:
    v, ev = fools_classifier(ctx.summary(model, "linf-benign"), ctx.interpreters, "pgd", "adv2")
    return Claim(1, model, v, ev)


def claim2(ctx: Any, model: str) -> Claim:
    v, ev = closer_maps(ctx.summary(model, "linf-benign"), ctx.interpreters, "pgd", "adv2")
    return Claim(2, model, v, ev)


def claim3(ctx: Any, model: str) -> Claim:
    s = ctx.summary(model, "linf-benign")
    if "mask" not in ctx.interpreters or len(ctx.interpreters) < 2:
        return Claim(3, model, "UNCLEAR", ["needs MASK and another interpreter"])
    adv = {i: s.get((i, "adv2")) for i in ctx.interpreters}
    if _few(list(adv.values())):
        return Claim(3, model, "UNCLEAR", [_why(list(adv.values()))])
    l1 = max(adv, key=lambda i: adv[i]["l1"])
    worst = min(adv[i]["success_rate"] for i in adv)
    a, b = adv["mask"]["l1"] >= adv[l1]["l1"], adv["mask"]["success_rate"] <= worst
    ev = [
        f"largest ADV² L1: {l1} ({adv[l1]['l1']:.3f}; MASK {adv['mask']['l1']:.3f})",
        "success: " + ", ".join(f"{i} {adv[i]['success_rate']:.2f}" for i in adv),
    ]
    return Claim(3, model, "PASS" if a and b else "FAIL" if not (a or b) else "UNCLEAR", ev)


def claim4(ctx: Any, model: str) -> Claim:
    verdicts, ev = [], []
    for run in ("linf-exemplar", "linf-shape"):
        s = ctx.summary(model, run)
        for i in ctx.interpreters:
            a, p, r = s.get((i, "adv2")), s.get((i, "pgd")), s.get((i, "benign-ref"))
            if _few([a]) or p is None or r is None:
                verdicts.append("UNCLEAR")
                ev.append(f"{run} {i}: {_why([a, p, r])}")
                continue
            ref = min(p["l1"], r["l1"])
            bad, note = _degenerate(a)
            ev.append(
                f"{run} {i}: L1 to m_t {a['l1']:.3f} vs benign {r['l1']:.3f}, PGD {p['l1']:.3f} "
                f"(ratio {a['l1'] / ref:.2f}); IoU {a['iou']:.2f} vs {r['iou']:.2f}, {p['iou']:.2f}"
                + (f"; {note}" if note else "")
            )
            if a["l1"] <= DIST_RATIO * ref and a["iou"] > max(p["iou"], r["iou"]) and not bad:
                verdicts.append("PASS")
            elif a["l1"] >= ref:
                verdicts.append("FAIL")
            else:
                verdicts.append("UNCLEAR")
    return Claim(4, model, _combine(verdicts), ev)


def claim5(ctx: Any, model: str) -> Claim:
    s = ctx.summary(model, "stadv-benign")
    v1, ev1 = fools_classifier(s, ctx.interpreters, "stadv", "adv2-stadv")
    v2, ev2 = closer_maps(s, ctx.interpreters, "stadv", "adv2-stadv")
    return Claim(5, model, _combine([v1, v2]), ev1 + ev2)


def claim6(ctx: Any, model: str) -> Claim:
    m = ctx.transfer(model)
    verdicts, ev = [], []
    for b in ctx.interpreters:
        diag = m.get((b, b))
        off = [m[(a, b)] for a in ctx.interpreters if a != b and (a, b) in m]
        pgd = m.get(("pgd", b))
        if _few([diag, pgd, *off]) or not off:
            verdicts.append("UNCLEAR")
            ev.append(f"column {b}: {_why([diag, pgd, *off]) if off else 'not computed'}")
            continue
        lowest = diag["l1"] < min(o["l1"] for o in off)
        mean_off = sum(o["l1"] for o in off) / len(off)
        near = mean_off >= NEAR_PGD * pgd["l1"]
        ev.append(
            f"column {b}: diagonal {diag['l1']:.3f}, off-diagonal {min(o['l1'] for o in off):.3f}–"
            f"{max(o['l1'] for o in off):.3f} (mean {mean_off:.3f}), PGD {pgd['l1']:.3f}"
        )
        verdicts.append("PASS" if lowest and near else "FAIL" if not lowest else "UNCLEAR")
    return Claim(6, model, _combine(verdicts), ev)


CLAIMS: dict[int, Callable[[Any, str], Claim]] = {1: claim1, 2: claim2, 3: claim3, 4: claim4, 5: claim5, 6: claim6}
