"""Where a condition value sits in its question, and the value a question span names.

Training labels need each condition value's character span in the question. Real questions
write many values differently from the SQL: numbers as numerals or in another unit (`十五万平`
for 15 in a 万平 column, `一块一`, `百分之百`), dates another way (`12年的1月份` for
2012年1月), quantities reordered (`每袋300克` for 300g/袋), 0 as a sign (`为负` for `< 0`),
and names shortened or lengthened (`武大` for 武汉大学). `align_conditions` finds every
condition's span in order of trust, one kind after another for all conditions (`KINDS`),
so that a looser kind never takes a span a stricter one needs; a span is shared only by
equal values. `value_from_span` is the inverse for decoding (a predicted span back to the
SQL value) and `closest_cell` snaps a predicted text to the cell it names.

The number, date and cell relations live in `nl2sql_numbers`, `nl2sql_dates` and
`nl2sql_cells`; their public names used elsewhere are re-exported here.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from blogml.data.nl2sql_cells import (
    BARRIER,
    better_rival,
    cell_spans,
    chains,
    core_length,
    fit,
    is_evidence,
    letters,
)
from blogml.data.nl2sql_dates import (
    DateParts,
    date_rank,
    date_spans,
    date_value,
    spoken_year,
    whole_mention,
)
from blogml.data.nl2sql_numbers import (
    MEASURE_UNITS,
    MULTIPLIER_WORDS,
    NUMERIC_LITERAL,
    NumberSpan,
    close,
    column_unit,
    fold,
    format_number,
    has_number,
    header_measure,
    implied_zero_spans,
    in_column_unit,
    is_implied_zero,
    is_numeral,
    measure_unit,
    multiplier,
    number_spans,
    numeric_value,
    parse_number,
    quantity_spans,
    to_chinese,
    to_number,
    unit_text,
)

if TYPE_CHECKING:
    from blogml.data.nl2sql import Question, Split, Table

# The API, with the number helpers that other modules import from here (nl2sql_numbers').
__all__ = [
    "FAILED",
    "KINDS",
    "Alignment",
    "NumberSpan",
    "align_conditions",
    "align_value",
    "alignment_report",
    "closest_cell",
    "column_unit",
    "fold",
    "format_number",
    "multiplier",
    "number_spans",
    "parse_number",
    "to_chinese",
    "to_number",
    "unit_text",
    "value_from_span",
]

# In order of trust, the order they are tried in: verbatim; normalised (width and case
# folded, numbers compared by value, numerals inside text read); date (another way of
# writing a date or year); quantity (a measure value reordered or in another unit, 每袋300克
# for 300g/袋); unit (a multiplier only the header should carry, 一百亿 for 100); implied
# (a sign for 0: 为负 for `< 0`); fuzzy (a near-identical substring); cell (a shorter or
# longer form of the value, checked against the column's other cells); failed.
KINDS = ("verbatim", "normalised", "date", "quantity", "unit", "implied", "fuzzy", "cell",
         "failed")

# difflib ratio = 2*matches / (len(span) + len(value)). At 0.8 a value of 3-4 characters may
# drop or add one character (世茂茂悦府 vs 世茂悦府: 0.89, 北京市 vs 北京: 0.8) and one of 5+
# characters may also have one substituted, but a 2-character value must match exactly
# (one shared character of two is no evidence) and a 4-character one with a substitution
# (0.75) is rejected. Numbers and dates never align fuzzily: 12346 is not "almost" 12345.
FUZZY_THRESHOLD = 0.8
FUZZY_LENGTH_SLACK = 2  # spans of len(value) +- this many characters are compared
# A measure value: a number, a unit, and what it is per (300g/袋, 1.5L/瓶, 24分/次, 5ml), or
# an amount after its currency (Rmb13.90).
_CURRENCY = r"rmb|cny|usd|hkd|us\$|hk\$|\$|¥|￥"
_QUANTITY_VALUE = re.compile(rf"(?:(?P<currency>{_CURRENCY})\s*)?(?P<number>[0-9]+(?:\.[0-9]+)?)"
                             r"\s*(?P<unit>[^\s/0-9.]+)?(?:\s*/\s*(?P<per>[^\s/0-9.]+))?")
_CURRENCY_WORDS = ("块钱", "美元", "港元", "元", "块")  # said after an amount
# A bracketed part of a cell long enough to be a name of its own: 长效防冻液(乙二醇型发动机冷却液).
_MULTIPLIER_CHARS = frozenset("".join(word for word, _ in MULTIPLIER_WORDS))
_ALTERNATIVE_NAME = re.compile(r"[(（\[【]([^()（）\[\]【】]{4,})[)）\]】]")


# ---- a condition to align -------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """Where a value sits in its question: question[start:end]; failed: start = end = -1."""

    kind: str
    start: int
    end: int


FAILED = Alignment("failed", -1, -1)


@dataclass(frozen=True)
class _Claim:
    """A span a condition took, with its value's key and letters (see `_status`)."""

    start: int
    end: int
    key: str
    letters: str


