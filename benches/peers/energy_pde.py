"""Peer comparison for the 1-D mean-field PDE (`kind = "pde"`, src/family/energy/pde.rs):

    ∂_t ρ = ∂_x(ρ ∂_x U) + T ∂_xx ρ,  U = V + h W ρ  (midpoint rule, W_ik = W(x_i, x_k)),

on M cells of [low, high] with Scharfetter–Gummel fluxes at the inner faces,

    J_{i+½} = (T/h) [B(z) ρ_i − B(−z) ρ_{i+1}],  z = (U_{i+1} − U_i)/T,  B(z) = z/(eᶻ − 1),

no-flux walls, dρ_i/dt = −(J_{i+½} − J_{i−½})/h, from the exact cell averages of the initial
Gaussian scaled to mass 1. The same method of lines in vectorized numpy, integrated by scipy's
solve_ivp(method="BDF") with the same rtol/atol and the analytic dense Jacobian (the formulas of
`Pde::jacobian`: the flux derivatives at fixed U plus the nonlocal term through W), against
meanfield's BDF on benches/peers/energy_pde.toml (2000 cells, V = x⁴/4 − x²/2,
W = −exp(−(x − y)²/2), T = 0.05, box [−4, 4], N(0, 1), rtol 1e-6, atol 1e-9, t = 10).

The problem file is the one source of the sizes, box, tolerances, T and initial law (V and W
are checked to be the formulas this file has in numpy). meanfield's time is the run's own
`wall_seconds` (/runs/pde in the archive: the integration with its 11 saves, not the process
start nor the assembly of W, as scipy's time is solve_ivp's alone, W assembled before); the
process's wall time is printed beside it. The final densities are compared relative to the
largest density. As a case of compare.py: `./dev compare --only pde`. Alone, e.g. the small
check first:

    python3 benches/peers/energy_pde.py --cells 200 --t-end 1
    python3 benches/peers/energy_pde.py [--reps R] [--temperature T]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

import h5py
import numpy as np
from scipy.special import erfc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(ROOT, "target", "release", "meanfield")
PROBLEM = os.path.join(HERE, "energy_pde.toml")

# The formulas of the problem file, as numpy has them.
POTENTIAL = "x^4/4 - x^2/2"
INTERACTION = "-exp(-(x - y)^2/2)"


def potential(x):
    return x ** 4 / 4 - x ** 2 / 2


def interaction(x, y):
    return -np.exp(-((x - y) ** 2) / 2)


def problem_text(cells=None, t_end=None, temperature=None):
    """The problem file, with cells / t_end / temperature replaced when given."""
    with open(PROBLEM) as f:
        text = f.read()
    for key, val in (("cells", cells), ("t_end", t_end), ("temperature", temperature)):
        if val is not None:
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {val!r}", text)
            assert n == 1, key
    return text


def bernoulli(z):
    """B(z) = z/(eᶻ − 1), 1 − z/2 for |z| < 1e-8 (as pde.rs)."""
    small = np.abs(z) < 1e-8
    zs = np.where(small, 1.0, z)
    with np.errstate(over="ignore"):
        b = zs / np.expm1(zs)
    return np.where(small, 1.0 - 0.5 * z, b)


def bernoulli_prime(z):
    """B′(z) = B(z)(1/z + 1/(e^{−z} − 1)), its series for |z| < 1e-3 (as pde.rs)."""
    small = np.abs(z) < 1e-3
    zs = np.where(small, 1.0, z)
    with np.errstate(over="ignore"):
        d = bernoulli(zs) * (1.0 / zs + 1.0 / np.expm1(-zs))
    return np.where(small, -0.5 + z / 6.0 - z ** 3 / 180.0, d)


class Field:
    """The semi-discrete PDE of the problem `p` (the parsed TOML): grid, initial density,
    right-hand side and dense Jacobian."""

    def __init__(self, p):
        m = p["model"]
        (dy,) = p["dynamics"]
        assert m["kind"] == "energy" and m.get("dimension", 1) == 1 and dy["kind"] == "pde"
        assert m["potential"] == POTENTIAL and m["interaction"] == INTERACTION, "formulas changed"
        assert m["init"]["law"] == "gaussian"
        self.t = float(m["temperature"])
        assert self.t > 0
        (low, high), = dy["box"]
        cells = dy.get("cells", 2000)
        (cells,) = cells if isinstance(cells, list) else [cells]
        self.cells = mm = int(cells)
        self.h = h = (high - low) / mm
        self.x = x = low + (np.arange(mm) + 0.5) * h
        # Exact cell averages of N(mean, std²), scaled to mass 1 on the box (initial_density).
        mean, std = m["init"]["mean"][0], m["init"]["std"][0]
        phi = lambda s: 0.5 * erfc(-(s - mean) / (std * np.sqrt(2.0)))
        rho = (phi(x + 0.5 * h) - phi(x - 0.5 * h)) / h
        self.rho0 = rho / (rho.sum() * h)
        self.v = potential(x)
        self.w = interaction(x[:, None], x[None, :])
        self.dw = self.w[1:] - self.w[:-1]  # ∂(U_{i+1} − U_i)/∂ρ_k = h dw[i, k]
        self.t_end = float(dy["t_end"])
        self.rtol, self.atol = float(dy.get("rtol", 1e-6)), float(dy.get("atol", 1e-9))

    def faces(self, rho):
        u = self.v + self.h * (self.w @ rho)
        z = np.diff(u) / self.t
        return z, bernoulli(z), bernoulli(-z)

    def rhs(self, _t, rho):
        z, bp, bm = self.faces(rho)
        j = (self.t / self.h) * (bp * rho[:-1] - bm * rho[1:])
        return -np.diff(np.concatenate(([0.0], j, [0.0]))) / self.h

    def jac(self, _t, rho):
        h, t, mm = self.h, self.t, self.cells
        z, bp, bm = self.faces(rho)
        # ∂J_{i+½}/∂(U_{i+1} − U_i) = [B′(z) ρ_i + B′(−z) ρ_{i+1}]/h, times h dw through W.
        dj_du = (bernoulli_prime(z) * rho[:-1] + bernoulli_prime(-z) * rho[1:]) / h
        g = (dj_du * h)[:, None] * self.dw  # ∂J/∂ρ, (M − 1) × M
        i = np.arange(mm - 1)
        g[i, i] += t / h * bp
        g[i, i + 1] -= t / h * bm
        out = np.empty((mm, mm))
        # Face i adds −∂J/h to row i and +∂J/h to row i + 1.
        out[0] = -g[0] / h
        out[1:-1] = (g[:-1] - g[1:]) / h
        out[-1] = g[-1] / h
        return out


def run_ours(text, work):
    """meanfield on the problem `text`: (wall_seconds, process seconds, run attributes, grid,
    initial and final density, stderr)."""
    path = os.path.join(work, "energy_pde.toml")
    out = os.path.join(work, "energy_pde.h5")
    with open(path, "w") as f:
        f.write(text)
    t = time.perf_counter()
    r = subprocess.run([BIN, "run", path, "--out", out, "--force", "--quiet"], capture_output=True, text=True)
    process = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"meanfield failed:\n{r.stderr}")
    with h5py.File(out, "r") as f:
        g = f["runs/pde"]
        assert g.attrs["status"] == "completed", g.attrs["status"]
        attrs = {k: float(g.attrs[k]) for k in ("wall_seconds", "steps", "rhs_evals", "jacobian_evals", "lu_factorizations")}
        rho = g["density"]
        return attrs, process, g["grid"][...], g["t"][...], rho[0], rho[-1], r.stderr.strip()


def run_scipy(field):
    from scipy.integrate import solve_ivp

    t = time.perf_counter()
    sol = solve_ivp(field.rhs, (0.0, field.t_end), field.rho0, method="BDF", jac=field.jac,
                    rtol=field.rtol, atol=field.atol)
    secs = time.perf_counter() - t
    if sol.status != 0:
        sys.exit(f"scipy failed: {sol.message}")
    return secs, sol


def case(work, reps, quick, cells=None, t_end=None, temperature=None):
    """compare.py's case: (meanfield seconds, scipy seconds, max diff, what), each side run
    `reps` times; the diff is max |ρ_scipy − ρ_ours| / max ρ_ours at t_end."""
    if quick and cells is None:
        cells = 200
    text = problem_text(cells, t_end, temperature)
    field = Field(tomllib.loads(text))
    ours, process, peer, diff, notes = [], [], [], 0.0, set()
    for _ in range(reps):
        attrs, proc, grid, times, first, last, err = run_ours(text, work)
        ours.append(attrs["wall_seconds"])
        process.append(proc)
        if err:
            notes.add(err)
        assert np.allclose(grid, field.x, rtol=0, atol=1e-12) and abs(times[-1] - field.t_end) < 1e-12
        init = float(np.max(np.abs(first - field.rho0)) / np.max(first))
        secs, sol = run_scipy(field)
        peer.append(secs)
        final = sol.y[:, -1]
        diff = max(diff, float(np.max(np.abs(final - last)) / np.max(last)))
    mine = [int(attrs[k]) for k in ("steps", "rhs_evals", "jacobian_evals", "lu_factorizations")]
    mass = field.h * final.sum()
    for n in sorted(notes):
        print(f"  pde: meanfield said: {n}", file=sys.stderr)
    print(
        f"  pde: steps/rhs/jac/LU ours {'/'.join(map(str, mine))}, scipy {sol.t.size - 1}/{sol.nfev}/{sol.njev}/{sol.nlu}; "
        f"meanfield process {statistics.median(process):.3f} s (wall_seconds {statistics.median(ours):.3f}); "
        f"initial densities differ by {init:.1e}, scipy's final mass {mass:.12f}, max density {np.max(last):.4f}",
        file=sys.stderr, flush=True,
    )
    what = f"1-D PDE M={field.cells} W≠0 T={field.t:g}, BDF to t={field.t_end:g}"
    return sorted(ours), sorted(peer), diff, what


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--cells", type=int)
    ap.add_argument("--t-end", type=float)
    ap.add_argument("--temperature", type=float)
    args = ap.parse_args()
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    from compare import table

    import scipy

    print(f"cores: {os.cpu_count()}, numpy {np.__version__}, scipy {scipy.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        res = case(work, args.reps, False, args.cells, args.t_end, args.temperature)
    table([res])


if __name__ == "__main__":
    main()
