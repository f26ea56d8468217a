"""``python -m rftheory``: the same command line as the ``rftheory`` console script."""
import sys

from .cli import main

sys.exit(main())
