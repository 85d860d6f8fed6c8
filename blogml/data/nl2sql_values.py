"""Numbers in Chinese questions, and where a condition value sits in its question.

Training labels need each condition value's character span in the question. On the real
data a quarter of the questions write some value differently from the SQL: numbers as
Chinese numerals (`十五`, `三点五`), with multipliers (`1.5万`, `5亿`), or in a bigger unit
than the column's (`5亿平` for 50000 in a `成交面积(万平)` column). `align_value` finds the
span in order of trust: verbatim, normalised (numbers parsed and compared by value, text
compared after width/case folding), fuzzy (the most similar substring), else failed.
`value_from_span` is its inverse for decoding: a predicted span back to the SQL value.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blogml.data.nl2sql import Question, Split, Table

KINDS = ("verbatim", "normalised", "fuzzy", "failed")

# difflib ratio = 2*matches / (len(span) + len(value)). At 0.8 a value of 3-4 characters may
# drop or add one character (世茂茂悦府 vs 世茂悦府: 0.89, 北京市 vs 北京: 0.8) and one of 5+
# characters may also have one substituted, but a 2-character value must match exactly
# (one shared character of two is no evidence) and a 4-character one with a substitution
# (0.75) is rejected. Numbers never align fuzzily: 12346 is not "almost" 12345.
FUZZY_THRESHOLD = 0.8
FUZZY_LENGTH_SLACK = 2  # spans of len(value) +- this many characters are compared

DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5,
          "六": 6, "七": 7, "八": 8, "九": 9}
SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
BIG_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
# Multiplier words at the start of a header's unit, longest first: 万平 -> 1e4.
MULTIPLIER_WORDS = (("万亿", 10**12), ("千亿", 10**11), ("百亿", 10**10), ("十亿", 10**9),
                    ("亿", 10**8), ("億", 10**8), ("千万", 10**7), ("百万", 10**6),
                    ("十万", 10**5), ("万", 10**4), ("萬", 10**4), ("千", 10**3),
                    ("百", 10**2))
# Units that start with a multiplier character but are units of their own (kilogram ...).
WHOLE_UNITS = ("千克", "千米", "千瓦", "千卡", "千焦", "千帕", "千伏", "千赫", "千字节",
               "百分", "千分", "万分")

_NUMERAL_CHARS = "".join(DIGITS) + "".join(SMALL_UNITS) + "".join(BIG_UNITS) + "点"
_ARABIC = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_TOKEN = re.compile(rf"{_ARABIC}|[{_NUMERAL_CHARS}]")
_PLAIN = re.compile(rf"(?:{_ARABIC}|\.[0-9]+)")
_RUN = re.compile(rf"(?:百分之)?(?:(?<![0-9])-|负)?[0-9.,{_NUMERAL_CHARS}]+%?")
_NOT_THOUSANDS = re.compile(r",(?![0-9]{3}(?![0-9]))")
_PARENTHESISED = re.compile(r"[(（]([^()（）]*)[)）]")
_UNIT_LABEL = re.compile(r"单位\s*[:：]\s*(\S+)")
_NUMERIC_LITERAL = re.compile(r"[-+]?(?:[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)")


# ---- text folding ---------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char == "，":  # the Chinese clause comma, not a thousands separator
        return char
    folded = unicodedata.normalize("NFKC", char).casefold()
    return folded if len(folded) == 1 else char


def fold(text: str) -> str:
    """Full-width to half-width and lower case, one character for one, so that an index
    into the folded text is an index into `text` (spans stay valid)."""
    return "".join(_fold_char(char) for char in text)


# ---- numbers --------------------------------------------------------------------------


def _digit_string(tokens: list[str]) -> Decimal | None:
    """`二〇一九` -> 2019: numerals read digit by digit (years, codes)."""
    if all(token in DIGITS for token in tokens):
        return Decimal("".join(str(DIGITS[token]) for token in tokens))
    if len(tokens) == 1 and _PLAIN.fullmatch(tokens[0]):
        return Decimal(tokens[0].replace(",", ""))
    return None


def _with_units(tokens: list[str]) -> Decimal | None:
    """Positional numerals: `两千三百` 2300, `十五万` 150000, `1.5万` 15000, `一亿二千万`
    120000000, `三万五千亿` 3.5e12, `一万二` 12000 (a last lone digit counts in the unit
    below the one before it)."""
    total, section = Decimal(0), Decimal(0)
    number: Decimal | None = None
    number_is_digit = False  # the pending number is a single digit (for 一万二)
    after_zero = after_big = has_digit = False
    no_unit = 10**30
    last_small, scale = no_unit, 0  # scale: place value of the last 万/亿 group
    for token in tokens:
        if token in DIGITS or token[0].isdigit():
            if number is not None:
                return None  # two numbers in a row: 三四十 is not a number
            has_digit, after_big = True, False
            if token in DIGITS and DIGITS[token] == 0:
                after_zero = True
                continue
            number = Decimal(DIGITS[token]) if token in DIGITS else Decimal(token.replace(",",
                                                                                         ""))
            number_is_digit = token in DIGITS or len(token) == 1
        elif token in SMALL_UNITS:
            unit = SMALL_UNITS[token]
            if unit >= last_small or (number is None and (unit != 10 or has_digit)):
                return None  # 十百, or 百 with no digit before it
            section += (number if number is not None else 1) * unit
            number, last_small, after_zero, after_big = None, unit, False, False
        elif token in BIG_UNITS:
            unit = BIG_UNITS[token]
            value = section + (number or 0)
            if value == 0 and not after_big:
                return None  # 万 with nothing before it
            if scale == 0 or unit > scale:  # 三万五千亿: everything so far times 亿
                total = (total + value) * unit
                scale = scale * unit if after_big else unit  # 万亿 is one unit
            elif unit < scale and value != 0:  # 一亿二千万: a lower group
                total += value * unit
                scale = unit
            else:
                return None  # 五万三万
            section, number, last_small = Decimal(0), None, no_unit
            after_zero, after_big = False, True
        else:
            return None
    if not has_digit and not tokens[0] == "十":
        return None
    if number is not None:
        last_unit = last_small if last_small != no_unit else scale
        if number_is_digit and not after_zero and last_unit >= 100:
            number *= last_unit // 10
        section += number
    return total + section


def _parse(text: str) -> Decimal | None:
    """The value of a folded numeral without sign or percent, exactly, or None."""
    if not text:
        return None
    if _PLAIN.fullmatch(text):
        return Decimal(text.replace(",", ""))
    integer, point, fraction = text.partition("点")
    if point:
        match = re.fullmatch(rf"([{''.join(DIGITS)}]+|[0-9]+)([{''.join(SMALL_UNITS)}"
                             rf"{''.join(BIG_UNITS)}]*)", fraction)
        int_value = _parse(integer) if integer else None
        if match is None or int_value is None or int_value != int_value.to_integral_value():
            return None
        digits = "".join(str(DIGITS.get(char, char)) for char in match[1])
        value = Decimal(f"{int(int_value)}.{digits}")
        for char in match[2]:
            value *= SMALL_UNITS.get(char) or BIG_UNITS[char]
        return value
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != text:
        return None
    as_digits = _digit_string(tokens)
    return as_digits if as_digits is not None else _with_units(tokens)


def parse_number(text: str) -> tuple[Decimal, bool] | None:
    """(value, is_percent) of a numeral, exactly; see `to_number`."""
    s = fold(str(text)).strip().replace(" ", "")
    sign = 1
    if s[:1] in ("-", "负", "+"):
        sign, s = (1 if s[0] == "+" else -1), s[1:]
    percent = False
    if s.startswith("百分之"):
        percent, s = True, s[3:]
    elif s.endswith("%"):
        percent, s = True, s[:-1]
    if s[:1] in ("-", "负") and sign == 1 and percent:  # 百分之负五
        sign, s = -1, s[1:]
    try:
        value = _parse(s)
    except (InvalidOperation, ValueError):
        return None
    return (sign * value, percent) if value is not None else None


def to_number(text: str) -> float | None:
    """A number written in digits, Chinese numerals or both, or None.

    `十五万` 150000, `1.5万` 15000, `两千三百` 2300, `三点五` 3.5, `二〇一九` 2019,
    `1,200` 1200, full-width `１２` 12, `负五` -5; percentages give the number of percent
    (`百分之五` and `5%` are 5). Anything else (`abc`, `万`, `三四十`) is None.
    """
    parsed = parse_number(text)
    return float(parsed[0]) if parsed is not None else None


def format_number(value: float | Decimal) -> str:
    """Canonical text of a number for SQL values: 15, 0.5, 50000, 1.2 (no float noise,
    no exponent, no trailing zeros; floats keep 15 significant digits)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        value = Decimal(f"{value:.15g}")
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


