#!/usr/bin/env python3
"""Read a meanfield archive with h5py alone (no meanfield import) and redraw its losses and its
particle cloud: what a researcher does first with an archive. CI runs it on a fresh quickstart
archive (.ci/run), so the layout docs/archive-layout.md describes cannot drift from the files.

    python3 examples/read_archive.py out/quickstart.h5 [figure.png]
"""

import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def describe(ds):
    """A dataset's description and units, as the archive records them."""
    text = ds.attrs["description"]
    units = ds.attrs.get("units")
    return f"{text} [{units}]" if units is not None else text


def main(path, out):
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] >= 1, "not a meanfield archive"
        print(f"{path}: status {f.attrs['status']}, seed {int(f.attrs['seed'])}")
        runs = f["runs"]
        fig, (losses, cloud) = plt.subplots(1, 2, figsize=(11, 4.5))
        for name, run in runs.items():
            if "loss_train" not in run:
                continue
            t, loss = run["t"][()], run["loss_train"][()]
            assert t.shape == loss.shape, f"{name}: t and loss_train differ in length"
            print(f"  {name} ({run.attrs['kind']}): t = {describe(run['t'])}")
            print(f"    loss_train = {describe(run['loss_train'])}; last {loss[-1]:.4e}")
            losses.semilogy(t, loss, label=f"{name} train")
            if "loss_test" in run:
                losses.semilogy(t, run["loss_test"][()], "--", label=f"{name} test")
        losses.set_xlabel("t")
        losses.set_ylabel("loss")
        losses.legend()

        # The particle cloud at the last save of the first run that saved particles, in the
        # first two input-weight coordinates, coloured by the output weight a.
        run = next((r for r in runs.values() if "particles" in r), None)
        if run is not None:
            columns = run["particles"].attrs["columns"].split(",")
            last = run["particles"][-1]
            init = f["init/particles"][()]
            assert last.shape == init.shape, "particles and init/particles differ in shape"
            a, w0, w1 = (columns.index(c) for c in ("a", "w0", "w1"))
            cloud.scatter(init[:, w0], init[:, w1], s=6, c="0.8", label="θ(0)")
            points = cloud.scatter(last[:, w0], last[:, w1], s=8, c=last[:, a], cmap="coolwarm")
            fig.colorbar(points, ax=cloud, label="a")
            cloud.set_xlabel(columns[w0])
            cloud.set_ylabel(columns[w1])
            cloud.legend()
        fig.tight_layout()
        fig.savefig(out, dpi=80)
        print(f"  figure {out}")
        # Every dataset explains itself.
        missing = []
        f.visititems(
            lambda n, o: missing.append(n)
            if isinstance(o, h5py.Dataset) and "description" not in o.attrs
            else None
        )
        assert not missing, f"datasets without a description: {missing}"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "archive.png")
