"""NL2SQL data: numbers and value alignment on hand-worked cases, the synthetic data in the
competition layout, the validating loader, and `blogml data synth|check nl2sql`."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from blogml.cli.data_cmd import data
from blogml.cli.main import BlogmlGroup
from blogml.data.nl2sql import (
    SPLITS,
    Question,
    Table,
    load_split,
    read_questions,
    split_paths,
)
from blogml.data.nl2sql_sql import SQL
from blogml.data.nl2sql_synth import synth_nl2sql
from blogml.data.nl2sql_values import (
    KINDS,
    Alignment,
    align_conditions,
    align_value,
    alignment_report,
    column_unit,
    format_number,
    to_chinese,
    to_number,
    value_from_span,
)
from blogml.errors import BlogmlError
from blogml.metrics.nl2sql import execute

AREA = "成交面积(万平)"  # a real column in units of 10^4 m²


def blogml(*args: str):
    """`blogml ARGS` in process, through the CLI's own error handling (exit codes, messages)."""
    cli = BlogmlGroup(name="blogml", commands={"data": data})
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# ---- numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("15", 15), ("0.5", 0.5), ("-3.5", -3.5), (" 42 ", 42), ("1,200", 1200),
    ("12,345,678.5", 12345678.5), ("１２", 12), ("３．５", 3.5),
    ("十", 10), ("十五", 15), ("二十", 20), ("一百二十", 120), ("一百零五", 105),
    ("一百一十", 110), ("两千三百", 2300), ("二千零三十", 2030), ("一万零五百", 10500),
    ("十五万", 150000), ("十万", 100000), ("一百万", 1000000), ("三千万", 30000000),
    ("一亿二千万", 120000000), ("两亿", 200000000), ("三亿零五万", 300050000),
    ("三万亿", 3e12), ("三万五千亿", 3.5e12), ("十万零一十五", 100015),
    ("一万二", 12000), ("三千五", 3500), ("一百二", 120),  # a last lone digit: unit below
    ("三点五", 3.5), ("零点五", 0.5), ("三点一四", 3.14), ("零点零五", 0.05),
    ("一点五万", 15000), ("二十八点六", 28.6),
    ("二〇一九", 2019), ("二零一九", 2019), ("七", 7), ("零", 0),
    ("1.5万", 15000), ("5亿", 5e8), ("15万", 150000), ("3千万", 3e7), ("2万5", 25000),
    ("1,200万", 12000000), ("1.5亿", 1.5e8),
    ("百分之五", 5), ("百分之三点五", 3.5), ("百分之五十", 50), ("5%", 5), ("12.5％", 12.5),
    ("负五", -5), ("负三点五", -3.5),
])
def test_numerals_are_read_by_value(text, value):
    assert to_number(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["abc", "", "万", "百", "千万", "三四十", "五万三万", "三点",
                                  "十五万平", "1,2", "一亿万", "1.2.3", "世茂"])
def test_what_is_not_a_number_is_none(text):
    assert to_number(text) is None


@pytest.mark.parametrize("value, numeral, liang", [
    (0, "零", "零"), (10, "十", "十"), (15, "十五", "十五"), (110, "一百一十", "一百一十"),
    (1005, "一千零五", "一千零五"), (1050, "一千零五十", "一千零五十"),
    (2300, "二千三百", "两千三百"), (120000, "十二万", "十二万"),
    (100015, "十万零一十五", "十万零一十五"), (300050000, "三亿零五万", "三亿零五万"),
    (3.5, "三点五", "三点五"), (0.05, "零点零五", "零点零五"),
])
def test_numerals_are_written_as_a_question_writes_them(value, numeral, liang):
    assert to_chinese(value) == numeral and to_chinese(value, liang=True) == liang


def test_numerals_round_trip_through_the_parser():
    rng = random.Random(0)
    for _ in range(3000):
        value = rng.randrange(10 ** rng.randrange(1, 16))
        assert to_number(to_chinese(value)) == value
        assert to_number(to_chinese(value, liang=True)) == value
        decimal = f"{rng.randrange(1000)}.{rng.randrange(1, 100):02d}".rstrip("0")
        assert to_number(to_chinese(decimal)) == pytest.approx(float(decimal), rel=1e-12)