@dataclass
class _Condition:
    """One condition value with what its matchers need, computed once."""

    question: str
    value: str
    header: str
    op: int | None = None
    cells: Sequence[str] = ()
    siblings: tuple[str, ...] = ()  # the values of the question's other conditions on the column
    claims: list[_Claim] = field(default_factory=list)  # spans other conditions took
    folded_question: str = field(init=False)

    def __post_init__(self) -> None:
        self.folded_question = fold(self.question)

    @cached_property
    def number(self) -> Decimal | None:
        return numeric_value(self.value)

    @cached_property
    def date(self) -> DateParts | None:
        return date_value(self.value)

    @cached_property
    def key(self) -> str:
        """Equal values share a key (5 and 5.0, ＡＢ and ab): they may share a span."""
        return format_number(self.number) if self.number is not None else letters(self.value)

    @property
    def is_text(self) -> bool:
        """Neither a number nor a date: a name, which may be said in part or fuzzily."""
        return self.number is None and self.date is None


def _occurrences(text: str, value: str) -> list[int]:
    found, index = [], text.find(value) if value else -1
    while index >= 0:
        found.append(index)
        index = text.find(value, index + 1)
    return found


def _whole(question: str, start: int, end: int, value: str) -> bool:
    """A numeric value found verbatim must be a whole number there: 1 is not in 12, 1.5
    or 0.1, and 五 is not in 十五."""
    before = fold(question[start - 1]) if start > 0 else ""
    after = fold(question[end:end + 2])
    if NUMERIC_LITERAL.fullmatch(value):
        if before and (before.isdigit() or before in ".,"):
            return False
        return not (after[:1].isdigit() or (after[:1] in (".", ",") and after[1:2].isdigit()))
    if is_numeral(value):
        return not (before and is_numeral(before)) and not (after[:1] and is_numeral(after[:1]))
    return True


# ---- the matchers, one per kind -------------------------------------------------------


def _verbatim(c: _Condition) -> list[tuple[int, int]]:
    return [(i, i + len(c.value)) for i in _occurrences(c.question, c.value)
            if _whole(c.question, i, i + len(c.value), c.value)]


def _numeric_spans(c: _Condition) -> list[tuple[int, int]]:
    """Numerals of the question equal to the gold number: first those that decode to it
    (`value_from_span`: in the column's multiplier or measure unit), then those equal as
    written or divided by the column's unit or, for percentages, by 100."""
    gold, header = c.number, c.header
    factor = column_unit(header)
    spans = number_spans(c.question)
    decoded = [(s.start, s.end) for s in spans
               if close(in_column_unit(c.question[s.start:s.end], s.value, header), gold)]
    unit = header_measure(header)
    if unit:
        dimension, unit_factor = MEASURE_UNITS[unit]
        decoded += [(q.start, q.end) for q in quantity_spans(c.question)
                    if q.dimension == dimension and close(q.base_value / unit_factor, gold)]
    loose = [(s.start, s.end) for s in spans
             if close(s.value, gold) or close(float(s.value) / factor, gold)
             or (s.percent and close(s.value / 100, gold))]
    return decoded + [span for span in loose if span not in decoded]


