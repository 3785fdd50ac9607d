"""The resolved hyper-parameters of a run (ε, α, λ, steps per interpreter and threat), for the report."""

from __future__ import annotations

import html
import logging
from typing import Any

log = logging.getLogger(__name__)

ATTACK_KEYS = (
    "n_warm", "n_total", "lam", "schedule", "phases", "reduction", "extra", "kappa_sel", "warm_loss", "w_prd"
)
MASK_KEYS = (
    "outer", "n_step", "n_plain", "n_reset", "alpha_max", "n_bs", "kappa_bs", "beta", "inner_lr", "cost", "bisection",
    "n_bracket", "reset_steps",
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        frac = v * 255
        if 0 < v < 1 and abs(frac - round(frac)) < 1e-6:
            return f"{v:.4g} ({round(frac)}/255)"
        return f"{v:.4g}"
    return str(v)


def resolved_settings(config: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """One row per (threat, attack) of the run's preset, restricted to the run's threats and interpreters.

    Args:
        config: the run's ``config.yaml`` (preset, threats, interpreters).

    Returns:
        ``(rows, source)``: rows with ``threat``, ``attack``, ``threat parameters`` and ``attack
        parameters`` as display strings; ``source`` says where they were read.
    """
    from ..attacks.presets import load_attack_preset
    from ..config import to_dict

    # the run's own preset: with its --set overrides and --steps-scale (issue 15: `cost: paper-fast` and the like)
    preset = load_attack_preset(
        config["preset"], overrides=config.get("overrides") or (), steps_scale=config.get("steps_scale") or 1.0
    )
    rows = []
    for tname in config.get("threats", ["linf"]):
        settings = preset.for_threat(tname)
        attacks = [("baseline", settings.baseline)] + [
            (i, settings.for_interpreter(i)) for i in config.get("interpreters", []) if i in settings.interpreters
        ]
        for who, acfg in attacks:
            d = to_dict(acfg)
            keys = ATTACK_KEYS + (MASK_KEYS if who == "mask" else ())
            if who == "baseline":
                keys = ("n_warm", "n_total", "kappa_sel")
            if d.get("bisection") != "bracket":
                keys = tuple(k for k in keys if k != "n_bracket")
            params = {**settings.params, **acfg.threat_options}
            rows.append(
                {
                    "threat": tname,
                    "attack": who,
                    "threat parameters": ", ".join(f"{k} {_fmt(v)}" for k, v in params.items()),
                    "attack parameters": ", ".join(f"{k} {_fmt(d[k])}" for k in keys if d.get(k) not in ({}, [], None)),
                }
            )
    opts = preset.interpreter_options
    for i in config.get("interpreters", []):
        if opts.get(i):
            rows.append(
                {
                    "threat": "—",
                    "attack": f"{i} interpreter",
                    "threat parameters": "",
                    "attack parameters": ", ".join(f"{k} {_fmt(v)}" for k, v in opts[i].items()),
                }
            )
    return rows, f"preset {config['preset']} (reduction of ℓint: {preset.reduction})"


def settings_html(config: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The hyper-parameter table; the threats' parameters recorded by the run itself are listed too."""
    try:
        rows, source = resolved_settings(config)
    except Exception as e:  # noqa: BLE001 -- a report must still render when the preset file is gone
        log.warning("report: cannot resolve the preset %s: %s", config.get("preset"), e)
        name = html.escape(str(config.get("preset")))
        return f"<p class='warn'>The preset {name} cannot be read: {html.escape(str(e))}</p>"
    parts = [
        f"<p>From {html.escape(source)}, read when this report was written; the baseline is PGD under "
        "<code>linf</code> and regular StAdv under <code>stadv</code>. λ weighs ℓint, the map term.</p>",
        "<table><tr><th>threat</th><th>attack</th><th>threat parameters</th><th>attack parameters</th></tr>",
    ]
    for r in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(r[k])}</td>" for k in r) + "</tr>")
    parts.append("</table>")
    recorded = manifest.get("threats")
    if recorded:
        parts.append(
            "<p>Threat parameters the run recorded in its manifest: "
            + html.escape("; ".join(f"{k}: {', '.join(f'{a} {_fmt(b)}' for a, b in v.items() if a != 'name')}"
                                    for k, v in recorded.items()))
            + "</p>"
        )
    return "\n".join(parts)