@pytest.mark.parametrize("header, factor", [
    ("成交面积(万平)", 1e4), ("金额（亿元）", 1e8), ("价格(元)", 1), ("名称", 1),
    ("销售额(百万元)", 1e6), ("人口(万人)", 1e4), ("重量(千克)", 1), ("增长率(%)", 1),
    ("营收(千元)", 1e3), ("单位：万元", 1e4), ("市值（万亿元）", 1e12),
])
def test_column_unit_reads_the_multiplier_of_the_header(header, factor):
    assert column_unit(header) == factor


@pytest.mark.parametrize("value, text", [
    (15.0, "15"), (0.5, "0.5"), (50000.0, "50000"), (1.2000000000000002, "1.2"), (-0.0, "0"),
    (123456789012345.0, "123456789012345"), (1e-7, "0.0000001")])
def test_numbers_are_formatted_canonically(value, text):
    assert format_number(value) == text


# ---- alignment ------------------------------------------------------------------------


def span(question: str, alignment: Alignment) -> str:
    return question[alignment.start:alignment.end]


def test_a_value_written_as_is_aligns_verbatim():
    question = "城市是北京的楼盘，成交面积是多少"
    assert align_value(question, "北京", "城市") == Alignment("verbatim", 3, 5)
    question = "成交面积大于15万平的楼盘"
    assert align_value(question, "15", AREA) == Alignment("verbatim", 6, 8)


def test_a_number_aligns_only_as_a_whole_number():
    question = "面积大于12且价格为1的楼盘"
    assert align_value(question, "1", "价格(元)") == Alignment("verbatim", 10, 11)
    assert align_value("面积大于12的楼盘", "1", "价格(元)").kind == "failed"
    assert align_value("评分高于1.5的电影", "5", "评分").kind == "failed"
    assert align_value("票房超过1,200的", "200", "票房").kind == "failed"
    assert align_value("票房超过1,200的", "1200", "票房") == Alignment("normalised", 4, 9)
    assert align_value("排名第十五的", "五", "排名").kind == "failed"  # 五 inside 十五


@pytest.mark.parametrize("question, value, header, expected", [
    ("成交面积大于十五万平的楼盘", "15", AREA, "十五万"),
    ("成交面积有5亿平的楼盘", "50000", AREA, "5亿"),
    ("成交面积不到两万平的", "2", AREA, "两万"),
    ("增长率超过百分之五的公司", "5", "增长率(%)", "百分之五"),
    ("评分高于三点五的电影", "3.5", "评分", "三点五"),
    ("占比为零点五的", "0.5", "占比(%)", "零点五"),
    ("均价低于3万元的楼盘", "30000", "均价(元)", "3万"),
    ("票房超过1.5亿的电影", "15000", "票房(万元)", "1.5亿"),
    ("售价为一百二十万的车", "120", "售价(万元)", "一百二十万"),
    ("招生人数多于１２的", "12", "招生人数", "１２"),
    ("评分等于8.0的", "8", "评分", "8.0"),
    ("2019年第四周的票房", "4", "周", "四"),
])
def test_numbers_written_differently_align_normalised(question, value, header, expected):
    alignment = align_value(question, value, header)
    assert alignment.kind == "normalised"
    assert span(question, alignment) == expected


def test_a_slightly_different_text_aligns_fuzzy_and_a_different_one_fails():
    question = "世茂悦府的均价是多少"
    assert align_value(question, "世茂茂悦府", "楼盘") == Alignment("fuzzy", 0, 4)
    assert align_value("北京市的楼盘", "北京", "城市").kind == "verbatim"
    assert align_value("北京的楼盘", "北京市", "城市") == Alignment("fuzzy", 0, 2)
    # One character of two is no evidence, a substitution in four characters neither.
    assert align_value("北海的楼盘", "北京", "城市").kind == "failed"
    assert align_value("世茂天府的均价", "世茂悦府", "楼盘").kind == "failed"
    # Numbers never align fuzzily.
    assert align_value("票房12346万", "12345", "票房(万元)").kind == "failed"


def test_text_differing_in_width_or_case_aligns_normalised():
    question = "车型是ＩＰＨＯＮＥ的"
    assert align_value(question, "iPhone", "车型") == Alignment("normalised", 3, 9)