@lru_cache(maxsize=16384)
def _canonical(text: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`text` folded with every numeral written as its canonical number (九十五号 -> 95号,
    百分之零点四 -> 0.4%), and for each character the span of `text` it stands for."""
    folded = fold(text)
    out: list[str] = []
    origin: list[tuple[int, int]] = []
    position = 0
    for span in number_spans(text):
        for i in range(position, span.start):
            out.append(folded[i])
            origin.append((i, i + 1))
        number = format_number(span.value) + ("%" if span.percent else "")
        out.append(number)
        origin += [(span.start, span.end)] * len(number)
        position = span.end
    for i in range(position, len(folded)):
        out.append(folded[i])
        origin.append((i, i + 1))
    return "".join(out), tuple(origin)


def _unmarked(text: str) -> str:
    """`text` without punctuation and spaces, but with the point and percent sign of its
    numbers (晏子春秋／陈涛译注 -> 晏子春秋陈涛译注, 《卡农》 -> 卡农, 0.4% stays)."""
    return "".join(char for char in text if char in ".%"
                   or not unicodedata.category(char).startswith(("P", "Z", "C")))


def _normalised(c: _Condition) -> list[tuple[int, int]]:
    """A number by value; a text after folding, or with its numerals read (95号 in
    九十五号, 第4版 in 第四版), or without its punctuation (卡农 for 《卡农》)."""
    if c.number is not None:
        return _numeric_spans(c)
    folded = fold(c.value)
    spans = [(i, i + len(folded)) for i in _occurrences(c.folded_question, folded)]
    question, origin = _canonical(c.question)
    value = _canonical(c.value)[0]
    for target in dict.fromkeys((value, _unmarked(value))):
        for i in _occurrences(question, target):
            end = i + len(target)
            if (target[0].isdigit() and i > 0 and question[i - 1] in "0123456789.") or (
                    target[-1].isdigit() and question[end:end + 1].isdigit()):
                continue  # 5号 is not in 15号
            span = (origin[i][0], origin[end - 1][1])
            if span not in spans:
                spans.append(span)
    return spans


def _date(c: _Condition) -> list[tuple[int, int]]:
    """A date or year said another way: 2016年6月10号 for 2016-06-10, 12年的1月份 for
    2012年1月, 13年 for 2013; 6月10日 without its year; 2015年7月 for a day of it."""
    if c.date is None:
        return []
    return [(start, end) for _, start, end in date_spans(c.question, c.date)]


def _quantity(c: _Condition) -> list[tuple[int, int]]:
    """A measure value said with its number by value and its unit converted, what it is
    per before or after it: 每袋300克 or 300g for 300g/袋, 七百五十毫升 for 750mL, 0.3千克
    for 300g; a unit that is no measure must be said as is (24分 for 24分/次); an amount
    after its currency by value (十三块九毛 for Rmb13.90)."""
    if c.number is not None or not _quantity_value(c.value):
        return []
    match = _QUANTITY_VALUE.fullmatch(fold(c.value))
    amount, unit, per = Decimal(match["number"]), match["unit"] or "", match["per"]
    if unit and measure_unit(unit) == unit:
        dimension, factor = MEASURE_UNITS[unit]
        spans = [(q.start, q.end) for q in quantity_spans(c.question)
                 if q.dimension == dimension and close(q.base_value, amount * factor)]
    elif unit:  # said as is, maybe with a classifier: 两个人 for 2人
        spans = [(s.start, s.end + len(said)) for s in number_spans(c.question)
                 for said in (unit, "个" + unit)
                 if close(s.value, amount) and c.folded_question.startswith(said, s.end)]
    else:  # Rmb13.90: 13.9元, 十三块九毛
        spans = [(s.start, s.end + len(next((word for word in _CURRENCY_WORDS
                                                if c.folded_question.startswith(word, s.end)),
                                               ""))) for s in number_spans(c.question)
                 if close(s.value, amount) and not s.percent]
    return [_with_per(c.folded_question, start, end, per) for start, end in spans]


def _with_per(question: str, start: int, end: int, per: str | None) -> tuple[int, int]:
    """A quantity's span with what it is per when said next to it (每袋, 一袋, /袋)."""
    if not per:
        return start, end
    for word in ("每" + per, "一" + per):
        if question[:start].endswith(word):
            return start - len(word), end
    if question.startswith("/" + per, end):
        return start, end + 1 + len(per)
    return start, end


@lru_cache(maxsize=16384)
def _quantity_value(value: str) -> bool:
    """Whether a value is written as a quantity (a number with a unit or currency)."""
    match = _QUANTITY_VALUE.fullmatch(fold(value)) if has_number(value) else None
    return bool(match and (match["unit"] or match["currency"]))


@lru_cache(maxsize=16384)
def _letter_counts(text: str) -> Counter[str]:
    """How often each of a cell's `letters` occurs in it, its numerals read too."""
    return Counter(letters(text)) | Counter(letters(_canonical(text)[0]))


def _unit(c: _Condition) -> list[tuple[int, int]]:
    """A number said with a multiplier that only the header should carry (a column in 亿
    whose header does not say so): 一百亿 for 100, 十万平 for 10. The span leaves the
    multiplier out when the rest is the number (一百 of 一百亿: it decodes to 100 as the
    column's header reads); otherwise it is the whole numeral (7千万 for 70000)."""
    if c.number is None or c.number == 0 or multiplier(c.header)[1] != 1:
        return []
    exact, scaled = [], []
    for s in number_spans(c.question):
        text = c.folded_question[s.start:s.end]
        for word, factor in MULTIPLIER_WORDS:
            rest = text[:-len(word)]
            parsed = parse_number(rest) if text.endswith(word) and rest else None
            if parsed is not None and close(parsed[0], c.number):
                exact.append((s.start, s.end - len(word)))
                break
        else:
            ratio = s.value / c.number
            if any(char in _MULTIPLIER_CHARS for char in text) and any(
                    close(ratio, factor) for _, factor in MULTIPLIER_WORDS):
                scaled.append((s.start, s.end))
    return exact + scaled


def _implied(c: _Condition) -> list[tuple[int, int]]:
    """0 said as a sign: 为负 / 负数 for `< 0`, 为正 / 正数 for `> 0`."""
    if c.number != 0 or c.op is None:
        return []
    return [(start, end) for start, end, op in implied_zero_spans(c.question) if op == c.op]


def _fuzzy_window(question: str, target: str, core: str) -> tuple[float, int, int] | None:
    """(ratio, start, end) of the substring most similar to `target` (difflib ratio >=
    FUZZY_THRESHOLD), starting and ending on characters of it; ties go to the length
    nearest the target's and then to the leftmost. The window is then widened so as not to
    cut the mention: to the qualifying window around it that shares the most characters
    with the target (冯玉祥自 grows to 冯玉祥自己叙述 for 冯玉祥自述), then over adjacent
    characters of `core` that the window does not use yet (木森 of 木森林 for 木林森, but not
    the 有 of 有限公司)."""
    chars = set(target)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(target)
    windows: list[tuple[float, int, int]] = []
    low = max(1, len(target) - FUZZY_LENGTH_SLACK)
    for length in range(low, len(target) + FUZZY_LENGTH_SLACK + 1):
        for start in range(len(question) - length + 1):
            window = question[start:start + length]
            if window[0] not in chars or window[-1] not in chars:
                continue
            matcher.set_seq1(window)
            if matcher.real_quick_ratio() < FUZZY_THRESHOLD or matcher.quick_ratio() < \
                    FUZZY_THRESHOLD:
                continue
            ratio = matcher.ratio()
            if ratio >= FUZZY_THRESHOLD:
                windows.append((ratio, start, start + length))
    if not windows:
        return None

    def shared(window: tuple[float, int, int]) -> float:
        return round(window[0] * (window[2] - window[1] + len(target)) / 2, 6)

    ratio, start, end = max(windows,
                            key=lambda w: (w[0], -abs(w[2] - w[1] - len(target)), -w[1]))
    _, start, end = max((w for w in windows if w[1] <= start and end <= w[2]),
                        key=lambda w: (shared(w), -(w[2] - w[1])))
    unused = Counter(core) - Counter(question[start:end])
    while start > 0 and unused[question[start - 1]] > 0:
        start -= 1
        unused[question[start]] -= 1
    while end < len(question) and unused[question[end]] > 0:
        unused[question[end]] -= 1
        end += 1
    return ratio, start, end


def _fuzzy(c: _Condition) -> list[tuple[int, int]]:
    """A near-identical substring of a text value, compared as written and by its
    `letters` (新标准大学英语综合教程 for 新标准大学英语综合教程（3）), unless another cell
    fits it better."""
    if not c.is_text:
        return []
    core = letters(c.value)[:core_length(c.value)]
    found = [window for target in dict.fromkeys((fold(c.value), letters(c.value))) if target
             if (window := _fuzzy_window(c.folded_question, target, core))]
    if not found:
        return []
    _, start, end = max(found, key=lambda w: (w[0], -w[1]))
    end = _without_stray_tail(c.folded_question, start, end, c.value)
    if better_rival(c.question[start:end], c.value, c.cells):
        return []
    return [(start, end)]


def _without_stray_tail(question: str, start: int, end: int, value: str) -> int:
    """The end of a fuzzy window, cut after its last character of the value's core when
    the value's characters in the rest neither continue the value after its core
    (放疗科的医师 for 放疗科（医师）, 天山股 for 天山股份) nor end it with two or more
    (西安神电电器公司 for 西安神电电器有限公司): the 文 of S7-400指令列表的文档 only looks
    like the 文 of S7-400指令列表（中文）."""
    letters_, core_end = letters(value), core_length(value)
    core = set(letters_[:core_end])
    last = max((i for i in range(start, end) if question[i] in core), default=end - 1)
    tail = "".join(char for char in letters(question[last + 1:end]) if char in letters_)
    kept = not tail or letters_[core_end:].startswith(tail) or (
        len(tail) >= 2 and letters_.endswith(tail))
    return end if kept else last + 1


def _cell(c: _Condition) -> list[tuple[int, int]]:
    """A shorter or longer form of a text value (武大 for 武汉大学, 一五年第四季度 for
    2015年第4季度, 乙二醇型发动机冷却液 for 长效防冻液(乙二醇型发动机冷却液)), see
    `nl2sql_cells`, compared with their numerals read; then the same where other
    conditions' mentions are masked (上海久光百货 for 上海久光百货有限公司 once 上海 is
    上海市's: 久光百货); then one character in a run of them naming the column's values of
    the question (北 of 北上广 for 北京)."""
    if not c.is_text:
        return []
    question, origin = _canonical(c.question)
    cells = [_canonical(cell)[0] for cell in c.cells]
    names = [_canonical(c.value)[0]] + [_canonical(name)[0] for name in
                                       _ALTERNATIVE_NAME.findall(fold(c.value))]
    blocked = [claim for claim in c.claims if claim.key != c.key]
    masked = "".join(BARRIER if any(claim.start <= origin[i][0] < claim.end for claim in blocked)
                     else char for i, char in enumerate(question))
    spans = []
    for text in dict.fromkeys((question, masked)):
        for name in names:
            spans += [(origin[start][0], origin[end - 1][1])
                      for start, end in cell_spans(text, name, cells)]
    return spans + _enumerated(c)


def _enumerated(c: _Condition) -> list[tuple[int, int]]:
    """北 of 北上广 for 北京 when 上海 and 广州 are conditions on the same column: a run of
    two or more characters, each the first of a different one of these values."""
    firsts = [letters(value)[:1] for value in (c.value, *c.siblings)]
    own = firsts[0]
    if not own or len(set(firsts)) != len(firsts):
        return []
    spans = []
    for i in _occurrences(c.folded_question, own):
        start, end = i, i + 1
        while start > 0 and c.folded_question[start - 1] in firsts:
            start -= 1
        while end < len(c.folded_question) and c.folded_question[end] in firsts:
            end += 1
        run = c.folded_question[start:end]
        if len(run) >= 2 and len(set(run)) == len(run):
            spans.append((i, i + 1))
    return spans


_MATCHERS: dict[str, Callable[[_Condition], list[tuple[int, int]]]] = {
    "verbatim": _verbatim, "normalised": _normalised, "date": _date, "quantity": _quantity,
    "unit": _unit, "implied": _implied, "fuzzy": _fuzzy, "cell": _cell}


# ---- alignment ------------------------------------------------------------------------


def _status(span: tuple[int, int], condition: _Condition) -> int:
    """0: no other condition took any of `span`; 1: only an equal value did, or a
    condition whose span nests with it where the inner span's text is part of the outer
    value (香港 inside 香港国际机场 for the conditions 香港 and 香港国际机场); 2: a
    different value took some of it, which rules the span out."""
    start, end = span
    status = 0
    for claim in condition.claims:
        if not (start < claim.end and claim.start < end):
            continue
        inner_is_span = claim.start <= start and end <= claim.end
        inner_is_claim = start <= claim.start and claim.end <= end
        if claim.key == condition.key or ((claim.start, claim.end) != span and (
                (inner_is_span and letters(condition.question[start:end]) in claim.letters)
                or (inner_is_claim and letters(condition.question[claim.start:claim.end])
                    in letters(condition.value)))):
            status = 1
        else:
            return 2
    return status


def _align(condition: _Condition, kind: str) -> Alignment | None:
    """The first span of `kind` that no other condition took, else the first that
    `_status` allows to share; None if there is none."""
    if not condition.value or not condition.question:
        return None
    spans = _MATCHERS[kind](condition)
    ranked = sorted((status, i) for i, span in enumerate(spans)
                    if (status := _status(span, condition)) < 2)
    return Alignment(kind, *spans[ranked[0][1]]) if ranked else None


def align_value(question: str, value: Any, header: str, *,
                taken: Sequence[tuple[int, int]] = (), op: int | None = None,
                cells: Sequence[str] = ()) -> Alignment:
    """Where condition `value` (of column `header`, operator `op`) is in `question`: the
    first kind of `KINDS` that finds it, within a kind the leftmost span.

    `taken`: spans that other conditions of an equal value took, avoided while another
    span is found (a second condition on 5 takes the second 5); `align_conditions` also
    keeps different values apart. `cells`: the column's cells, which keep a shortened or
    fuzzy form from naming the wrong one. A numeric value found verbatim is a whole number
    there (gold 1 does not match inside 12).
    """
    condition = _Condition(question, str(value).strip(), header, op, cells)
    condition.claims = [_Claim(start, end, condition.key, "") for start, end in taken]
    for kind in KINDS[:-1]:
        found = _align(condition, kind)
        if found:
            return found
    return FAILED


def _column_cells(table: Table, column: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(row[column]) for row in table.rows
                               if row[column] is not None))


