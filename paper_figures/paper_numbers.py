"""``rftheory figures --paper NAME``: each number of a paper that the project reproduces, side by side.

For every entry: the paper's value where the paper (or its code) states one, ours from the figure's JSON in
``--out`` (render it first: ``rftheory figures --only FIG --out DIR``), and the measure ours uses -- a number
is comparable with the paper's only under the same measure (docs/conventions.md).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_LOSS = ("loss-level: tangent part of L(W) - L*, (1/D) int lambda h_t^2 E|P_x e|^2 dt over [t0, T] "
         "(posterior-mean units; rf.decomposition.loss_split)")
_LOSS_N = _LOSS.replace("tangent part", "normal part").replace("P_x", "P_y")
_RMS = "RMS score error (score units) over x ~ p_t and 12 geometric t in [t0, T], equal weights (not the paper's)"
_GAP = ("inter-peak mass: fraction of PF-ODE samples in (-0.75,-0.25) U (0.25,0.75), mean +- SE over the "
        "ensemble's fits")


@dataclass
class Entry:
    figure: str          # the figure whose JSON holds ours
    quantity: str
    paper: str           # the paper's value as stated, or "not stated"
    ours: Callable       # JSON dict -> str
    measure: str


def _tau_inf(key, w):
    return lambda d: f"{d[w][key][-1]:.3g}"


def _hqt() -> list:
    rows = []
    for w in ("1", "1/h", "1/h2"):
        rows.append(Entry("two_mode", f"two modes (+-3,0): tangential floor at tau = inf, lambda = {w}",
                          "0.25-2 over the three lambda ([HQT] R4; per-lambda values not stated)",
                          lambda d, w=w: (f"{d[w]['loss_tangent'][-1]:.3g} +- {d[w]['loss_se_tangent']:.1g} "
                                          f"(p={d['p']}, K={d['K']}, T={d['T']:g})"), _LOSS))
        rows.append(Entry("two_mode", f"two modes: normal part at tau = inf, lambda = {w}",
                          "tiny floor, ~1e-10 ([HQT] R4)", _tau_inf("loss_normal", w), _LOSS_N))
        rows.append(Entry("two_mode", f"two modes: tangential RMS score error at tau = inf, lambda = {w}",
                          "not a measure of the paper", _tau_inf("score_tangent", w), _RMS))
    return rows


def _gtv() -> list:
    rows = []
    for r, eps in enumerate((1e-4, 1e-3, 1e-2)):
        for c, P in enumerate((64, 128, 256, 512, 1024)):
            rows.append(Entry("gtv2", f"Fig. 2 gap filling, eps = {eps:g}, P = {P} (F/P = {256 / P:g})",
                              "not stated (read off the paper's panels)",
                              lambda d, r=r, c=c: (f"{d['gap_mean'][r][c]:.3f} +- {d['gap_se'][r][c]:.3f} "
                                                   f"(N={d['N']}, grid {d.get('grid', '?')})"), _GAP))
    return rows


PAPERS = {"hqt": _hqt, "gtv": _gtv}


def table(paper: str, out_dir) -> list:
    """Rows ``(quantity, paper's value, ours, measure, figure)``; ours is "not rendered" when the figure's
    JSON is absent from ``out_dir`` and "unreadable" when it does not parse or lacks the entry."""
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {sorted(PAPERS)}; got {paper!r}")
    cache: dict = {}
    rows = []
    for e in PAPERS[paper]():
        if e.figure not in cache:
            path = Path(out_dir) / f"{e.figure}.json"
            try:
                cache[e.figure] = json.loads(path.read_text()) if path.exists() else None
            except (OSError, ValueError):
                cache[e.figure] = "unreadable"
        d = cache[e.figure]
        if d is None:
            ours = f"not rendered (rftheory figures --only {e.figure} --out {out_dir})"
        elif d == "unreadable":
            ours = "unreadable JSON"
        else:
            try:
                ours = e.ours(d)
            except (KeyError, IndexError, TypeError, ValueError):
                ours = "unreadable (JSON of another version)"
        rows.append((e.quantity, e.paper, ours, e.measure, e.figure))
    return rows


def main(paper: str, out_dir) -> int:
    try:
        rows = table(paper, out_dir)
    except ValueError as err:
        print(f"rftheory figures --paper: {err}", file=sys.stderr)
        return 2
    for q, p, o, m, f in rows:
        print(f"{q}\n    paper: {p}\n    ours:  {o}   [{f}.json]\n    measure: {m}")
    return 0
