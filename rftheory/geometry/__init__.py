"""Geometry: the time-indexed log-density ridge of a score field.

``ridge`` holds the frame (from the Hessian's spectrum), the residual, the SCMS + trust-region Newton
projection, distances and the P2/P3 oracles; ``_ridge_trace`` traces 1-D ridges into ordered pieces. It may
import ``rftheory.density`` and the private helpers, nothing above.
"""
from . import ridge

__all__ = ["ridge"]
