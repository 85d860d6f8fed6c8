"""The seed's NL2SQL model pieces: input layout and labels, the masked loss, decoding."""

from __future__ import annotations

import numpy as np
import pytest

from blogml.data.nl2sql import Question, Table
from blogml.data.nl2sql_sql import NOT_A_VALUE, NOT_SELECTED
from blogml.runners.nl2sql.decode import DecodeRules, decode
from blogml.runners.nl2sql.features import encode

pytestmark = pytest.mark.models


TABLE = Table(id="t1", name="Table_t1", title="楼盘成交",
              header=["楼盘", "城市", "成交面积(万平)", "均价(元)"],
              types=["text", "text", "real", "real"],
              rows=[["世茂茂悦府", "北京", 15, 52000], ["万科城", "上海", 8, 61000]])
QUESTION = "城市是北京且成交面积超过十五万平的楼盘有哪些"
SQL = {"sel": [0], "agg": [0], "cond_conn_op": 1, "conds": [[1, 2, "北京"], [2, 0, "15"]]}


@pytest.fixture(scope="module")
def tokenizer():
    from blogml.data.wordpiece import CHINESE_VOCAB, WordPieceTokenizer

    return WordPieceTokenizer(CHINESE_VOCAB)


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
    assert op[beijing].tolist() == [2, 2] and link[beijing].tolist() == [[1, -1, -1]] * 2
    assert op[shiwuwan].tolist() == [0, 0, 0] and link[shiwuwan].tolist() == [[2, -1, -1]] * 3


def test_one_mention_serving_two_conditions_links_to_both_columns(tokenizer):
    question = "成交面积和均价都超过十五的楼盘"
    sql = {"sel": [0], "agg": [0], "cond_conn_op": 1, "conds": [[2, 0, "15"], [3, 0, "15"]]}
    labels = encode([Question(1, "t1", question, sql)], {"t1": TABLE}, tokenizer, 64,
                    labels=True).labels
    shiwu = [1 + question.index("十五") + i for i in range(2)]
    assert np.flatnonzero(labels["op"][0] != NOT_A_VALUE).tolist() == shiwu
    assert labels["link"][0][shiwu].tolist() == [[2, 3, -1]] * 2


def test_a_value_that_cannot_be_located_masks_only_its_own_labels(tokenizer):
    partly = Question(7, "t1", QUESTION, {**SQL, "conds": [[1, 2, "北京"], [1, 2, "广州"]]})
    features = encode([Question(1, "t1", QUESTION, SQL), partly], {"t1": TABLE}, tokenizer, 64,
                      labels=True)
    assert [q.line for q in features.questions] == [1, 7] and features.skipped == []
    assert features.partly_labelled == [(7, "value '广州' not found in the question")]
    labels = {name: array[1] for name, array in features.labels.items()}
    beijing = [1 + QUESTION.index("北京") + i for i in range(2)]
    # The located value and every other head keep their labels ...
    assert labels["conn"] == 1 and labels["agg"].tolist() == [0, 6, 6, 6]
    assert np.flatnonzero(labels["op"] != NOT_A_VALUE).tolist() == beijing
    # ... and the operator head learns only from it: the other tokens may hold 广州's mention.
    assert np.flatnonzero(labels["op_mask"]).tolist() == beijing
    full = features.labels["op_mask"][0]
    assert np.flatnonzero(full).tolist() == list(range(1, 1 + len(QUESTION)))


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


def _decode_with(tokenizer, ops, columns, agg, link=None, question=QUESTION, **rules):
    spans = tokenizer.encode(question).offsets
    length = len(spans) + 2
    op = np.full(length, NOT_A_VALUE)
    link_logits = np.full((length, 4), -5.0, np.float32) if link is None else link
    for (start, end), (o, c) in zip(ops, columns):
        op[start:end] = o
        if link is None:
            link_logits[start:end, c] = 5.0
    outputs = {"conn": _one_hot_logits([1], 3), "agg": _one_hot_logits(agg, 7)[None],
               "op": _one_hot_logits(op, 5)[None], "link": link_logits[None]}
    return decode(outputs, 0, question, spans, TABLE, DecodeRules(**rules))


def test_decoding_cuts_values_from_the_question_and_normalises_numbers(tokenizer):
    beijing = 1 + QUESTION.index("北京")
    shiwuwan = 1 + QUESTION.index("十五万")
    sql = _decode_with(tokenizer, [(beijing, beijing + 2), (shiwuwan, shiwuwan + 4)],
                       [(2, 1), (0, 2)], [0, 6, 6, 2])
    assert sql == {"sel": [0, 3], "agg": [0, 2], "cond_conn_op": 1,
                   "conds": [[1, 2, "北京"], [2, 0, "15"]]}


