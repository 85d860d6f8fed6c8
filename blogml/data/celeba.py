"""CelebA: demo faces in the real layout, and an image folder converted to an HDF5 cache.

`synth_celeba` writes what the CelebA download holds (`img_align_celeba/000001.jpg ...` and
`list_eval_partition.txt`), so the quickstart and the tests exercise the same path as the
real data. `prepare_celeba` turns such a folder (or any folder of images) into uint8 NHWC
arrays per split in one HDF5 file, streaming image by image and writing in blocks, so
CelebA's 200k images never sit in memory; a killed conversion continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from blogml import locks
from blogml.errors import BlogmlError

SPLITS = ("train", "val", "test")
IMAGE_FOLDER = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ALIGNED_SIZE = (178, 218)  # width, height of an aligned CelebA image
ALIGNED_CROP = 140  # the usual centred square of an aligned CelebA face
SIZES = (64, 128)
# Lanczos: Pillow's sharpest antialiasing filter for downscaling (140 -> 64 is a factor 2.2).
RESAMPLE = Image.Resampling.LANCZOS
BLOCK = 256  # images per write; the resume counter advances once per block
CHUNK_ROWS = 1  # images per HDF5 chunk: fastest random batches (blogml.data.hdf5)
FORMAT = 1  # bump when the layout changes, so an old partial file is not continued


def split_counts(total: int) -> tuple[int, int, int]:
    """Train/val/test sizes in CelebA's proportions (about 80/10/10)."""
    train, val = total * 8 // 10, total // 10
    return train, val, total - train - val


# ---- synthesis ------------------------------------------------------------------------

SKIN = [(255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 90), (141, 85, 54),
        (92, 58, 40)]
HAIR = [(20, 16, 14), (60, 40, 25), (110, 70, 40), (200, 160, 90), (160, 70, 35),
        (150, 150, 150)]
IRIS = [(70, 45, 25), (40, 90, 140), (60, 110, 60), (30, 30, 30)]


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int) -> tuple:
    return tuple(int(c) for c in np.clip(np.array(colour) + rng.integers(-amount, amount + 1, 3),
                                         0, 255))


def _pick(rng: np.random.Generator, palette: list[tuple[int, int, int]], amount: int) -> tuple:
    return _jitter(rng, palette[rng.integers(len(palette))], amount)


