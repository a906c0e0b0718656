#!/usr/bin/env python3
"""Writes the .npy fixtures of tests/workloads/check_trace_npy.c with real
NumPy (np.save / np.lib.format.write_array), so the reader is checked
against the reference writer and not only against our reading of the spec.
Not run by the build: the outputs are committed.  Run from this directory:
    python3 make-fixtures.py

Every 3-D fixture holds ids[t, l, r] = base + 4 t + 2 l + r for T=3, L=2,
k=2; every 2-D one ids[t, l] = base + 2 t + l for T=3, L=2.  `base` moves
the values into the upper bytes of wide types (300, 1000) so that a reader
with the wrong byte order or element size fails loudly.
"""
import numpy as np

T, L, K = 3, 2, 2
t, l, r = np.meshgrid(np.arange(T), np.arange(L), np.arange(K), indexing="ij")
ids3 = 4 * t + 2 * l + r
t2, l2 = np.meshgrid(np.arange(T), np.arange(L), indexing="ij")
ids2 = 2 * t2 + l2


def save(name, arr, version=None):
    with open(name, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=True)


# Readable: (file, dtype, base, 3-D?, Fortran order?, version)
cases = [
    ("i1-c-3d.npy", "i1", 100, True, False, None),
    ("u1-c-3d.npy", "u1", 200, True, False, None),
    ("i2le-c-3d.npy", "<i2", 300, True, False, None),
    ("i2be-c-3d.npy", ">i2", 300, True, False, None),
    ("u2be-f-3d.npy", ">u2", 300, True, True, None),
    ("i4le-f-3d.npy", "<i4", 1000, True, True, None),
    ("i4be-f-3d.npy", ">i4", 1000, True, True, None),
    ("u4le-c-2d.npy", "<u4", 1000, False, False, None),
    ("i8le-c-2d.npy", "<i8", 1000, False, False, None),
    ("i8be-f-2d.npy", ">i8", 1000, False, True, None),
    ("u8be-c-3d.npy", ">u8", 1000, True, False, None),
    ("i4le-c-3d-v2.npy", "<i4", 0, True, False, (2, 0)),
    ("i4le-c-3d-v3.npy", "<i4", 0, True, False, (3, 0)),
]
for name, dt, base, three, fortran, version in cases:
    a = (ids3 if three else ids2) + base
    a = np.asfortranarray(a.astype(dt)) if fortran else np.ascontiguousarray(a.astype(dt))
    save(name, a, version)

# What `moesim trace convert` must write for the same ids (byte for byte).
save("export-ref.npy", np.ascontiguousarray(ids3.astype("<i4")), (1, 0))

# Unreadable, each for a different reason.
save("bad-f4.npy", ids3.astype("<f4"))
save("bad-object.npy", np.array([[1, "x"], [2, "y"]], dtype=object))
save("bad-4d.npy", np.zeros((2, 2, 2, 2), dtype="<i4"))
save("bad-1d.npy", np.arange(5, dtype="<i4"))
save("bad-bool.npy", np.zeros((2, 2), dtype=bool))
save("bad-structured.npy", np.zeros((2, 2), dtype=[("a", "<i4"), ("b", "<i4")]))