_CHINESE_DIGITS = "零一二三四五六七八九"


def _chinese_section(number: int) -> str:
    """1..9999 in numerals, with 零 for inner zeros: 1005 一千零五, 1050 一千零五十."""
    text, zero = "", False
    for factor, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = number // factor % 10
        if digit == 0:
            zero = bool(text)
            continue
        text += ("零" if zero else "") + _CHINESE_DIGITS[digit] + unit
        zero = False
    return text


def to_chinese(value: int | float | Decimal | str, *, liang: bool = False) -> str:
    """A non-negative number below 10^16 in Chinese numerals, as a question writes it:
    15 十五, 120 一百二十, 2300 二千三百 (两千三百 with `liang`), 150000 十五万, 3.5 三点五,
    0.05 零点零五. The inverse of `to_number` for such numbers (the synthetic data uses it)."""
    number = Decimal(str(value)).normalize()
    if number < 0 or number >= 10**16:
        raise ValueError(f"{value}: only 0 <= value < 10^16 has a numeral here")
    integer = int(number)
    fraction = format(number - integer, "f").partition(".")[2].rstrip("0")
    if integer == 0:
        text = "零"
    else:
        text, need_zero = "", False
        for factor, unit in ((10**12, "万亿"), (10**8, "亿"), (10**4, "万"), (1, "")):
            section = integer // factor % 10**4
            if section == 0:
                need_zero = bool(text)
                continue
            if text and (need_zero or section < 1000):
                text += "零"
            text += _chinese_section(section) + unit
            need_zero = False
        if text.startswith("一十"):
            text = text[1:]
    if liang:
        text = re.sub(r"(?<!十)二(?=[百千万亿])", "两", text)
    if fraction:
        text += "点" + "".join(_CHINESE_DIGITS[int(digit)] for digit in fraction)
    return text