def align_conditions(question: Question, table: Table) -> list[Alignment]:
    """The alignment of each condition of a question, in order. Kinds are tried one after
    another for all conditions (every verbatim value first), so a looser match never takes
    the mention a stricter one needs; a span is taken by two conditions only when their
    values are equal, and an equal value prefers a mention of its own."""
    conds = (question.sql or {}).get("conds", [])
    conditions = [_Condition(question.question, str(value).strip(), table.header[column],
                             op, _column_cells(table, column),
                             tuple(str(other).strip() for j, (other_column, _, other)
                                   in enumerate(conds) if other_column == column and j != i))
                  for i, (column, op, value) in enumerate(conds)]
    found: list[Alignment | None] = [None] * len(conditions)
    for kind in KINDS[:-1]:
        for i, condition in enumerate(conditions):
            if found[i] is not None:
                continue
            condition.claims = [_Claim(a.start, a.end, conditions[j].key,
                                       letters(conditions[j].value))
                                for j, a in enumerate(found) if a is not None]
            found[i] = _align(condition, kind)
    return [alignment or FAILED for alignment in found]


def alignment_report(split: Split) -> dict:
    """How the condition values of a split's questions with `sql` align.

    Fractions of condition values by kind (`KINDS`), their counts, and the fractions of
    questions whose values all align (any kind but failed: these make training labels)
    and all verbatim (the rate without normalisation).
    """
    counts: Counter[str] = Counter()
    questions = aligned = all_verbatim = 0
    for question in split.questions:
        if question.sql is None:
            continue
        kinds = [a.kind for a in align_conditions(question, split.tables[question.table_id])]
        counts.update(kinds)
        questions += 1
        aligned += "failed" not in kinds
        all_verbatim += all(kind == "verbatim" for kind in kinds)
    values = sum(counts.values())
    report: dict[str, Any] = {kind: counts[kind] / values if values else 0.0 for kind in KINDS}
    report.update({
        "counts": {kind: counts[kind] for kind in KINDS},
        "values": values,
        "questions": questions,
        "questions_fully_aligned": aligned / questions if questions else 0.0,
        "questions_all_verbatim": all_verbatim / questions if questions else 0.0,
    })
    return report


