"""BERT's WordPiece tokenizer with character offsets, built from a `vocab.txt`.

Offsets are what NL2SQL needs: condition values are labelled and decoded as token spans,
and a predicted span must be cut from the *original* question text (not from detokenised
pieces, which lose case, spaces and unknown characters). The `tokenizers` library keeps
offsets through normalisation, so even a character the vocabulary lacks becomes one `[UNK]`
whose offsets still point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blogml.errors import BlogmlError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Google's Chinese BERT vocabulary (also bert-base-chinese's), shipped with blogml so that a
# randomly initialised BERT tokenises real Chinese questions without any file from outside
# the package; Apache-2.0, notice in bert_chinese_vocab.LICENSE beside it.
CHINESE_VOCAB = Path(__file__).resolve().parent.parent / "assets" / "bert_chinese_vocab.txt"


@dataclass(frozen=True)
class Encoding:
    """Token ids of a text and, per token, the `(start, end)` of its characters in it."""

    ids: list[int]
    offsets: list[tuple[int, int]]


def _read_vocab(path: Path) -> dict[str, int]:
    """Token -> id (its line number, from 0). Lines end at "\n" only: Chinese BERT's
    vocabulary has tokens such as U+2028 that `str.splitlines` would take for line ends,
    shifting every later id by one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BlogmlError(f"{path}: cannot read the BERT vocabulary ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise BlogmlError(f"{path}: not a BERT vocab.txt (not UTF-8 text: byte "
                          f"{error.start + 1})") from None
    lines = text.removesuffix("\n").split("\n")
    vocab = {token.removesuffix("\r"): index for index, token in enumerate(lines) if token}
    missing = [token for token in SPECIAL_TOKENS[:4] if token not in vocab]
    if missing:
        raise BlogmlError(f"{path}: not a BERT vocab.txt (no {', '.join(missing)})")
    return vocab


def _is_lowercase(vocab: dict[str, int]) -> bool:
    """Uncased vocabularies (Chinese BERT's included) hold no upper-case letters outside
    special tokens; text must then be lower-cased to find its pieces."""
    return not any(any(c.isupper() for c in token) for token in vocab
                   if not (token.startswith("[") and token.endswith("]"))
                   and not (token.startswith("<") and token.endswith(">")))


class WordPieceTokenizer:
    """BERT tokenisation: clean text, split CJK characters singly and at punctuation,
    lower-case when the vocabulary is uncased, then greedy longest-match WordPiece."""

    def __init__(self, vocab_path: str | Path, max_chars_per_word: int = 100) -> None:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        vocab = _read_vocab(Path(vocab_path))
        self.lowercase = _is_lowercase(vocab)
        tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]",
                                               max_input_chars_per_word=max_chars_per_word))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None,
            lowercase=self.lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer
        self.vocab_size = max(vocab.values()) + 1
        self.pad_id, self.unk_id = vocab["[PAD]"], vocab["[UNK]"]
        self.cls_id, self.sep_id = vocab["[CLS]"], vocab["[SEP]"]
        self._tokens = {index: token for token, index in vocab.items()}

    def encode(self, text: str) -> Encoding:
        """Pieces of `text`, no special tokens added."""
        encoded = self._tokenizer.encode(text, add_special_tokens=False)
        return Encoding(list(encoded.ids), [tuple(o) for o in encoded.offsets])

    def encode_batch(self, texts: list[str]) -> list[Encoding]:
        """`encode` of each text, in parallel inside the library."""
        return [Encoding(list(e.ids), [tuple(o) for o in e.offsets])
                for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def token(self, index: int) -> str:
        return self._tokens[index]
