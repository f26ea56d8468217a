"""Geometry: the time-indexed log-density ridge of a score field.

``ridge`` is the public face: the frame, the residual, the SCMS + trust-region Newton projection, distances and
the P2/P3 oracles. Private modules beside it do one job each: ``_ridge_frame`` builds the frame from the
Hessian's spectrum (``_eigh_small``: its closed-form 2x2/1x1 eigh at D <= 2), ``_ridge_newton`` runs the
projection's steps on one batch, ``_ridge_one`` the same iteration for one point, ``_ridge_result`` holds its
result type, ``_ridge_refs`` the P2/P3 oracles (closed-form reference ridges), ``_ridge_trace`` traces 1-D ridges
into ordered pieces.
It may import ``rftheory.density`` and the private helpers, nothing above.
"""
from . import ridge

__all__ = ["ridge"]
