"""BERT: the same numbers as Hugging Face's `BertModel` from every checkpoint format.

The reference is a small random `transformers.BertModel` (torch, CPU) with every parameter
perturbed (biases and LayerNorms too, so a swapped or skipped tensor shows). It is saved as a
real HF directory (model.safetensors, sharded or not, and pytorch_model.bin as transformers 4
wrote it) and, with the original Google variable names written independently here, as a real
TF checkpoint; `load_bert` must reproduce its outputs from each. A perturbed
`BertForMaskedLM` stands for the MLM-pretrained checkpoints that have no pooler.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from blogml.errors import BlogmlError
from blogml.models.bert import BertConfig, build_bert
from blogml.models.bert_checkpoint import checkpoint_kind, load_bert

pytestmark = pytest.mark.models

# bert_config.json of Google's chinese_L-12_H-768_A-12, as released (pooler_* and
# directionality are keys BERT itself does not read).
GOOGLE_CHINESE_CONFIG = {
    "attention_probs_dropout_prob": 0.1, "directionality": "bidi", "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "max_position_embeddings": 512, "num_attention_heads": 12,
    "num_hidden_layers": 12, "pooler_fc_size": 768, "pooler_num_attention_heads": 12,
    "pooler_num_fc_layers": 3, "pooler_size_per_head": 128,
    "pooler_type": "first_token_transform", "type_vocab_size": 2, "vocab_size": 21128}
SHARD_SIZE = 40_000  # bytes: the small BERT (about 100 kB of weights) in 3 shards
SMALL = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
VOCAB = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                  + [f"t{i}" for i in range(SMALL["vocab_size"] - 5)]) + "\n"


def padded_batch() -> dict[str, np.ndarray]:
    """Three sequences of lengths 10, 7, 4 padded to 10; two segments each."""
    rng = np.random.default_rng(0)
    lengths, width = (10, 7, 4), 10
    token_ids = np.zeros((3, width), "int32")
    segment_ids = np.zeros((3, width), "int32")
    padding_mask = np.zeros((3, width), "int32")
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(5, SMALL["vocab_size"], length)
        segment_ids[row, length // 2:length] = 1
        padding_mask[row, :length] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def perturbed(model):
    """`model` (torch) with every parameter moved off its initialisation, in eval mode."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def hf_outputs(bert):
    """A transformers `BertModel`'s outputs on `padded_batch`."""
    import torch

    batch = padded_batch()
    with torch.no_grad():
        return bert(input_ids=torch.tensor(batch["token_ids"], dtype=torch.long),
                    token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
                    attention_mask=torch.tensor(batch["padding_mask"], dtype=torch.long))


@pytest.fixture(scope="module")
def hf_bert():
    """A perturbed random transformers `BertModel` (with its pooler)."""
    import torch
    import transformers

    torch.manual_seed(0)
    return perturbed(transformers.BertModel(transformers.BertConfig(**SMALL)))


@pytest.fixture(scope="module")
def reference(hf_bert, tmp_path_factory):
    """(HF state dict as numpy, HF outputs on `padded_batch`, saved HF directory)."""
    folder = tmp_path_factory.mktemp("hf")
    hf_bert.save_pretrained(folder, safe_serialization=True)
    (folder / "vocab.txt").write_text(VOCAB)
    out = hf_outputs(hf_bert)
    state = {name: tensor.numpy().copy() for name, tensor in hf_bert.state_dict().items()}
    return state, (out.last_hidden_state.numpy(), out.pooler_output.numpy()), folder


@pytest.fixture(scope="module")
def mlm():
    """(a perturbed transformers `BertForMaskedLM`, which has no pooler, its encoder's
    sequence output on `padded_batch`)."""
    import torch
    import transformers

    torch.manual_seed(1)
    model = perturbed(transformers.BertForMaskedLM(transformers.BertConfig(**SMALL)))
    assert model.bert.pooler is None
    return model, hf_outputs(model.bert).last_hidden_state.numpy()


