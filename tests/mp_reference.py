"""mpmath references for the Gaussian moments of activations (R1), at raised precision.

relu_pair_ref: E[(a + x)+ (b + y)+] for standard normals x, y with correlation rho, as the 2-D integral over
(x, z) with y = rho x + sqrt(1 - rho^2) z; the z-integral is done in closed form at full precision
(``r g((b + rho x)/r)``) and the x-integral by mpmath's tanh-sinh quadrature. The x-integrand is log-concave
and vanishes at x = -a, so its maximum is interior: it is located by golden-section search and its width from
the curvature, and the quadrature is split at the maximum +- (1, 3, 10, 30) widths and around the point
where ``b + rho x`` changes sign, so that tails (|a| = 30) and rho -> +-1 are resolved.
relu_pair_ref_2d: the same with the z-integral done numerically too (a genuine nested 2-D quadrature; slow).
"""
import mpmath as mp

_LAST_LOGMAX = None


def _g(c):
    return c * mp.ncdf(c) + mp.npdf(c)


def _breakpoints(logf, lo, extra):
    # golden-section search for the maximum of a concave function on (lo, lo + span)
    a, b = lo, max(lo, mp.mpf(0)) + 80
    gr = (mp.sqrt(5) - 1) / 2
    c, d = b - gr * (b - a), a + gr * (b - a)
    fc, fd = logf(c), logf(d)
    for _ in range(200):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - gr * (b - a)
            fc = logf(c)
        else:
            a, c, fc = c, d, fd
            d = a + gr * (b - a)
            fd = logf(d)
        if b - a < mp.mpf(10) ** -12:
            break
    xs = (a + b) / 2
    global _LAST_LOGMAX
    _LAST_LOGMAX = logf(xs)
    hstep = mp.mpf(10) ** -4 * (1 + abs(xs - lo))
    hstep = min(hstep, (xs - lo) / 4)
    curv = (logf(xs + hstep) - 2 * logf(xs) + logf(xs - hstep)) / hstep**2
    w = 1 / mp.sqrt(-curv) if curv < 0 else mp.mpf(1)
    pts = {lo}
    for k in (-30, -10, -3, -1, 0, 1, 3, 10, 30):
        pts.add(xs + k * w)
    pts.update(extra)
    pts = sorted(p for p in pts if p >= lo)
    return pts + [mp.inf]


def relu_pair_ref(a, b, rho, dps=30, error=False):
    with mp.workdps(dps + 15):
        a, b, rho = mp.mpf(a), mp.mpf(b), mp.mpf(rho)
        r = mp.sqrt((1 - rho) * (1 + rho))

        def f(x):
            return (a + x) * mp.npdf(x) * r * _g((b + rho * x) / r)

        def logf(x):
            v = f(x)
            return mp.log(v) if v > 0 else mp.mpf(-10) ** 9

        extra = []
        if rho != 0:
            x0 = -b / rho
            extra = [x0 + k * r / abs(rho) for k in (-10, -3, -1, 0, 1, 3, 10)]
        pts = _breakpoints(logf, -a, extra)
        # mpmath stops on an absolute error: scale the integrand to a peak of 1, rescale afterwards
        scale = mp.exp(_LAST_LOGMAX)
        val, err = mp.quad(lambda x: f(x) / scale, pts, error=True)
        return (val * scale, err * scale) if error else +(val * scale)


