"""`blogml score --official` against a reference written from the official evaluation's code
(ZhuiyiTechnology/nl2sql_baseline: `SQLNet.check_acc`, `DBEngine.execute`, `epoch_acc`), and
`blogml score` refusing a database or gold sql it cannot trust (exit 2, never a low EX)."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from blogml.cli.main import cli

TABLE = {"id": "t1", "name": "Table_t1", "title": "楼盘", "header": ["名称", "价格", "城市"],
         "types": ["text", "real", "text"],
         "rows": [["世茂茂悦府", 15.0, "上海"], ["大黄蜂", 1.0, "北京"], ["万科城", 8.5, "上海"],
                  ["碧桂园", 30.0, "广州"], ["龙湖", 15.0, "北京"]]}


def sql(sel, agg, conds, conn=0) -> dict:
    return {"sel": sel, "agg": agg, "cond_conn_op": conn, "conds": conds}


GOLD = [
    sql([0], [0], [[2, 2, "上海"], [1, 0, "2"]], conn=1),
    sql([0], [0], [[1, 0, "2"], [1, 1, "20"]], conn=1),  # two conditions on one column
    sql([0], [0], [[2, 2, "北京"]]),
    sql([1], [5], [[2, 2, "上海"]]),
    sql([0, 1], [0, 0], [[2, 2, "广州"]]),
    sql([0], [0], [[1, 2, "15"]]),
    sql([0], [4], [[2, 2, "上海"], [1, 1, "10"]]),  # connector 0, two conditions: "Error1"
    sql([0], [0], [[0, 2, "col_1"]]),  # the official query reads "col_1" as the column
    sql([1], [2], [[1, 0, "0"]]),  # true of every row
    sql([0], [0], []),  # no condition: "Error2"
]

# name: (gold line changed, its new sql, the official (LF, EX) verdict on that line)
SCENARIOS = {
    "reordered conditions": (0, sql([0], [0], [[1, 0, "2"], [2, 2, "上海"]], conn=1),
                             (True, True)),
    "swapped values on one column": (1, sql([0], [0], [[1, 0, "20"], [1, 1, "2"]], conn=1),
                                     (False, False)),
    "changed value": (2, sql([0], [0], [[2, 2, "上海"]]), (False, False)),
    "changed aggregation": (3, sql([1], [2], [[2, 2, "上海"]]), (False, False)),
    "reordered selections": (4, sql([1, 0], [0, 0], [[2, 2, "广州"]]), (True, True)),
    "15 written 15.0": (5, sql([0], [0], [[1, 2, "15.0"]]), (False, True)),
    "connector 1 on one condition": (2, sql([0], [0], [[2, 2, "北京"]], conn=1), (False, True)),
    "reordered conditions on one column": (1, sql([0], [0], [[1, 1, "20"], [1, 0, "2"]],
                                                  conn=1), (False, True)),
    "a column selected twice": (2, sql([0, 0], [0, 0], [[2, 2, "北京"]]), (False, True)),
    "no condition": (8, sql([1], [2], []), (False, False)),
    "15万 on a real column": (5, sql([0], [0], [[1, 2, "15万"]]), (False, False)),
    "the gold's error": (9, sql([9], [0], []), (False, True)),
    "an error other than the gold's": (6, sql([0], [4], [[5, 2, "上海"]]), (False, False)),
    "value naming a column": (7, sql([0], [0], [[2, 3, "深圳"]]), (False, True)),
    "connector fixed where gold has none": (6, sql([0], [4], [[2, 2, "上海"], [1, 1, "10"]],
                                                   conn=1), (False, False)),
}


# ---- the reference: the official rules, step by step as its code takes them -------------
# It pastes values into SQL exactly as DBEngine does, so that SQLite itself decides what a
# pasted value means; the values here are the tests' own constants.

OFFICIAL_AGG = {0: "", 1: "AVG", 2: "MAX", 3: "MIN", 4: "COUNT", 5: "SUM"}
OFFICIAL_OP = {0: ">", 1: "<", 2: "==", 3: "!="}
OFFICIAL_CONN = {0: "", 1: " AND ", 2: " OR "}


def reference_lf(pred: dict, gold: dict) -> bool:
    if pred["cond_conn_op"] != gold["cond_conn_op"]:
        return False
    if len(pred["sel"]) != len(gold["sel"]) or set(pred["sel"]) != set(gold["sel"]):
        return False
    pred_agg = {k: v for k, v in zip(pred["sel"], pred["agg"])}
    gold_agg = {k: v for k, v in zip(gold["sel"], gold["agg"])}
    if [pred_agg[k] for k in sorted(pred_agg)] != [gold_agg[k] for k in sorted(gold_agg)]:
        return False
    if len(pred["conds"]) != len(gold["conds"]):
        return False
    pred_op, pred_val, gold_op, gold_val = {}, {}, {}, {}
    for p, g in zip(pred["conds"], gold["conds"]):
        pred_op[p[0]], pred_val[p[0]] = p[1], p[2]
        gold_op[g[0]], gold_val[g[0]] = g[1], g[2]
    return (set(pred_op) == set(gold_op)
            and [pred_op[k] for k in sorted(pred_op)] == [gold_op[k] for k in sorted(gold_op)]
            and [pred_val[k] for k in sorted(pred_val)] == [gold_val[k] for k in sorted(gold_val)])


def reference_execute(db: sqlite3.Connection, table_id: str, query: dict):
    sel, agg, conds, conn = query["sel"], query["agg"], query["conds"], query["cond_conn_op"]
    if conn == 0 and len(conds) > 1:
        return "Error1"
    if len(sel) == 0 or len(conds) == 0 or len(agg) == 0:
        return "Error2"
    select = ",".join(f"{OFFICIAL_AGG[a]}(col_{s + 1})" if a else f"(col_{s + 1})"
                      for s, a in zip(sel, agg))
    where = OFFICIAL_CONN[conn].join(f'col_{c + 1} {OFFICIAL_OP[op]} "{value}"'
                                     for c, op, value in conds)
    try:
        cursor = db.execute(f"SELECT {select} FROM Table_{table_id} WHERE {where}")
    except sqlite3.Error:
        return "Error3"
    labels = [column[0] for column in cursor.description]
    return [tuple(sorted(dict(zip(labels, row)).values(), key=lambda x: str(x)))
            for row in cursor.fetchall()]


def reference_verdicts(gold: list[dict], preds: list[dict], db_path: Path) -> list[tuple]:
    db = sqlite3.connect(db_path)
    verdicts = []
    for g, p in zip(gold, preds):
        expected = reference_execute(db, g["table_id"], g["sql"])
        try:
            got = reference_execute(db, g["table_id"], p)
        except Exception:
            got = None
        verdicts.append((reference_lf(p, g["sql"]), expected == got))
    db.close()
    return verdicts


# ---- a split in the competition layout ---------------------------------------------------


def write_db(path: Path, columns: str = "col_1 text, col_2 real, col_3 text",
             name: str = "Table_t1") -> None:
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE {name} ({columns})")
    width = columns.count(",") + 1
    db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * width)})",
                   [row[:width] for row in TABLE["rows"]])
    db.commit()
    db.close()


def write_split(folder: Path, table: dict = TABLE) -> Path:
    """folder/val/{val.json, val.tables.json, val.db}; returns the val folder."""
    val = folder / "val"
    val.mkdir(parents=True)
    (val / "val.json").write_text("\n".join(
        json.dumps({"table_id": table["id"], "question": "?", "sql": g}, ensure_ascii=False)
        for g in GOLD), encoding="utf-8")
    (val / "val.tables.json").write_text(json.dumps(table, ensure_ascii=False),
                                         encoding="utf-8")
    write_db(val / "val.db")
    return val


def score(val: Path, preds: list[dict], *options: str):
    (val / "pred.json").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in preds),
                                   encoding="utf-8")
    return CliRunner().invoke(cli, ["score", "--gold", str(val / "val.json"), "--pred",
                                    str(val / "pred.json"), "--db", str(val / "val.db"),
                                    *options])


@pytest.fixture
def val(tmp_path: Path) -> Path:
    return write_split(tmp_path)


@pytest.mark.parametrize("name", ["identical", *SCENARIOS])
def test_official_scores_equal_the_reference(val, name):
    preds = copy.deepcopy(GOLD)
    changed, verdict = None, (True, True)
    if name in SCENARIOS:
        changed, preds[changed], verdict = SCENARIOS[name]
    result = score(val, preds, "--official")
    assert result.exit_code == 0, result.output
    official = json.loads(result.output)["official"]

    gold = [json.loads(line) for line in (val / "val.json").read_text("utf-8").splitlines()]
    verdicts = reference_verdicts(gold, preds, val / "val.db")
    assert [v for i, v in enumerate(verdicts) if i != changed] == [(True, True)] * (
        len(GOLD) - (changed is not None))
    if changed is not None:
        assert verdicts[changed] == verdict
    lf = sum(v[0] for v in verdicts) / len(verdicts)
    ex = sum(v[1] for v in verdicts) / len(verdicts)
    assert official == pytest.approx({"lf_accuracy": lf, "ex_accuracy": ex,
                                      "score": (lf + ex) / 2})


def test_blogml_execution_ignores_the_order_of_selections(val):
    preds = copy.deepcopy(GOLD)
    preds[4] = SCENARIOS["reordered selections"][1]
    metrics = json.loads(score(val, preds).output)
    assert metrics["ex_accuracy"] == 1.0 and metrics["lf_accuracy"] == 1.0
    assert "official" not in metrics


def test_a_database_path_with_hash_and_question_mark_opens_that_file(tmp_path):
    val = write_split(tmp_path / "runs#1?mode=rwc")
    result = score(val, GOLD, "--official")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["ex_accuracy"] == 1.0 and metrics["official"]["ex_accuracy"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs#1?mode=rwc"]  # nothing created


def test_a_missing_or_non_sqlite_database_is_exit_2_naming_it(val):
    (val / "val.db").write_text("not a database\n" * 100)
    result = score(val, GOLD)
    assert result.exit_code == 2
    assert f"{val / 'val.db'}: not a SQLite database" in result.output
    (val / "val.db").unlink()
    result = score(val, GOLD)
    assert result.exit_code == 2 and f"{val / 'val.db'}: database not found" in result.output


def test_a_database_without_the_table_is_exit_2_naming_the_table(val):
    (val / "val.db").unlink()
    write_db(val / "val.db", name="Table_other")
    result = score(val, GOLD)
    assert result.exit_code == 2
    assert f"{(val / 'val.db').resolve()}: table 'Table_t1' (id 't1') is not in the database" \
        in result.output
    assert f"{val / 'val.json'}:1 needs it" in result.output


def test_gold_sql_that_cannot_run_is_exit_2_naming_its_line(val):
    (val / "val.db").unlink()
    write_db(val / "val.db", columns="col_1 text, col_2 real")  # no col_3: gold lines fail
    result = score(val, GOLD)
    assert result.exit_code == 2
    assert f"{val / 'val.json'}:1: gold sql cannot run on table 'Table_t1'" in result.output
    assert f"{val / 'val.json'}:2:" not in result.output  # line 2 only uses col_2
    assert "no such column: col_3" in result.output


def test_official_needs_the_table_named_after_the_table_id(tmp_path):
    val = write_split(tmp_path, table={**TABLE, "id": "x-1"})  # still named Table_t1
    assert score(val, GOLD).exit_code == 0
    result = score(val, GOLD, "--official")
    assert result.exit_code == 2
    assert "table 'Table_x-1', which the official evaluation queries for table_id 'x-1'" in \
        result.output