def test_a_second_condition_takes_another_mention_of_the_same_value():
    question = "上映天数大于5或评分等于5的电影"
    first = align_value(question, "5", "上映天数")
    second = align_value(question, "5", "评分", taken=[(first.start, first.end)])
    assert (first.start, second.start) == (6, 12)
    table = Table("t", "Table_t", "", ["天数", "评分"], ["real", "real"], [])
    sql = {"sel": [0], "agg": [0], "cond_conn_op": 2, "conds": [[0, 0, "5"], [1, 2, "5"]]}
    alignments = align_conditions(Question(1, "t", question, sql), table)
    assert [a.start for a in alignments] == [6, 12]


@pytest.mark.parametrize("text, header, column_type, value", [
    ("十五万", AREA, "real", "15"), ("十五", AREA, "real", "15"), ("15", AREA, "real", "15"),
    ("5亿", AREA, "real", "50000"), ("一万二", AREA, "real", "1.2"),
    ("一百二十", AREA, "real", "120"), ("15万平", AREA, "real", "15"),
    ("零点五", "占比", "real", "0.5"), ("百分之五", "增长率(%)", "real", "5"),
    ("3万", "均价(元)", "real", "30000"), ("1.5亿", "票房(万元)", "real", "15000"),
    ("1,200", "票房", "real", "1200"), ("１２", "票房", "real", "12"),
    ("五千", "营收(千元)", "real", "5"), ("300万", "销售额(百万元)", "real", "3"),
    ("十五万", "楼盘", "text", "十五万"), ("abc", AREA, "real", "abc"),
])
def test_value_from_span_gives_the_sql_value_in_the_column_unit(text, header, column_type,
                                                                value):
    assert value_from_span(text, header, column_type) == value


def test_value_from_span_inverts_every_normalised_alignment():
    """Gold values of a 万平 column written as a bare numeral in the column's unit, as a
    numeral with the unit (十五万平) or in square metres (一万五千平 for 1.5; a bare 七千九百
    is read in the column's unit, so square metres need at least 一万)."""
    rng = random.Random(1)
    for _ in range(1000):
        gold = rng.randrange(1, 10**4) / rng.choice((1, 10, 100))
        liang = rng.random() < 0.5
        form = rng.choice(("bare", "unit", "base") if gold >= 1 else ("bare", "unit"))
        written = {"bare": lambda: to_chinese(gold, liang=liang),
                   "unit": lambda: to_chinese(gold, liang=liang) + "万平",
                   "base": lambda: to_chinese(round(gold * 10**4), liang=liang) + "平"}[form]()
        question = f"成交面积大于{written}的楼盘"
        alignment = align_value(question, format_number(gold), AREA)
        assert alignment.kind == "normalised", question
        decoded = value_from_span(span(question, alignment), AREA, "real")
        assert float(decoded) == pytest.approx(gold, rel=1e-12), question