def draw_face(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """One procedural "aligned face": gradient background, shoulders, hair, an elliptic
    face with eyes, brows, nose and mouth; colours, positions and sizes drawn from `rng`.

    Positions follow aligned CelebA (face centred, eyes a little above the middle), so the
    usual 140 px centre crop of a 178x218 image holds the face. Drawn at twice the size and
    reduced, for smooth edges.
    """
    scale = 2
    w, h = width * scale, height * scale
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    background = (top * (1 - t) + bottom * t) * np.ones((1, w, 1))
    image = Image.fromarray(background.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)

    def box(cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
        return cx - rx, cy - ry, cx + rx, cy + ry

    skin, hair = _pick(rng, SKIN, 12), _pick(rng, HAIR, 15)
    cx = w * (0.5 + rng.uniform(-0.04, 0.04))
    cy = h * (0.52 + rng.uniform(-0.03, 0.03))
    a, b = w * rng.uniform(0.2, 0.26), h * rng.uniform(0.22, 0.27)  # face half-axes

    clothes = tuple(int(c) for c in rng.integers(0, 256, 3))
    draw.ellipse(box(w / 2, h * 1.05, w * rng.uniform(0.4, 0.55), h * 0.22), fill=clothes)
    draw.rectangle((cx - 0.45 * a, cy + 0.5 * b, cx + 0.45 * a, cy + 1.35 * b), fill=skin)
    length = rng.uniform(0.2, 1.2)  # hair: short (above the ears) to shoulder length
    draw.ellipse((cx - 1.25 * a, cy - 1.3 * b, cx + 1.25 * a, cy + length * b), fill=hair)
    draw.ellipse(box(cx, cy, a, b), fill=skin)
    # The fringe: a chord over the forehead, its ends at random angles (a side parting).
    draw.chord(box(cx, cy, 1.02 * a, 1.02 * b), 180 + rng.uniform(5, 45),
               360 - rng.uniform(5, 45), fill=hair)

    eye_y = cy - b * rng.uniform(0.05, 0.2)
    eye_dx, eye_rx = a * rng.uniform(0.36, 0.48), a * rng.uniform(0.14, 0.2)
    eye_ry = eye_rx * rng.uniform(0.5, 0.75)
    iris = _pick(rng, IRIS, 10)
    brow = eye_y - eye_ry - b * rng.uniform(0.08, 0.16)
    glasses = rng.random() < 0.2
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse(box(ex, eye_y, eye_rx, eye_ry), fill=(245, 245, 240))
        draw.ellipse(box(ex, eye_y, eye_ry * 0.8, eye_ry * 0.8), fill=iris)
        draw.ellipse(box(ex, eye_y, eye_ry * 0.35, eye_ry * 0.35), fill=(10, 10, 10))
        draw.line((ex - eye_rx, brow, ex + eye_rx, brow - rng.uniform(0, 0.3) * eye_ry),
                  fill=hair, width=max(2, int(eye_ry * 0.5)))
        if glasses:
            draw.ellipse(box(ex, eye_y, eye_rx * 1.5, eye_rx * 1.3), outline=(25, 25, 25),
                         width=max(2, int(a * 0.04)))
    if glasses:
        draw.line((cx - eye_dx + eye_rx * 1.5, eye_y, cx + eye_dx - eye_rx * 1.5, eye_y),
                  fill=(25, 25, 25), width=max(2, int(a * 0.04)))
    shade = tuple(int(c * 0.8) for c in skin)
    nose_y = cy + b * rng.uniform(0.2, 0.32)
    draw.polygon([(cx, eye_y + eye_ry), (cx - a * 0.1, nose_y), (cx + a * 0.1, nose_y)],
                 fill=shade)
    mouth_y, mouth_rx = cy + b * rng.uniform(0.48, 0.6), a * rng.uniform(0.25, 0.42)
    lips = _jitter(rng, (180, 60, 70), 25)
    if rng.random() < 0.5:  # a smile
        draw.chord(box(cx, mouth_y - mouth_rx * 0.3, mouth_rx, mouth_rx * 0.6), 0, 180,
                   fill=lips)
    else:
        draw.ellipse(box(cx, mouth_y, mouth_rx, mouth_rx * rng.uniform(0.15, 0.35)), fill=lips)
    return image.reduce(scale)


def synth_celeba(out: str | Path, count: int = 600, seed: int = 0,
                 size: tuple[int, int] = ALIGNED_SIZE) -> dict[str, int]:
    """Write `count` procedural faces as `out/img_align_celeba/000001.jpg ...` with
    `out/list_eval_partition.txt`, CelebA's layout; returns the images per split.

    Image i depends only on (seed, i), so the same seed gives byte-identical files and a
    smaller `count` gives a prefix. Like the real partition, the splits are contiguous:
    the first ~80 % train, then ~10 % val, then test.
    """
    width, height = size
    if count < 1:
        raise BlogmlError(f"--count {count}: must be at least 1")
    if width < 32 or height < 32:
        raise BlogmlError(f"--size {width}x{height}: must be at least 32x32")
    folder = Path(out) / IMAGE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    counts = dict(zip(SPLITS, split_counts(count)))
    codes = np.repeat(np.arange(3), list(counts.values()))
    lines = []
    for i in range(count):
        name = f"{i + 1:06d}.jpg"
        draw_face(np.random.default_rng([seed, i]), width, height).save(
            folder / name, "JPEG", quality=90)
        lines.append(f"{name} {codes[i]}\n")
    (Path(out) / PARTITION_FILE).write_text("".join(lines), encoding="ascii")
    return counts


# ---- preparation ----------------------------------------------------------------------


def square_image(path: Path, crop: int, size: int) -> np.ndarray:
    """The centred `crop` x `crop` square of an image (0: the largest one), resized to
    `size` x `size` with RESAMPLE: an RGB uint8 array of shape (size, size, 3).

    Crop first, then resize, so no pixel outside the square leaks in through the filter.
    """
    with Image.open(path) as image:
        image = image.convert("RGB")
    width, height = image.size
    side = crop or min(width, height)
    if side > min(width, height):
        raise ValueError(f"{width}x{height} is smaller than the {side} px crop (--crop)")
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), RESAMPLE), dtype=np.uint8)


