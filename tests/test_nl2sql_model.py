"""The seed's NL2SQL model pieces: input layout and labels, the masked loss, decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blogml.data.nl2sql import Question, Table
from blogml.models.nl2sql import NOT_A_VALUE, NOT_SELECTED
from blogml.runners.nl2sql.decode import decode
from blogml.runners.nl2sql.features import encode

pytestmark = pytest.mark.models

VOCAB = Path(__file__).resolve().parents[2] / "shared" / "bert-vocab" / "vocab.txt"

TABLE = Table(id="t1", name="Table_t1", title="楼盘成交",
              header=["楼盘", "城市", "成交面积(万平)", "均价(元)"],
              types=["text", "text", "real", "real"],
              rows=[["世茂茂悦府", "北京", 15, 52000], ["万科城", "上海", 8, 61000]])
QUESTION = "城市是北京且成交面积超过十五万平的楼盘有哪些"
SQL = {"sel": [0], "agg": [0], "cond_conn_op": 1, "conds": [[1, 2, "北京"], [2, 0, "15"]]}


@pytest.fixture(scope="module")
def tokenizer():
    from blogml.data.wordpiece import WordPieceTokenizer

    if not VOCAB.is_file():
        pytest.skip(f"{VOCAB} not found")
    return WordPieceTokenizer(VOCAB)


def _tokens(tokenizer, features, row=0):
    ids = features.inputs["token_ids"][row]
    return [tokenizer.token(int(i)) for i in ids[:int(features.inputs["padding_mask"][row].sum())]]


def test_layout_is_cls_question_sep_then_cls_header_sep_per_column(tokenizer):
    features = encode([Question(1, "t1", QUESTION, SQL)], {"t1": TABLE}, tokenizer, 64,
                      labels=True)
    tokens = _tokens(tokenizer, features)
    question = list(QUESTION)
    assert tokens[:len(question) + 2] == ["[CLS]", *question, "[SEP]"]
    assert "".join(tokens[len(question) + 2:]) == (
        "[CLS]楼盘[SEP][CLS]城市[SEP][CLS]成交面积(万平)[SEP][CLS]均价(元)[SEP]")
    positions = features.inputs["header_positions"][0]
    assert [tokens[p] for p in positions] == ["[CLS]"] * 4
    assert [tokens[p + 1] for p in positions] == ["楼", "城", "成", "均"]
    segments = features.inputs["segment_ids"][0]
    assert segments[:len(question) + 2].sum() == 0 and segments[len(question) + 2:len(tokens)].all()
    assert features.inputs["question_mask"][0].sum() == len(question)


def test_labels_mark_each_value_span_with_its_operator_and_column(tokenizer):
    features = encode([Question(1, "t1", QUESTION, SQL)], {"t1": TABLE}, tokenizer, 64,
                      labels=True)
    labels = features.labels
    assert labels["conn"][0] == 1
    assert labels["agg"][0].tolist() == [0, NOT_SELECTED, NOT_SELECTED, NOT_SELECTED]
    op, link = labels["op"][0], labels["link"][0]
    beijing = [1 + QUESTION.index("北京") + i for i in range(2)]
    shiwuwan = [1 + QUESTION.index("十五万") + i for i in range(3)]  # 平 is the unit
    assert np.flatnonzero(op != NOT_A_VALUE).tolist() == beijing + shiwuwan
    assert op[beijing].tolist() == [2, 2] and link[beijing].tolist() == [1, 1]
    assert op[shiwuwan].tolist() == [0, 0, 0] and link[shiwuwan].tolist() == [2, 2, 2]


def test_an_unalignable_training_question_is_skipped_and_reported(tokenizer):
    bad = Question(7, "t1", "均价最高的楼盘", {**SQL, "conds": [[1, 2, "广州"]]})
    features = encode([Question(1, "t1", QUESTION, SQL), bad], {"t1": TABLE}, tokenizer, 64,
                      labels=True)
    assert [q.line for q in features.questions] == [1]
    assert features.skipped == [(7, "value '广州' not found in the question")]


def test_long_inputs_shorten_headers_then_the_question_and_keep_every_column(tokenizer):
    table = Table("t2", "Table_t2", "", ["很长很长很长的列名字" + str(i) for i in range(6)],
                  ["text"] * 6, [])
    features = encode([Question(1, "t2", QUESTION * 2, None)], {"t2": table}, tokenizer, 40,
                      labels=False)
    tokens = _tokens(tokenizer, features)
    assert len(tokens) <= 40 and tokens.count("[CLS]") == 7 and tokens.count("[SEP]") == 7
    assert features.inputs["header_mask"][0].tolist() == [1] * 6
    assert features.inputs["question_mask"][0].sum() >= 1
    assert len(features.token_spans[0]) == features.inputs["question_mask"][0].sum()


def _one_hot_logits(classes, size):
    logits = np.full((len(classes), size), -5.0, np.float32)
    logits[np.arange(len(classes)), classes] = 5.0
    return logits


def _decode_with(tokenizer, ops, columns, agg):
    spans = tokenizer.encode(QUESTION).offsets
    length = len(spans) + 2
    op = np.full(length, NOT_A_VALUE)
    link = np.zeros(length, int)
    for (start, end), (o, c) in zip(ops, columns):
        op[start:end], link[start:end] = o, c
    outputs = {"conn": _one_hot_logits([1], 3), "agg": _one_hot_logits(agg, 7)[None],
               "op": _one_hot_logits(op, 5)[None], "link": _one_hot_logits(link, 4)[None]}
    return decode(outputs, 0, QUESTION, spans, TABLE)


def test_decoding_cuts_values_from_the_question_and_normalises_numbers(tokenizer):
    beijing = 1 + QUESTION.index("北京")
    shiwuwan = 1 + QUESTION.index("十五万")
    sql = _decode_with(tokenizer, [(beijing, beijing + 2), (shiwuwan, shiwuwan + 4)],
                       [(2, 1), (0, 2)], [0, 6, 6, 2])
    assert sql == {"sel": [0, 3], "agg": [0, 2], "cond_conn_op": 1,
                   "conds": [[1, 2, "北京"], [2, 0, "15"]]}


def test_decoding_splits_runs_at_a_change_of_column_and_selects_at_least_one(tokenizer):
    beijing = 1 + QUESTION.index("北京")
    agg = np.full(4, 6)
    sql = _decode_with(tokenizer, [(beijing, beijing + 1), (beijing + 1, beijing + 2)],
                       [(2, 1), (2, 0)], agg)
    assert sql["conds"] == [[1, 2, "北"], [0, 2, "京"]]
    assert sql["sel"] == [0] and sql["agg"] == [0]  # the likeliest of the 6 aggregations


def _cross_entropy(labels, logits):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]


@pytest.mark.backend_neutral
def test_loss_is_the_sum_of_the_four_masked_cross_entropies():
    import keras

    from blogml.models.bert import BertConfig, build_bert
    from blogml.models.nl2sql import NL2SQLModel

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    batch, length = 3, 12
    model = NL2SQLModel(build_bert(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                              num_attention_heads=2, intermediate_size=32)),
                        link_units=8)
    x = {"token_ids": rng.integers(0, 50, (batch, length)).astype("int32"),
         "segment_ids": np.zeros((batch, length), "int32"),
         "padding_mask": np.ones((batch, length), "int32"),
         "header_positions": np.array([[6, 8, 10, 0], [5, 7, 9, 11], [6, 9, 0, 0]], "int32"),
         "header_mask": np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], "int32"),
         "question_mask": np.zeros((batch, length), "int32")}
    x["question_mask"][:, 1:5] = 1
    y = {"conn": np.array([0, 1, 2], "int32"),
         "agg": np.array([[6, 0, 6, 6], [1, 6, 6, 4], [5, 6, 6, 6]], "int32"),
         "op": np.full((batch, length), NOT_A_VALUE, "int32"),
         "link": np.zeros((batch, length), "int32")}
    y["op"][0, 2:4], y["link"][0, 2:4] = 2, 1
    y["op"][1, 1], y["link"][1, 1] = 0, 3
    y["op"][2, 7] = 1  # outside the question: must not count
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}
    loss = float(model.compute_loss(x, y, out))

    def masked(labels, logits, mask):
        return (_cross_entropy(labels, logits) * mask).sum() / mask.sum()

    value_tokens = x["question_mask"] * (y["op"] != NOT_A_VALUE)
    expected = (masked(y["conn"], out["conn"], np.ones(batch))
                + masked(y["agg"], out["agg"], x["header_mask"])
                + masked(y["op"], out["op"], x["question_mask"])
                + masked(y["link"], out["link"], value_tokens))
    assert loss == pytest.approx(expected, rel=1e-5)
    # A padded column cannot be chosen as a value's column.
    assert (out["link"][0, :, 3] < -1e3).all() and (out["link"][2, :, 2:] < -1e3).all()