def relu_pair_ref_2d(a, b, rho, dps=30):
    """Nested numerical 2-D quadrature (x outer, z inner), both by tanh-sinh at ``dps`` digits."""
    with mp.workdps(dps + 10):
        a, b, rho = mp.mpf(a), mp.mpf(b), mp.mpf(rho)
        r = mp.sqrt((1 - rho) * (1 + rho))

        def inner(x):
            zlo = -(b + rho * x) / r
            sc = mp.npdf(zlo) if zlo > 0 else mp.mpf(1)   # mpmath stops on an absolute error: rescale
            w = 1 / (1 + abs(zlo))                         # tail width
            return sc * mp.quad(lambda z: (b + rho * x + r * z) * mp.npdf(z) / sc,
                                [zlo, zlo + w, zlo + 4 * w, zlo + 16 * w, zlo + 64 * w, mp.inf])

        def f(x):
            return (a + x) * mp.npdf(x) * inner(x)

        def logf(x):
            v = (a + x) * mp.npdf(x) * r * _g((b + rho * x) / r)
            return mp.log(v) if v > 0 else mp.mpf(-10) ** 9

        extra = []
        if rho != 0:
            x0 = -b / rho
            extra = [x0 + k * r / abs(rho) for k in (-3, 0, 3)]
        pts = _breakpoints(logf, -a, extra)
        scale = mp.exp(_LAST_LOGMAX)
        return +(mp.quad(lambda x: f(x) / scale, pts) * scale)


def bvn_cdf_ref(a, b, rho, dps=30):
    """P(x < a, y < b) = int_{-inf}^{a} phi(x) Phi((b - rho x)/r) dx, split around its maximum."""
    with mp.workdps(dps + 15):
        a, b, rho = mp.mpf(a), mp.mpf(b), mp.mpf(rho)
        r = mp.sqrt((1 - rho) * (1 + rho))
        f = lambda x: mp.npdf(-x) * mp.ncdf((b + rho * x) / r)  # noqa: E731  (x -> -x: (−a, inf))
        logf = lambda x: mp.log(f(x)) if f(x) > 0 else mp.mpf(-10) ** 9  # noqa: E731
        # integrand on (-a, inf) after x -> -x is log-concave but need not vanish at -a: add -a itself
        extra = [-b / rho + k * r / abs(rho) for k in (-3, 0, 3)] if rho != 0 else []
        lo = -a
        pts = sorted(set([lo] + [p for p in extra if p > lo] + [lo + k for k in (1, 3, 10, 30)]))
        # maximum: for a concave log-integrand on [lo, inf) use golden search as well
        bp = _breakpoints(logf, lo, [])
        scale = mp.exp(_LAST_LOGMAX)
        pts = sorted(set(pts + bp[:-1]))
        return +(mp.quad(lambda x: f(x) / scale, pts + [mp.inf]) * scale)


def erf_pair_ref(mu_u, s_u, mu_v, s_v, rho, dps=30):
    """E[erf u erf v]: x-integral of erf(mu_u + s_u x) * erf((mu_v + s_v rho x)/sqrt(1 + 2 s_v^2 (1-rho^2)))."""
    with mp.workdps(dps + 10):
        mu_u, s_u, mu_v, s_v, rho = (mp.mpf(v) for v in (mu_u, s_u, mu_v, s_v, rho))
        q = mp.sqrt(1 + 2 * s_v**2 * (1 - rho**2))
        f = lambda x: mp.npdf(x) * mp.erf(mu_u + s_u * x) * mp.erf((mu_v + s_v * rho * x) / q)  # noqa: E731
        pts = sorted({-mu_u / s_u, -mu_v / (s_v * rho) if rho != 0 else mp.mpf(0), mp.mpf(0)})
        pts = [-mp.inf] + sorted(set(pts + [p + d for p in pts for d in (-3, -1, 1, 3)])) + [mp.inf]
        return +mp.quad(f, pts)


def gh_pair_ref(fn, mu_u, s_u, mu_v, s_v, rho, dps=30):
    """E[f(u) f(v)] for an mpmath function f by the x-outer, z-inner nested quadrature."""
    with mp.workdps(dps + 5):
        mu_u, s_u, mu_v, s_v, rho = (mp.mpf(v) for v in (mu_u, s_u, mu_v, s_v, rho))
        r = mp.sqrt((1 - rho) * (1 + rho))
        inner = lambda x: mp.quad(lambda z: mp.npdf(z) * fn(mu_v + s_v * (rho * x + r * z)), [-mp.inf, 0, mp.inf])  # noqa
        return +mp.quad(lambda x: mp.npdf(x) * fn(mu_u + s_u * x) * inner(x), [-mp.inf, 0, mp.inf])