# ---- synthetic data -------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("nl2sql")
    written = synth_nl2sql(folder)  # the defaults: 12000/300/300 questions
    assert {split: questions for split, (questions, _) in written.items()} == \
        {"train": 12000, "val": 300, "test": 300}
    return folder


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_synth_writes_the_competition_layout(synth_dir):
    files = sorted(str(p.relative_to(synth_dir)) for p in synth_dir.rglob("*") if p.is_file())
    assert files == sorted(f"{s}/{s}{suffix}" for s in SPLITS
                           for suffix in (".json", ".tables.json", ".db"))
    for split in SPLITS:
        questions_path, tables_path, _ = split_paths(synth_dir, split)
        questions, tables = lines(questions_path), lines(tables_path)
        assert all(set(t) == {"id", "name", "title", "header", "types", "rows"} for t in tables)
        assert all(t["name"] == f"Table_{t['id']}" and 4 <= len(t["header"]) <= 8
                   and 8 <= len(t["rows"]) <= 20 for t in tables)
        assert all({"text", "real"} <= set(t["types"]) for t in tables)
        expected = {"table_id", "question"} | ({"sql"} if split != "test" else set())
        assert all(set(q) == expected for q in questions)
        assert {q["table_id"] for q in questions} == {t["id"] for t in tables}
    ids = [{t["id"] for t in lines(split_paths(synth_dir, s)[1])} for s in SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # tables per split


def test_synth_databases_hold_the_tables_of_the_tables_files(synth_dir):
    for split in SPLITS:
        _, tables_path, db_path = split_paths(synth_dir, split)
        connection = sqlite3.connect(db_path)
        for table in lines(tables_path):
            columns = connection.execute(f'PRAGMA table_info("{table["name"]}")').fetchall()
            assert [(c[1], c[2]) for c in columns] == [
                (f"col_{i + 1}", "REAL" if t == "real" else "TEXT")
                for i, t in enumerate(table["types"])]
            rows = connection.execute(f'SELECT * FROM "{table["name"]}" ORDER BY rowid').fetchall()
            assert [list(row) for row in rows] == table["rows"]
        connection.close()


def test_synth_gold_sql_is_consistent_with_its_table(synth_dir):
    seen: dict[str, Counter] = {"agg": Counter(), "op": Counter(), "conn": Counter(),
                                "sel": Counter(), "conds": Counter()}
    for split in ("train", "val"):
        questions_path, tables_path, db_path = split_paths(synth_dir, split)
        tables = {t["id"]: t for t in lines(tables_path)}
        connection = sqlite3.connect(db_path)
        for question in lines(questions_path):
            table, raw = tables[question["table_id"]], question["sql"]
            sql = SQL.parse(raw, len(table["header"]))
            result = execute(connection, sql, table)
            seen["agg"].update(sql.agg)
            seen["op"].update(op for _, op, _ in sql.conds)
            seen["conn"][sql.conn] += 1
            seen["sel"][len(sql.sel)] += 1
            seen["conds"][len(sql.conds)] += 1
            assert (sql.conn == 0) == (len(sql.conds) == 1)
            assert len({(c, op) for c, op, _ in sql.conds}) == len(sql.conds)
            for column, op, value in sql.conds:
                cells = [row[column] for row in table["rows"]]
                if op == 2:  # == values come from the column
                    assert any(str(c) == value or (isinstance(c, (int, float)) and
                                                   float(value) == c) for c in cells)
                if table["types"][column] == "real":
                    assert float(value) >= 0
            if sql.conn == 1 or len(sql.conds) == 1:  # true of one row by construction
                assert result, question
        connection.close()
    assert set(seen["agg"]) == set(range(6)) and set(seen["op"]) == set(range(4))
    assert set(seen["conn"]) == {0, 1, 2} and set(seen["sel"]) == {1, 2, 3}
    assert set(seen["conds"]) == {1, 2, 3}
    assert min(seen["agg"].values()) > 100 and min(seen["op"].values()) > 100


def test_every_synthetic_value_aligns_and_decodes_to_the_gold_value(synth_dir):
    kinds: Counter[str] = Counter()
    for split in ("train", "val"):
        loaded = load_split(synth_dir, split)
        assert loaded.invalid == [] and len(loaded.questions) == (12000 if split == "train"
                                                                   else 300)
        for question in loaded.questions:
            table = loaded.table_of(question)
            alignments = align_conditions(question, table)
            for (column, _, value), alignment in zip(question.sql["conds"], alignments):
                kinds[alignment.kind] += 1
                assert alignment.kind in ("verbatim", "normalised"), question
                decoded = value_from_span(question.question[alignment.start:alignment.end],
                                          table.header[column], table.types[column])
                assert decoded == value, question
        report = alignment_report(loaded)
        assert report["failed"] == 0 and report["questions_fully_aligned"] == 1.0
        assert report["verbatim"] + report["normalised"] == pytest.approx(1.0)
    assert kinds["normalised"] > 0.1 * sum(kinds.values())  # numerals, units, separators


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    counts = {"train": 200, "val": 30, "test": 30}
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    synth_nl2sql(first, 7, counts)
    synth_nl2sql(second, 7, counts)
    synth_nl2sql(other, 8, counts)
    for split in SPLITS:
        for a, b, c in zip(split_paths(first, split), split_paths(second, split),
                           split_paths(other, split)):
            assert a.read_bytes() == b.read_bytes()
            assert a.read_bytes() != c.read_bytes()
    # Each split has its own stream: more training questions leave val as it was.
    synth_nl2sql(other, 7, {**counts, "train": 50})
    assert split_paths(other, "val")[0].read_bytes() == split_paths(first, "val")[0].read_bytes()


# ---- loader ---------------------------------------------------------------------------


GOOD_TABLE = {"id": "abc", "name": "Table_abc", "title": "楼盘", "header":
              ["楼盘", "城市", "面积(万平)", "均价", "套数", "开发商"],
              "types": ["text", "text", "real", "real", "real", "text"],
              "rows": [["世茂茂悦府", "上海", 15, 30000, 120, "世茂"],
                       ["大黄蜂", "北京", 1.5, 20000, 80, "保利"]]}


def good_sql(**changes) -> dict:
    return {"sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[1, 2, "上海"]], **changes}


def write_split(root: Path, split: str, questions: list, tables: list) -> None:
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    for path, records in ((folder / f"{split}.json", questions),
                          (folder / f"{split}.tables.json", tables)):
        path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
                                  for r in records) + "\n", encoding="utf-8")


