"""Real data sets and their latent map: scikit-learn's handwritten digits, MNIST IDX files, exact PCA.

Kept apart from :mod:`rftheory.data.datasets` (the synthetic sets) because file parsing and the latent map are a
job of their own; ``datasets`` re-exports the public names.

* :func:`load_digits` -- scikit-learn's 8x8 handwritten digits (1797 images, ships with scikit-learn, no
  download), pixels scaled from {0..16} to [0, 1], flattened to D = 64, with labels.
* :func:`load_idx` / :func:`load_mnist` -- the IDX format of LeCun's MNIST files (raw or gzip), from a path the
  user gives. The header is ``00 00 <type> <ndim>`` followed by ``ndim`` big-endian uint32 sizes; every field
  is validated (magic zeros, known type code, ndim, positive sizes, payload length exactly the product of the
  sizes times the item size) and a corrupt or truncated file raises a ``ValueError`` naming the file.
* :func:`select_class` -- the rows of one (or several) labels.
* :class:`PCALatent` -- an exact PCA map by one float64 SVD of the centred data (no randomised solver):
  ``z = (x - mean) V_K^T / scale`` and back ``x = z scale V_K + mean``.

All arrays are float64 (labels int64).
"""
from __future__ import annotations

import gzip
import math
import logging
import os
import zlib
from dataclasses import dataclass

import numpy as np

from .._checks import as_data, as_points
from .._results import short_repr

log = logging.getLogger(__name__)

__all__ = ["load_digits", "select_class", "load_idx", "load_mnist", "IDX_TYPES", "PCALatent",
           "DEFAULT_LATENT_DIM"]

# default latent dimension per source ([HQT] used a 32-d latent for MNIST; 16 suffices for 8x8 digits)
DEFAULT_LATENT_DIM = {"digits": 16, "mnist": 32}

# IDX type code -> big-endian numpy dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_NDIM = 8
_MAX_BYTES = 2 ** 34  # 16 GiB: far above MNIST (47 MB); a larger claim is a corrupt header


def load_digits(digit=None, scale: bool = True):
    """scikit-learn's handwritten digits (8 x 8, shipped with scikit-learn; no download).

    Parameters
    ----------
    digit : None, int or sequence of int, optional
        None for all classes, or the class(es) 0..9 to keep (see :func:`select_class`).
    scale : bool, default True
        Divide the pixel values {0..16} by 16 so images lie in [0, 1] like MNIST's.

    Returns
    -------
    X : numpy.ndarray, shape (n, 64)
        Flattened images (float64).
    labels : numpy.ndarray of int64, shape (n,)

    Raises
    ------
    ValueError, TypeError
        As :func:`select_class`.
    """
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    if scale:
        X = X / 16.0
    if digit is None:
        return X, y
    return select_class(X, y, digit)


def select_class(X, labels, digit):
    """Rows of ``X`` whose label is ``digit``.

    Parameters
    ----------
    X : array_like, shape (n, D)
    labels : array_like, shape (n,)
    digit : int or sequence of int

    Returns
    -------
    X_sel : numpy.ndarray, shape (k, D)
    labels_sel : numpy.ndarray, shape (k,)

    Raises
    ------
    ValueError
        If the shapes disagree or a digit is not present.
    TypeError
        If digit is not an integer or a sequence of them.
    """
    X = np.asarray(X)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
        raise ValueError(f"labels must have shape ({X.shape[0]},) to match X; got {labels.shape}")
    wanted = np.atleast_1d(np.asarray(digit))
    if wanted.size == 0 or not np.issubdtype(wanted.dtype, np.integer):
        raise TypeError(f"digit must be an integer or a sequence of integers; got {digit!r}")
    missing = [int(w) for w in wanted if not np.any(labels == w)]
    if missing:
        raise ValueError(f"digit {missing} not present in labels (labels hold {sorted(set(labels.tolist()))})")
    keep = np.isin(labels, wanted)
    return X[keep], labels[keep]


# ----------------------------------------------------------------------------- IDX
def _open(path):
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_exact(fh, n, path, what):
    try:
        buf = fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:  # corrupt gzip stream
        raise ValueError(f"{path}: corrupt file while reading the {what} ({exc})") from exc
    if len(buf) != n:
        raise ValueError(f"{path}: truncated file: the {what} needs {n} bytes, found {len(buf)}")
    return buf


