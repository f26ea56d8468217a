"""Files and command line of ``rftheory analyze`` (the measurements: :mod:`rftheory.apps.analyze`).

Inputs (:mod:`rftheory.apps._analyze_inputs`): .npy / .npz / .csv tables (images are flattened); a CSV's first
line is a header only when ``header=True`` (``--header``): otherwise every line must be a row of numbers, and a
malformed one is an error naming its line. Outputs, as a set: ``report.json``, ``summary.md``,
``per_sample.csv`` and ``analyze.png``/``.pdf`` are written into a temporary directory beside ``--out`` and
renamed as a whole, so ``--out`` holds the complete previous report or the complete new one, never a mixture.
``--out`` is checked (and the temporary directory created) before the computation: an existing file, a directory
holding other files, or an unwritable place fails at once with one line and exit code 2.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ._analyze_inputs import _load_trajectories, load_table  # load_table re-exported: the input files
from .analyze_plots import plot as _plot

__all__ = ["load_table", "write_report", "OutputSet", "REPORT_FILES", "main"]

REPORT_FILES = ("report.json", "summary.md", "per_sample.csv", "analyze.png", "analyze.pdf")


# ----------------------------------------------------------------------------- output set
class OutputSet:
    """A report directory written as a whole: :meth:`open` checks ``out`` and creates the temporary
    directory beside it (before any computation); :meth:`commit` renames it over ``out``; :meth:`discard`
    removes it. ``out`` may be new, empty, or hold a previous report (only REPORT_FILES): anything else is
    refused, since the rename replaces the whole directory.

    Parameters
    ----------
    out : str or os.PathLike
        The report directory.

    Attributes
    ----------
    out : pathlib.Path
    tmp : pathlib.Path or None
        The temporary directory once opened.
    """

    def __init__(self, out):
        self.out = Path(out)
        self.tmp = None

    def open(self):
        """Check ``out`` and create the temporary directory beside it (creating ``out``'s parent if needed).

        Returns
        -------
        pathlib.Path
            The temporary directory to write into.

        Raises
        ------
        ValueError
            If ``out`` exists and is not a directory, holds files other than REPORT_FILES, or cannot be
            written.
        """
        out = self.out
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a directory")
        if out.is_dir():
            other = sorted(p.name for p in out.iterdir() if p.name not in REPORT_FILES)
            if other:
                raise ValueError(f"--out {out} holds other files ({', '.join(other[:3])}): give a new or empty "
                                 f"directory, or one holding only a previous report")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        except OSError as exc:
            raise ValueError(f"cannot write --out {out}: {exc.strerror or exc}") from exc
        return self.tmp

    def commit(self):
        """Rename the temporary directory over ``out`` (the previous one, if any, is removed; on failure it is
        put back), then discard what is left.

        Returns
        -------
        list of pathlib.Path
            ``out / f`` for every f in REPORT_FILES.

        Raises
        ------
        ValueError
            If a rename fails.
        """
        old = None
        try:
            os.chmod(self.tmp, 0o777 & ~_umask())
            if self.out.is_dir():
                old = self.out.parent / f"{self.tmp.name}.old"
                os.replace(self.out, old)
            os.replace(self.tmp, self.out)
        except OSError as exc:
            if old is not None and not self.out.exists():
                os.replace(old, self.out)  # put the previous report back
                old = None
            raise ValueError(f"cannot write --out {self.out}: {exc.strerror or exc}") from exc
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            self.discard()
        return [self.out / f for f in REPORT_FILES]

    def discard(self):
        """Remove the temporary directory, if it exists.

        Returns
        -------
        None
        """
        if self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def _markdown(s: dict, inputs: dict) -> str:
    tb, m, sc = s["tube"], s["memorization"], s["status_counts"]
    sec = s["secondary_hqt"]
    rows = [("training points", s["n_train"]), ("samples", s["n_samples"]), ("dimension D", s["D"]),
            ("ridge dimension d", s["d"]), ("t (a_t, h_t)", f"{s['t']:g} ({s['a_t']:.4g}, {s['h_t']:.4g})"),
            (f"**tube fraction** (level {tb['level']:g}: exact draws of p_t score {tb['level']:g})",
             f"**{tb['fraction']:.3f} ± {tb['se']:.3f}** ({tb['n_inside']} inside of {tb['n_counted']} counted)"),
            ("tube radius (noise units / length)", f"{tb['radius_noise_units']:.4g} / {tb['radius']:.4g}"),
            ("samples by status", ", ".join(f"{k}: {v}" for k, v in sc.items())),
            ("distance to ridge / sqrt(h_t), median [q05, q95]",
             f"{s['z'].get('q50', float('nan')):.3g} [{s['z'].get('q05', float('nan')):.3g}, "
             f"{s['z'].get('q95', float('nan')):.3g}]"),
            ("offset from ridge: normal / tangent median", f"{s['normal_offset'].get('q50', float('nan')):.4g} / "
                                                           f"{s['tangent_offset'].get('q50', float('nan')):.4g}"),
            ("memorised fraction (d1/d2 < 1/3, distinct points)",
             f"{m['fraction']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] ({100 * m['level']:.0f}% bootstrap)"),
            ("NN distance median (samples / train leave-one-out)",
             f"{s['nn_distance']['q50']:.4g} / {s['train_nn_distance']['q50']:.4g}"),
            ("secondary ([HQT]): on-ridge fraction, r / max r < 0.2", f"{sec['on_ridge_fraction']:.3f}"),
            ("density evaluation", s["density"]["kind"])]
    if "dimension" in s:
        dm = s["dimension"]
        rows.append(("d chosen (auto)", f"{dm['d']} (share {dm['share']:.3f}); median spectrum 1 + h lambda_k: "
                                        + ", ".join(f"{v:.3g}" for v in dm["median_spectrum"][:8])))
    if "model_error" in s:
        me = s["model_error"]
        rows.append(("model score error: normal / tangent median (1/length)",
                     f"{me['normal'].get('q50', float('nan')):.4g} / {me['tangent'].get('q50', float('nan')):.4g}"))
        rows.append(("model score error: relative rms; normal share of squared error",
                     f"{me['relative_rms']:.4g}; {me['normal_share_of_squared_error']:.3f}"))
    if "trajectories" in s:
        tr = s["trajectories"]
        rows.append(("trajectories: reached / aligned (tube radius at the last time)",
                     f"{tr['reached']:.3f} / {tr['aligned']:.3f} (r = {tr['r_tube']:.4g})"))
        rows.append(("trajectories: median reach / align time, median slide",
                     f"{tr['reach_time'].get('q50', float('nan')):.4g} / "
                     f"{tr['align_time'].get('q50', float('nan')):.4g}, {tr['slide'].get('q50', float('nan')):.4g}"))
    if "pca" in s:
        rows.append(("PCA", f"K = {s['pca']['K']}, retained variance {s['pca']['retained_variance']:.3f}"))
    lines = ["# rftheory analyze", "", *(f"- {k}: `{v}`" for k, v in inputs.items()), "",
             "| quantity | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += [f"**warning:** {w}" for w in s["warnings"]]
    return "\n".join(lines) + "\n"


def _per_sample(res, path):
    names = res.status_names
    cols = [np.arange(res.m)[:, None], res.samples, res.proj_points, res.proj_distance[:, None],
            res.tube.z[:, None], res.tube.inside[:, None].astype(int), res.normal_offset[:, None],
            res.tangent_offset[:, None], res.residual[:, None], res.residual_normalized[:, None],
            res.eigengap[:, None], res.memo.ratios[:, None], res.nn_distance[:, None], res.nn_index[:, None]]
    head = (["index"] + [f"x{j}" for j in range(res.D)] + [f"proj{j}" for j in range(res.D)]
            + ["distance", "z", "in_tube", "normal_offset", "tangent_offset", "residual",
               "residual_normalized_hqt", "eigengap", "d1_over_d2", "nn_distance", "nn_index", "status"])
    num = np.hstack(cols)
    with open(path, "w") as fh:
        fh.write(",".join(head) + "\n")
        for row, st in zip(num, names):
            fh.write(",".join(f"{v:.10g}" for v in row) + f",{st}\n")


def write_report(res, out_dir, inputs: dict | None = None) -> list:
    """Write REPORT_FILES into a temporary directory beside ``out_dir`` and rename it over ``out_dir`` as a
    whole (see :class:`OutputSet`). Failures leave ``out_dir`` as it was.

    Parameters
    ----------
    res : Analysis
        Result of :func:`rftheory.apps.analyze.analyze_samples` (its ``trajectories``, if set, go into
        report.json).
    out_dir : str or os.PathLike
        The report directory.
    inputs : dict or None, default None
        Description of the inputs, recorded in report.json and summary.md.

    Returns
    -------
    list of pathlib.Path
        The written files.

    Raises
    ------
    ValueError
        If ``out_dir`` is refused or cannot be written (:meth:`OutputSet.open`, :meth:`OutputSet.commit`).
    """
    outs = OutputSet(out_dir)
    tmp = outs.open()
    try:
        _write_into(res, tmp, inputs)
    except BaseException:
        outs.discard()
        raise
    return outs.commit()


def _write_into(res, tmp: Path, inputs):
    from .._io import json_safe

    inputs = dict(inputs or {})
    s = res.summary()
    s["inputs"] = inputs
    if getattr(res, "trajectories", None) is not None:
        s["trajectories"] = res.trajectories
    (tmp / "report.json").write_text(json.dumps(json_safe(s), indent=2, allow_nan=False))
    (tmp / "summary.md").write_text(_markdown(s, inputs))
    _per_sample(res, tmp / "per_sample.csv")
    _plot(res, tmp / "analyze.png", tmp / "analyze.pdf")


# ----------------------------------------------------------------------------- command
def _parse_d(d):
    if isinstance(d, int) or d == "auto":
        return d
    try:
        return int(d)
    except (TypeError, ValueError):
        raise ValueError(f"--d must be an integer ridge dimension or 'auto'; got {d!r}") from None


def _model(args):
    """The user's model from ``--score package.module:function`` or ``--model FILE.npz``, or None."""
    from .. import fields

    spec, path = getattr(args, "score", None), getattr(args, "model", None)
    if spec and path:
        raise ValueError("give --score or --model, not both")
    if spec:
        if os.getcwd() not in sys.path:  # a module in the working directory, as `python -m` would find it
            sys.path.insert(0, os.getcwd())
        return fields.as_score_field(fields.load_callable(spec), getattr(args, "schedule", "ou"), name=spec)
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--model {path}: no such file")
        field = fields.load_rf(path)
        if field.schedule.name != getattr(args, "schedule", "ou"):
            raise ValueError(f"--model {path} was trained with schedule {field.schedule.name!r} but --schedule "
                             f"is {getattr(args, 'schedule', 'ou')!r}")
        return field
    return None


def main(args) -> int:
    """``rftheory analyze``: load the inputs, measure, write the report set, print the headline.

    Parameters
    ----------
    args : argparse.Namespace
        With ``train``, ``samples``, ``t``, ``d`` (int or "auto"), ``pca``, ``seed`` and ``out``; optionally
        ``header``, ``schedule``, ``level``, ``score``, ``model``, ``trajectories``, ``no_progress``.

    Returns
    -------
    int
        0, or 2 with a one-line message on stderr for bad input or output (ValueError, TypeError, OSError).
    """
    from .analyze import analyze_samples

    outs = OutputSet(args.out)
    try:
        header = bool(getattr(args, "header", False))
        d = _parse_d(args.d)
        train = load_table(args.train, "train", header=header)
        samples = load_table(args.samples, "samples", header=header)
        if samples.shape[1] != train.shape[1]:
            raise ValueError(f"samples ({args.samples}) have D = {samples.shape[1]} per row but train "
                             f"({args.train}) has D = {train.shape[1]}")
        model = _model(args)
        tmp = outs.open()  # before the long computation: a bad --out fails now
        res = analyze_samples(train, samples, args.t, d, schedule=getattr(args, "schedule", "ou"),
                              pca=args.pca, rng=args.seed, level=getattr(args, "level", 0.9), model=model,
                              progress=not getattr(args, "no_progress", False))
        traj = getattr(args, "trajectories", None)
        if traj:
            if args.pca is not None:
                raise ValueError("--trajectories cannot be combined with --pca")
            from .analyze import trajectory_phases

            z = _load_trajectories(traj)
            res.trajectories = trajectory_phases(train, z["states"], z["times"], res.d,
                                                 getattr(args, "schedule", "ou"), getattr(args, "level", 0.9),
                                                 model=model, progress=not getattr(args, "no_progress", False))
        _write_into(res, tmp, {"train": str(args.train), "samples": str(args.samples), "t": args.t,
                               "d": args.d, "pca": args.pca, "seed": args.seed,
                               "score": getattr(args, "score", None), "model": getattr(args, "model", None)})
        paths = outs.commit()
    except (ValueError, TypeError, FileNotFoundError) as err:
        outs.discard()
        print(f"rftheory analyze: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        outs.discard()
        print(f"rftheory analyze: error: {err.strerror or err}: {err.filename or args.out}", file=sys.stderr)
        return 2
    except BaseException:
        outs.discard()
        raise
    for w in res.warnings:
        print(f"rftheory analyze: warning: {w}", file=sys.stderr)
    tb, m = res.tube, res.memo
    print(f"tube fraction {tb.fraction:.3f} ± {tb.se:.3f} (level {tb.level:g}; {tb.n_counted} of {res.m} "
          f"counted); memorised {m.fraction:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]; d = {res.d}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
