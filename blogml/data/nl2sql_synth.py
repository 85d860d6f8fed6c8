"""Synthetic NL2SQL data in the competition's layout (`blogml data synth nl2sql`).

Small tables from a few domains (楼盘, 电影, 公司, 城市, 股票, 图书, 汽车, 高校) with text and
real columns, and templated Chinese questions over them: every aggregation, one to three
selected columns, one to three conditions with all four operators joined by and/or. Each
question names its condition columns and copies its values from the cells; numbers are
written as digits, Chinese numerals, with units or in a bigger unit (`十五万平` for 15 in a
万平 column, `5亿元` for 50000 in a 万元 column, `百分之五`), so the value alignment and
decoding of the real data are exercised. Every value is checked to align back to the span
it was written in and to decode to the gold value, so a tiny model can learn it exactly.

Deterministic: the same seed gives byte-identical files; each split has its own stream
(changing --train does not change val) and its own tables, as in the real data.
"""

from __future__ import annotations

import json
import math
import random
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

from blogml.data.nl2sql import SPLITS, Question, Table, split_paths
from blogml.data.nl2sql_values import (
    align_conditions,
    format_number,
    multiplier,
    to_chinese,
    unit_text,
    value_from_span,
)
from blogml.errors import BlogmlError

DEFAULT_COUNTS = {"train": 12000, "val": 300, "test": 300}
QUESTIONS_PER_TABLE = 10  # the real data has about 8

# ---- domains --------------------------------------------------------------------------

CITIES = ("北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "重庆", "西安", "苏州",
          "天津", "长沙", "郑州", "青岛", "厦门", "合肥", "宁波", "济南", "福州", "昆明", "大连",
          "沈阳", "无锡")
PROVINCES = ("广东", "浙江", "江苏", "四川", "湖北", "陕西", "湖南", "河南", "山东", "福建",
             "云南", "辽宁", "安徽")
PEOPLE = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴昊", "徐静",
          "孙丽", "马超", "朱琳", "胡军")
INDUSTRIES = ("互联网", "医药", "新能源", "金融", "制造", "零售", "教育", "物流", "半导体", "食品")
FIRMS = ("华信", "中联", "东方", "天瑞", "新泰", "国盛", "金鼎", "宏达", "长源", "海通", "恒瑞",
         "博达", "瑞科", "卓越", "鸿运")


@dataclass(frozen=True)
class Text:
    header: str
    pool: tuple[str, ...]


@dataclass(frozen=True)
class Real:
    header: str
    low: float
    high: float
    places: int = 0  # decimal places of the cells
    step: int = 1  # granularity of whole-number cells


@dataclass(frozen=True)
class Domain:
    entity: str  # what a row is: 楼盘
    key: Text  # the name column, first in every table, unique per table
    columns: tuple[Text | Real, ...]
    titles: tuple[str, ...]


def _names(prefixes: Sequence[str], suffixes: Sequence[str]) -> tuple[str, ...]:
    return tuple(p + s for p in prefixes for s in suffixes)


