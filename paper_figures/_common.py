"""Shared helpers for the figure scripts: the result type and atomic PNG + PDF output."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rftheory._io import atomic_path, json_safe  # noqa: E402

# house colours for the ridge figures
RIDGE = "#2ca02c"
SAMPLES = "#1f77b4"
TRAIN = "#d62728"


@dataclass
class FigureResult:
    """Files written and the numbers behind the figure (for tests and captions)."""

    name: str
    files: list = field(default_factory=list)
    data: dict = field(default_factory=dict)


def save(fig, out_dir, stem: str, dpi: int = 110) -> list:
    """Write ``stem.png`` and ``stem.pdf`` atomically (temporary file + rename); return the paths."""
    paths = []
    for ext in ("png", "pdf"):
        final = Path(out_dir) / f"{stem}.{ext}"
        with atomic_path(final, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(final)
    plt.close(fig)
    return paths


def save_data(res: FigureResult, out_dir) -> Path:
    """Write the numbers behind a figure to ``NAME.json`` (atomically) beside its PNG and PDF."""
    final = Path(out_dir) / f"{res.name}.json"
    with atomic_path(final, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(json_safe(res.data), indent=1, allow_nan=False) + "\n")
    return final
