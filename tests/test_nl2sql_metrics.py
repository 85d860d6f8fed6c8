"""NL2SQL metrics on hand-worked examples over a real SQLite table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from blogml.cli.main import cli
from blogml.data.nl2sql_sql import SQL
from blogml.errors import BlogmlError
from blogml.metrics.nl2sql import (
    check_gold,
    execution_equal,
    logical_form_equal,
    open_database,
    score,
)

TABLE = {"id": "t1", "name": "Table_t1", "header": ["名称", "价格", "城市"],
         "types": ["text", "real", "text"],
         "rows": [["世茂茂悦府", 15.0, "上海"], ["大黄蜂", 1.0, "北京"],
                  ["O'Neil; DROP", 3.0, "上海"]]}


@pytest.fixture
def connection(tmp_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "val.db")
    db.execute('CREATE TABLE "Table_t1" (col_1 TEXT, col_2 REAL, col_3 TEXT)')
    db.executemany("INSERT INTO Table_t1 VALUES (?, ?, ?)", TABLE["rows"])
    db.commit()
    return db


def sql(sel, agg, conds=(), conn=0) -> SQL:
    return SQL.parse({"sel": sel, "agg": agg, "cond_conn_op": conn, "conds": list(conds)})


def test_order_of_select_pairs_and_conditions_is_ignored():
    a = sql([0, 1], [0, 2], [[2, 2, "上海"], [1, 0, "2"]], conn=1)
    b = sql([1, 0], [2, 0], [[1, 0, "2"], [2, 2, "上海"]], conn=1)
    assert logical_form_equal(a, b)
    assert not logical_form_equal(a, sql([1, 0], [0, 2], [[1, 0, "2"], [2, 2, "上海"]], conn=1))


def test_swapping_the_values_of_two_conditions_on_one_column_is_wrong():
    gold = sql([0], [0], [[1, 0, "2"], [1, 1, "20"]], conn=1)  # 2 < 价格 < 20
    assert logical_form_equal(sql([0], [0], [[1, 1, "20"], [1, 0, "2"]], conn=1), gold)
    assert not logical_form_equal(sql([0], [0], [[1, 0, "20"], [1, 1, "2"]], conn=1), gold)


def test_execution_ignores_the_order_of_selections(connection):
    gold = sql([1, 0], [5, 0], [[2, 2, "北京"]])  # gold lists are not always sorted
    assert execution_equal(connection, sql([0, 1], [0, 5], [[2, 2, "北京"]]), gold, TABLE)
    assert not execution_equal(connection, sql([0, 1], [5, 0], [[2, 2, "北京"]]), gold, TABLE)


def test_gold_that_cannot_run_raises_instead_of_scoring_predictions_wrong(connection):
    missing = {**TABLE, "name": "Table_gone"}
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        execution_equal(connection, sql([0], [0]), sql([0], [0]), missing)
    assert not execution_equal(connection, sql([0], [0], [[2, 2, "x"]]), sql([0], [0]), TABLE)


def test_check_gold_names_the_first_problems_and_counts_the_rest(connection, tmp_path):
    items = [(f"val.json:{n}", {"sel": [n % 3], "agg": [0], "conds": []}, TABLE)
             for n in range(1, 4)]
    check_gold(connection, items)
    broken = [(f"val.json:{n}", {"sel": [7], "agg": [0]}, TABLE) for n in range(1, 9)]
    gone = ("val.json:9", {"sel": [0], "agg": [0]}, {**TABLE, "name": "Table_gone"})
    with pytest.raises(BlogmlError) as raised:
        check_gold(connection, items + broken + [gone, gone])
    lines = str(raised.value).splitlines()
    assert lines[0] == "val.json:1: gold sql cannot run on table 'Table_t1' (column index out " \
                       "of range)"
    assert lines[-1] == "... and 4 more" and len(lines) == 6  # 8 lines + 1 table, 5 shown


def test_open_database_is_read_only_and_refuses_what_is_not_sqlite(connection, tmp_path):
    opened = open_database(tmp_path / "val.db")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        opened.execute("DELETE FROM Table_t1")
    opened.close()
    (tmp_path / "notes.db").write_text("SQLite format 3? no.\n" * 64)
    with pytest.raises(BlogmlError, match="notes.db: not a SQLite database"):
        open_database(tmp_path / "notes.db")
    with pytest.raises(BlogmlError, match="nowhere.db: database not found"):
        open_database(tmp_path / "nowhere.db")


def test_a_different_value_is_wrong_but_numbers_compare_as_numbers(connection):
    gold = sql([0], [0], [[1, 2, "1"]])
    assert not logical_form_equal(sql([0], [0], [[1, 2, "2"]]), gold)
    as_float = sql([0], [0], [[1, 2, "1.0"]])
    assert logical_form_equal(as_float, gold)
    assert execution_equal(connection, as_float, gold, TABLE)  # real column: 1.0 == 1


def test_equal_results_from_different_sql_count_for_execution_only(connection):
    gold = sql([0], [0], [[2, 2, "北京"]])  # 名称 where 城市 = 北京 -> 大黄蜂
    other = sql([0], [0], [[1, 1, "2"]])  # 名称 where 价格 < 2 -> 大黄蜂
    assert execution_equal(connection, other, gold, TABLE)
    assert not logical_form_equal(other, gold)
    result = score([({"sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[1, 1, "2"]]},
                     {"sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[2, 2, "北京"]]},
                     TABLE)], connection)
    assert result["lf_accuracy"] == 0.0 and result["ex_accuracy"] == 1.0
    assert result["score"] == 0.5 and result["sel_accuracy"] == 1.0
    assert result["cond_cols_accuracy"] == 0.0


def test_values_with_quotes_and_semicolons_are_bound_not_pasted(connection):
    hostile = sql([1], [0], [[0, 2, "O'Neil; DROP"]])
    assert execution_equal(connection, hostile, hostile, TABLE)
    rows = connection.execute("SELECT col_2 FROM Table_t1 WHERE col_1 = ?",
                              ["O'Neil; DROP"]).fetchall()
    assert rows == [(3.0,)]
    injection = sql([0], [0], [[0, 2, "x'; DROP TABLE Table_t1; --"]])
    assert not execution_equal(connection, injection, sql([0], [0]), TABLE)
    assert connection.execute("SELECT COUNT(*) FROM Table_t1").fetchone() == (3,)


def test_aggregations_run_on_the_table(connection):
    total = sql([1], [5], [[2, 2, "上海"]])  # SUM(价格) where 城市 = 上海 = 18
    assert execution_equal(connection, sql([1], [5], [[2, 2, "上海"]]), total, TABLE)
    assert not execution_equal(connection, sql([1], [2], [[2, 2, "上海"]]), total, TABLE)


def write_split(folder: Path, predictions: list[str]) -> list[str]:
    gold = [{"table_id": "t1", "question": "北京的是哪个", "sql": {
        "sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[2, 2, "北京"]]}},
        {"table_id": "t1", "question": "上海的总价", "sql": {
            "sel": [1], "agg": [5], "cond_conn_op": 0, "conds": [[2, 2, "上海"]]}}]
    (folder / "val.json").write_text("\n".join(json.dumps(g, ensure_ascii=False) for g in gold))
    (folder / "val.tables.json").write_text(json.dumps(TABLE, ensure_ascii=False))
    (folder / "pred.json").write_text("\n".join(predictions))
    return ["score", "--gold", str(folder / "val.json"), "--pred", str(folder / "pred.json"),
            "--db", str(folder / "val.db")]


def test_score_command_prints_the_metrics_and_rejects_malformed_files(tmp_path, connection):
    args = write_split(tmp_path, [
        json.dumps({"sql": {"sel": [0], "agg": [0], "cond_conn_op": 0,
                            "conds": [[2, 2, "北京"]]}}, ensure_ascii=False),
        json.dumps({"sel": [9], "agg": [0], "cond_conn_op": 0, "conds": []})])  # bad column
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["lf_accuracy"] == 0.5 and metrics["ex_accuracy"] == 0.5
    assert metrics["malformed_predictions"] == 1 and metrics["questions"] == 2

    args = write_split(tmp_path, ['{"sql": {"sel": [0]', '{}'])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert f"{tmp_path / 'pred.json'}:1: prediction line is not valid JSON" in result.output