# ---- decoding -------------------------------------------------------------------------


def _measure_in_column(text: str, header: str) -> Decimal | None:
    """A span's one quantity converted to the header's measure unit (`0.3千克` is 300 in a
    `(克)` column), or None."""
    unit = header_measure(header)
    if not unit:
        return None
    dimension, factor = MEASURE_UNITS[unit]
    found = [q for q in quantity_spans(text) if q.dimension == dimension]
    return found[0].base_value / factor if len(found) == 1 else None


def value_from_span(text: str, header: str, column_type: str) -> str:
    """The SQL value for a span cut from a question (decoding a prediction).

    Text columns take the span as is. Real columns take its number in the column's unit,
    canonically formatted (`十五万` in a 万平 column -> "15", `零点五` -> "0.5", `5亿` there
    -> "50000", `一块一` -> "1.1", `百分之百` -> "100", `0.3千克` in a `(克)` column ->
    "300"); a year (`15年` -> "2015"); a sign said for 0 (`负数` -> "0"); a span holding one
    numeral among other text (`15万平`) uses that numeral; a span with no readable number is
    returned as is.
    """
    if column_type != "real":
        return text
    if is_implied_zero(text):
        return "0"
    year = spoken_year(text)
    if year is not None:
        return str(year)
    measured = _measure_in_column(text, header)
    if measured is not None:
        return format_number(measured)
    parsed = parse_number(text)
    numeral = text
    if parsed is None:
        spans = number_spans(text)
        if len(spans) != 1:
            return text
        numeral, parsed = text[spans[0].start:spans[0].end], (spans[0].value, spans[0].percent)
    return format_number(in_column_unit(numeral, parsed[0], header))


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        previous, row[0] = row[0], i
        for j, char_b in enumerate(b, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1,
                                           previous + (char_a != char_b))
    return row[-1]


