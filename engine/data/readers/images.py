"""Image folders: one subfolder per class, read through Pillow.

Opening a folder only indexes it - the class subfolders in sorted order (hidden ones skipped),
and in each the image files in sorted order - without decoding anything; the images are decoded
when a batch asks for them, in the process that reads it (a DataLoader worker on the streamed
path). Each is converted to grayscale (``grayscale``, default) or RGB, resized to ``size``
(height, width) with bilinear filtering unless it has that size already, and scaled to 0..1.
A file Pillow cannot read is an error that names it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.data.common import require_folder
from engine.data.progress import Progress
from engine.data.readers.base import located, throttled
from engine.data.tables import SampleTable
from engine.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm"}
REPORT_EVERY = 256  # files indexed between two progress calls (throttled again in time)


def class_folders(root: Path, shown: str) -> list[str]:
    require_folder(root, shown)
    try:
        folders = sorted(e.name for e in os.scandir(root)
                         if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{shown}: cannot be listed ({exc.strerror or exc})") from None
    if not folders:
        raise DataError(f"{shown}: holds no class subfolders (expected one folder per class)")
    return folders


def _image_files(folder: Path, shown: str, tick) -> list[str]:
    files = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file():
                    files.append(entry.name)
                    if len(files) % REPORT_EVERY == 0:
                        tick()
    except OSError as exc:
        raise DataError(f"{shown}: cannot be listed ({exc.strerror or exc})") from None
    if not files:
        raise DataError(f"{shown}: class folder holds no images "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(files)


def decode(path: str, shown: str, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """One image as uint8, (H, W) grayscale or (H, W, 3) RGB, at ``size``."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Exception as exc:  # Pillow raises many types for a bad file; all mean "unreadable"
        raise DataError(f"{shown}: cannot be read as an image ({exc})") from None


class ImageFolderTable(SampleTable):
    """An indexed image folder: file names and class indices; images decoded per batch."""

    def __init__(self, params: dict, base_dir=None, progress: Progress | None = None):
        root, shown = located(params, base_dir)
        self.root, self.shown = str(root), shown
        self.size, self.grayscale = tuple(params["size"]), bool(params["grayscale"])
        folders = class_folders(root, shown)
        report = throttled(progress)
        names, labels = [], []
        for index, folder in enumerate(folders):
            what = f"indexing {os.path.join(shown, folder)}"

            def tick(index=index, what=what):
                if report is not None:
                    report(index, len(folders), what)
            tick()
            files = _image_files(root / folder, os.path.join(shown, folder), tick)
            names.extend(os.path.join(folder, f) for f in files)
            labels.append(np.full(len(files), index, dtype=np.int64))
        if report is not None:
            report(len(folders), len(folders), f"indexing {shown}")
        self.files = np.array(names)  # one numpy string array pickles small and fast
        self.y = np.concatenate(labels)
        self.kind = self.task_hint = "classification"
        self.num_classes, self.class_names = len(folders), folders
        self.source = str(root)
        self.shapes = {"x": (1 if self.grayscale else 3, *self.size), "y": ()}

    def __len__(self) -> int:
        return len(self.files)

    def get(self, indices: np.ndarray):
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.shapes["x"]), dtype=np.float32)
        for k, i in enumerate(indices):
            name = str(self.files[i])
            pixels = decode(os.path.join(self.root, name), os.path.join(self.shown, name),
                            self.size, self.grayscale)
            out[k] = pixels if self.grayscale else pixels.transpose(2, 0, 1)
        np.divide(out, 255.0, out=out)
        return out, self.y[indices]


def open_table(params: dict, base_dir=None, progress: Progress | None = None):
    return ImageFolderTable(params, base_dir, progress)


def shapes(params: dict, base_dir=None) -> dict:
    root, shown = located(params, base_dir)
    class_folders(root, shown)
    return {"x": (1 if params["grayscale"] else 3, *params["size"]), "y": ()}
