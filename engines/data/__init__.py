"""Data sets by spec string: built-in (shapes, digits, ring, grid) and the user's files (idx, folder, npz).

Every loader returns a :class:`Dataset` of float32 arrays (images in [0, 1]) and raises
:class:`engines.errors.DataError` with the file and the problem on bad input. numpy only: no torch.
"""

from __future__ import annotations

from engines.data.base import DataInfo, Dataset, split_indices
from engines.errors import DataError

__all__ = ["DataError", "DataInfo", "Dataset", "load_dataset", "split_indices", "BUILTIN_SPECS"]
