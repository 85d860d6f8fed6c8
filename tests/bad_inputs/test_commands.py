"""Bad inputs of the commands that use or inspect runs: predict, sample, score, runs, bench
and eval. Where the command can go on, the bad item is skipped and listed and the rest is
done; where it cannot, exit 2 with one message naming the file, option or line, before
any compute, nothing half-written and nothing existing changed; never a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from tests.bad_inputs.harness import assert_refused, invoke, needs_unprivileged, spawn

pytestmark = pytest.mark.slow


# ---- trained runs, a few steps each (module-scoped: trained once) -----------------------

def _train(root: Path, name: str, config: dict) -> Path:
    config = {"seed": 0, "run_dir": str(root / name), **config}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI", "true")
        result = invoke("train", str(path))
    assert result.exit_code == 0, result.output
    return root / name


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trained")


@pytest.fixture(scope="module")
def vqvae_run(runs_root: Path, faces: Path) -> Path:
    return _train(runs_root, "vq", {
        "task": "vqvae", "data": {"path": str(faces)},
        "model": {"z_dim": 8, "num_codes": 16, "residual_blocks": 1},
        "optimizer": {"name": "adam", "learning_rate": 2e-3},
        "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "log_every": 1,
                  "sample_count": 2}})


@pytest.fixture(scope="module")
def prior_run(runs_root: Path, vqvae_run: Path) -> Path:
    return _train(runs_root, "prior", {
        "task": "vqvae_prior", "data": {"vqvae_run": str(vqvae_run)},
        "model": {"hidden": 8, "layers": 1, "heads": 1, "dropout": 0.0},
        "optimizer": {"name": "adam", "learning_rate": 3e-3},
        "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "log_every": 1,
                  "sample_count": 2}})


@pytest.fixture(scope="module")
def nl2sql_run(runs_root: Path, demo_data: Path) -> Path:
    return _train(runs_root, "nl", {
        "task": "nl2sql", "data": {"root": str(demo_data), "max_length": 96},
        "model": {"hidden_size": 16, "layers": 1, "heads": 1, "intermediate_size": 16,
                  "dropout": 0.0, "link_units": 8},
        "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "log_every": 1}})


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")
    return tmp_path


@pytest.fixture
def read_only(here: Path) -> Iterator[Path]:
    """A folder nobody may write in (for `spawn(..., unprivileged=True)`)."""
    folder = here / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


# ---- inputs ------------------------------------------------------------------------------

def _face_files(faces: Path, count: int) -> list[Path]:
    return sorted((faces.parent / "src" / "img_align_celeba").iterdir())[:count]


def _cache(path: Path, images: np.ndarray, names: list[str] | None = None) -> Path:
    with h5py.File(path, "w") as handle:
        handle["test"] = images
        if names is not None:
            handle["names/test"] = names
    return path


def _questions(demo_data: Path, folder: Path, lines: list[str], name: str = "q") -> Path:
    """A questions file of `lines`, with the demo test split's tables beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text("".join(line + "\n" for line in lines),
                                         encoding="utf-8")
    shutil.copy(demo_data / "test" / "test.tables.json", folder / f"{name}.tables.json")
    return folder / f"{name}.json"


def _test_lines(demo_data: Path, count: int) -> list[str]:
    return (demo_data / "test" / "test.json").read_text(encoding="utf-8").splitlines()[:count]


# ---- vqvae predict -------------------------------------------------------------------------