def test_invalid_records_are_reported_with_line_and_field(tmp_path):
    tables = [GOOD_TABLE,
              {**GOOD_TABLE, "id": "bad", "types": ["text", "int", "real", "real", "real",
                                                     "text"]},
              {**GOOD_TABLE, "id": "short", "types": ["text"]},
              {**GOOD_TABLE, "id": "rows", "rows": [["a", "b"]]},
              '{"id": "broken", ',
              {**GOOD_TABLE, "id": "abc"}]
    questions = [
        {"table_id": "abc", "question": "城市是上海的楼盘", "sql": good_sql()},  # 1: fine
        '{"table_id": "abc", "question": ',  # 2: not JSON
        {"table_id": "x", "question": "q", "sql": good_sql()},  # 3
        {"table_id": "abc", "question": "q", "sql": good_sql(conds=[[1, 2, "上海"],
                                                                    [9, 0, "1"]])},  # 4
        {"table_id": "abc", "question": "q", "sql": good_sql(conds=[[1, 7, "上海"]])},  # 5
        {"table_id": "abc", "sql": good_sql()},  # 6
        {"table_id": "abc", "question": "  ", "sql": good_sql()},  # 7
        {"table_id": "abc", "question": "q", "sql": good_sql(agg=[0, 1])},  # 8
        {"table_id": "abc", "question": "q", "sql": good_sql(cond_conn_op=3)},  # 9
        {"table_id": "abc", "question": "q", "sql": good_sql(agg=[6])},  # 10
        {"table_id": "bad", "question": "q", "sql": good_sql()},  # 11
        {"table_id": "abc", "question": "q"},  # 12: no sql
        "",  # 13: blank lines are skipped, not invalid
        "[1, 2]",  # 14
        {"table_id": "abc", "question": "面积大于1.5", "sql": good_sql(
            sel=[3, 4], agg=[1, 5], cond_conn_op=1, conds=[[2, 0, "1.5"], [1, 3, "北京"]])},
        {"table_id": "abc", "question": "q", "sql": good_sql(conds=[[1, 2, ""]])},  # 16
        {"table_id": "abc", "question": "q", "sql": good_sql(sel=["0"])},  # 17
    ]
    write_split(tmp_path, "val", questions, tables)
    split = load_split(tmp_path, "val")
    questions_path, tables_path, _ = (str(p) for p in split_paths(tmp_path, "val"))
    reasons = {(Path(r.path).name, r.line): r.reason for r in split.invalid}
    assert reasons == {
        ("val.tables.json", 2): "types[1]: 'int' is not text or real",
        ("val.tables.json", 3): "types: length 1 differs from header (6)",
        ("val.tables.json", 4): "rows[0]: length 2 differs from header (6)",
        ("val.tables.json", 5): reasons[("val.tables.json", 5)],
        ("val.tables.json", 6): "id 'abc': duplicate of line 1",
        ("val.json", 2): reasons[("val.json", 2)],
        ("val.json", 3): "table_id 'x' not in val.tables.json",
        ("val.json", 4): "sql.conds[1][0]: column 9 out of range for table 'abc' with 6 columns",
        ("val.json", 5): "sql.conds[0][1]: unknown operator code 7 (0 >, 1 <, 2 ==, 3 !=)",
        ("val.json", 6): "question: missing",
        ("val.json", 7): "question: empty",
        ("val.json", 8): "sql.agg: length 2 differs from sql.sel (1)",
        ("val.json", 9): "sql.cond_conn_op: unknown connector code 3 (0 none, 1 and, 2 or)",
        ("val.json", 10): "sql.agg[0]: unknown aggregation code 6 "
                          "(0 none, 1 AVG, 2 MAX, 3 MIN, 4 COUNT, 5 SUM)",
        ("val.json", 11): "table_id 'bad': its table is invalid (val.tables.json:2)",
        ("val.json", 12): reasons[("val.json", 12)],
        ("val.json", 14): "must be a JSON object, got list",
        ("val.json", 16): "sql.conds[0][2]: empty value",
        ("val.json", 17): "sql.sel[0]: column must be an integer, got '0'",
    }
    assert reasons[("val.tables.json", 5)].startswith("not valid JSON")
    assert reasons[("val.json", 2)].startswith("not valid JSON")
    assert reasons[("val.json", 12)].startswith("sql: missing")
    assert str(split.invalid[0]).startswith(f"{tables_path}:2: ")
    assert {r.path for r in split.invalid} == {questions_path, tables_path}
    assert [q.line for q in split.questions] == [1, 15]
    assert split.questions[1].sql["conds"] == [[2, 0, "1.5"], [1, 3, "北京"]]
    assert list(split.tables) == ["abc"] and split.db_path is None
    assert split.tables["abc"].header == GOOD_TABLE["header"]