@lru_cache(maxsize=16384)
def _folded_counts(text: str) -> tuple[str, Counter[str]]:
    """A cell folded and how often each of its characters occurs (edit distance bounds)."""
    folded = fold(text)
    return folded, Counter(folded)


def _nearest_number(text: str, cells: Sequence[str], header: str) -> str | None:
    """The cell numerically nearest a real column's decoded span, or None if the span or
    no cell is a number."""
    decoded = to_number(value_from_span(text, header, "real"))
    numbers = [(abs(number - decoded), i) for i, cell in enumerate(cells)
               if (number := to_number(str(cell))) is not None] if decoded is not None else []
    return cells[min(numbers)[1]] if numbers else None


def _named_cell(text: str, cells: Sequence[str]) -> str | None:
    """The cell a span names by the relations alignment uses, in reverse, the first that
    holds for any cell: as a date (15年3月29日 for 2015-03-29), as a quantity (每袋五百克
    for 500克/袋), by a shorter or longer form (武大 for 武汉大学; the best fitting); None
    if none is named."""
    mention = whole_mention(text)
    if mention is not None:
        ranked = [(rank, i) for i, cell in enumerate(cells)
                  if (value := date_value(str(cell))) is not None
                  and (rank := date_rank(mention, value)) is not None]
        if ranked:
            return cells[min(ranked)[1]]
    if number_spans(text):
        for cell in cells:
            if _quantity_value(str(cell)) and _quantity(_Condition(text, str(cell), "")):
                return cell
    said = _canonical(text)[0]
    counts = Counter(letters(said)) | Counter(letters(text))  # numerals either way
    # The whole span is evidence only if at least (2n+1)/3 of its n characters are shared.
    needed = max(2, -(-(2 * len(said) + 1) // 3))
    best: tuple[tuple[float, float], int] | None = None
    chars = set(counts)
    for i, cell in enumerate(cells):
        if len(chars.intersection(letters(str(cell)))) < 2 or sum(
                min(count, counts[char]) for char, count in _letter_counts(str(cell)).items()
                if char in counts) < needed:
            continue
        cell = _canonical(str(cell))[0]
        found = chains(said, cell)
        # The whole span is the mention: what the best chain leaves out counts as its own.
        whole = found and dataclasses.replace(found[0], start=0, end=len(said),
                                              extra=len(said) - found[0].matched)
        if whole and is_evidence(whole, cell):
            score = fit(said, cell)
            if best is None or score > best[0]:
                best = (score, i)
    return cells[best[1]] if best else None


def closest_cell(text: str, cells: Sequence[str], *, header: str = "",
                 column_type: str = "text", max_edit_share: float | None = None) -> str | None:
    """The cell a question span most plausibly names, for snapping a predicted `==` value
    to the table: equal after folding (or with numerals read: 九十五号 for 95号); for a
    real column, the numerically nearest cell to the decoded span; else the cell it names
    as a date, a quantity or by a shorter or longer form (the relations alignment uses, in
    reverse); else the cell at the least edit distance, as the seed's baseline snaps
    values (ties: the first), if that distance is at most `max_edit_share` of the longer
    string's length (None: any distance). None when `cells` is empty or none is near enough.

    A loop over the cells with cheap filters and nothing precomputed but the per-string
    caches of `letters` and numeral reading: a few milliseconds for 2,000 cells.
    """
    if not cells:
        return None
    key, numbers = letters(text), bool(number_spans(text))
    canonical = _unmarked(_canonical(text)[0])
    for cell in cells:
        if (key and letters(str(cell)) == key) or (
                numbers and has_number(str(cell))
                and _unmarked(_canonical(str(cell))[0]) == canonical):
            return cell
    if column_type == "real":
        nearest = _nearest_number(text, cells, header)
        if nearest is not None:
            return nearest
    named = _named_cell(text, cells)
    if named is not None:
        return named
    folded = fold(text)
    counts = Counter(folded)
    best, best_cell = None, cells[0]
    for cell in cells:
        other, other_counts = _folded_counts(str(cell))
        if best is not None and abs(len(other) - len(folded)) >= best:
            continue
        # A lower bound first: each character the two do not share costs an edit.
        bound = max(len(folded), len(other)) - sum(min(count, counts[char]) for char, count
                                                   in other_counts.items() if char in counts)
        if best is not None and bound >= best:
            continue
        distance = bound if bound == max(len(folded), len(other)) else \
            _edit_distance(folded, other)
        if best is None or distance < best:
            best, best_cell = distance, cell
    if max_edit_share is not None and best > max_edit_share * max(len(folded),
                                                                  len(fold(str(best_cell)))):
        return None
    return best_cell