DOMAINS = (
    Domain("楼盘", Text("楼盘名称", _names(
        ("世茂", "保利", "碧桂园", "龙湖", "融创", "绿地", "中海", "华润", "招商", "金地", "旭辉",
         "阳光城", "富力", "远洋", "雅居乐"),
        ("茂悦府", "翡翠湾", "天悦", "云著", "春风里", "公园里", "滨江城", "御府", "星河湾",
         "锦绣苑", "海棠湾", "枫丹园"))),
        (Text("城市", CITIES),
         Text("区域", ("东城区", "西湖区", "浦东新区", "天河区", "南山区", "武侯区", "江北区",
                     "高新区", "滨江区", "雨花区")),
         Real("成交面积(万平)", 0.5, 30, places=1),
         Real("均价(元/平)", 8000, 90000, step=100),
         Real("成交套数", 10, 900),
         Text("开发商", ("世茂集团", "保利发展", "碧桂园集团", "龙湖集团", "融创中国", "绿地控股",
                      "中海地产", "华润置地", "招商蛇口", "金地集团")),
         Real("环比涨幅(%)", 0.1, 50, places=1)),
        ("重点城市楼盘成交情况", "本周热销楼盘", "新房项目成交数据")),
    Domain("电影", Text("影片名称", _names(
        ("流浪", "疯狂", "飞驰", "无名", "长空", "热辣", "孤注", "深海", "独行", "人生", "热血",
         "夏日", "星际", "暗夜", "归途"),
        ("地球", "外星人", "之王", "之战", "少年", "特工", "英雄", "归来", "奇遇", "追击",
         "行者"))),
        (Text("类型", ("科幻", "喜剧", "动作", "爱情", "悬疑", "动画", "剧情", "纪录")),
         Text("上映城市", CITIES),
         Text("导演", PEOPLE),
         Real("票房(万元)", 50, 300000),
         Real("评分", 3.0, 9.8, places=1),
         Real("上映天数", 1, 60),
         Real("排片占比(%)", 0.1, 40, places=1)),
        ("周票房排行", "院线电影票房统计", "影片上映数据")),
    Domain("公司", Text("公司名称", _names(
        FIRMS, ("科技", "集团", "股份", "电子", "医药", "能源", "控股", "物流"))),
        (Text("所属行业", INDUSTRIES),
         Text("总部城市", CITIES),
         Real("营收(亿元)", 1, 3000, places=1),
         Real("净利润（亿元）", 0.1, 500, places=1),
         Real("营收增长率(%)", 1, 80),
         Real("员工人数", 100, 200000, step=10)),
        ("上市公司年报摘要", "企业经营数据", "行业龙头公司业绩")),
    Domain("城市", Text("城市", CITIES),
        (Text("所在省份", PROVINCES),
         Real("GDP(亿元)", 3000, 45000),
         Real("常住人口(万人)", 300, 3200),
         Real("人均可支配收入(元)", 30000, 90000, step=10),
         Real("GDP增速(%)", 1.0, 9.5, places=1),
         Real("住宅供应面积(万平)", 200, 60000, step=10),
         Real("新房均价（元/平）", 8000, 90000, step=100)),
        ("主要城市经济数据", "城市发展统计", "重点城市年度指标")),
    Domain("股票", Text("证券简称", _names(
        FIRMS, ("科技", "股份", "电子", "药业", "能源", "银行", "证券", "汽车"))),
        (Text("所属行业", INDUSTRIES),
         Real("收盘价(元)", 2, 300, places=2),
         Real("涨跌幅(%)", 0.01, 10, places=2),
         Real("市盈率", 5, 120, places=1),
         Real("成交额(万元)", 1000, 900000, step=10),
         Real("总市值(亿元)", 10, 5000, places=1)),
        ("今日个股行情", "板块涨幅榜", "沪深股票交易数据")),
    Domain("图书", Text("书名", _names(
        ("夜", "星", "海", "风", "山", "城", "梦", "雪", "河", "月", "云", "光"),
        ("之书", "的故事", "旅行", "往事", "笔记", "简史", "手记", "漫游", "之歌", "物语"))),
        (Text("作者", PEOPLE),
         Text("出版社", ("人民出版社", "中信出版社", "译林出版社", "商务印书馆", "作家出版社",
                      "长江文艺出版社", "上海译文出版社", "新星出版社")),
         Real("定价(元)", 20, 150, places=1),
         Real("销量(万册)", 1, 500),
         Real("评分", 5.0, 9.9, places=1),
         Real("页数", 100, 900)),
        ("图书畅销榜", "年度好书销量", "新书上架信息")),
    Domain("汽车", Text("车型", _names(
        ("星越", "逸动", "瑞虎", "哈弗", "朗逸", "卡罗拉", "雅阁", "海豹", "帝豪", "博越", "秦",
         "汉"),
        ("PLUS", "Pro", "新能源", "运动版", "尊享版"))),
        (Text("品牌", ("比亚迪", "吉利", "长安", "奇瑞", "长城", "大众", "丰田", "本田", "特斯拉",
                     "蔚来", "理想", "小鹏")),
         Text("级别", ("紧凑型车", "中型车", "小型SUV", "紧凑型SUV", "中大型SUV", "MPV")),
         Real("月销量(辆)", 500, 60000),
         Real("指导价(万元)", 5, 60, places=1),
         Real("续航里程(公里)", 300, 700, step=5),
         Real("百公里油耗(升)", 3.0, 12.0, places=1)),
        ("汽车月度销量榜", "新车上市信息", "车型销量排行")),
    Domain("学校", Text("学校名称", _names(
        ("北方", "南方", "东海", "西部", "华夏", "长江", "黄河", "中原", "江南", "岭南", "塞北",
         "天府"),
        ("理工大学", "师范大学", "财经大学", "医科大学", "农业大学", "科技大学", "工业大学"))),
        (Text("所在城市", CITIES),
         Text("办学类型", ("综合", "理工", "师范", "财经", "医药", "农林")),
         Real("录取分数线", 450, 700),
         Real("招生人数", 500, 9000, step=10),
         Real("学费(元/年)", 3000, 9000, step=100),
         Real("就业率(%)", 80, 99, places=1)),
        ("高校招生数据", "各校录取分数线", "高校就业质量报告")),
)

