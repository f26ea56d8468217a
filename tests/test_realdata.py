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
