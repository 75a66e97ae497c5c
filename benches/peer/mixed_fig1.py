"""Peer baseline for `problems/mixed_fig1.toml`: the same algorithm in numpy (GD on the exact
width-2d reduction drawn by Bartlett, and the forward-Euler self-consistent dynamics of eq. (1)
with one SVD per step, as in shared/papers/mixed_dynamics.md §10), timed on this machine.

    python3 benches/peer/mixed_fig1.py [d] [steps] [--no-spectra]

Records GD's singular values at every step as `problems/mixed_fig1.toml` does (the
self-consistent run gets its own from its SVD); --no-spectra drops them, which is the notes'
sketch exactly. Prints the wall time and the minimum test errors (with their steps) of both
dynamics."""
import sys
import time

import numpy as np


def bartlett_r(p, n, rng):
    low = np.tril(rng.standard_normal((p, p)), -1)
    low[np.diag_indices(p)] = np.sqrt(rng.chisquare(n - np.arange(p)))
    return low.T


def run(d=500, k=5, gs=-1.85, gw=2.25, steps=100, factor=5, seed=0, spectra=True):
    rng = np.random.default_rng(seed)
    c, dm = k ** -0.25 * rng.standard_normal((2, d, k))
    a_star = c @ dm.T
    y = a_star + rng.standard_normal((d, d))
    w, s2 = d ** gw, d ** gs
    eta = 1 / (factor * w * s2) if gw + gs > 1 else 1 / (factor * np.linalg.norm(a_star, 2))
    w = int(w)
    r = np.sqrt(s2) * bartlett_r(2 * d, w, rng)
    x1, x2 = r[:, :d].copy(), r[:, d:].copy()
    b, c2 = x2.T @ x1, (s2 * w) ** 2
    rows = []
    for _ in range(steps):
        res = x2.T @ x1 - y
        x1 -= eta * x2 @ res
        x2 -= eta * x1 @ res.T
        g = b - y
        u, s, vt = np.linalg.svd(b)
        root = np.sqrt(s ** 2 + c2)
        b = b - eta * ((u * root) @ u.T @ g + g @ (vt.T * root) @ vt)
        a = x2.T @ x1
        rows.append((np.linalg.norm(a - y) ** 2 / d ** 2, np.linalg.norm(b - y) ** 2 / d ** 2,
                     np.linalg.norm(a - a_star) ** 2 / d ** 2, np.linalg.norm(b - a_star) ** 2 / d ** 2,
                     np.linalg.svd(a, compute_uv=False) if spectra else None))
    return rows


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    d = int(args[0]) if len(args) > 0 else 500
    steps = int(args[1]) if len(args) > 1 else 100
    spectra = "--no-spectra" not in sys.argv
    start = time.perf_counter()
    rows = run(d=d, steps=steps, spectra=spectra)
    seconds = time.perf_counter() - start
    gd_test = [r[2] for r in rows]
    sc_test = [r[3] for r in rows]
    print(f"numpy d={d} steps={steps} spectra={spectra}: {seconds:.2f} s")
    print(f"min test GD {min(gd_test):.4f} at step {1 + int(np.argmin(gd_test))}, "
          f"SC {min(sc_test):.4f} at step {1 + int(np.argmin(sc_test))}")
