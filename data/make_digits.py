"""Writes data/digits.h5 from scikit-learn's copy of the UCI 8x8 handwritten digits.

    pip install numpy h5py scikit-learn && python3 data/make_digits.py

Source: sklearn/datasets/data/digits.csv.gz (the test set of UCI's "Optical Recognition of
Handwritten Digits", E. Alpaydin and C. Kaynak, 1998; CC BY 4.0). The file is read as shipped:
1797 rows of 64 pixels (integers 0..16, row-major 8x8) and the digit. No timestamps are stored,
so the output's bytes depend only on the input's.
"""

import gzip
import hashlib
import os

import h5py
import numpy as np
import sklearn

SRC = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data", "digits.csv.gz")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.h5")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


raw = open(SRC, "rb").read()
table = np.loadtxt(gzip.open(SRC, "rt"), delimiter=",")
images = table[:, :64].astype(np.uint8)
labels = table[:, 64].astype(np.uint8)
assert np.array_equal(images, table[:, :64]) and np.array_equal(labels, table[:, 64])

with h5py.File(OUT, "w", track_order=False) as f:
    f.create_dataset("images", data=images, track_times=False)
    f.create_dataset("labels", data=labels, track_times=False)
    f.attrs["source"] = "scikit-learn sklearn/datasets/data/digits.csv.gz (UCI Optical Recognition of Handwritten Digits, test set)"
    f.attrs["licence"] = "CC BY 4.0 (UCI Machine Learning Repository, Alpaydin & Kaynak 1998)"
    f.attrs["source_sha256"] = hashlib.sha256(raw).hexdigest()
    f.attrs["layout"] = "images[i, 8*r + c] = pixel (row r, column c) of image i, 0..16; labels[i] = digit"

print("images", images.shape, "labels", labels.shape, "counts", np.bincount(labels).tolist())
print("pixel sum", int(images.astype(np.int64).sum()))
print("fnv1a64(images bytes ++ labels bytes) = %016x" % fnv1a64(images.tobytes() + labels.tobytes()))
print("source sha256", hashlib.sha256(raw).hexdigest())
print("digits.h5 sha256", hashlib.sha256(open(OUT, "rb").read()).hexdigest())