def test_predict_skips_unreadable_images_lists_them_and_reconstructs_the_rest(
        here, faces, vqvae_run, unchanged, monkeypatch):
    folder = here / "images"
    folder.mkdir()
    good = _face_files(faces, 3)
    for path in good:
        shutil.copy(path, folder / path.name)
    (folder / "bad.jpg").write_text("a text file, named like an image")
    data = good[0].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[:len(data) // 3])
    unchanged.append(folder)
    unchanged.append(vqvae_run)
    monkeypatch.setattr("blogml.runners.vqvae.runner.interactive", lambda: True)
    result = invoke("predict", str(vqvae_run), "--input", str(folder), "--output", "out")
    assert_refused(result, 0, f"{folder / 'bad.jpg'}: skipped",
                   f"{folder / 'truncated.jpg'}: skipped", "reconstructing")
    written = sorted(p.name for p in (here / "out").iterdir())
    assert written == sorted([f"{p.stem}.png" for p in good] + ["overview.png"])


def test_predict_refuses_a_folder_without_one_readable_image(here, vqvae_run, unchanged):
    folder = here / "images"
    folder.mkdir()
    (folder / "a.jpg").write_text("not an image")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n")
    unchanged.append(folder)
    unchanged.append(vqvae_run)
    result = invoke("predict", str(vqvae_run), "--input", str(folder), "--output", "out")
    assert_refused(result, 2, f"{folder}: no readable image", folder / "a.jpg",
                   folder / "b.png")
    assert not (here / "out").exists()


def test_predict_refuses_a_cache_of_another_image_size_naming_both(here, vqvae_run, unchanged):
    cache = _cache(here / "small.h5", np.zeros((3, 32, 32, 3), np.uint8), ["a", "b", "c"])
    unchanged.append(cache)
    unchanged.append(vqvae_run)
    result = invoke("predict", str(vqvae_run), "--input", str(cache), "--output", "out")
    assert_refused(result, 2, cache, "(32, 32, 3)", "64x64", "image folder")
    assert not (here / "out").exists()


def test_predict_names_the_images_of_a_cache_without_names_by_index(here, vqvae_run, unchanged):
    cache = _cache(here / "nameless.h5", np.zeros((3, 64, 64, 3), np.uint8))
    unchanged.append(cache)
    unchanged.append(vqvae_run)
    result = invoke("predict", str(vqvae_run), "--input", str(cache), "--output", "out")
    assert_refused(result, 0, f"{cache}: names/test is missing")
    assert sorted(p.name for p in (here / "out").iterdir()) == ["0.png", "1.png", "2.png",
                                                                 "overview.png"]


@pytest.mark.parametrize("content, named", [
    ("a text file, not HDF5", "not an HDF5 file"),
    (None, "has no test split"),
])
def test_predict_refuses_an_h5_input_it_cannot_use(here, vqvae_run, unchanged, content, named):
    cache = here / "input.h5"
    if content is None:
        with h5py.File(cache, "w") as handle:
            handle["train"] = np.zeros((2, 64, 64, 3), np.uint8)
    else:
        cache.write_text(content)
    unchanged.append(cache)
    unchanged.append(vqvae_run)
    result = invoke("predict", str(vqvae_run), "--input", str(cache), "--output", "out")
    assert_refused(result, 2, f"{cache}: {named}")
    assert not (here / "out").exists()


def test_predict_refuses_an_existing_file_as_its_output_folder(here, faces, vqvae_run,
                                                               unchanged):
    target = here / "out.png"
    target.write_text("an existing file")
    unchanged.append(target)
    unchanged.append(vqvae_run)
    result = invoke("predict", str(vqvae_run), "--input", str(faces), "--output", str(target))
    assert_refused(result, 2, f"--output {target}: is a file", "give a folder")


@pytest.mark.parametrize("command", ["predict", "sample"])
def test_an_output_below_a_file_is_refused_before_the_run_is_loaded(
        here, faces, vqvae_run, prior_run, unchanged, monkeypatch, command):
    blocker = here / "notes.txt"
    blocker.write_text("a file where a folder would go")
    unchanged.append(blocker)
    run = vqvae_run if command == "predict" else prior_run
    unchanged.append(run)
    monkeypatch.setattr("blogml.runners.building.trained_runner",
                        lambda *args: pytest.fail("loaded the run"))
    output = blocker / "sub" / "x.png"
    args = ["--input", str(faces)] if command == "predict" else []
    result = invoke(command, str(run), *args, "--output", str(output))
    assert_refused(result, 2, f"--output {output}: {blocker} is a file")


@needs_unprivileged
@pytest.mark.parametrize("command, output", [
    ("predict", "read-only"), ("predict", "read-only/new"), ("sample", "read-only/x.png")])
def test_an_output_in_a_read_only_folder_is_refused_before_the_run_is_loaded(
        here, read_only, faces, vqvae_run, prior_run, unchanged, command, output):
    run = vqvae_run if command == "predict" else prior_run
    unchanged.append(read_only)
    unchanged.append(run)
    args = ["--input", str(faces)] if command == "predict" else []
    result = spawn(command, str(run), *args, "--output", output, cwd=here, unprivileged=True,
                   timeout=120)
    assert_refused(result, 2, f"--output {output}: cannot write in {read_only.name}")


# ---- sample --------------------------------------------------------------------------------

def test_sample_refuses_an_output_that_is_no_png(here, prior_run, unchanged):
    unchanged.append(prior_run)
    result = invoke("sample", str(prior_run), "-n", "2", "--output", "grid.jpg")
    assert_refused(result, 2, "--output grid.jpg", ".png")
    assert not (here / "grid.jpg").exists()


def test_sample_shows_progress_over_the_code_positions(here, prior_run, monkeypatch):
    monkeypatch.setattr("blogml.runners.vqvae_prior.runner.interactive", lambda: True)
    result = invoke("sample", str(prior_run), "-n", "2", "--output", "new/grid.png")
    assert_refused(result, 0, "sampling")
    grid = (here / "new" / "grid.png")
    assert grid.is_file()


def test_prior_sampling_reports_every_position_to_its_callback():
    from blogml.models.prior import sample

    seen: list[int] = []
    grids = sample(lambda tokens: np.zeros((len(tokens), 9, 4), np.float32), 2, 4, 3,
                   on_position=seen.append)
    assert seen == list(range(9)) and grids.shape == (2, 3, 3)


# ---- nl2sql predict ------------------------------------------------------------------------

def test_predict_goes_on_past_bad_question_lines_and_warns_of_each(here, demo_data,
                                                                   nl2sql_run, unchanged):
    lines = _test_lines(demo_data, 3)
    questions = _questions(demo_data, here / "in", [lines[0], "{not json", lines[1],
                                                    '{"table_id": "nowhere", "question": "?"}'])
    unchanged.append(questions.parent)
    unchanged.append(nl2sql_run)
    result = invoke("predict", str(nl2sql_run), "--input", str(questions), "--output", "p.json")
    assert_refused(result, 0, f"{questions}:2: not valid JSON", f"{questions}:4: table_id")
    predictions = [json.loads(x) for x in (here / "p.json").read_text().splitlines()]
    assert [bool(p["sel"]) for p in predictions] == [True, False, True, False]
    assert not list(here.glob("*.partial"))


def test_predict_warns_of_each_question_too_long_for_max_length(here, demo_data, nl2sql_run,
                                                               unchanged):
    lines = _test_lines(demo_data, 2)
    questions = _questions(demo_data, here / "in", [lines[0], json.dumps(
        {"table_id": "wide", "question": "列1是什么"}, ensure_ascii=False), lines[1]])
    wide = {"id": "wide", "name": "Table_wide", "title": "宽表", "types": ["text"] * 40,
            "header": [f"列{i}" for i in range(40)], "rows": [["x"] * 40]}
    with open(here / "in" / "q.tables.json", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(wide, ensure_ascii=False) + "\n")
    unchanged.append(questions.parent)
    unchanged.append(nl2sql_run)
    result = invoke("predict", str(nl2sql_run), "--input", str(questions), "--output", "p.json")
    assert_refused(result, 0, f"{questions}:2: 40 columns do not fit data.max_length 96")
    predictions = [json.loads(x) for x in (here / "p.json").read_text().splitlines()]
    assert [bool(p["sel"]) for p in predictions] == [True, False, True]


@pytest.mark.parametrize("lines, named", [
    ([], "holds no questions"),
    (["{not json", '{"question": "no table"}', "[1, 2]"], "no line can be predicted"),
])
def test_predict_refuses_a_question_file_with_nothing_to_predict(here, demo_data, nl2sql_run,
                                                                 unchanged, lines, named):
    questions = _questions(demo_data, here / "in", lines)
    previous = here / "p.json"
    previous.write_text("the previous predictions\n")
    unchanged.append(questions.parent)
    unchanged.append(previous)
    unchanged.append(nl2sql_run)
    result = invoke("predict", str(nl2sql_run), "--input", str(questions), "--output",
                    str(previous))
    assert_refused(result, 2, f"{questions}: {named}",
                   *(f"{questions}:{n}:" for n in range(1, len(lines) + 1)))
    assert sorted(p.name for p in here.iterdir()) == ["in", "p.json"]


def test_predict_refuses_questions_without_their_tables_file(here, demo_data, nl2sql_run,
                                                             unchanged):
    questions = here / "q.json"
    questions.write_text("\n".join(_test_lines(demo_data, 2)) + "\n", encoding="utf-8")
    unchanged.append(here)
    unchanged.append(nl2sql_run)
    result = invoke("predict", str(nl2sql_run), "--input", str(questions), "--output", "p.json")
    assert_refused(result, 2, f"{here / 'q.tables.json'}: tables file not found")


def test_predict_refuses_a_folder_as_its_prediction_file(here, demo_data, nl2sql_run, unchanged):
    questions = _questions(demo_data, here / "in", _test_lines(demo_data, 2))
    (here / "out").mkdir()
    unchanged.append(here)
    unchanged.append(nl2sql_run)
    result = invoke("predict", str(nl2sql_run), "--input", str(questions), "--output", "out")
    assert_refused(result, 2, "--output out: is a folder", "give a file path")


def test_an_interrupted_prediction_leaves_the_previous_file_and_no_partial(
        here, demo_data, nl2sql_run, unchanged, monkeypatch):
    from blogml.runners.nl2sql.runner import NL2SQLRunner

    class CutShort(dict):
        """Predictions whose second line is never reached: Ctrl-C while writing."""

        def get(self, line, default=None):
            if line > 1:
                raise KeyboardInterrupt
            return super().get(line, default)

    real = NL2SQLRunner._predict
    monkeypatch.setattr(NL2SQLRunner, "_predict",
                        lambda self, *args: CutShort(real(self, *args)))
    questions = _questions(demo_data, here / "in", _test_lines(demo_data, 3))
    previous = here / "p.json"
    previous.write_text("the previous predictions\n")
    unchanged.append(previous)
    unchanged.append(nl2sql_run)
    result = invoke("predict", str(nl2sql_run), "--input", str(questions), "--output",
                    str(previous))
    assert_refused(result, 130, "interrupted")
    assert sorted(p.name for p in here.iterdir()) == ["in", "p.json"]


# ---- score ---------------------------------------------------------------------------------

@pytest.fixture
def submission(here: Path, demo_data: Path) -> dict[str, Path]:
    """The val split's gold, a perfect prediction file, its database and tables."""
    val = demo_data / "val"
    gold = val / "val.json"
    lines = gold.read_text(encoding="utf-8").splitlines()
    pred = here / "pred.json"
    pred.write_text("".join(json.dumps(json.loads(x)["sql"], ensure_ascii=False) + "\n"
                            for x in lines), encoding="utf-8")
    return {"gold": gold, "pred": pred, "db": val / "val.db", "tables": val / "val.tables.json"}


def _score(files: dict[str, Path], **replace: Path):
    files = {**files, **replace}
    return invoke("score", "--gold", str(files["gold"]), "--pred", str(files["pred"]), "--db",
                  str(files["db"]), "--tables", str(files["tables"]))


def test_score_of_the_perfect_submission_is_one(submission):
    result = _score(submission)
    assert_refused(result, 0)
    assert json.loads(result.output)["score"] == 1.0


@pytest.mark.parametrize("case, named", [
    ("empty pred", "0 predictions for 40 gold questions"),
    ("short pred", "39 predictions for 40 gold questions"),
    ("long pred", "41 predictions for 40 gold questions"),
    ("binary pred", "not UTF-8 text"),
    ("bad line", ":3: prediction line is not valid JSON"),
])
def test_score_refuses_a_prediction_file_that_is_not_one_line_per_question(
        here, submission, unchanged, case, named):
    pred = submission["pred"]
    lines = pred.read_text(encoding="utf-8").splitlines()
    pred.write_bytes({
        "empty pred": b"",
        "short pred": "\n".join(lines[:-1]).encode() + b"\n",
        "long pred": "\n".join(lines + lines[:1]).encode() + b"\n",
        "binary pred": b"\xff\xfe\x00\x01 not text",
        "bad line": "\n".join(lines[:2] + ["{sel: 1"] + lines[3:]).encode() + b"\n",
    }[case])
    unchanged.append(here)
    assert_refused(_score(submission), 2, f"{pred}", named)


@pytest.mark.parametrize("case, named", [
    ("gold not JSON lines", ":1: gold question line is not valid JSON"),
    ("gold empty", "holds no gold questions"),
    ("db a text file", "not a SQLite database"),
    ("tables missing", "cannot read"),
])
def test_score_refuses_gold_db_or_tables_it_cannot_use(here, submission, unchanged, case,
                                                        named):
    replace = {
        "gold not JSON lines": ("gold", "gold.json", "question,sql\n1,2\n"),
        "gold empty": ("gold", "gold.json", ""),
        "db a text file": ("db", "val.db", "not a database\n"),
        "tables missing": ("tables", "missing.tables.json", None),
    }
    key, name, text = replace[case]
    path = here / name
    if text is not None:
        path.write_text(text)
    unchanged.append(here)
    assert_refused(_score(submission, **{key: path}), 2, path, named)


# ---- eval ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, named", [
    (["--split", "tset"], "--split tset"),
    (["--checkpoint", "nowhere/ckpt"], "nowhere/ckpt/checkpoint.h5: checkpoint not found"),
    (["--checkpoint", "corrupt.h5"], "corrupt.h5: checkpoint is corrupt"),
])
def test_eval_refuses_an_unknown_split_or_an_unusable_checkpoint(here, vqvae_run, unchanged,
                                                                  args, named):
    (here / "corrupt.h5").write_text("not a checkpoint")
    unchanged.append(here)
    unchanged.append(vqvae_run)
    assert_refused(invoke("eval", str(vqvae_run), *args), 2, named)


