"""Peer comparison (issue 8): each case runs in meanfield and in the notebook stack (numpy,
scipy, POT) on the same inputs, read from the same archive with h5py; the answers are compared
and the times tabulated. Run it with `./dev compare` (which makes the virtual environment and
builds meanfield), or directly:

    python3 benches/peers/compare.py [--reps R] [--only CASE,...] [--quick]

Times are medians over R runs of each side, measured here in the same session; the table gives
min–max of each side too and the ratio peer / meanfield of the medians. meanfield's time for a
problem-file case is the run's own `wall_seconds` (integration only, as the peer's loop is timed
without Python start-up and file reading).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the import below
import energy_pde  # the 1-D mean-field PDE against scipy's BDF (this folder)  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "meanfield")
PEER = os.path.join(ROOT, "target", "release", "examples", "peer")


def timed(reps, fn):
    out, secs = None, []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        secs.append(time.perf_counter() - t)
    return out, sorted(secs)


def run_problem(text, work, name, env=None):
    path = os.path.join(work, name + ".toml")
    out = os.path.join(work, name + ".h5")
    with open(path, "w") as f:
        f.write(text.replace("@OUT@", out))
    subprocess.run([BIN, "run", path, "--quiet", "--force"], check=True, env=env)
    return out


def read_particle_run(out, run):
    """A two-layer run's archive as a peer needs it: the run's attributes (wall_seconds and the
    solver counts), the training data, the initial and the last saved particles."""
    with h5py.File(out, "r") as f:
        g = f["runs/" + run]
        stats = ("wall_seconds", "rhs_evals", "jacobian_evals", "lu_factorizations")
        attrs = {k: float(g.attrs[k]) for k in stats}
        x, y = f["data/x_train"][...], f["data/y_train"][...]
        return attrs, x, y, f["init/particles"][...], g["particles"][-1]


# --- GD: two-layer relu, n = 2048, d = 64, N = 4096, 200 steps, mean-field time -------------

GD_PROBLEM = """
seed = 1
output = "@OUT@"
[data]
source = "synthetic"
input = "gaussian"
d = 64
n_train = 2048
n_test = 0
target = {{ kind = "teacher", width = 4, activation = "relu" }}
[model]
activation = "relu"
width = 4096
bias = false
scaling = "mean_field"
init = {{ a_std = 1.0 }}
[[dynamics]]
kind = "gd"
step = {step}
steps = {steps}
[save]
count = 2
particles = true
"""


def numpy_gd(x, y, theta, step, steps, alpha=1.0):
    """theta_j ← theta_j + step · (1/α) E_i[(y_i − f(x_i)) ∇_θ a_j relu(⟨w_j, x_i⟩)],
    f = (α/N) Σ_j a_j relu(⟨w_j, x⟩): GD in mean-field time (design.md §1)."""
    n = x.shape[0]
    nn = theta.shape[0]
    a = theta[:, 0].copy()
    w = theta[:, 1:].copy()
    for _ in range(steps):
        z = x @ w.T  # n × N
        s = np.maximum(z, 0.0)
        f = (alpha / nn) * (s @ a)
        r = (y - f) * (step / (alpha * n))
        ga = s.T @ r
        g = (z > 0.0) * r[:, None]  # n × N
        gw = (g.T @ x) * a[:, None]
        a += ga
        w += gw
    return np.column_stack([a, w])


def case_gd(work, reps, quick):
    steps = 20 if quick else 200
    text = GD_PROBLEM.format(step=0.05, steps=steps)
    ours, peer, diff = [], [], 0.0
    for _ in range(reps):
        attrs, x, y, theta0, final = read_particle_run(run_problem(text, work, "gd"), "gd")
        ours.append(attrs["wall_seconds"])
        t = time.perf_counter()
        theta = numpy_gd(x, y, theta0, 0.05, steps)
        peer.append(time.perf_counter() - t)
        diff = max(diff, float(np.max(np.abs(theta - final))))
    return sorted(ours), sorted(peer), diff, f"GD relu n=2048 d=64 N=4096, {steps} steps"


# --- stiff gradient flow at NTK scaling, P = N·D = 4000, BDF at rtol 1e-6 --------------------

STIFF_PROBLEM = """
seed = 3
output = "@OUT@"
[data]
source = "synthetic"
input = "gaussian"
d = 8
n_train = {n}
n_test = 0
target = {{ kind = "teacher", width = 3, activation = "tanh" }}
[model]
activation = "tanh"
width = {width}
bias = true
scaling = "ntk"
init = {{ a_std = 1.0, b_std = 0.5, symmetric = true }}
[[dynamics]]
kind = "gradient_flow"
name = "flow"
method = "bdf"
rtol = 1e-6
atol = 1e-8
t_end = 10.0
[save]
count = 2
particles = true
"""


def tanh_flow(x, y, nn):
    """The particle flow of f = (α/N) Σ_j a_j tanh(⟨w_j, x⟩ + b_j), α = √N, in mean-field time
    (design.md §1), with its analytic Jacobian J = blockdiag(B_j) − ΦᵀΦ/(nN), assembled dense
    as a notebook would hand it to solve_ivp."""
    n, d = x.shape
    dd = d + 2
    alpha = np.sqrt(nn)
    xt = np.column_stack([x, np.ones(n)])

    def parts(th):
        t = th.reshape(nn, dd)
        a, wb = t[:, 0], t[:, 1:]
        s = np.tanh(xt @ wb.T)  # n × N
        d1 = 1.0 - s * s
        r = (y - (alpha / nn) * (s @ a)) / (alpha * n)
        return a, s, d1, r

    def rhs(_t, th):
        a, s, d1, r = parts(th)
        ga = s.T @ r
        gw = ((d1 * r[:, None]).T @ xt) * a[:, None]
        return np.column_stack([ga, gw]).ravel()

    def jac(_t, th):
        a, s, d1, r = parts(th)
        phi = np.empty((n, nn, dd))
        phi[:, :, 0] = s
        phi[:, :, 1:] = (a * d1)[:, :, None] * xt[:, None, :]
        phi = phi.reshape(n, nn * dd)
        j = -(phi.T @ phi) / (n * nn)
        d2 = -2.0 * s * d1
        b01 = (d1 * r[:, None]).T @ xt  # N × (d+1)
        b11 = np.einsum("ij,ik,il->jkl", d2 * r[:, None], xt, xt) * a[:, None, None]
        for k in range(nn):
            blk = j[k * dd:(k + 1) * dd, k * dd:(k + 1) * dd]
            blk[0, 1:] += b01[k]
            blk[1:, 0] += b01[k]
            blk[1:, 1:] += b11[k]
        return j

    return rhs, jac


def case_stiff(work, reps, quick):
    from scipy.integrate import solve_ivp

    width, n = (40, 64) if quick else (400, 256)
    text = STIFF_PROBLEM.format(width=width, n=n)
    ours, peer, diff, counts = [], [], 0.0, ""
    for _ in range(reps):
        attrs, x, y, theta0, final = read_particle_run(run_problem(text, work, "stiff"), "flow")
        theta0, final = theta0.ravel(), final.ravel()
        ours.append(attrs["wall_seconds"])
        mine = [int(attrs[k]) for k in ("rhs_evals", "jacobian_evals", "lu_factorizations")]
        rhs, jac = tanh_flow(x, y, width)
        t = time.perf_counter()
        sol = solve_ivp(rhs, (0.0, 10.0), theta0, method="BDF", jac=jac, rtol=1e-6, atol=1e-8)
        peer.append(time.perf_counter() - t)
        diff = max(diff, float(np.max(np.abs(sol.y[:, -1] - final)) / np.max(np.abs(final))))
        counts = f"rhs/jac/LU ours {mine[0]}/{mine[1]}/{mine[2]}, scipy {sol.nfev}/{sol.njev}/{sol.nlu}"
    print(f"  stiff flow: {counts}", file=sys.stderr, flush=True)
    what = f"stiff flow tanh NTK P={width * 10}, BDF rtol 1e-6"
    return sorted(ours), sorted(peer), diff, what


# --- exact W2 between two 2000-point clouds (POT's ot.emd2) ---------------------------------

def case_w2(work, reps, quick):
    import ot

    rng = np.random.default_rng(0)
    n = 500 if quick else 2000
    x = rng.random((n, 2))
    y = rng.random((n, 2)) + 0.1
    path = os.path.join(work, "w2.h5")
    with h5py.File(path, "w") as f:
        f["x"], f["y"] = x, y
    line = subprocess.run([PEER, "w2", path, str(reps)], check=True, capture_output=True, text=True)
    ours = json.loads(line.stdout)
    with h5py.File(path, "r") as f:
        w2 = float(f["w2"][()])
    u = np.full(n, 1.0 / n)

    def pot():
        m = ot.dist(x, y)  # squared Euclidean
        return np.sqrt(ot.emd2(u, u, m, numItermax=10_000_000))

    ref, peer = timed(reps, pot)
    return [ours["min"], ours["median"], ours["max"]], peer, abs(w2 - ref), f"exact W2, {n} points in 2-D"


# --- analytic relu NTK Gram + eigendecomposition, n = 4000, d = 64 --------------------------

def numpy_ntk_eigh(x, w_std, a_std):
    vw, va = w_std ** 2, a_std ** 2
    g = x @ x.T
    nrm = np.sqrt(vw * np.einsum("ij,ij->i", x, x))
    norm = np.outer(nrm, nrm)
    cos = np.clip(vw * g / norm, -1.0, 1.0)
    th = np.arccos(cos)
    k = norm / (2 * np.pi) * (np.sin(th) + (np.pi - th) * cos) + va * (np.pi - th) / (2 * np.pi) * g
    return np.linalg.eigh(k)[0]


def case_ntk(work, reps, quick):
    rng = np.random.default_rng(1)
    n = 1000 if quick else 4000
    x = rng.standard_normal((n, 64))
    path = os.path.join(work, "ntk.h5")
    with h5py.File(path, "w") as f:
        f["x"] = x
        f.attrs["w_std"] = 1.0 / 8.0
        f.attrs["a_std"] = 1.0
    line = subprocess.run([PEER, "ntk", path, str(reps)], check=True, capture_output=True, text=True)
    ours = json.loads(line.stdout)
    with h5py.File(path, "r") as f:
        ev = f["eigenvalues"][...]
    ref, peer = timed(reps, lambda: numpy_ntk_eigh(x, 1.0 / 8.0, 1.0))
    diff = float(np.max(np.abs(np.sort(ev) - np.sort(ref))) / np.max(np.abs(ref)))
    return [ours["min"], ours["median"], ours["max"]], peer, diff, f"relu NTK Gram + eigh, n={n}"


# --- a width sweep on 2 threads against 1 ---------------------------------------------------

def case_sweep(work, reps, quick):
    problem = os.path.join(ROOT, "problems", "width_population.toml")
    walls, f_l2 = {}, {}
    for threads in ("1", "2"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        secs = []
        for _ in range(reps):
            t = time.perf_counter()
            subprocess.run([BIN, "sweep", "run", problem, "--quiet", "--redo"], check=True, env=env, cwd=work)
            secs.append(time.perf_counter() - t)
        walls[threads] = sorted(secs)
        with h5py.File(os.path.join(work, "out", "width_population_sweep.h5"), "r") as f:
            f_l2[threads] = f["points/f_l2"][...]
    # The same numbers whatever the thread count.
    diff = float(np.nanmax(np.abs(f_l2["1"] - f_l2["2"])))
    return walls["2"], walls["1"], diff, "width sweep (width_population): 1 / 2 threads"


# --- diagonal network, Algorithm 1 (saddle-to-saddle limit), n = 200, d = 1000 --------------

SADDLE_PROBLEM = """
seed = 1
output = "@OUT@"
[data]
source = "synthetic"
input = "gaussian"
d = {d}
n_train = {n}
n_test = 0
noise = 0.5
target = {{ kind = "sparse", support = 20 }}
[model]
kind = "diagonal"
alpha = 1e-24
[[dynamics]]
kind = "saddle_limit"
[save]
count = 2
particles = false
"""


def scipy_algorithm1(X, y, tol=1e-10):
    """The notes' reference code (shared/papers/saddle_to_saddle.md, TOPIC 1): one
    scipy.optimize.nnls per jump. Returns the jump times."""
    from scipy.optimize import nnls

    n, d = X.shape
    g = lambda b: X.T @ (X @ b - y) / n
    t, beta, s, times = 0.0, np.zeros(d), np.zeros(d), []
    while np.max(np.abs(gr := g(beta))) > tol:
        dl = np.full(d, np.inf)
        m = np.abs(gr) > tol
        dl[m & (gr < 0)] = (1 - s[m & (gr < 0)]) / -gr[m & (gr < 0)]
        dl[m & (gr > 0)] = (1 + s[m & (gr > 0)]) / gr[m & (gr > 0)]
        i = np.argmin(dl)
        t += dl[i]
        s = np.clip(s - dl[i] * gr, -1, 1)
        s[i] = np.sign(s[i])
        idx = np.where(np.abs(s) == 1)[0]
        gam, _ = nnls(X[:, idx] * s[idx], y)
        beta = np.zeros(d)
        beta[idx] = s[idx] * gam
        times.append(t)
    return np.array(times)


def case_saddle(work, reps, quick):
    n, d = (50, 200) if quick else (200, 1000)
    text = SADDLE_PROBLEM.format(n=n, d=d)
    ours, peer, diff = [], [], 0.0
    for _ in range(reps):
        out = run_problem(text, work, "saddle")
        with h5py.File(out, "r") as f:
            ours.append(float(f["runs/saddle_limit"].attrs["wall_seconds"]))
            x = f["data/x_train"][...]
            y = f["data/y_train"][...]
            t_ours = f["runs/saddle_limit/t"][...]
        t = time.perf_counter()
        t_peer = scipy_algorithm1(x, y)
        peer.append(time.perf_counter() - t)
        # The reference code also takes steps of zero length (a coordinate that enters and
        # gets γ = 0 from nnls is picked again at once): compare the distinct jump times, ours
        # after the archive's t = 0, relative error; a different count is a failure (inf).
        distinct = t_peer[np.concatenate([[True], np.diff(t_peer) > 1e-9 * t_peer[1:]])]
        jumps = t_ours[t_ours > 0]
        print(f"  saddle: {len(jumps)} jumps here; scipy took {len(t_peer)} steps, {len(distinct)} distinct", file=sys.stderr)
        if len(jumps) != len(distinct):
            diff = float("inf")
        else:
            diff = max(diff, float(np.max(np.abs(jumps - distinct) / distinct)))
    return sorted(ours), sorted(peer), diff, f"diagonal Algorithm 1, n={n} d={d}"


CASES = {
    "gd": case_gd,
    "stiff": case_stiff,
    "w2": case_w2,
    "ntk": case_ntk,
    "saddle": case_saddle,
    "pde": energy_pde.case,
    "sweep": case_sweep,
}


def table(results):
    """Prints the table of (meanfield seconds, peer seconds, max diff, what) results."""
    print(f"{'case':<46} {'meanfield s (min–max)':>24} {'peer s (min–max)':>24} {'ratio':>6} {'max diff':>9}")
    for ours, peer, diff, what in results:
        mo, mp = statistics.median(ours), statistics.median(peer)
        print(
            f"{what:<46} {mo:>8.3f} ({min(ours):.3f}–{max(ours):.3f}) {mp:>8.3f} ({min(peer):.3f}–{max(peer):.3f}) {mp / mo:>6.2f} {diff:>9.2e}"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the harness")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, numpy {np.__version__}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.only.split(","):
            res = CASES[name](work, args.reps, args.quick)
            results.append(res)
            print(f"  done: {res[3]}", file=sys.stderr, flush=True)
    table(results)


if __name__ == "__main__":
    main()