# ---- phrasing -------------------------------------------------------------------------

# {c}: the condition column (its header without the unit), {v}: the value.
CONDITION_PHRASES = {
    ("text", 2): ("{c}是{v}", "{c}为{v}", "{c}是{v}", "{c}叫{v}"),
    ("text", 3): ("{c}不是{v}", "{c}不为{v}", "{c}不等于{v}"),
    ("real", 0): ("{c}大于{v}", "{c}超过{v}", "{c}高于{v}", "{c}在{v}以上", "{c}多于{v}"),
    ("real", 1): ("{c}小于{v}", "{c}低于{v}", "{c}不到{v}", "{c}在{v}以下", "{c}少于{v}"),
    ("real", 2): ("{c}是{v}", "{c}为{v}", "{c}等于{v}"),
    ("real", 3): ("{c}不是{v}", "{c}不等于{v}", "{c}不为{v}"),
}
CONNECTOR_WORDS = {1: ("且", "并且", "而且", "，", "同时"), 2: ("或", "或者", "，或者")}
# {c}: the selected column, {e}: the entity.
SELECT_PHRASES = {
    0: ("{c}",),
    1: ("平均{c}", "{c}的平均值", "{c}平均"),
    2: ("最高{c}", "最大{c}", "{c}的最大值"),
    3: ("最低{c}", "最小{c}", "{c}的最小值"),
    4: ("{e}数量", "{e}的个数"),
    5: ("{c}总和", "总{c}", "{c}合计", "{c}的总和"),
}
# {cond}: the conditions, {sel}: the selection, {e}: the entity, {what}: 是多少/是什么.
QUESTION_TEMPLATES = ("{cond}的{e}{sel}{what}", "{cond}的{e}，{sel}{what}？",
                      "请问{cond}的{e}的{sel}{what}", "我想知道{cond}的{e}{sel}",
                      "帮我查一下{cond}的{e}的{sel}", "你好，{cond}的{e}{sel}分别{what}呀",
                      "在{cond}的{e}中，{sel}{what}", "{cond}的那些{e}，{sel}{what}")
COUNT_TEMPLATES = ("{cond}的{e}有多少个", "{cond}的{e}一共有几个", "请问{cond}的{e}数量是多少",
                   "有几个{e}满足{cond}", "统计一下{cond}的{e}有多少")
LIST_TEMPLATES = ("{cond}的{e}有哪些", "哪些{e}{cond}", "请列出{cond}的{e}",
                  "{cond}的{sel}是什么", "{cond}的是哪些{e}")
_PLACEHOLDER = re.compile(r"(\{cond\}|\{sel\}|\{e\}|\{what\})")
_FULL_WIDTH = str.maketrans("0123456789.", "０１２３４５６７８９．")


def short_header(header: str) -> str:
    """The header as a question says it: `成交面积(万平)` -> 成交面积."""
    return re.sub(r"[(（][^()（）]*[)）]", "", header).strip()


# ---- tables ---------------------------------------------------------------------------


@dataclass
class _Table:
    id: str
    domain: Domain
    columns: list[Text | Real]
    cells: list[list[str | Decimal]]  # row-major, Decimal in real columns
    title: str

    @property
    def name(self) -> str:
        return f"Table_{self.id}"

    def column(self, index: int) -> list[str | Decimal]:
        return [row[index] for row in self.cells]

    def record(self) -> dict:
        rows = [[_json_cell(cell) for cell in row] for row in self.cells]
        return {"id": self.id, "name": self.name, "title": self.title, "header":
                [c.header for c in self.columns], "types": [_type(c) for c in self.columns],
                "rows": rows}


def _type(column: Text | Real) -> str:
    return "real" if isinstance(column, Real) else "text"


