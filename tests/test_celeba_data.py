"""CelebA data: demo faces in the real layout, the HDF5 conversion, and the streaming batches."""

from __future__ import annotations

import gc
import itertools
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import blogml.data.celeba as celeba
from blogml.cli.data_cmd import data
from blogml.cli.main import BlogmlGroup
from blogml.data.hdf5 import HDF5Images, prefetched, to_unit_range
from blogml.errors import BlogmlError
from tests.conftest import REPO, cli_env

SPLIT_CODES = {"0": "train", "1": "val", "2": "test"}


def blogml(*args: str):
    """`blogml ARGS` in process, through the CLI's own error handling (exit codes, messages)."""
    cli = BlogmlGroup(name="blogml", commands={"data": data})
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def partition(folder: Path) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for line in (folder / "list_eval_partition.txt").read_text().splitlines():
        name, code = line.split()
        splits[SPLIT_CODES[code]].append(name)
    return splits


def reference(path: Path, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop and resize with Pillow directly, as the conversion promises (Lanczos)."""
    image = Image.open(path).convert("RGB").crop(box)
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))


def h5_contents(path: Path) -> dict:
    """Every dataset (values and attributes) and the file's attributes."""
    contents: dict = {}
    with h5py.File(path, "r") as h5:
        contents["/"] = dict(h5.attrs)

        def visit(name: str, item: object) -> None:
            if isinstance(item, h5py.Dataset):
                values = item.asstr()[()].tolist() if item.dtype.kind == "O" else item[()]
                contents[name] = (values, dict(item.attrs), item.shape, item.dtype)

        h5.visititems(visit)
    return contents


def assert_same_contents(a: Path, b: Path) -> None:
    first, second = h5_contents(a), h5_contents(b)
    assert first.keys() == second.keys()
    for key in first:
        if key == "/":
            assert first[key] == second[key]
            continue
        values_a, *rest_a = first[key]
        values_b, *rest_b = second[key]
        assert rest_a == rest_b, key
        assert np.array_equal(values_a, values_b), key


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 demo faces at the aligned CelebA size (178x218)."""
    folder = tmp_path_factory.mktemp("celeba")
    celeba.synth_celeba(folder, count=40, seed=3)
    return folder


# ---- synthesis ------------------------------------------------------------------------


def test_synth_writes_the_celeba_layout_byte_identical_for_a_seed(tmp_path):
    result = blogml("data", "synth", "celeba", "--out", str(tmp_path / "a"), "--count", "20",
                    "--size", "64x80", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "train 16, val 2, test 2" in result.output
    folder = tmp_path / "a" / "img_align_celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 21)]
    assert sorted(p.name for p in folder.iterdir()) == names
    lines = (tmp_path / "a" / "list_eval_partition.txt").read_text().splitlines()
    assert lines == [f"{name} {code}" for name, code in zip(names, [0] * 16 + [1] * 2 + [2] * 2)]
    with Image.open(folder / "000001.jpg") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 80))

    celeba.synth_celeba(tmp_path / "b", count=20, seed=7, size=(64, 80))
    celeba.synth_celeba(tmp_path / "c", count=10, seed=7, size=(64, 80))
    celeba.synth_celeba(tmp_path / "d", count=20, seed=8, size=(64, 80))
    read = {key: [(tmp_path / key / "img_align_celeba" / n).read_bytes() for n in names[:10]]
            for key in "abcd"}
    assert read["a"] == read["b"] == read["c"]  # same seed: same bytes, any count
    assert all(x != y for x, y in zip(read["a"], read["d"]))
    assert len(set(read["a"])) == 10  # every face differs


def test_synth_rejects_a_bad_size(tmp_path):
    result = blogml("data", "synth", "celeba", "--out", str(tmp_path), "--size", "64")
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output
    with pytest.raises(BlogmlError, match="at least 32x32"):
        celeba.synth_celeba(tmp_path, count=1, size=(16, 16))


# ---- preparation ----------------------------------------------------------------------


def test_prepare_stores_each_split_as_a_direct_pillow_crop_and_resize(faces, tmp_path):
    out = tmp_path / "celeba64.h5"
    result = blogml("data", "prepare", "celeba", "--src", str(faces), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "train 32, val 4, test 4" in result.output
    assert not Path(f"{out}.partial").exists()
    expected = partition(faces)
    box = (19, 39, 159, 179)  # the centred 140 px square of 178x218
    with h5py.File(out, "r") as h5:
        assert (h5.attrs["size"], h5.attrs["crop"], h5.attrs["filter"]) == (64, 140, "LANCZOS")
        assert h5.attrs["source"] == str((faces / "img_align_celeba").resolve())
        for split, names in expected.items():
            images = h5[split]
            assert images.shape == (len(names), 64, 64, 3) and images.dtype == np.uint8
            assert list(h5[f"names/{split}"].asstr()[:]) == names
            for row, name in enumerate(names):
                np.testing.assert_array_equal(
                    images[row], reference(faces / "img_align_celeba" / name, box, 64),
                    err_msg=f"{split}/{name}")
        assert len(h5["rejected/names"]) == 0


def test_prepare_at_128_with_a_given_crop_and_split_file(faces, tmp_path):
    split_file = tmp_path / "my_split.txt"  # every fourth image in val, the rest in train
    split_file.write_text("".join(f"{i:06d}.jpg {int(i % 4 == 0)}\n" for i in range(1, 41)))
    out = tmp_path / "celeba128.h5"
    prepared = celeba.prepare_celeba(faces, out, size=128, crop=160, split_file=split_file)
    assert prepared.counts == {"train": 30, "val": 10, "test": 0}
    with h5py.File(out, "r") as h5:
        assert h5["val"].shape == (10, 128, 128, 3)
        assert list(h5["names/val"].asstr()[:]) == [f"{i:06d}.jpg" for i in range(4, 41, 4)]
        np.testing.assert_array_equal(
            h5["val"][0], reference(faces / "img_align_celeba" / "000004.jpg",
                                    (9, 29, 169, 189), 128))


def test_a_folder_of_pngs_gets_a_seeded_80_10_10_split_and_its_largest_square(tmp_path):
    src = tmp_path / "pngs"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):  # landscape RGB and portrait grayscale, not square, some upscaled
        shape, mode = ((50, 90, 3), "RGB") if i % 2 else ((100, 70), "L")
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
            src / f"face_{i:02d}.png")
    first = celeba.prepare_celeba(src, tmp_path / "a.h5", seed=1)
    celeba.prepare_celeba(src, tmp_path / "b.h5", seed=1)  # the same seed again
    other = celeba.prepare_celeba(src, tmp_path / "c.h5", seed=2)
    assert first.counts == {"train": 24, "val": 3, "test": 3} == other.counts
    assert first.crop == 0  # the largest centred square of each image
    with h5py.File(tmp_path / "a.h5", "r") as a, h5py.File(tmp_path / "c.h5", "r") as c:
        names = {split: list(a[f"names/{split}"].asstr()[:]) for split in celeba.SPLITS}
        assert sorted(itertools.chain(*names.values())) == [f"face_{i:02d}.png" for i in range(30)]
        assert list(c["names/train"].asstr()[:]) != names["train"]
        wide, tall = names["train"].index("face_01.png"), names["train"].index("face_00.png")
        np.testing.assert_array_equal(
            a["train"][wide], reference(src / "face_01.png", (20, 0, 70, 50), 64))
        np.testing.assert_array_equal(
            a["train"][tall], reference(src / "face_00.png", (0, 15, 70, 85), 64))
    assert_same_contents(tmp_path / "a.h5", tmp_path / "b.h5")


def test_corrupt_images_are_skipped_listed_and_the_rest_converted(tmp_path):
    src = tmp_path / "src"
    celeba.synth_celeba(src, count=20, seed=3)
    (src / "img_align_celeba" / "000005.jpg").write_bytes(b"garbage, not a JPEG" * 10)
    truncated = (src / "img_align_celeba" / "000017.jpg").read_bytes()
    (src / "img_align_celeba" / "000017.jpg").write_bytes(truncated[:len(truncated) // 2])
    out = tmp_path / "out.h5"
    result = blogml("data", "prepare", "celeba", "--src", str(src), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "skipped 2 images" in result.stderr
    assert "000005.jpg" in result.stderr and "000017.jpg" in result.stderr
    assert "train 15, val 1, test 2" in result.stdout  # 000017.jpg was in val
    with h5py.File(out, "r") as h5:
        assert list(h5["rejected/names"].asstr()[:]) == ["000005.jpg", "000017.jpg"]
        assert "truncated" in h5["rejected/reasons"].asstr()[1]
        train = list(h5["names/train"].asstr()[:])
        assert train == [f"{i:06d}.jpg" for i in range(1, 17) if i != 5]
        np.testing.assert_array_equal(  # the rows after the gap are the right images
            h5["train"][4], reference(src / "img_align_celeba" / "000006.jpg",
                                      (19, 39, 159, 179), 64))


def test_no_readable_image_exits_2_and_writes_nothing(tmp_path):
    src = tmp_path / "src"
    celeba.synth_celeba(src, count=3, size=(64, 80))
    for path in (src / "img_align_celeba").iterdir():
        path.write_bytes(b"\xff\xd8 not really")
    result = blogml("data", "prepare", "celeba", "--src", str(src), "--out",
                    str(tmp_path / "x.h5"), "--crop", "60")
    assert result.exit_code == 2
    assert "none of the 3 images could be converted" in result.stderr
    assert "000001.jpg" in result.stderr
    assert list(tmp_path.glob("x.h5*")) == []


@pytest.mark.parametrize("args, message", [
    (["--src", "{tmp}/missing"], "{tmp}/missing: no such folder"),
    (["--src", "{tmp}/empty"], "{tmp}/empty: no .jpg/.jpeg/.png images"),
    (["--src", "{faces}", "--size", "32"], "'32' is not one of '64', '128'"),
    (["--src", "{faces}", "--crop", "300"], "--crop 300: larger than the images"),
    (["--src", "{faces}", "--split-file", "{tmp}/bad.txt"], "{tmp}/bad.txt:2: expected"),
    (["--src", "{faces}", "--split-file", "{tmp}/other.txt"], "lists none of the 40 images"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(faces, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    (tmp_path / "other.txt").write_text("elsewhere.jpg 0\n")
    fill = {"tmp": str(tmp_path), "faces": str(faces)}
    result = blogml("data", "prepare", "celeba", "--out", str(tmp_path / "out.h5"),
                    *(arg.format(**fill) for arg in args))
    assert result.exit_code == 2
    assert message.format(**fill) in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "rror" in line]
    assert len(error_lines) == 1
    assert not list(tmp_path.glob("out.h5*"))


def test_an_existing_output_is_kept_unless_it_is_the_same_conversion(faces, tmp_path):
    out = tmp_path / "out.h5"
    celeba.prepare_celeba(faces, out)
    notes: list[str] = []
    assert celeba.prepare_celeba(faces, out, notify=notes.append).counts["train"] == 32
    assert "already prepared" in notes[0]
    with pytest.raises(BlogmlError, match="exists and was not made .* delete it"):
        celeba.prepare_celeba(faces, out, size=128)


def test_an_interrupted_prepare_resumes_to_the_same_file(faces, tmp_path, monkeypatch):
    uninterrupted = tmp_path / "whole.h5"
    celeba.prepare_celeba(faces, uninterrupted)
    monkeypatch.setattr(celeba, "BLOCK", 6)  # several blocks per split
    convert = celeba.square_image

    def interrupt_after(calls: int):  # Ctrl-C; any Exception would reject just one image
        count = itertools.count()

        def interrupted(*args):
            if next(count) == calls:
                raise KeyboardInterrupt
            return convert(*args)
        return interrupted

    out, notes = tmp_path / "out.h5", []
    partial = tmp_path / "out.h5.partial"
    # A partial file from other options is not continued.
    monkeypatch.setattr(celeba, "square_image", interrupt_after(3))
    with pytest.raises(KeyboardInterrupt):
        celeba.prepare_celeba(faces, out, size=128)
    # Interrupted after the first block's images and names are written but before its
    # counters: a resume must drop those rows and write them again.
    append, appends = celeba._append, itertools.count()

    def append_then_interrupt(*args):
        append(*args)
        if next(appends) == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(celeba, "_append", append_then_interrupt)
    monkeypatch.setattr(celeba, "square_image", convert)
    with pytest.raises(KeyboardInterrupt):
        celeba.prepare_celeba(faces, out, notify=notes.append)
    with h5py.File(partial, "r") as h5:
        assert h5["train"].shape[0] == 6 and h5["train"].attrs["done"] == 0
    monkeypatch.setattr(celeba, "_append", append)
    # Interrupted mid-block in train, at the end of train, and mid-block in val.
    for calls, done in ((9, 6), (26, 32), (3, 32)):
        monkeypatch.setattr(celeba, "square_image", interrupt_after(calls))
        with pytest.raises(KeyboardInterrupt):
            celeba.prepare_celeba(faces, out, notify=notes.append)
        assert notes[-1].endswith(f"interrupted after {done} of 40 images; the same command "
                                  "continues from there")
        with h5py.File(partial, "r") as h5:
            assert sum(int(h5[s].attrs["done"]) for s in celeba.SPLITS) == done
    assert not out.exists()
    monkeypatch.setattr(celeba, "square_image", convert)
    celeba.prepare_celeba(faces, out, notify=notes.append)
    assert "made from other images or options; starting over" in notes[0]
    assert [n.split(", ")[1] for n in notes if "resuming" in n] == [
        "0 of 40 images done", "6 of 40 images done", "32 of 40 images done",
        "32 of 40 images done"]
    assert not partial.exists()
    assert_same_contents(out, uninterrupted)


KILL_AFTER = """
import os, signal, sys
import blogml.data.celeba as celeba
convert, calls = celeba.square_image, iter(range(int(sys.argv[3])))
def killed(*args):  # SIGKILL: no cleanup, no close of the HDF5 file
    if next(calls, None) is None:
        os.kill(os.getpid(), signal.SIGKILL)
    return convert(*args)
celeba.square_image, celeba.BLOCK = killed, 5
celeba.prepare_celeba(sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
def test_a_killed_prepare_resumes_to_the_same_file(faces, tmp_path):
    celeba.prepare_celeba(faces, tmp_path / "whole.h5")
    out = tmp_path / "out.h5"
    for calls in (12, 12):  # killed after 10 + 2, then after 20 + 2 images
        killed = subprocess.run([sys.executable, "-c", KILL_AFTER, str(faces), str(out),
                                 str(calls)], cwd=REPO, env=cli_env(), timeout=120)
        assert killed.returncode == -9
    with h5py.File(f"{out}.partial", "r") as h5:
        assert h5["train"].attrs["done"] == 20  # 10 + 10 images, in blocks of 5
    result = blogml("data", "prepare", "celeba", "--src", str(faces), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "resuming, 20 of 40 images done" in result.stderr
    assert_same_contents(out, tmp_path / "whole.h5")


# ---- the streaming pipeline -------------------------------------------------------------


@pytest.fixture
def numbered(tmp_path: Path) -> Path:
    """An HDF5 file whose image i has every pixel equal to i (train: 50, val: 13)."""
    path = tmp_path / "numbered.h5"
    with h5py.File(path, "w") as h5:
        for split, n in (("train", 50), ("val", 13)):
            values = np.arange(n, dtype=np.uint8)[:, None, None, None]
            h5.create_dataset(split, data=np.broadcast_to(values, (n, 4, 4, 3)),
                              chunks=(1, 4, 4, 3))
    return path


def ids(batch: np.ndarray) -> list[int]:
    return batch[:, 0, 0, 0].tolist()


def test_training_batches_follow_the_seeded_order_and_resume_at_any_step(numbered):
    images = HDF5Images(numbered, "train", batch_size=8, seed=5)
    assert (images.num_examples, images.batches_per_pass) == (50, 6)  # remainder dropped
    full = [ids(b) for b in itertools.islice(images.batches(), 18)]
    for data_pass in range(3):
        order = np.random.default_rng([5, data_pass]).permutation(50)
        expected = [order[i * 8:(i + 1) * 8].tolist() for i in range(6)]
        assert full[data_pass * 6:(data_pass + 1) * 6] == expected
    for start in (1, 5, 6, 13):
        resumed = [ids(b) for b in itertools.islice(images.batches(start), 18 - start)]
        assert resumed == full[start:]
    other = HDF5Images(numbered, "train", batch_size=8, seed=6)
    assert ids(next(other.batches())) != full[0]


def test_to_unit_range_maps_pixels_to_minus_one_to_one(numbered):
    pixels = np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8)
    scaled = to_unit_range(pixels)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, pixels.astype(np.float64) / 127.5 - 1, rtol=0, atol=1e-7)
    assert (scaled[0], scaled[-1]) == (-1.0, 1.0)
    images = HDF5Images(numbered, "train", 8, seed=5, transform=to_unit_range)
    raw = HDF5Images(numbered, "train", 8, seed=5)
    np.testing.assert_array_equal(next(images.batches(3)), to_unit_range(next(raw.batches(3))))


def test_eval_batches_cover_every_image_once_in_order(numbered):
    images = HDF5Images(numbered, "train", batch_size=8, seed=0)
    batches = list(images.eval_batches("val", 4))
    assert [len(b) for b in batches] == [4, 4, 4, 1]
    assert list(itertools.chain(*map(ids, batches))) == list(range(13))
    assert list(itertools.chain(*map(ids, images.eval_batches("train", 64)))) == list(range(50))


def test_errors_in_the_prefetch_thread_reach_the_consumer(numbered):
    def fails_on_third(batch: np.ndarray) -> np.ndarray:
        fails_on_third.calls += 1
        if fails_on_third.calls == 3:
            raise OSError("disk gone")
        return batch
    fails_on_third.calls = 0
    stream = HDF5Images(numbered, "train", 8, seed=0, transform=fails_on_third).batches()
    next(stream), next(stream)
    with pytest.raises(OSError, match="disk gone"):
        next(stream)


def prefetch_threads() -> int:
    return sum(t.name == "blogml-prefetch" for t in threading.enumerate())


def test_the_prefetch_thread_is_bounded_and_stops_when_closed_or_collected():
    produced, closed = [], []

    def source():
        try:
            for i in itertools.count():
                produced.append(i)
                yield i
        finally:
            closed.append(True)

    before = prefetch_threads()
    stream = prefetched(source(), depth=3)
    assert next(stream) == 0 and prefetch_threads() == before + 1
    time.sleep(0.2)
    assert len(produced) <= 1 + 3 + 1  # taken, queued, and one waiting for room
    stream.close()
    assert prefetch_threads() == before and closed == [True]

    stream = prefetched(source(), depth=2)
    next(stream)
    del stream
    gc.collect()
    assert prefetch_threads() == before and closed == [True, True]
    assert list(prefetched(iter(range(5)), depth=2)) == [0, 1, 2, 3, 4]
    assert prefetch_threads() == before


def test_a_missing_file_split_or_too_large_batch_is_a_clear_error(numbered, tmp_path):
    with pytest.raises(BlogmlError, match="no such file; make it with `blogml data prepare"):
        HDF5Images(tmp_path / "nope.h5", "train", 8, seed=0)
    with pytest.raises(BlogmlError, match="no split 'test' \\(it has: train, val\\)"):
        HDF5Images(numbered, "test", 8, seed=0)
    with pytest.raises(BlogmlError, match="no split 'test'"):
        HDF5Images(numbered, "train", 8, seed=0).eval_batches("test", 8)
    with pytest.raises(BlogmlError, match="batch size 64 exceeds the 50 images"):
        HDF5Images(numbered, "train", 64, seed=0)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(BlogmlError, match="not a readable HDF5 file"):
        HDF5Images(tmp_path / "text.h5", "train", 8, seed=0)


def test_pickled_images_reopen_the_file(numbered):
    images = HDF5Images(numbered, "train", 8, seed=2)
    first = ids(next(images.batches()))  # the handle is open now
    copy = pickle.loads(pickle.dumps(images))
    assert ids(next(copy.batches())) == first
    images.close()
    assert ids(next(images.batches())) == first


FORKED = """
import os, sys
import numpy as np
from blogml.data.hdf5 import HDF5Images
images = HDF5Images(sys.argv[1], "train", 8, seed=2)
first = next(images.batches())[:, 0, 0, 0].tolist()  # the parent's handle is open
pid = os.fork()
if pid == 0:
    child = [next(images.batches(s))[:, 0, 0, 0].tolist() for s in (0, 7)]
    os._exit(0 if child[0] == first and images._pid == os.getpid() else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, "the child read other batches"
assert next(images.batches())[:, 0, 0, 0].tolist() == first
"""


@pytest.mark.slow
def test_a_forked_child_opens_its_own_handle_and_reads_the_same_batches(numbered):
    result = subprocess.run([sys.executable, "-c", FORKED, str(numbered)], cwd=REPO,
                            env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