# ---- runs ----------------------------------------------------------------------------------

GOOD_SUMMARY = {"status": "finished", "step": 5, "total_steps": 5, "wall_seconds": 3,
                "best": {"metric": "val_psnr", "value": 20.0}, "final": {"val": {"psnr": 20.0}}}


def test_runs_shows_what_it_can_read_of_a_broken_run_and_warns_after_the_table(here,
                                                                              unchanged):
    broken_summaries = {"list": "[1, 2]", "best": '{"status": "finished", "best": 3}',
                        "step": '{"status": "finished", "step": "x"}',
                        "final": '{"status": "finished", "final": []}', "json": "{nope"}
    for name, text in {"good": json.dumps(GOOD_SUMMARY), **broken_summaries,
                       "config": json.dumps(GOOD_SUMMARY)}.items():
        (here / "runs" / name).mkdir(parents=True)
        (here / "runs" / name / "config.yaml").write_text("task: vqvae\n")
        (here / "runs" / name / "summary.json").write_text(text)
    (here / "runs" / "config" / "config.yaml").write_text("- not\n- a mapping\n")
    unchanged.append(here)
    result = invoke("runs", "runs", "--metric", "val_psnr")
    assert_refused(result, 0, *(f"runs/{name}/summary.json: " for name in broken_summaries),
                   "runs/config/config.yaml: must be a YAML mapping")
    lines = result.output.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:2 + 7]}
    assert rows["runs/good"][1:] == ["vqvae", "finished", "5/5", "val_psnr=20", "0m03s", "20"]
    assert rows["runs/list"][1:] == ["vqvae", "?", "?", "?", "?", "?"]
    assert rows["runs/best"][4] == "?" and rows["runs/step"][3] == "?"
    assert rows["runs/final"][-1] == "?" and rows["runs/config"][1] == "?"
    assert all(line.startswith("warning: ") for line in lines[2 + 7:])


