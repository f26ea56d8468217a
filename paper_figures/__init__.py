"""One script per figure. Each module defines ``NAME``, ``TITLE``, ``CAPTION`` and
``render(out_dir, quick=False, seed=0, progress=True) -> FigureResult`` and is discovered by
:mod:`paper_figures.registry` (``rftheory figures``)."""
