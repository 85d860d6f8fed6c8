"""WordPiece with offsets on the real Chinese BERT vocabulary (shipped with blogml)."""

from __future__ import annotations

import unicodedata

import pytest

from blogml.data.wordpiece import CHINESE_VOCAB, WordPieceTokenizer
from blogml.errors import BlogmlError

# Real-style questions: digits, Latin letters, full-width punctuation and digits, characters
# the vocabulary lacks (𠮷, the curly quotes ‘ ’), spaces, a tab and a decimal number.
QUESTIONS = [
    "二零一九年第1周，成交面积超过15万平的城市有哪些？",
    "请问iPhone XR在ＪＤ卖多少钱？",
    "𠮷野家的NBA2K评分是多少",
    "  ‘世茂’茂悦府 ２３个，价格≥3.5亿\t的楼盘",
    "PE大于10.5或者EPS小于0.3的股票（A股）有几只？",
]


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(CHINESE_VOCAB)


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFC", text.lower())


@pytest.mark.parametrize("question", QUESTIONS)
def test_offsets_map_every_token_to_its_exact_substring(tokenizer, question):
    encoding = tokenizer.encode(question)
    covered = set()
    previous_end = 0
    for index, (start, end) in zip(encoding.ids, encoding.offsets):
        assert previous_end <= start < end <= len(question)
        piece = question[start:end]
        token = tokenizer.token(index)
        if token == "[UNK]":
            assert piece and piece.strip() == piece  # one unknown word, no white space
        else:
            assert token.removeprefix("##") == _normalised(piece)
        covered.update(range(start, end))
        previous_end = end
    # Nothing but white space is left out.
    assert all(question[i].isspace() for i in range(len(question)) if i not in covered)


def test_chinese_characters_are_split_singly_and_unknowns_keep_their_offsets(tokenizer):
    question = "𠮷野家"
    encoding = tokenizer.encode(question)
    assert [tokenizer.token(i) for i in encoding.ids] == ["[UNK]", "野", "家"]
    assert encoding.offsets == [(0, 1), (1, 2), (2, 3)]
    assert encoding.ids[0] == tokenizer.unk_id


def test_lowercases_because_the_chinese_vocab_is_uncased(tokenizer):
    assert tokenizer.lowercase
    assert [tokenizer.token(i) for i in tokenizer.encode("iPhone").ids] == ["iphone"]
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id) == \
        (0, 100, 101, 102)


def test_same_pieces_as_the_transformers_reference(tokenizer):
    import transformers  # the test extra's reference; a missing one fails, it does not skip
    reference = transformers.BertTokenizer(str(CHINESE_VOCAB), do_lower_case=True)
    for question in QUESTIONS:
        ours = [tokenizer.token(i) for i in tokenizer.encode(question).ids]
        assert ours == reference.tokenize(question), question


def test_ids_are_line_numbers_even_after_tokens_that_are_unicode_line_separators(tokenizer):
    lines = CHINESE_VOCAB.read_text(encoding="utf-8").split("\n")
    assert lines[343] == "\u2028"  # str.splitlines would end a line here
    assert tokenizer.vocab_size == 21128
    assert tokenizer.token(21127) == lines[21127] and tokenizer.token(8024) == "，"
    assert tokenizer.encode("，").ids == [8024]


def test_batch_encoding_equals_one_by_one(tokenizer):
    batch = tokenizer.encode_batch(QUESTIONS)
    assert batch == [tokenizer.encode(q) for q in QUESTIONS]


def test_a_file_that_is_not_a_vocab_is_a_clear_error(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(BlogmlError, match=r"not a BERT vocab.txt \(no \[PAD\], \[UNK\]"):
        WordPieceTokenizer(path)
    with pytest.raises(BlogmlError, match="cannot read the BERT vocabulary"):
        WordPieceTokenizer(tmp_path / "missing.txt")
