"""Shared helpers for the figure scripts: the result type and atomic PNG + PDF output."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        final = out_dir / f"{stem}.{ext}"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{stem}.", suffix=f".{ext}")
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        paths.append(final)
    plt.close(fig)
    return paths
