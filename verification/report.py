"""``report.json`` and ``report.md`` from a list of CheckResults, both written atomically."""
from __future__ import annotations

import json
from pathlib import Path

from ._io import atomic_write_text

__all__ = ["write_reports", "to_markdown", "to_json"]

_COLS = ("result", "setting", "predicted", "measured", "tolerance", "margin", "verdict", "tolerance from")


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return f"{v:.4g}"


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_json(results, meta: dict) -> str:
    payload = dict(meta)
    payload["passed"] = all(r.passed for r in results)
    payload["checks"] = [r.to_dict() for r in results]
    return json.dumps(payload, indent=2, allow_nan=False, sort_keys=False) + "\n"


def to_markdown(results, meta: dict) -> str:
    ok = all(r.passed for r in results)
    n_fail = sum(not r.passed for r in results)
    n_info = sum(r.verdict == "info" for r in results)
    lines = [
        "# rftheory verify",
        "",
        f"profile **{meta.get('profile')}**, seed {meta.get('seed')}, {len(results)} checks, "
        f"**{'all passed' if ok else f'{n_fail} failed'}**"
        + (f" ({n_info} reported only, not judged)" if n_info else "")
        + (f", {meta['elapsed_s']:.1f} s" if "elapsed_s" in meta else ""),
        "",
        "| " + " | ".join(_COLS) + " |",
        "|" + "|".join("---" for _ in _COLS) + "|",
    ]
    for r in results:
        label = r.name if r.perturb == 1.0 else f"{r.name} (prediction × {r.perturb:g})"
        if r.verdict == "info":
            label += " (reported only, not judged)"
        if r.verdict == "error" or not r.rows:
            lines.append(f"| {label} | {_cell(r.title)} | — | — | — | — | **{r.verdict}** | "
                         f"{_cell(r.error or '')} |")
            continue
        for row in r.rows:
            what = row.setting if not row.quantity else f"{row.quantity}: {row.setting}"
            verdict = row.verdict if row.verdict != "fail" else f"**fail** ({row.n_failed}/{row.n})"
            lines.append("| " + " | ".join(_cell(c) for c in (
                label, what, _fmt(row.predicted), _fmt(row.measured), _fmt(row.tolerance), _fmt(row.margin),
                verdict, row.source)) + " |")
    lines += ["", "margin = tolerance − deviation at the worst element (≥ 0 passes); deviation is "
              "|predicted − measured| for equalities, measured − predicted for upper bounds.", ""]
    notes = [(r.name, n) for r in results for n in r.notes]
    if notes:
        lines += ["## Notes", ""] + [f"- {name}: {_cell(n)}" for name, n in notes] + [""]
    sweeps = meta.get("sweeps") or []
    if sweeps:
        lines += ["## Sweeps", "", "| sweep | tasks | computed | cached |", "|---|---|---|---|"]
        lines += [f"| {s['name']} | {s['tasks']} | {s['computed']} | {s['cached']} |" for s in sweeps]
        lines.append("")
    return "\n".join(lines)


def write_reports(out_dir, results, meta: dict):
    """Write ``report.json`` and ``report.md`` into ``out_dir`` atomically; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pj = atomic_write_text(out / "report.json", to_json(results, meta))
    pm = atomic_write_text(out / "report.md", to_markdown(results, meta))
    return pj, pm