@dataclass
class Source:
    """What to convert: the image folder, the crop, and the file names of each split."""

    folder: Path
    crop: int  # 0: the largest centred square of each image
    splits: dict[str, list[str]]
    split_origin: str  # the partition file, or the seed of a random split
    notes: list[str]  # what was left out, to tell the user

    @property
    def total(self) -> int:
        return sum(len(names) for names in self.splits.values())

    def listing_digest(self) -> str:
        """Changes when a file is added, removed, moved between splits or rewritten."""
        digest = hashlib.sha256()
        for split, names in self.splits.items():
            for name in names:
                stat = (self.folder / name).stat()
                digest.update(f"{split}\t{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def read_partition(path: Path) -> dict[str, str]:
    """`list_eval_partition.txt`: one `<image name> <0|1|2>` per line -> {name: split}."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BlogmlError(f"{path}: cannot read the split file ({error}); fix --split-file") \
            from None
    partition = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise BlogmlError(f"{path}:{number}: expected '<image name> <0|1|2>' "
                              f"(0 train, 1 val, 2 test), got {line.strip()!r}; fix --split-file")
        partition[fields[0]] = SPLITS[int(fields[1])]
    return partition


def find_source(src: str | Path, crop: int | None, split_file: str | Path | None,
                seed: int) -> Source:
    """The images under `src` (its `img_align_celeba/` if there is one) and their splits:
    from `split_file` (default: `src/list_eval_partition.txt` if present), else a random
    80/10/10 split drawn from `seed`."""
    src = Path(src)
    if not src.is_dir():
        raise BlogmlError(f"{src}: no such folder; --src must be the CelebA folder (holding "
                          f"{IMAGE_FOLDER}/) or a folder of images")
    aligned = (src / IMAGE_FOLDER).is_dir()
    folder = src / IMAGE_FOLDER if aligned else src
    names = sorted(entry.name for entry in os.scandir(folder)
                   if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file())
    if not names:
        raise BlogmlError(f"{folder}: no .jpg/.jpeg/.png images; --src must be the CelebA "
                          f"folder (holding {IMAGE_FOLDER}/) or a folder of images")
    if crop is None:
        crop = ALIGNED_CROP if aligned else 0
    if split_file is None and (src / PARTITION_FILE).is_file():
        split_file = src / PARTITION_FILE
    notes = []
    if split_file is None:
        shuffled = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
        bounds = np.cumsum(split_counts(len(names)))
        splits = {split: sorted(shuffled[start:end])
                  for split, start, end in zip(SPLITS, [0, *bounds[:2]], bounds)}
        return Source(folder, crop, splits, f"random 80/10/10, seed {seed}", notes)
    split_file = Path(split_file)
    partition = read_partition(split_file)
    splits = {split: [] for split in SPLITS}
    for name in names:
        if name in partition:
            splits[partition[name]].append(name)
    listed = sum(len(v) for v in splits.values())
    if listed == 0:
        raise BlogmlError(f"{split_file}: lists none of the {len(names)} images in {folder}; "
                          "fix --split-file (or leave it out for a random split)")
    if listed < len(names):
        notes.append(f"{len(names) - listed} images in {folder} are not in {split_file}: "
                     "left out")
    if listed < len(partition):
        notes.append(f"{len(partition) - listed} images listed in {split_file} are missing "
                     f"from {folder}")
    return Source(folder, crop, splits, str(split_file.resolve()), notes)


@dataclass
class Prepared:
    """A finished HDF5 file: images per split and the files that could not be read."""

    path: Path
    size: int
    crop: int
    counts: dict[str, int]
    rejected: list[tuple[str, str]]  # (file name, why)


def prepare_celeba(src: str | Path, out: str | Path, size: int = 64, crop: int | None = None,
                   split_file: str | Path | None = None, seed: int = 0,
                   notify: Callable[[str], None] = lambda message: None,
                   progress_bar: bool = False) -> Prepared:
    """Convert the images of `src` to `out` (HDF5): per split, uint8 (n, size, size, 3).
    `notify` receives one line per note, `progress_bar` shows a tqdm bar on stderr (the
    caller knows whether stderr is a terminal).

    Streams image by image and writes every BLOCK images to `out.partial`, whose per-split
    `done` counters say how far it got; the same call after a kill continues from there and
    ends with the contents an uninterrupted run writes, then renames the file to `out`.
    Unreadable images are skipped and listed; if none is readable, BlogmlError.
    """
    if size not in SIZES:
        raise BlogmlError(f"--size {size}: must be one of {', '.join(map(str, SIZES))}")
    if crop is not None and crop < 1:
        raise BlogmlError(f"--crop {crop}: must be a positive number of pixels")
    source = find_source(src, crop, split_file, seed)
    out = Path(out)
    arguments = json.dumps({"format": FORMAT, "size": size, "crop": source.crop,
                            "filter": RESAMPLE.name, "source": str(source.folder.resolve()),
                            "splits": source.split_origin, "listing": source.listing_digest()})
    if out.exists():
        if _arguments_of(out) != arguments:
            raise BlogmlError(f"{out}: exists and was not made from these images with these "
                              "options; delete it or choose another --out")
        notify(f"{out}: already prepared from these images with these options")
        return read_prepared(out)
    _check_crop(source)
    for note in source.notes:
        notify(note)
    out.parent.mkdir(parents=True, exist_ok=True)
    with locks.exclusive(out.with_name(out.name + ".lock"), str(out)):
        return _prepare_locked(source, out, size, arguments, notify, progress_bar)


def _prepare_locked(source: Source, out: Path, size: int, arguments: str,
                    notify: Callable[[str], None], progress_bar: bool) -> Prepared:
    """The conversion, by the one process holding `out`'s lock (a second `data prepare`
    to the same file would otherwise delete or rewind this one's partial file)."""
    if out.exists():  # finished by the process that held the lock before
        return read_prepared(out)
    partial = out.with_name(out.name + ".partial")
    with _open_partial(partial, arguments, source, size, notify) as h5:
        try:
            _convert(h5, source, size, progress_bar)
        except KeyboardInterrupt:
            done = sum(int(h5[split].attrs["done"]) for split in SPLITS)
            notify(f"{partial}: interrupted after {done} of {source.total} images; the same "
                   "command continues from there")
            raise
        converted = sum(h5[split].shape[0] for split in SPLITS)
    if converted == 0:
        rejected = read_prepared(partial).rejected
        partial.unlink()
        raise BlogmlError(f"{source.folder}: none of the {source.total} images could be "
                          f"converted (first: {rejected[0][0]}: {rejected[0][1]}); nothing "
                          "written")
    os.replace(partial, out)
    return read_prepared(out)


def _check_crop(source: Source) -> None:
    """Fail fast when --crop cannot fit (else every image would be rejected, one by one)."""
    first = next(names[0] for names in source.splits.values() if names)
    try:
        with Image.open(source.folder / first) as image:  # reads the header only
            width, height = image.size
    except Exception:  # unreadable: the conversion skips and reports it
        return
    if source.crop > min(width, height):
        raise BlogmlError(f"--crop {source.crop}: larger than the images ({first} is "
                          f"{width}x{height}); pass --crop {min(width, height)} or less")


def read_prepared(path: Path) -> Prepared:
    """What a prepared (or partial) file holds, for the report."""
    with h5py.File(path, "r") as h5:
        rejected = list(zip(h5["rejected/names"].asstr()[:], h5["rejected/reasons"].asstr()[:]))
        return Prepared(path, int(h5.attrs["size"]), int(h5.attrs["crop"]),
                        {split: h5[split].shape[0] for split in SPLITS}, rejected)


def _arguments_of(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as h5:
            return h5.attrs.get("arguments")
    except OSError:  # not an HDF5 file, or one cut short
        return None


def _open_partial(partial: Path, arguments: str, source: Source, size: int,
                  notify: Callable[[str], None]) -> h5py.File:
    """The partial file to continue (rewound to its last complete block), or a new one."""
    if partial.exists():
        existing = _arguments_of(partial)
        if existing == arguments:
            h5 = h5py.File(partial, "r+")
            try:
                done = _rewind(h5)
            except (KeyError, OSError) as error:  # cut short by a kill mid-write
                h5.close()
                notify(f"{partial}: unusable ({error}); starting over")
            else:
                notify(f"{partial}: resuming, {done} of {source.total} images done")
                return h5
        elif existing is None:
            notify(f"{partial}: unreadable (cut short by a kill?); starting over")
        else:
            notify(f"{partial}: made from other images or options; starting over")
        partial.unlink()
    h5 = h5py.File(partial, "w")
    for split in SPLITS:
        images = h5.create_dataset(split, shape=(0, size, size, 3), dtype=np.uint8,
                                   maxshape=(None, size, size, 3),
                                   chunks=(CHUNK_ROWS, size, size, 3), track_times=False)
        images.attrs["done"] = 0  # source files consumed (converted or rejected)
        images.attrs["rejected"] = 0
        h5.create_dataset(f"names/{split}", shape=(0,), dtype=h5py.string_dtype(),
                          maxshape=(None,), chunks=(1024,), track_times=False)
    for key in ("rejected/names", "rejected/reasons"):
        h5.create_dataset(key, shape=(0,), dtype=h5py.string_dtype(), maxshape=(None,),
                          chunks=(64,), track_times=False)
    h5.attrs.update({"size": size, "crop": source.crop, "filter": RESAMPLE.name,
                     "source": str(source.folder.resolve()), "splits": source.split_origin,
                     "format": FORMAT})
    h5.attrs["arguments"] = arguments  # last: a file cut short before this is not continued
    h5.flush()
    return h5


def _rewind(h5: h5py.File) -> int:
    """Drop whatever a killed run wrote after its last counted block; the files consumed."""
    rejected = 0
    for split in SPLITS:
        done, split_rejected = int(h5[split].attrs["done"]), int(h5[split].attrs["rejected"])
        h5[split].resize(done - split_rejected, axis=0)
        h5[f"names/{split}"].resize(done - split_rejected, axis=0)
        rejected += split_rejected
    h5["rejected/names"].resize(rejected, axis=0)
    h5["rejected/reasons"].resize(rejected, axis=0)
    return sum(int(h5[split].attrs["done"]) for split in SPLITS)


def _append(dataset: h5py.Dataset, rows: list) -> None:
    if rows:
        start = dataset.shape[0]
        dataset.resize(start + len(rows), axis=0)
        dataset[start:] = np.array(rows, dtype=dataset.dtype)


def _convert(h5: h5py.File, source: Source, size: int, progress_bar: bool) -> None:
    """Convert what is not done yet, block by block: data first, then the counters."""
    done = {split: int(h5[split].attrs["done"]) for split in SPLITS}
    with tqdm(total=source.total, initial=sum(done.values()), unit="img", desc="prepare",
              disable=not progress_bar, dynamic_ncols=True, file=sys.stderr) as bar:
        for split in SPLITS:
            names = source.splits[split]
            for start in range(done[split], len(names), BLOCK):
                block = names[start:start + BLOCK]
                rows, kept, rejected = [], [], []
                for name in block:
                    try:
                        rows.append(square_image(source.folder / name, source.crop, size))
                        kept.append(name)
                    # Pillow reports a bad file with many exception types (OSError,
                    # SyntaxError, struct.error, DecompressionBombError, ...): any of them
                    # means this one image is unusable, never the conversion.
                    except Exception as error:
                        rejected.append((name, str(error) or type(error).__name__))
                    bar.update(1)
                _append(h5[split], rows)
                _append(h5[f"names/{split}"], kept)
                _append(h5["rejected/names"], [name for name, _ in rejected])
                _append(h5["rejected/reasons"], [reason for _, reason in rejected])
                h5.flush()  # the data is on disk before the counters that vouch for it
                h5[split].attrs["done"] = start + len(block)
                h5[split].attrs["rejected"] = int(h5[split].attrs["rejected"]) + len(rejected)
                h5.flush()