# ---- column units ---------------------------------------------------------------------


def unit_text(header: str) -> str:
    """The unit a header declares: `成交面积(万平)` -> `万平`, `金额（亿元）` -> `亿元`,
    `单位：万元` -> `万元`; "" if none."""
    found = _PARENTHESISED.findall(header)
    if found:
        return found[-1].strip()
    label = _UNIT_LABEL.search(header)
    return label[1] if label else ""


def multiplier(header: str) -> tuple[str, int]:
    """The multiplier word at the start of a header's unit and its factor: `(万平)` ->
    ("万", 10000); ("", 1) for none, percent, or a unit of its own such as 千克."""
    unit = fold(unit_text(header))
    if not unit or unit.startswith(("%", "‰") + WHOLE_UNITS):
        return "", 1
    for word, factor in MULTIPLIER_WORDS:
        if unit.startswith(word):
            return word, factor
    return "", 1


def column_unit(header: str) -> float:
    """The factor of the column's unit: `面积(万平)` 1e4, `金额（亿元）` 1e8, `价格(元)` 1,
    `重量(千克)` 1 (a unit of its own), `增长率(%)` 1 (values are in percent), no unit 1."""
    return float(multiplier(header)[1])


def _in_column_unit(span: str, value: Decimal, header: str) -> Decimal:
    """A number written in a question, in the column's unit.

    The unit words decide: a number ending in the column's multiplier (`十五万` in a 万平
    column), or holding 万/亿 and at least as large as the multiplier (`5亿`, `一万五千`
    there), was said in base units and is divided; a bare number (`15`, `一百二十`, `七千九百`)
    is taken as already in the column's unit.
    """
    word, factor = multiplier(header)
    if factor == 1:
        return value
    folded = fold(span).rstrip("%")
    has_big_unit = any(char in folded for char in BIG_UNITS)
    if folded.endswith(word) or (has_big_unit and abs(value) >= factor):
        return value / factor
    return value