@pytest.fixture
def blogml_log(caplog, monkeypatch):
    """caplog, hearing the `blogml` logger directly (once), even where a run left that
    logger not propagating to the root one caplog listens to."""
    logger = logging.getLogger("blogml")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def assert_matches(model: keras.Model, expected) -> None:
    """`expected` is (sequence output, pooled output), the pooled one None for no pooler."""
    batch = padded_batch()
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(batch, training=False).items()}
    sequence, pooled = expected
    real = batch["padding_mask"].astype(bool)  # padded positions hold anything, on both sides
    assert out["sequence_output"].shape == sequence.shape
    np.testing.assert_allclose(out["sequence_output"][real], sequence[real], atol=1e-5)
    if pooled is not None:
        np.testing.assert_allclose(out["pooled_output"], pooled, atol=1e-5)


def google_name(hf: str) -> str:
    """HF → Google name, written out here independently of blogml's own mapping."""
    name = hf.replace("encoder.layer.", "encoder/layer_").replace(".", "/")
    name = name.replace("LayerNorm/weight", "LayerNorm/gamma").replace("LayerNorm/bias",
                                                                       "LayerNorm/beta")
    if "_embeddings/weight" in name:
        name = name.removesuffix("/weight")
    return "bert/" + name.replace("/weight", "/kernel")