def test_decoding_splits_side_by_side_values_of_two_columns_and_selects_one(tokenizer):
    beijing = 1 + QUESTION.index("北京")
    agg = np.full(4, 6)
    sql = _decode_with(tokenizer, [(beijing, beijing + 1), (beijing + 1, beijing + 2)],
                       [(2, 1), (2, 0)], agg, snap_to_cells=False)
    assert sql["conds"] == [[1, 2, "北"], [0, 2, "京"]]
    assert sql["sel"] == [0] and sql["agg"] == [0]  # the likeliest of the 6 aggregations


def test_a_run_shared_by_two_columns_gives_a_condition_for_each(tokenizer):
    """Link probabilities 0.55/0.45 on the first token and 0.45/0.55 on the next: one run
    (the likely columns overlap), one condition per column; a third column at 0.3 of the
    likeliest is not one of them."""
    shiwuwan = 1 + QUESTION.index("十五万")
    link = np.full((len(QUESTION) + 2, 4), -20.0, np.float32)
    for i, (a, b) in enumerate([(0.55, 0.45), (0.45, 0.55), (0.5, 0.5)]):
        link[shiwuwan + i, 2], link[shiwuwan + i, 3] = np.log(a), np.log(b)
        link[shiwuwan + i, 0] = np.log(0.3 * 0.5)
    sql = _decode_with(tokenizer, [(shiwuwan, shiwuwan + 3)], [(0, 2)], [0, 6, 6, 6], link=link)
    # Each column reads the mention in its own unit: 十五万 is 15 万平, 150000 元.
    assert sorted(sql["conds"]) == [[2, 0, "15"], [3, 0, "150000"]]


def test_decoding_rules_snap_text_values_compare_numbers_and_fix_the_connector(tokenizer):
    question = "世茂悦府的均价是多少"
    # 世茂悦府 with `>`: not a number, so == (the likelier of == and != is ==, all equal
    # here), then snapped to the cell of its column that it names (世茂茂悦府); one condition
    # has no connector.
    ruled = _decode_with(tokenizer, [(1, 5)], [(0, 0)], [6, 6, 6, 0], question=question)
    assert ruled["conds"] == [[0, 2, "世茂茂悦府"]] and ruled["cond_conn_op"] == 0
    raw = _decode_with(tokenizer, [(1, 5)], [(0, 0)], [6, 6, 6, 0], question=question,
                       snap_to_cells=False, compare_numbers_only=False,
                       consistent_connector=False)
    assert raw["conds"] == [[0, 0, "世茂悦府"]] and raw["cond_conn_op"] == 1
    beijing = 1 + QUESTION.index("北京")
    # A value that is a cell of another column moves there: 北京 linked to 楼盘 (column 0)
    # is a 城市 (column 1).
    moved = _decode_with(tokenizer, [(beijing, beijing + 2)], [(2, 0)], [0, 6, 6, 6])
    assert moved["conds"] == [[1, 2, "北京"]]
    # A value like no cell of its column is kept: 楼盘 is nothing like 北京 or 上海.
    pan = 1 + QUESTION.index("楼盘")
    kept = _decode_with(tokenizer, [(pan, pan + 2)], [(2, 1)], [0, 6, 6, 6])
    assert kept["conds"] == [[1, 2, "楼盘"]]


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
         "link": np.full((batch, length, 3), -1, "int32")}
    y["op"][0, 2:4], y["link"][0, 2:4, 0] = 2, 1
    y["op"][1, 1], y["link"][1, 1, :2] = 0, [3, 0]  # one mention, the value of two columns
    y["op"][2, 7] = 1  # outside the question: must not count
    # Rows 0 and 1 are fully labelled; row 2 has a value that could not be located, so its
    # operator loss counts its one located value token (3) only.
    y["op_mask"] = x["question_mask"].copy()
    y["op_mask"][2] = 0
    y["op"][2, 3], y["link"][2, 3, 0] = 0, 1
    y["op_mask"][2, 3] = 1
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}
    loss = float(model.compute_loss(x, y, out))

    def masked(labels, logits, mask):
        return (_cross_entropy(labels, logits) * mask).sum() / mask.sum()

    value_tokens = x["question_mask"] * (y["op"] != NOT_A_VALUE)
    # The link target shares each token's probability among its columns: the cross-entropy
    # is the mean of the plain ones over the token's columns.
    slots = y["link"]
    shared = sum(np.where(slots[..., k] >= 0,
                          _cross_entropy(np.maximum(slots[..., k], 0), out["link"]), 0.0)
                 for k in range(3)) / np.maximum((slots >= 0).sum(-1), 1)
    expected = (masked(y["conn"], out["conn"], np.ones(batch))
                + masked(y["agg"], out["agg"], x["header_mask"])
                + masked(y["op"], out["op"], y["op_mask"])
                + (shared * value_tokens).sum() / value_tokens.sum())
    assert loss == pytest.approx(expected, rel=1e-5)
    # A padded column cannot be chosen as a value's column.
    assert (out["link"][0, :, 3] < -1e3).all() and (out["link"][2, :, 2:] < -1e3).all()