def load_idx(path, expect_ndim=None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array of its own dtype (native byte order).

    Parameters
    ----------
    path : path
        The file.
    expect_ndim : int, optional
        Required number of dimensions.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    FileNotFoundError
        For a missing path.
    ValueError
        Naming the path, for a bad magic number, unknown type code, wrong ``ndim``, a zero size, a truncated
        payload or trailing bytes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    if expect_ndim is not None and (int(expect_ndim) != expect_ndim or expect_ndim < 1):
        raise ValueError(f"expect_ndim must be a positive integer; got {expect_ndim!r}")
    with _open(path) as fh:
        magic = _read_exact(fh, 4, path, "4-byte magic number")
        if magic[0] != 0 or magic[1] != 0:
            raise ValueError(f"{path}: not an IDX file (magic number {magic.hex()} does not start with 0000)")
        code, ndim = magic[2], magic[3]
        if code not in IDX_TYPES:
            raise ValueError(f"{path}: unknown IDX type code 0x{code:02x} (known: "
                             f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)})")
        if ndim < 1 or ndim > _MAX_NDIM:
            raise ValueError(f"{path}: IDX header gives ndim = {ndim}; expected 1..{_MAX_NDIM}")
        if expect_ndim is not None and ndim != expect_ndim:
            raise ValueError(f"{path}: IDX file has {ndim} dimensions; expected {expect_ndim}")
        dims = tuple(int(v) for v in np.frombuffer(_read_exact(fh, 4 * ndim, path, "dimension sizes"),
                                                     dtype=">u4"))
        if 0 in dims:
            raise ValueError(f"{path}: IDX header has a zero size in its dimensions {dims}")
        dtype = np.dtype(IDX_TYPES[code])
        nbytes = math.prod(dims) * dtype.itemsize  # exact (Python ints): a corrupt header cannot overflow
        if nbytes > _MAX_BYTES:
            raise ValueError(f"{path}: IDX header announces {nbytes} bytes for shape {dims} (more than the "
                             f"{_MAX_BYTES} accepted): corrupt header")
        payload = _read_exact(fh, nbytes, path, f"payload of shape {dims}")
        try:
            extra = fh.read(1)  # for gzip this also checks the stream's CRC and length
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt file at its end ({exc})") from exc
        if extra:
            raise ValueError(f"{path}: trailing bytes after the payload of shape {dims} "
                             "(corrupt or wrong header)")
    arr = np.frombuffer(payload, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def load_mnist(images, labels=None, digit=None, scale: bool = True):
    """MNIST from IDX files (a user's copy; nothing is downloaded).

    Parameters
    ----------
    images : path
        An ``idx3-ubyte`` file (magic 0x00000803), raw or gzip.
    labels : path, optional
        An ``idx1-ubyte`` file (magic 0x00000801) whose length must match.
    digit : None, int or sequence of int, optional
        Classes to keep (needs labels).
    scale : bool, default True
        Map the bytes 0..255 to [0, 1].

    Returns
    -------
    X : numpy.ndarray, shape (n, rows * cols)
        Flattened images (float64).
    labels : numpy.ndarray of int64, shape (n,), or None

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`load_idx`; also if the lengths disagree or ``digit`` is given without labels.
    """
    img = load_idx(images, expect_ndim=3)
    if img.dtype != np.uint8:
        raise ValueError(f"{images}: MNIST images must be unsigned bytes (type 0x08); got {img.dtype}")
    X = img.reshape(img.shape[0], -1).astype(np.float64)
    if scale:
        X /= 255.0
    y = None
    if labels is not None:
        y = load_idx(labels, expect_ndim=1).astype(np.int64)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"labels file {labels} has {y.shape[0]} entries but images file {images} has "
                             f"{X.shape[0]} images")
    if digit is not None:
        if y is None:
            raise ValueError("digit selection needs the labels file (labels=...)")
        return select_class(X, y, digit)
    return X, y


# ----------------------------------------------------------------------------- PCA
_STANDARDIZE = ("global", "whiten", "none")