# ---- bench ---------------------------------------------------------------------------------

def test_bench_reports_every_mistake_of_every_file_in_one_round(here, unchanged):
    bench = {
        "bench": "optimizers", "out_dir": "out/{config}", "seeds": [0],
        "problems": {
            "quad": {"data": {"problem": "noisy_quadratic", "dim": 4, "num_train": 64,
                              "num_val": 16, "num_test": 16},
                     "train": {"epochs": 1, "batch_size": 8}, "optimizers": ["fast", "lazzy"]},
            "bag": {"data": {"problem": "embedding_bag", "vocab_size": 100, "max_lenght": 8}},
        },
        "optimizers": {"fast": {"name": "adam", "learning_rate": 0.05},
                       "slow": {"name": "sgd", "learning_rat": 0.1}},
        "claims": {"c": {"kind": "steadier", "cell": "qaud/fast", "baseline": "quad/fast"}},
    }
    (here / "a.yaml").write_text(yaml.safe_dump(bench))
    (here / "b.yaml").write_text("bench: optimizers\nseeds: [0\n")
    taken = here / "out" / "a" / "runs" / "quad" / "fast" / "seed0"  # a sound cell's run dir
    taken.mkdir(parents=True)
    (taken / "config.yaml").write_text("task: optbench\nseed: 7\n")
    unchanged.append(here)
    result = invoke("bench", "optimizers", "a.yaml", "b.yaml")
    assert_refused(result, 2, "a.yaml: problems.bag.data.max_lenght: unknown key",
                   "a.yaml: optimizers.slow.learning_rat: unknown key",
                   "a.yaml: problems.quad.optimizers[1]: unknown optimizer 'lazzy'",
                   "a.yaml: claims.c.cell: unknown problem 'qaud'",
                   f"{Path('out/a/runs/quad/fast/seed0')}: was run with a different config",
                   "b.yaml: line 3")


def test_a_file_without_mistakes_still_loads_its_whole_grid(here):
    from blogml.comparison.grid import load_bench

    bench = {"bench": "optimizers", "seeds": [0, 1],
             "problems": {"quad": {"data": {"problem": "noisy_quadratic"}}},
             "optimizers": {"a": {"name": "adam"}, "b": {"name": "sgd"}}}
    (here / "ok.yaml").write_text(yaml.safe_dump(bench))
    assert [c.name for c in load_bench("ok.yaml").cells] == [
        "quad/a/seed0", "quad/a/seed1", "quad/b/seed0", "quad/b/seed1"]