def test_a_test_split_may_go_without_sql_but_sql_present_is_checked(tmp_path):
    write_split(tmp_path, "test", [{"table_id": "abc", "question": "上海的楼盘"},
                                   {"table_id": "abc", "question": "q",
                                    "sql": good_sql(sel=[6])}], [GOOD_TABLE])
    split = load_split(tmp_path, "test", require_sql=False)
    assert [q.sql for q in split.questions] == [None]
    assert [(r.line, r.reason) for r in split.invalid] == [
        (2, "sql.sel[0]: column 6 out of range for table 'abc' with 6 columns")]


def test_any_questions_file_reads_with_the_tables_file_next_to_it(tmp_path):
    path = tmp_path / "input.json"
    path.write_text('{"table_id": "abc", "question": "上海的楼盘"}\n{"table_id": "zz", '
                    '"question": "q"}\n', encoding="utf-8")
    with pytest.raises(BlogmlError, match="input.tables.json: tables file not found"):
        read_questions(path, require_sql=False)
    (tmp_path / "input.tables.json").write_text(json.dumps(GOOD_TABLE, ensure_ascii=False))
    questions, tables, invalid = read_questions(path, require_sql=False)
    assert [(q.line, q.sql) for q in questions] == [(1, None)] and list(tables) == ["abc"]
    assert [(r.path, r.line, r.reason) for r in invalid] == [
        (str(path), 2, "table_id 'zz' not in input.tables.json")]


def test_a_missing_split_file_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(BlogmlError) as error:
        load_split(tmp_path, "val")
    message = str(error.value)
    assert str(tmp_path / "val" / "val.json") in message
    assert "val.tables.json" in message and "blogml data synth nl2sql --out DIR" in message


# ---- command line ---------------------------------------------------------------------