def _json_cell(cell: str | Decimal) -> str | int | float:
    if isinstance(cell, str):
        return cell
    return int(cell) if cell == cell.to_integral_value() else float(cell)


def _real_cell(rng: random.Random, column: Real) -> Decimal:
    if column.places:
        scale = 10**column.places
        return Decimal(rng.randint(round(column.low * scale), round(column.high * scale))) \
            .scaleb(-column.places)
    low, high = math.ceil(column.low / column.step), math.floor(column.high / column.step)
    return Decimal(rng.randint(low, high) * column.step)


def _make_table(rng: random.Random) -> _Table:
    domain = rng.choice(DOMAINS)
    texts = [c for c in domain.columns if isinstance(c, Text)]
    reals = [c for c in domain.columns if isinstance(c, Real)]
    chosen = set(rng.sample(texts, rng.randint(1, min(3, len(texts))))
                 + rng.sample(reals, rng.randint(2, min(4, len(reals)))))
    columns = [domain.key] + [c for c in domain.columns if c in chosen]
    count = rng.randint(8, min(20, len(domain.key.pool)))
    names = rng.sample(domain.key.pool, count)
    cells = [[name] + [rng.choice(c.pool) if isinstance(c, Text) else _real_cell(rng, c)
                       for c in columns[1:]] for name in names]
    return _Table(id=f"{rng.getrandbits(128):032x}", domain=domain, columns=columns,
                  cells=cells, title=rng.choice(domain.titles))


# ---- questions ------------------------------------------------------------------------


def _nice(value: Decimal, rounding: str) -> Decimal:
    """A round number just below (ROUND_FLOOR) or above (ROUND_CEILING) `value`, at its
    leading digit: 23456 -> 20000 or 30000, 3.7 -> 3 or 4, 20000 -> 10000 or 30000."""
    step = Decimal(1).scaleb(value.adjusted())
    nice = (value / step).to_integral_value(rounding) * step
    if nice == value:
        nice += -step if rounding == ROUND_FLOOR else step
    return max(nice, Decimal(0)).normalize()


def _threshold(rng: random.Random, table: _Table, column: int, anchor: int,
               op: int) -> Decimal:
    """A number the anchor row's cell is above (op 0, >) or below (op 1, <): another
    cell or a round number."""
    value = table.cells[anchor][column]
    assert isinstance(value, Decimal)
    others = sorted({c for c in table.column(column) if (c < value if op == 0 else c > value)})
    if others and rng.random() < 0.5:
        return rng.choice(others)
    return _nice(value, ROUND_FLOOR if op == 0 else ROUND_CEILING)


def _condition_value(rng: random.Random, table: _Table, column: int, op: int,
                     anchor: int) -> str | Decimal | None:
    cell = table.cells[anchor][column]
    if op == 2:
        return cell
    if op == 3:
        others = sorted({c for c in table.column(column) if c != cell}, key=str)
        return rng.choice(others) if others else None
    return _threshold(rng, table, column, anchor, op)


def _conditions(rng: random.Random, table: _Table) -> list[tuple[int, int, str | Decimal]]:
    """One to three conditions, true of one anchor row (so an AND query has an answer);
    a column appears twice only as a > and < pair, values differ."""
    anchor = rng.randrange(len(table.cells))
    wanted = rng.choices((1, 2, 3), weights=(50, 38, 12))[0]
    conds: list[tuple[int, int, str | Decimal]] = []
    for _ in range(30):
        if len(conds) == wanted:
            break
        column = rng.randrange(len(table.columns))
        real = isinstance(table.columns[column], Real)
        op = rng.choices((0, 1, 2, 3), weights=(35, 35, 18, 12))[0] if real else \
            rng.choices((2, 3), weights=(80, 20))[0]
        ops = {o for c, o, _ in conds if c == column}
        if ops and not (real and ops | {op} == {0, 1} and op not in ops):
            continue
        value = _condition_value(rng, table, column, op, anchor)
        if value is None or any(str(value) == str(v) for _, _, v in conds):
            continue
        conds.append((column, op, value))
    return conds