@dataclass
class PCALatent:
    """Exact PCA latent map of dimension K, fitted by one float64 SVD of the centred training data.

    With ``X - mean = U S V^T`` (singular values descending) and ``V_K`` the first K right singular vectors
    (rows of ``components``; each sign fixed so its largest-magnitude entry is positive, as scikit-learn's
    ``svd_flip`` does):

        encode(x) = (x - mean) V_K^T / scale        (n, K)
        decode(z) = (z * scale) V_K + mean          (n, D)

    ``decode(encode(x))`` is the orthogonal projection of x onto the K-dimensional principal affine
    subspace; ``encode(decode(z)) = z`` exactly (up to round-off). Standardisation (``scale``):

    * ``"global"`` (default): one number, ``sqrt(mean of the K retained variances)``, so the latent has unit
      average variance per coordinate while its anisotropy -- and so Euclidean geometry, nearest
      neighbours and the ridge -- stay those of pixel space restricted to the subspace. This is what the
      latent experiment uses: a diffusion prior N(0, I) then has the data's overall scale.
    * ``"whiten"``: per component, ``sqrt(variance_k)`` (unit variance in every direction; changes geometry).
    * ``"none"``: scale 1.

    Made by :meth:`fit`.

    Attributes
    ----------
    mean : numpy.ndarray, shape (D,)
    components : numpy.ndarray, shape (K, D)
        The first K right singular vectors V_K.
    singular_values : numpy.ndarray, shape (r,)
        For every rank r = min(n, D).
    explained_variance : numpy.ndarray, shape (r,)
        ``S^2/(n-1)``.
    explained_variance_ratio : numpy.ndarray, shape (r,)
    scale : numpy.ndarray, shape (K,)
        The latent scaling.
    K : int
    standardize : str
    """

    mean: np.ndarray
    components: np.ndarray
    singular_values: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    scale: np.ndarray
    K: int
    standardize: str

    __repr__ = short_repr

    @classmethod
    def fit(cls, X, K: int, standardize: str = "global") -> "PCALatent":
        """Fit the map to training rows by one float64 SVD.

        Parameters
        ----------
        X : array_like, shape (n, D)
            Training data (n >= 2).
        K : int
            Latent dimension (1 <= K <= min(n - 1, D), and at most the numerical rank of X).
        standardize : {"global", "whiten", "none"}, default "global"
            How the latent is scaled (class docstring).

        Returns
        -------
        PCALatent

        Raises
        ------
        ValueError
            If X is invalid or has zero variance, K is out of range or standardize unknown.
        TypeError
            If K is not an integer.
        """
        X = as_data(X, "X")
        n, D = X.shape
        if n < 2:
            raise ValueError("X needs at least two rows to fit a PCA")
        if isinstance(K, bool) or int(K) != K:
            raise TypeError(f"K (latent dimension) must be an integer; got {K!r}")
        K = int(K)
        kmax = min(n - 1, D)
        if K < 1 or K > kmax:
            raise ValueError(f"K (latent dimension) must satisfy 1 <= K <= min(n - 1, D) = {kmax}; got {K}")
        if standardize not in _STANDARDIZE:
            raise ValueError(f"standardize must be one of {_STANDARDIZE}; got {standardize!r}")
        mean = X.mean(axis=0)
        _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
        big = np.argmax(np.abs(vt), axis=1)
        signs = np.sign(vt[np.arange(vt.shape[0]), big])
        signs[signs == 0] = 1.0
        vt = vt * signs[:, None]
        var = s * s / (n - 1)
        total = float(var.sum())
        if not total > 0:
            raise ValueError("X has zero variance: every row is the same point")
        if var[K - 1] <= np.finfo(np.float64).eps * var[0] * max(n, D):
            raise ValueError(f"K = {K} exceeds the numerical rank of X (variance {var[K - 1]:.3g} of component "
                             f"{K} is round-off against {var[0]:.3g})")
        if standardize == "global":
            scale = np.full(K, np.sqrt(var[:K].mean()))
        elif standardize == "whiten":
            scale = np.sqrt(var[:K])
        else:
            scale = np.ones(K)
        return cls(mean=mean, components=vt[:K].copy(), singular_values=s, explained_variance=var,
                   explained_variance_ratio=var / total, scale=scale, K=K, standardize=standardize)

    @property
    def D(self) -> int:
        return int(self.components.shape[1])

    @property
    def retained_variance(self) -> float:
        """Fraction of the total variance kept by the K components."""
        return float(self.explained_variance_ratio[:self.K].sum())

    def encode(self, X) -> np.ndarray:
        """Latent coordinates ``(x - mean) V_K^T / scale``.

        Parameters
        ----------
        X : array_like, shape (n, D) or (D,)

        Returns
        -------
        numpy.ndarray, shape (n, K)

        Raises
        ------
        ValueError
            If X has the wrong width or is not finite.
        """
        X = as_points(X, self.D, "X")
        return ((X - self.mean) @ self.components.T) / self.scale

    def decode(self, Z) -> np.ndarray:
        """Reconstruction ``(z * scale) V_K + mean``.

        Parameters
        ----------
        Z : array_like, shape (n, K) or (K,)

        Returns
        -------
        numpy.ndarray, shape (n, D)

        Raises
        ------
        ValueError
            If Z has the wrong width or is not finite.
        """
        Z = as_points(Z, self.K, "Z")
        return (Z * self.scale) @ self.components + self.mean

    def summary(self) -> dict:
        """JSON-ready description (no arrays of size D).

        Returns
        -------
        dict
        """
        return {"K": self.K, "D": self.D, "standardize": self.standardize,
                "scale": self.scale.tolist(), "retained_variance": self.retained_variance,
                "explained_variance": self.explained_variance[:self.K].tolist()}