def test_synth_then_check_reports_counts_and_alignment(tmp_path):
    out = tmp_path / "demo"
    result = blogml("data", "synth", "nl2sql", "--out", str(out), "--train", "120", "--val",
                    "40", "--test", "20", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "train 120 questions on 12 tables" in result.output
    result = blogml("data", "check", "nl2sql", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == ["splits"] and list(report["splits"]) == ["train", "val", "test"]
    val = report["splits"]["val"]
    assert (val["questions"], val["tables"], val["invalid"]) == (40, 4, [])
    assert val["alignment"]["failed"] == 0.0 and val["alignment"]["fuzzy"] == 0.0
    assert val["alignment"]["verbatim"] + val["alignment"]["normalised"] == pytest.approx(1)
    assert report["splits"]["test"]["alignment"] is None
    assert report["splits"]["test"]["questions"] == 20

    result = blogml("data", "check", "nl2sql", str(out))
    assert result.exit_code == 0, result.output
    header, rule, train, val_row, test = result.output.splitlines()[1:6]
    assert header.split()[:4 + len(KINDS)] == ["split", "questions", "tables", "invalid",
                                               *KINDS]
    assert train.split()[:4] == ["train", "120", "12", "0"] and test.split()[4] == "-"
    assert val_row.split()[4 + KINDS.index("failed")] == "0.0%"


def test_ceiling_decodes_the_labels_back_and_scores_what_they_lose(tmp_path):
    """Synthetic values all align and decode back: the ceiling is 1. A val question whose
    value the question never mentions (a second condition on another column) can at best
    be decoded without it: LF 39/40, and its `questions_aligned` drops to 39/40 too."""
    out = tmp_path / "demo"
    assert blogml("data", "synth", "nl2sql", "--out", str(out), "--train", "60", "--val",
                  "40", "--test", "20", "--seed", "3").exit_code == 0
    result = blogml("data", "check", "nl2sql", str(out), "--ceiling", "--max-length", "96",
                    "--json")
    assert result.exit_code == 0, result.output
    splits = json.loads(result.output)["splits"]
    assert splits["val"]["ceiling"] == {"lf_accuracy": 1.0, "ex_accuracy": 1.0, "score": 1.0}
    assert splits["train"]["ceiling"]["lf_accuracy"] == 1.0
    assert splits["test"]["ceiling"] is None and splits["val"]["questions_aligned"] == 1.0

    questions = out / "val" / "val.json"
    records = lines(questions)
    table = next(t for t in lines(out / "val" / "val.tables.json")
                 if t["id"] == records[0]["table_id"])
    text_column = table["types"].index("text")
    records[0]["sql"]["conds"].append([text_column, 3, "从未提到的名字"])
    records[0]["sql"]["cond_conn_op"] = 1
    questions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                         encoding="utf-8")
    result = blogml("data", "check", "nl2sql", str(out), "--ceiling", "--max-length", "96",
                    "--json")
    val = json.loads(result.output)["splits"]["val"]
    assert val["ceiling"]["lf_accuracy"] == pytest.approx(39 / 40)
    assert val["questions_aligned"] == pytest.approx(39 / 40)
    table_output = blogml("data", "check", "nl2sql", str(out), "--ceiling",
                          "--max-length", "96").output
    header, _, _, val_row = table_output.splitlines()[1:5]
    assert header.split()[-5:] == ["ceiling", "LF", "ceiling", "EX", "db"]
    assert val_row.split()[-3] == "97.5%"  # ceiling LF, then ceiling EX, then db


def test_check_lists_invalid_records_and_exits_2_without_any_split(tmp_path):
    write_split(tmp_path, "train", [{"table_id": "abc", "question": "城市是上海的", "sql":
                                     good_sql()}] + ["nope"] * 25, [GOOD_TABLE])
    result = blogml("data", "check", "nl2sql", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "25 invalid records" in result.output
    assert f"{tmp_path / 'train' / 'train.json'}:2: not valid JSON" in result.output
    assert "... and 5 more (all with --json)" in result.output
    train_row = result.output.splitlines()[3].split()
    assert train_row[:4] == ["train", "1", "1", "25"] and train_row[-1] == "missing"  # no db
    report = json.loads(blogml("data", "check", "nl2sql", str(tmp_path), "--json").output)
    assert len(report["splits"]["train"]["invalid"]) == 25
    assert report["splits"]["train"]["invalid"][0]["line"] == 2

    empty = tmp_path / "empty"
    empty.mkdir()
    result = blogml("data", "check", "nl2sql", str(empty))
    assert result.exit_code == 2
    assert "no NL2SQL split found" in result.output and "blogml data synth nl2sql" in \
        result.output


def test_check_reports_tables_missing_from_the_database(tmp_path):
    write_split(tmp_path, "val", [{"table_id": "abc", "question": "城市是上海的",
                                   "sql": good_sql()}], [GOOD_TABLE])
    sqlite3.connect(tmp_path / "val" / "val.db").close()  # an empty database
    result = blogml("data", "check", "nl2sql", str(tmp_path), "--json")
    problems = json.loads(result.output)["splits"]["val"]["db_problems"]
    assert len(problems) == 1 and "'Table_abc' (id 'abc') missing" in problems[0]


@pytest.mark.slow
def test_data_help_imports_no_data_module():
    code = (
        "import sys\n"
        "from blogml.cli.main import cli\n"
        "for args in (['--help'], ['data', '--help'], ['data', 'check', 'nl2sql', '--help'],"
        " ['data', 'synth', 'nl2sql', '--help']):\n"
        "    try:\n"
        "        cli(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('blogml.data.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "CI": "true"})
    assert "LOADED []" in result.stdout