# ---- candidate numbers in a question --------------------------------------------------


@dataclass(frozen=True)
class NumberSpan:
    """A number written in a question: question[start:end] and its value."""

    start: int
    end: int
    value: Decimal
    percent: bool


@lru_cache(maxsize=2048)
def number_spans(question: str) -> tuple[NumberSpan, ...]:
    """The maximal numerals of a question, left to right (`十五万平` gives 十五万)."""
    folded = fold(question)
    spans = []
    for run in _RUN.finditer(folded):
        offset = run.start()
        for piece in _NOT_THOUSANDS.split(run.group()):
            start, end = offset, offset + len(piece)
            offset = end + 1
            # Trim what cannot start or end a number: 万科 is no number, 15. ends at 15.
            while start < end and folded[start] in ".,点万萬亿億百千":
                if folded.startswith("百分之", start):
                    break
                start += 1
            while start < end and folded[end - 1] in ".,点":
                end -= 1
            parsed = parse_number(folded[start:end]) if start < end else None
            if parsed is not None:
                spans.append(NumberSpan(start, end, parsed[0], parsed[1]))
    return tuple(spans)


# ---- alignment ------------------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """Where a value sits in its question: question[start:end]; failed: start = end = -1."""

    kind: str
    start: int
    end: int


FAILED = Alignment("failed", -1, -1)


