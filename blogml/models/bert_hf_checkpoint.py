"""Reading Hugging Face BERT checkpoints: `model.safetensors`, `pytorch_model.bin`, sharded.

Kept apart from the layers in `bert`, as keras-hub keeps its converters, and next to
`bert_tf_checkpoint`: this module knows the Hugging Face side (file names, tensor names,
safetensors and torch pickles), `bert_checkpoint.load_bert` only asks it for shapes and
tensors.
safetensors and torch are imported only when a file of theirs is read, so the models stay
importable without either, and a safetensors checkpoint loads without torch.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from blogml.errors import BlogmlError

HF_CONFIG = "config.json"
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
TORCH, TORCH_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
# In order of preference: safetensors need no torch, run no pickle and read one tensor at a
# time; hub repositories often hold both a safetensors and a .bin copy of the same weights.
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, TORCH, TORCH_INDEX)

Reader = tuple[dict[str, tuple], Callable[[str], np.ndarray]]


def find_hf_weights(folder: Path) -> Path | None:
    """The weights file of a Hugging Face folder (the first of `WEIGHT_FILES` there), if any."""
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def read_hf_checkpoint(path: Path) -> Reader:
    """(shape of every tensor by name, a reader of one tensor as numpy) of a weights file
    or of a shard index (`*.index.json`), as `bert_tf_checkpoint.read_tf_checkpoint` gives."""
    return _read_sharded(path) if path.name.endswith(".index.json") else _read_file(path)


def _read_file(path: Path) -> Reader:
    return _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)


def _read_safetensors(path: Path) -> Reader:
    """Only the header is read here; each tensor is read when asked for, so MLM heads and
    unused shards' contents cost nothing."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (OSError, SafetensorError) as error:
        raise BlogmlError(f"{path}: cannot read the safetensors file ({error})") from None

    def read(name: str) -> np.ndarray:
        with safe_open(str(path), framework="numpy") as handle:
            return handle.get_tensor(name)

    return shapes, read


def _read_torch(path: Path) -> Reader:
    """A torch pickle is read whole (it cannot be read a tensor at a time), with torch's
    weights-only unpickler, so that loading a downloaded file runs none of its code."""
    try:
        import torch
    except ImportError:
        raise BlogmlError(f"{path}: reading {TORCH} needs PyTorch (pip install torch), or "
                          f"convert the checkpoint to {SAFETENSORS} where torch is installed "
                          "(transformers: from_pretrained, then save_pretrained)") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise BlogmlError(f"{path}: cannot read the PyTorch weights: not a pickle of plain "
                          "tensors (torch.load with weights_only=True, which runs no code "
                          "from the file, refused it)") from None
    except (OSError, RuntimeError, EOFError) as error:
        raise BlogmlError(f"{path}: cannot read the PyTorch weights "
                          f"({error or 'the file ends early'})") from None
    if not isinstance(state, Mapping):
        raise BlogmlError(f"{path}: expected a state dict (tensors by name), got "
                          f"{type(state).__name__}")
    tensors = {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}

    def read(name: str) -> np.ndarray:
        # float() first: numpy has no bfloat16, and weights are assigned as floats anyway
        return tensors[name].float().numpy()

    return {name: tuple(value.shape) for name, value in tensors.items()}, read


def _read_sharded(index: Path) -> Reader:
    """Every shard the index names must be there (a missing one means an incomplete
    download, and is named before anything is read); tensors are read from their shard."""
    weight_map = _weight_map(index)
    shards = sorted(set(weight_map.values()))
    missing = [name for name in shards if not (index.parent / name).is_file()]
    if missing:
        raise BlogmlError(f"{index}: shard file(s) missing from {index.parent}: "
                          + ", ".join(missing))
    readers = {name: _read_file(index.parent / name) for name in shards}
    shapes = {}
    for tensor, shard in weight_map.items():
        if tensor not in readers[shard][0]:
            raise BlogmlError(f"{index.parent / shard}: has no tensor {tensor}, which "
                              f"{index.name} places there")
        shapes[tensor] = readers[shard][0][tensor]

    def read(name: str) -> np.ndarray:
        return readers[weight_map[name]][1](name)

    return shapes, read


def _weight_map(index: Path) -> dict[str, str]:
    """The index's `weight_map` (tensor name → shard file name), checked."""
    try:
        values = json.loads(index.read_text(encoding="utf-8"))
    except OSError as error:
        raise BlogmlError(f"{index}: cannot read the shard index ({error.strerror})") from None
    except ValueError as error:
        raise BlogmlError(f"{index}: not valid JSON ({error})") from None
    weight_map = values.get("weight_map") if isinstance(values, dict) else None
    if not (isinstance(weight_map, dict) and weight_map
            and all(isinstance(v, str) for v in weight_map.values())):
        raise BlogmlError(f"{index}: expected a JSON object with a \"weight_map\" of tensor "
                          "names to shard file names")
    return weight_map


def hf_name(google_name: str, prefix: str = "", legacy_norm: bool = False) -> str:
    """The Hugging Face `modeling_bert` name of a Google variable name, e.g.
    `bert/encoder/layer_0/output/dense/kernel` → `encoder.layer.0.output.dense.weight`."""
    parts = google_name.removeprefix("bert/").split("/")
    if parts[0] == "encoder":
        parts[1:2] = ["layer", parts[1].removeprefix("layer_")]
    last = {"kernel": "weight", "gamma": "gamma" if legacy_norm else "weight",
            "beta": "beta" if legacy_norm else "bias"}
    if parts[-1] in last:
        parts[-1] = last[parts[-1]]
    elif parts[0] == "embeddings" and parts[-1] != "bias":
        parts.append("weight")  # an embedding table
    return prefix + ".".join(parts)


def hf_names(google_names: Iterable[str], shapes: Mapping) -> dict[str, str]:
    """Google name → name in the checkpoint: `bert.`-prefixed in BertForX checkpoints,
    LayerNorm `gamma`/`beta` in files written by old versions of transformers."""
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in shapes else ""
    legacy = f"{prefix}embeddings.LayerNorm.gamma" in shapes
    return {google: hf_name(google, prefix, legacy) for google in google_names}