def _selection(rng: random.Random, table: _Table,
               cond_columns: set[int]) -> list[tuple[int, int]]:
    """(column, aggregation) pairs: one column with any of the six aggregations, or two
    or three columns, sometimes aggregated; condition columns are avoided where possible."""
    reals = [i for i, c in enumerate(table.columns) if isinstance(c, Real)]
    free = [i for i in range(len(table.columns)) if i not in cond_columns]
    count = rng.choices((1, 2, 3), weights=(62, 28, 10))[0]
    if count == 1:
        agg = rng.choices(range(6), weights=(30, 14, 14, 14, 14, 14))[0]
        if agg == 4:
            return [(0, 4)]
        pool = reals if agg else list(range(len(table.columns)))
        preferred = [i for i in pool if i not in cond_columns]
        return [(rng.choice(preferred or pool), agg)]
    pool = free if len(free) >= count else list(range(len(table.columns)))
    columns = sorted(rng.sample(pool, count))
    aggregate = rng.random() < 0.3
    return [(c, rng.choice((0, 1, 2, 3, 5)) if aggregate and c in reals else 0)
            for c in columns]


def _render_number(rng: random.Random, value: Decimal, header: str) -> str:
    """`value` (in the column's unit) as a question writes it: digits, numerals, with the
    unit, in a bigger unit, with thousands separators or full-width digits."""
    unit = unit_text(header)
    word, factor = multiplier(header)
    percent = unit in ("%", "％")
    canonical = format_number(value)
    suffix = unit if unit and not percent else ""
    options: list[tuple[int, str]] = [(4, canonical)]
    if suffix:
        options.append((2, canonical + suffix))
    numeral = to_chinese(value, liang=rng.random() < 0.5)
    options.append((2, numeral))
    if suffix:
        options.append((2, numeral + suffix))
    if percent:
        options += [(3, "百分之" + numeral), (2, canonical + "%")]
    total = value * factor
    base = unit[len(word):] if word else suffix
    for big, char in ((10**8, "亿"), (10**4, "万")):
        scaled = (total / big).normalize()
        if factor < big <= total and -scaled.as_tuple().exponent <= 1:
            options += [(2, format_number(scaled) + char + base),
                        (1, to_chinese(scaled) + char + base)]
            break
    if value == value.to_integral_value() and value >= 1000:
        options.append((1, f"{int(value):,}"))
    if len(canonical) <= 6:
        options.append((1, canonical.translate(_FULL_WIDTH)))
    weights, texts = zip(*options)
    return rng.choices(texts, weights=weights)[0]


def _pieces(template: str, fill: dict[str, list]) -> list:
    out: list = []
    for part in _PLACEHOLDER.split(template):
        if part in fill:
            out += fill[part]
        elif part:
            out.append(part)
    return out


def _render(rng: random.Random, table: _Table, selection: list[tuple[int, int]],
            conds: list[tuple[int, int, str | Decimal]],
            conn: int) -> tuple[str, list[tuple[int, int]]]:
    """The question and, per condition, the character range its value was written in."""
    entity = table.domain.entity
    cond_parts: list[list] = []
    for index, (column, op, value) in enumerate(conds):
        spec = table.columns[column]
        text = value if isinstance(value, str) else _render_number(rng, value, spec.header)
        phrase = rng.choice(CONDITION_PHRASES[(_type(spec), op)])
        before, after = phrase.split("{v}")
        name = short_header(spec.header)
        cond_parts.append([before.format(c=name), (index, text), after.format(c=name)])
    joined: list = list(cond_parts[0])
    for position, part in enumerate(cond_parts[1:], start=1):
        last = position == len(cond_parts) - 1
        joined += [rng.choice(CONNECTOR_WORDS[conn]) if last else "、"] + part
    selected = []
    for column, agg in selection:
        phrase = rng.choice(SELECT_PHRASES[agg])
        selected.append(phrase.format(c=short_header(table.columns[column].header), e=entity))
    sel = selected[0] if len(selected) == 1 else \
        "、".join(selected[:-1]) + rng.choice(("和", "以及", "、")) + selected[-1]
    text_selected = any(agg == 0 and isinstance(table.columns[c], Text) for c, agg in selection)
    if selection == [(0, 4)]:
        template = rng.choice(COUNT_TEMPLATES)
    elif selection == [(0, 0)]:
        template = rng.choice(LIST_TEMPLATES)
    else:
        template = rng.choice(QUESTION_TEMPLATES)
    pieces = _pieces(template, {"{cond}": joined, "{sel}": [sel], "{e}": [entity],
                                "{what}": ["是什么" if text_selected else "是多少"]})
    question, spans = "", [(0, 0)] * len(conds)
    for piece in pieces:
        if isinstance(piece, tuple):
            spans[piece[0]] = (len(question), len(question) + len(piece[1]))
            piece = piece[1]
        question += piece
    return question, spans


