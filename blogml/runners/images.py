"""PNG grids of images, for samples/ and `blogml sample`/`predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[−1, 1] floats to uint8 pixels."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_grid(rows: list[np.ndarray], path: Path, gap: int = 2) -> Path:
    """Save a grid: each row a [n, h, w, 3] uint8 array, separated by `gap` white pixels."""
    columns = max(len(row) for row in rows)
    height, width = rows[0].shape[1:3]
    canvas = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255,
                     np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = r * (height + gap), c * (width + gap)
            canvas[top:top + height, left:left + width] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path
