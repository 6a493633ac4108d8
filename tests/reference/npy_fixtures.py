#!/usr/bin/env python3
"""Write small .npy files with numpy.save for tests/mixture_embeddings.rs.

Every float array contains the values 0.5 * arange(12) in row-major order, shape
[3, 4] unless the name says otherwise, so the test knows each domain embedding.

Usage: python3 tests/reference/npy_fixtures.py
"""

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "npy"


def main():
    OUT.mkdir(exist_ok=True)
    base = 0.5 * np.arange(12, dtype=np.float64).reshape(3, 4)
    np.save(OUT / "float32_c.npy", base.astype(np.float32))
    np.save(OUT / "float64_fortran.npy", np.asfortranarray(base))
    np.save(OUT / "float64_big_endian.npy", base.astype(">f8"))
    np.save(OUT / "float32_vector.npy", base[1].astype(np.float32))
    np.save(OUT / "int64.npy", np.arange(12, dtype=np.int64).reshape(3, 4))
    np.save(OUT / "float16.npy", base.astype(np.float16))


if __name__ == "__main__":
    main()