def _overlaps(start: int, end: int, taken: Sequence[tuple[int, int]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in taken)


def _pick(kind: str, spans: list[tuple[int, int]],
          taken: Sequence[tuple[int, int]]) -> Alignment | None:
    """The first span no other value took, else the first span (two conditions may share
    one mention, e.g. 北京 for two columns)."""
    if not spans:
        return None
    free = [span for span in spans if not _overlaps(*span, taken)]
    start, end = (free or spans)[0]
    return Alignment(kind, start, end)


def _is_numeral(value: str) -> bool:
    return bool(value) and all(char in _NUMERAL_CHARS for char in value)


def _whole(question: str, start: int, end: int, value: str) -> bool:
    """A numeric value found verbatim must be a whole number there: 1 is not in 12, 1.5
    or 0.1, and 五 is not in 十五."""
    before = fold(question[start - 1]) if start > 0 else ""
    after = fold(question[end:end + 2])
    if _NUMERIC_LITERAL.fullmatch(value):
        if before and (before.isdigit() or before in ".,"):
            return False
        return not (after[:1].isdigit() or (after[:1] in (".", ",") and after[1:2].isdigit()))
    if _is_numeral(value):
        return not (before and before in _NUMERAL_CHARS) and not (after[:1] and
                                                                    after[:1] in _NUMERAL_CHARS)
    return True


def _occurrences(text: str, value: str) -> list[int]:
    found, index = [], text.find(value)
    while index >= 0:
        found.append(index)
        index = text.find(value, index + 1)
    return found


def _close(a: Decimal | float, b: Decimal | float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _numeric_spans(question: str, gold: Decimal, header: str) -> list[tuple[int, int]]:
    """Numerals of the question equal to `gold`: first those that decode to it
    (`value_from_span`), then those equal as written or divided by the column's unit or, for
    percentages, by 100."""
    factor = column_unit(header)
    spans = number_spans(question)
    decoded = [(s.start, s.end) for s in spans
               if _close(_in_column_unit(question[s.start:s.end], s.value, header), gold)]
    loose = [(s.start, s.end) for s in spans
             if _close(s.value, gold) or _close(float(s.value) / factor, gold)
             or (s.percent and _close(s.value / 100, gold))]
    return decoded + [span for span in loose if span not in decoded]


def _fuzzy(question: str, value: str) -> tuple[int, int] | None:
    """The substring most similar to `value` (difflib ratio >= FUZZY_THRESHOLD); spans
    start and end on characters of the value, ties go to the length nearest the value's
    and then to the leftmost."""
    folded, target = fold(question), fold(value)
    chars = set(target)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(target)
    best: tuple[float, int, int] | None = None
    best_span = None
    low = max(1, len(target) - FUZZY_LENGTH_SLACK)
    for length in range(low, len(target) + FUZZY_LENGTH_SLACK + 1):
        for start in range(0, len(folded) - length + 1):
            window = folded[start:start + length]
            if window[0] not in chars or window[-1] not in chars:
                continue
            matcher.set_seq1(window)
            if matcher.real_quick_ratio() < FUZZY_THRESHOLD or matcher.quick_ratio() < \
                    FUZZY_THRESHOLD:
                continue
            ratio = matcher.ratio()
            key = (ratio, -abs(length - len(target)), -start)
            if ratio >= FUZZY_THRESHOLD and (best is None or key > best):
                best, best_span = key, (start, start + length)
    return best_span


def align_value(question: str, value: Any, header: str, column_type: str, *,
                taken: Sequence[tuple[int, int]] = ()) -> Alignment:
    """Where condition `value` (of column `header`, type text or real) is in `question`.

    Verbatim beats normalised beats fuzzy; within a kind the leftmost span that no other
    condition has `taken` wins. A numeric value found verbatim is a whole number there
    (gold 1 does not match inside 12); a number written differently is found by value
    (`十五万平` is 15 in a 万平 column); numbers never align fuzzily.
    """
    value = str(value).strip()
    if not value or not question:
        return FAILED
    verbatim = [(i, i + len(value)) for i in _occurrences(question, value)
                if _whole(question, i, i + len(value), value)]
    found = _pick("verbatim", verbatim, taken)
    if found:
        return found
    parsed = parse_number(value) if _NUMERIC_LITERAL.fullmatch(fold(value)) or _is_numeral(
        fold(value)) or fold(value).endswith("%") else None
    if parsed is not None:
        return _pick("normalised", _numeric_spans(question, parsed[0], header), taken) or FAILED
    folded = fold(value)
    normalised = [(i, i + len(value)) for i in _occurrences(fold(question), folded)]
    found = _pick("normalised", normalised, taken)
    if found:
        return found
    span = _fuzzy(question, value)
    return Alignment("fuzzy", *span) if span else FAILED


def value_from_span(text: str, header: str, column_type: str) -> str:
    """The SQL value for a span cut from a question (decoding a prediction).

    Text columns take the span as is. Real columns take its number in the column's unit,
    canonically formatted (`十五万` in a 万平 column -> "15", `零点五` -> "0.5", `5亿` there
    -> "50000"); a span holding one numeral among other text (`15万平`) uses that numeral;
    a span with no readable number is returned as is.
    """
    if column_type != "real":
        return text
    parsed = parse_number(text)
    numeral = text
    if parsed is None:
        spans = number_spans(text)
        if len(spans) != 1:
            return text
        numeral, parsed = text[spans[0].start:spans[0].end], (spans[0].value, spans[0].percent)
    return format_number(_in_column_unit(numeral, parsed[0], header))


def align_conditions(question: Question, table: Table) -> list[Alignment]:
    """The alignment of each condition of a question, in order; a later condition avoids
    spans an earlier one took when the question offers another."""
    taken: list[tuple[int, int]] = []
    alignments = []
    for column, _op, value in (question.sql or {}).get("conds", []):
        alignment = align_value(question.question, value, table.header[column],
                                table.types[column], taken=taken)
        if alignment.kind != "failed":
            taken.append((alignment.start, alignment.end))
        alignments.append(alignment)
    return alignments


def alignment_report(split: Split) -> dict:
    """How the condition values of a split's questions with `sql` align.

    Fractions of condition values by kind (verbatim, normalised, fuzzy, failed), their
    counts, and the fractions of questions whose values all align (any kind but failed:
    these make training labels) and all verbatim (the rate without normalisation).
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