def _aligns(question: str, sql: dict, spans: list[tuple[int, int]], table: Table) -> bool:
    """Each value aligns verbatim or normalised inside the range it was written in, and the
    aligned span decodes (`value_from_span`) to the gold value."""
    alignments = align_conditions(Question(0, table.id, question, sql), table)
    for (column, _, value), alignment, (start, end) in zip(sql["conds"], alignments, spans):
        if alignment.kind not in ("verbatim", "normalised"):
            return False
        if not start <= alignment.start < alignment.end <= end:
            return False
        decoded = value_from_span(question[alignment.start:alignment.end],
                                  table.header[column], table.types[column])
        if decoded != value:
            return False
    return True


def _question(rng: random.Random, table: _Table, checked: Table) -> dict:
    """One question on `table` whose values all align back to where they were written."""
    for _ in range(50):
        conds = _conditions(rng, table)
        selection = _selection(rng, table, {c for c, _, _ in conds})
        conn = 0 if len(conds) == 1 else rng.choices((1, 2), weights=(65, 35))[0]
        question, spans = _render(rng, table, selection, conds, conn)
        sql = {"sel": [c for c, _ in selection], "agg": [a for _, a in selection],
               "cond_conn_op": conn,
               "conds": [[c, op, v if isinstance(v, str) else format_number(v)]
                         for c, op, v in conds]}
        if _aligns(question, sql, spans, checked):
            return {"table_id": table.id, "question": question, "sql": sql}
    raise RuntimeError(f"no alignable question for table {table.id} after 50 tries")


# ---- files ----------------------------------------------------------------------------


def _write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")


def _write_db(path: Path, tables: list[_Table]) -> None:
    """One SQLite table per table, named by `name`, columns col_1..col_n (TEXT or REAL),
    rows inserted with bound parameters."""
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        with connection:
            for table in tables:
                columns = ", ".join(f"col_{i + 1} {'REAL' if _type(c) == 'real' else 'TEXT'}"
                                    for i, c in enumerate(table.columns))
                connection.execute(f'CREATE TABLE "{table.name}" ({columns})')
                marks = ", ".join("?" * len(table.columns))
                connection.executemany(
                    f'INSERT INTO "{table.name}" VALUES ({marks})',
                    [[cell if isinstance(cell, str) else float(cell) for cell in row]
                     for row in table.cells])
    finally:
        connection.close()


def synth_split(rng: random.Random, count: int) -> tuple[list[_Table], list[dict]]:
    """`count` questions over about count/QUESTIONS_PER_TABLE fresh tables."""
    tables = [_make_table(rng) for _ in range(max(1, math.ceil(count / QUESTIONS_PER_TABLE)))]
    checked = [Table(**t.record()) for t in tables]
    questions = [_question(rng, tables[i % len(tables)], checked[i % len(tables)])
                 for i in range(count)]
    return tables, questions


def synth_nl2sql(out: str | Path, seed: int = 0,
                 counts: dict[str, int] | None = None) -> dict[str, tuple[int, int]]:
    """Write DIR/{train,val,test}/{split}.json, .tables.json and .db; returns (questions,
    tables) per split. The test questions carry no `sql`, as in the competition."""
    counts = {**DEFAULT_COUNTS, **(counts or {})}
    for split, count in counts.items():
        if split not in SPLITS:
            raise BlogmlError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
        if count < 1:
            raise BlogmlError(f"--{split} {count}: must be at least 1")
    written = {}
    for split in SPLITS:
        rng = random.Random(f"blogml-nl2sql:{seed}:{split}")
        tables, questions = synth_split(rng, counts[split])
        if split == "test":
            questions = [{k: v for k, v in q.items() if k != "sql"} for q in questions]
        questions_path, tables_path, db_path = split_paths(out, split)
        try:
            questions_path.parent.mkdir(parents=True, exist_ok=True)
            _write_lines(questions_path, questions)
            _write_lines(tables_path, [t.record() for t in tables])
            _write_db(db_path, tables)
        except OSError as error:
            raise BlogmlError(f"{error.filename or out}: cannot write ({error.strerror})") \
                from None
        written[split] = (len(questions), len(tables))
    return written
