"""The tables of the 8-bit kernels (numba's and the C++ one), in NumPy alone.

:func:`tables`: per map, the codes and a *cell table* that finds the code nearest to a
normalized value with one entry and one integer comparison; :func:`chunk_table`: the work
items of a launch (whole blocks of one tensor); :func:`cpp_tables`: the same tables as the
C++ kernel takes them.
"""

from __future__ import annotations

import functools

import numpy as np

from ..optim import quantized

#: mantissa bits of the quantization table's cells
CELL_BITS = 7
#: cells start at 2⁻²⁴: every magnitude below falls in cell 0 (no threshold lies there)
CELL_LOW_EXP = -24
#: elements per parallel work item (a multiple of every block size up to it)
CHUNK = 1 << 16


@functools.cache
def tables(signed: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(code map, cell table, first cell) for one map.

    Cell c holds the float32 magnitudes whose bits, shifted right by 23 − ``CELL_BITS``,
    are c + first cell (cell 0 also holds everything smaller). The table has two halves
    (x ≥ 0, then x < 0 by |x|); each entry packs, as ``j << 20 | key``, the number j of
    thresholds at or below the cell's smallest value and the one threshold τ inside the cell,
    if any, by its low mantissa bits (a value x of the cell is at or above τ exactly when its
    own key, the same bits, flipped for x < 0, is at least τ's; no threshold: 2¹⁶, never).
    Raises if a cell holds two thresholds.
    """
    code = np.ascontiguousarray(quantized.dynamic_map(signed))
    tau = quantized.thresholds(signed)
    shift = 23 - CELL_BITS
    low_mask = (1 << shift) - 1
    first = (np.float32(2.0**CELL_LOW_EXP).view(np.uint32) >> shift).item()
    n_cells = (0x3F800000 >> shift) - first + 1
    cells = np.empty(2 * n_cells, np.int32)
    for c in range(n_cells):
        lo_bits = 0 if c == 0 else (c + first) << shift
        hi_bits = min(((c + first + 1) << shift) - 1, 0x3F800000)
        a, b = np.array([lo_bits, hi_bits], np.uint32).view(np.float32)
        for side, (lo, hi) in enumerate(((a, b), (-b, -a))):
            j = int(np.searchsorted(tau, lo, side="right"))
            inside = int(np.searchsorted(tau, hi, side="right")) - j
            if inside > 1:
                raise AssertionError(f"cell {c} holds {inside} thresholds")
            key = 1 << shift  # none
            if inside:
                bits = int(np.abs(tau[j : j + 1]).view(np.uint32)[0]) & low_mask
                key = bits if side == 0 else low_mask - bits
            cells[side * n_cells + c] = (j << 20) | key
    cells.flags.writeable = False
    return code, cells, first


@functools.cache
def wide_cells(signed: bool) -> np.ndarray:
    """The cell table as the C++ kernel's vector path reads it: indexed by a float32's top 16
    bits (the sign included) less the first cell, saturating at 0, so the index is two
    instructions, with no clamp and no halves to pick. Entry i is :func:`tables`' entry for
    the float32 whose top bits are i + first (any below first: cell 0), the clamped cell for
    the magnitudes past 1 (NaN and inf too: every 16-bit pattern has its entry), and j + 1
    in place of j: the code is (e >> 20) plus the comparison's -1 where the cell's threshold
    lies above the value's key."""
    if 23 - CELL_BITS != 16:
        raise AssertionError("the wide table indexes by the top 16 bits: cells of 2^16 ulps")
    _, cells, first = tables(signed)
    n_cells = cells.size // 2
    top = np.arange(first, 1 << 16, dtype=np.int64)  # the top 16 bits of entry i (i ≥ 0)
    sign = top >> 15
    c = np.clip((top & 0x7FFF) - first, 0, n_cells - 1)
    wide = cells[sign * n_cells + c].astype(np.int64) + (1 << 20)
    wide = wide.astype(np.int32)
    wide.flags.writeable = False
    return wide


def chunk_table(sizes: np.ndarray, block_size: int) -> np.ndarray:
    """(n_chunks, 3) int64: tensor, start, stop; chunks are whole blocks."""
    chunk = max(CHUNK, block_size)
    rows = [
        (k, lo, min(lo + chunk, int(n))) for k, n in enumerate(sizes) for lo in range(0, n, chunk)
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


@functools.cache
def cpp_tables(block_size: int) -> np.ndarray:
    """The tables as the C++ kernel takes them (``adamlab_lowmem8_step``'s ``tab``): int64
    (12), the addresses of the signed and unsigned maps and of their cell tables (kept alive
    by :func:`tables`' cache), the first cell, the number of cells, the cell shift, the
    block size, the zero codes of the two maps, and the addresses of their
    :func:`wide_cells`."""
    code_s, cells_s, first = tables(True)
    code_u, cells_u, _ = tables(False)
    return np.array(
        [
            code_s.ctypes.data, code_u.ctypes.data, cells_s.ctypes.data, cells_u.ctypes.data,
            first, cells_s.size // 2, 23 - CELL_BITS, block_size,
            quantized.zero_code(True), quantized.zero_code(False),
            wide_cells(True).ctypes.data, wide_cells(False).ctypes.data,
        ],
        dtype=np.int64,
    )  # fmt: skip