def google_tensors(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    tensors = {}
    for hf, value in state.items():
        name = google_name(hf)
        tensors[name] = value.T.copy() if name.endswith("/kernel") else value
    return tensors


def write_tf_checkpoint(folder: Path, tensors: dict[str, np.ndarray],
                        config: dict | None = None) -> Path:
    """A Google BERT directory: bert_config.json, vocab.txt, bert_model.ckpt.{index,data}."""
    import tensorflow as tf  # an install requirement: present under every backend
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(folder / "bert_model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[name]) for name in names])
    values = {**SMALL, "hidden_act": "gelu", "directionality": "bidi",
              "pooler_type": "first_token_transform", **(config or {})}
    (folder / "bert_config.json").write_text(json.dumps(values))
    (folder / "vocab.txt").write_text(VOCAB)
    return folder


def write_safetensors(folder: Path, tensors: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({**SMALL, "model_type": "bert"}))
    (folder / "vocab.txt").write_text(VOCAB)
    return folder


def save_torch_bin(model, folder: Path, max_shard_size: int | str = "50GB",
                   legacy: bool = False) -> Path:
    """What transformers 4's `save_pretrained(safe_serialization=False)` writes (transformers 5
    writes safetensors only): config.json and the whole state dict, tied weights included,
    `torch.save`d as pytorch_model.bin, or in shards listed by pytorch_model.bin.index.json.
    `legacy`: the pre-zip pickle format of torch < 1.6, as old hub checkpoints have it."""
    import torch
    from huggingface_hub import split_torch_state_dict_into_shards

    model.config.save_pretrained(folder)
    state = model.state_dict()
    split = split_torch_state_dict_into_shards(state, filename_pattern="pytorch_model{suffix}.bin",
                                               max_shard_size=max_shard_size)
    for file, names in split.filename_to_tensors.items():
        torch.save({name: state[name].contiguous() for name in names}, folder / file,
                   _use_new_zipfile_serialization=not legacy)
    if split.is_sharded:
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps(
            {"metadata": split.metadata, "weight_map": split.tensor_to_filename}))
    return folder


def save_sharded(bert, folder: Path, kind: str) -> Path:
    """`bert` saved in shards of at most SHARD_SIZE bytes, as safetensors or torch pickles."""
    if kind == "safetensors":
        bert.save_pretrained(folder, max_shard_size=SHARD_SIZE)
    else:
        save_torch_bin(bert, folder, max_shard_size=SHARD_SIZE)
    return folder


@pytest.mark.backend_neutral
def test_config_reads_the_released_google_config_and_ignores_unknown_keys(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(GOOGLE_CHINESE_CONFIG, indent=2))
    config = BertConfig.from_json(path)
    assert config == BertConfig(vocab_size=21128)  # chinese_L-12_H-768_A-12 is BERT-Base
    with pytest.raises(BlogmlError, match="vocab_size"):
        BertConfig.from_dict({"hidden_size": 8})
    with pytest.raises(BlogmlError, match="hidden_act"):
        BertConfig.from_dict({"vocab_size": 8, "hidden_act": "swishy"})


@pytest.mark.backend_neutral
def test_a_random_model_has_berts_shapes_and_initialisation():
    keras.utils.set_random_seed(0)
    model = build_bert(BertConfig(**SMALL))
    out = model(padded_batch())
    assert tuple(out["sequence_output"].shape) == (3, 10, 32)
    assert tuple(out["pooled_output"].shape) == (3, 32)
    # 2 layers × (4 attention dense + 2 ffn dense) × 2 + 2 LayerNorms × 2 + embeddings + pooler
    assert len(model.weights) == 5 + 2 * 16 + 2
    table = keras.ops.convert_to_numpy(model.get_layer("embeddings").word_embeddings.embeddings)
    assert np.abs(table).max() <= 0.04 + 1e-6  # truncated at 2 stddev
    assert 0.015 < table.std() < 0.02
    kernels = [keras.ops.convert_to_numpy(v) for v in model.weights if v.shape == (32, 32)]
    positions = keras.ops.convert_to_numpy(
        model.get_layer("embeddings").position_embeddings.embeddings)
    assert not np.allclose(table[:64], positions)  # every weight drawn anew
    assert not any(np.allclose(a, b) for i, a in enumerate(kernels) for b in kernels[i + 1:])


@pytest.mark.backend_neutral
def test_sequences_longer_than_the_position_table_are_an_error():
    model = build_bert(BertConfig(**SMALL))
    ones = np.ones((1, SMALL["max_position_embeddings"] + 1), "int32")
    with pytest.raises(BlogmlError, match="max_position_embeddings"):
        model({"token_ids": ones, "segment_ids": ones * 0, "padding_mask": ones})


@pytest.mark.backend_neutral
def test_hugging_face_safetensors_give_transformers_outputs(reference):
    _, expected, folder = reference
    assert checkpoint_kind(folder) == "huggingface"
    assert_matches(load_bert(folder), expected)


@pytest.mark.backend_neutral
def test_prefixed_legacy_names_load_and_heads_are_ignored(reference, tmp_path):
    """BertForPreTraining-style files: `bert.` prefix, LayerNorm gamma/beta, an MLM head."""
    state, expected, _ = reference
    tensors = {"bert." + name.replace("LayerNorm.weight", "LayerNorm.gamma")
               .replace("LayerNorm.bias", "LayerNorm.beta"): value
               for name, value in state.items()}
    tensors["cls.predictions.bias"] = np.zeros(SMALL["vocab_size"], "float32")
    assert_matches(load_bert(write_safetensors(tmp_path / "hf", tensors)), expected)


def test_google_tf_checkpoint_gives_transformers_outputs(reference, tmp_path):
    state, expected, _ = reference
    tensors = google_tensors(state)
    assert "bert/encoder/layer_1/attention/self/query/kernel" in tensors
    tensors["cls/predictions/output_bias"] = np.zeros(SMALL["vocab_size"], "float32")
    tensors["bert/pooler/dense/kernel/adam_m"] = np.ones((32, 32), "float32")
    tensors["global_step"] = np.array(1000, "int64")
    folder = write_tf_checkpoint(tmp_path / "google", tensors)
    assert checkpoint_kind(folder) == "tensorflow"
    assert_matches(load_bert(folder), expected)


def test_a_tf_checkpoint_that_does_not_fit_names_the_tensor_and_shapes(reference, tmp_path):
    tensors = google_tensors(reference[0])
    del tensors["bert/encoder/layer_1/output/dense/bias"]
    tensors["bert/encoder/layer_0/attention/self/query/kernel"] = np.zeros((32, 16), "float32")
    folder = write_tf_checkpoint(tmp_path / "google", tensors)
    with pytest.raises(BlogmlError) as error:
        load_bert(folder)
    message = str(error.value)
    assert "bert_model.ckpt" in message
    assert "missing tensor bert/encoder/layer_1/output/dense/bias (expected shape [32])" \
        in message
    assert ("tensor bert/encoder/layer_0/attention/self/query/kernel has shape [32, 16], "
            "expected [32, 32]") in message


@pytest.mark.backend_neutral
def test_safetensors_that_do_not_fit_name_the_tensor_and_shapes(reference, tmp_path):
    state = dict(reference[0])
    state["encoder.layer.0.intermediate.dense.weight"] = np.zeros((32, 64), "float32")
    del state["pooler.dense.bias"]
    with pytest.raises(BlogmlError) as error:
        load_bert(write_safetensors(tmp_path / "hf", state))
    message = str(error.value)
    assert "model.safetensors" in message
    # torch Linear weights are [out, in]: the message speaks the file's layout
    assert ("tensor encoder.layer.0.intermediate.dense.weight has shape [32, 64], expected "
            "[64, 32]") in message
    assert "missing tensor pooler.dense.bias (expected shape [32])" in message


@pytest.mark.backend_neutral
def test_a_config_with_more_layers_than_the_checkpoint_is_reported(reference, tmp_path):
    folder = tmp_path / "hf"
    shutil.copytree(reference[2], folder)
    (folder / "config.json").write_text(json.dumps({**SMALL, "num_hidden_layers": 3}))
    with pytest.raises(BlogmlError, match=r"missing tensor encoder\.layer\.2\.attention"):
        load_bert(folder)


@pytest.mark.backend_neutral
def test_a_directory_of_neither_kind_names_what_it_looked_for(tmp_path):
    (tmp_path / "vocab.txt").write_text(VOCAB)
    (tmp_path / "tf_model.h5").write_bytes(b"")  # HF's TF2 weights, which are not read
    with pytest.raises(BlogmlError) as error:
        load_bert(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    for name in ("bert_model.ckpt.index", "model.safetensors", "model.safetensors.index.json",
                 "pytorch_model.bin", "pytorch_model.bin.index.json"):
        assert name in message
    with pytest.raises(BlogmlError, match="not a directory"):
        checkpoint_kind(tmp_path / "vocab.txt")
    (tmp_path / "config.json").write_text(json.dumps(SMALL))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(BlogmlError, match="pytorch_model.bin: cannot read"):
        load_bert(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BlogmlError, match="model.safetensors: cannot read"):
        load_bert(tmp_path)


@pytest.mark.backend_neutral
def test_dropout_override_is_applied_and_inference_is_deterministic(reference):
    _, expected, folder = reference
    batch = padded_batch()

    def run(model, training):
        return keras.ops.convert_to_numpy(model(batch, training=training)["pooled_output"])

    default = load_bert(folder)
    assert default.get_layer("layer_1").attention_dropout.rate == pytest.approx(0.1)
    np.testing.assert_array_equal(run(default, False), run(default, False))
    assert not np.allclose(run(default, True), run(default, False), atol=1e-4)

    off = load_bert(folder, dropout=0.0)
    for layer in ("layer_0", "layer_1"):
        block = off.get_layer(layer)
        assert block.attention_dropout.rate == block.output_dropout.rate == 0.0
    assert off.get_layer("embeddings").dropout.rate == 0.0
    np.testing.assert_allclose(run(off, True), expected[1], atol=1e-5)


@pytest.mark.backend_neutral
def test_a_masked_lm_checkpoint_loads_with_the_pooler_as_built_and_says_so(mlm, tmp_path,
                                                                            blogml_log):
    """Current transformers save a `BertForMaskedLM` with no pooler tensors at all."""
    from safetensors import safe_open

    model, sequence = mlm
    folder = tmp_path / "mlm"
    model.save_pretrained(folder)
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
        assert not [name for name in handle.keys() if "pooler" in name]
    keras.utils.set_random_seed(0)
    loaded = load_bert(folder)
    assert_matches(loaded, (sequence, None))
    keras.utils.set_random_seed(0)
    built = build_bert(BertConfig.from_json(folder / "config.json"))
    for kept, fresh in zip(loaded.get_layer("pooler_dense").weights,
                           built.get_layer("pooler_dense").weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(kept),
                                      keras.ops.convert_to_numpy(fresh))
    [record] = [r for r in blogml_log.records if "pooler" in r.getMessage()]
    message = record.getMessage()
    assert str(folder / "model.safetensors") in message
    assert "initialised as built" in message and "NL2SQL does not read the pooler" in message


@pytest.mark.backend_neutral
def test_without_a_pooler_any_other_missing_tensor_is_still_an_error(mlm, tmp_path):
    state = {name: tensor.numpy() for name, tensor in mlm[0].state_dict().items()}
    del state["bert.encoder.layer.1.output.LayerNorm.weight"]
    with pytest.raises(BlogmlError) as error:
        load_bert(write_safetensors(tmp_path / "hf", state))
    message = str(error.value)
    assert "missing tensor bert.encoder.layer.1.output.LayerNorm.weight (expected shape [32])" \
        in message
    assert "pooler.dense" not in message  # the absent pooler itself is no problem


@pytest.mark.backend_neutral
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy_pickle"])
def test_pytorch_model_bin_gives_transformers_outputs(mlm, tmp_path, legacy):
    model, sequence = mlm
    folder = save_torch_bin(model, tmp_path / "bin", legacy=legacy)
    assert sorted(path.name for path in folder.iterdir()) == ["config.json",
                                                              "pytorch_model.bin"]
    assert_matches(load_bert(folder), (sequence, None))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("kind", ["safetensors", "bin"])
def test_sharded_checkpoints_give_transformers_outputs(hf_bert, reference, tmp_path, kind):
    folder = save_sharded(hf_bert, tmp_path / kind, kind)
    assert not (folder / "model.safetensors").exists()
    assert not (folder / "pytorch_model.bin").exists()
    [index] = folder.glob("*.index.json")
    assert len(set(json.loads(index.read_text())["weight_map"].values())) >= 2
    assert_matches(load_bert(folder), reference[1])


@pytest.mark.backend_neutral
@pytest.mark.parametrize("kind", ["safetensors", "bin"])
def test_a_missing_shard_is_named(hf_bert, tmp_path, kind):
    folder = save_sharded(hf_bert, tmp_path / kind, kind)
    first, second, *_ = sorted(path for path in folder.iterdir() if "-of-" in path.name)
    second.unlink()
    with pytest.raises(BlogmlError) as error:
        load_bert(folder)
    message = str(error.value)
    assert f"missing from {folder}: {second.name}" in message
    assert ".index.json" in message and first.name not in message


@pytest.mark.backend_neutral
def test_pytorch_model_bin_without_torch_says_how_to_read_it(mlm, tmp_path, monkeypatch):
    folder = save_torch_bin(mlm[0], tmp_path / "bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(BlogmlError) as error:
        load_bert(folder)
    message = str(error.value)
    assert str(folder / "pytorch_model.bin") in message
    assert "pip install torch" in message and "model.safetensors" in message


@pytest.mark.backend_neutral
def test_safetensors_are_read_rather_than_pytorch_model_bin(mlm, tmp_path):
    model, sequence = mlm
    folder = tmp_path / "both"
    model.save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"not a pickle")  # read, it would fail
    assert_matches(load_bert(folder), (sequence, None))
