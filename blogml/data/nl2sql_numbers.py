"""Numbers as Chinese questions write them, and the units that scale them.

A question writes a SQL number as digits or Chinese numerals (`十五`, `三点五`, `二〇一九`),
with multipliers (`1.5万`, `5亿`), as a percentage (`百分之五`, `百分之百`), as money said
aloud (`一块一` 1.1, `两块五` 2.5, `三毛` 0.3, `十三块九毛` 13.9), or with a measure unit
that may differ from the column's (`0.3千克` for 300 in a `(克)` column). This module reads
all of them exactly (Decimal), finds them in a question (`number_spans`, `quantity_spans`)
and converts between a header's unit and the question's; `nl2sql_values` aligns and decodes
condition values with it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

# 幺 is 1 as digits are read aloud; 壹贰叁... are the formal numerals of amounts (叁万元整).
DIGITS = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4,
          "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "壹": 1, "贰": 2, "貳": 2, "叁": 3,
          "參": 3, "肆": 4, "伍": 5, "陆": 6, "陸": 6, "柒": 7, "捌": 8, "玖": 9}
SMALL_UNITS = {"十": 10, "百": 100, "千": 1000, "拾": 10, "佰": 100, "仟": 1000}
BIG_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
# Multiplier words at the start of a header's unit, longest first: 万平 -> 1e4.
MULTIPLIER_WORDS = (("万亿", 10**12), ("千亿", 10**11), ("百亿", 10**10), ("十亿", 10**9),
                    ("亿", 10**8), ("億", 10**8), ("千万", 10**7), ("百万", 10**6),
                    ("十万", 10**5), ("万", 10**4), ("萬", 10**4), ("千", 10**3),
                    ("百", 10**2))
# Units that start with a multiplier character but are units of their own (kilogram ...).
WHOLE_UNITS = ("千克", "千米", "千瓦", "千卡", "千焦", "千帕", "千伏", "千赫", "千字节",
               "百分", "千分", "万分")
# Measure units by dimension and factor to the dimension's base unit (folded spelling).
MEASURE_UNITS = {
    "毫克": ("mass", Decimal("0.001")), "mg": ("mass", Decimal("0.001")),
    "克": ("mass", Decimal(1)), "g": ("mass", Decimal(1)),
    "千克": ("mass", Decimal(1000)), "公斤": ("mass", Decimal(1000)),
    "kg": ("mass", Decimal(1000)), "斤": ("mass", Decimal(500)),
    "吨": ("mass", Decimal(10**6)),
    "毫升": ("volume", Decimal(1)), "ml": ("volume", Decimal(1)),
    "升": ("volume", Decimal(1000)), "l": ("volume", Decimal(1000)),
    "毫米": ("length", Decimal("0.001")), "mm": ("length", Decimal("0.001")),
    "厘米": ("length", Decimal("0.01")), "cm": ("length", Decimal("0.01")),
    "米": ("length", Decimal(1)), "m": ("length", Decimal(1)),
    "千米": ("length", Decimal(1000)), "公里": ("length", Decimal(1000)),
    "km": ("length", Decimal(1000)),
}
_MEASURE_WORDS = sorted(MEASURE_UNITS, key=len, reverse=True)  # longest first: 毫升 before 升

_NUMERAL_CHARS = "".join(DIGITS) + "".join(SMALL_UNITS) + "".join(BIG_UNITS) + "点"
_CN_DIGITS = "".join(DIGITS)
_ARABIC = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_TOKEN = re.compile(rf"{_ARABIC}|[{_NUMERAL_CHARS}]")
_PLAIN = re.compile(rf"(?:{_ARABIC}|\.[0-9]+)")
_RUN = re.compile(rf"(?:百分之)?(?:(?<![0-9])-|负)?[0-9.,{_NUMERAL_CHARS}]+%?")
_NOT_THOUSANDS = re.compile(r",(?![0-9]{3}(?![0-9]))")
_PARENTHESISED = re.compile(r"[(（]([^()（）]*)[)）]")
_UNIT_LABEL = re.compile(r"单位\s*[:：]\s*(\S+)")
NUMERIC_LITERAL = re.compile(r"[-+]?(?:[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)")
# Money said aloud: 一块一, 两块五, 十三块九毛, 3元5角, 一块五毛五; or tenths alone: 三毛, 5角.
_DIGIT = rf"[0-9{_CN_DIGITS}]"
# After 元 the tenths need their 毛/角 (`100元5月` is no 100.5); after 块 they may go
# without, but not before a measure word (`十一块一股` is 11 a share).
_MEASURE_WORD = "股平斤个件张瓶盒袋次份本支只台辆吨天人"
_MONEY = re.compile(
    rf"(?P<yuan>[0-9.{_NUMERAL_CHARS}]+)(?:块|元(?={_DIGIT}[毛角]))(?P<jiao>{_DIGIT})"
    rf"(?:[毛角](?:(?P<fen>{_DIGIT})分?)?|(?![{_MEASURE_WORD}]))(?![0-9{_NUMERAL_CHARS}])"
    rf"|(?<![0-9.{_NUMERAL_CHARS}])(?P<tenths>{_DIGIT})[毛角](?:(?P<cents>{_DIGIT})分)?")
# A sign said instead of a number: 为负, 负数, 负值, 是正的, 正数 (0 with `<` or `>`).
_IMPLIED_ZERO = re.compile(r"(?<=[为是呈])[负正](?:数|值)?|[负正](?:数|值)")
IMPLIED_SIGN_OPS = {"负": 1, "正": 0}  # 负 is said of `< 0`, 正 of `> 0`
# A trailing 千 that belongs to the unit after it: 5千克 is 5 kilograms, not 5000 克.
_UNIT_KILO = tuple(unit for unit in WHOLE_UNITS if unit.startswith("千") and unit != "千分")
# Not 千万, which also means "by all means".
_BARE_HUNDRED = ("百万", "百亿", "百億", "千亿", "千億")


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


# ---- reading numerals -----------------------------------------------------------------


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
    if not has_digit and tokens[0] != "十":
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
        match = re.fullmatch(rf"([{_CN_DIGITS}]+|[0-9]+)([{''.join(SMALL_UNITS)}"
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


def _digit_value(char: str | None) -> int:
    return 0 if char is None else DIGITS[char] if char in DIGITS else int(char)


def _money(match: re.Match) -> Decimal | None:
    """The amount of a `_MONEY` match: yuan + tenths (毛/角) + hundredths (分)."""
    if match["tenths"] is not None:
        return Decimal(_digit_value(match["tenths"])) / 10 + \
            Decimal(_digit_value(match["cents"])) / 100
    try:
        yuan = _parse(match["yuan"])
    except (InvalidOperation, ValueError):
        return None
    if yuan is None:
        return None
    return yuan + Decimal(_digit_value(match["jiao"])) / 10 + \
        Decimal(_digit_value(match["fen"])) / 100


def parse_number(text: str) -> tuple[Decimal, bool] | None:
    """(value, is_percent) of a numeral, exactly; see `to_number`."""
    s = fold(str(text)).strip().replace(" ", "")
    money = _MONEY.fullmatch(s)
    if money:
        amount = _money(money)
        return (amount, False) if amount is not None else None
    sign = 1
    if s[:1] in ("-", "负", "+"):
        sign, s = (1 if s[0] == "+" else -1), s[1:]
    percent = False
    if s.startswith("百分之"):
        percent, s = True, s[3:]
        if s[:1] in ("百", "千"):  # 百分之百: a percentage may say 百 for 一百
            s = "一" + s
    elif s.endswith("%"):
        percent, s = True, s[:-1]
    if s.startswith(_BARE_HUNDRED):  # 破百亿: 百 before 万/亿 is 一百
        s = "一" + s
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
    `1,200` 1200, full-width `１２` 12, `负五` -5, money said aloud (`一块一` 1.1, `三毛`
    0.3); percentages give the number of percent (`百分之五`, `5%` are 5, `百分之百` 100).
    Anything else (`abc`, `万`, `三四十`) is None.
    """
    parsed = parse_number(text)
    return float(parsed[0]) if parsed is not None else None


_ANY_NUMERAL = re.compile(rf"[0-9０-９{_NUMERAL_CHARS}]")


def has_number(text: str) -> bool:
    """Some digit or numeral in `text`: a cheap filter before reading numbers."""
    return _ANY_NUMERAL.search(text) is not None


def is_numeral(text: str) -> bool:
    """Only Chinese numeral characters (`十五`, `三点五`): a number however it parses."""
    return bool(text) and all(char in _NUMERAL_CHARS for char in text)


def numeric_value(value: str) -> Decimal | None:
    """The number a condition value states (`15`, `1,933`, `十五`, `5%`), or None for text
    that merely contains digits (`95号`, `2016-06-10`)."""
    folded = fold(value)
    if NUMERIC_LITERAL.fullmatch(folded) or is_numeral(folded) or folded.endswith("%"):
        parsed = parse_number(folded)
        return parsed[0] if parsed is not None else None
    return None


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


def close(a: Decimal | float, b: Decimal | float) -> bool:
    """Equal as numbers, up to float rounding."""
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


# ---- writing numerals -----------------------------------------------------------------

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


def to_chinese(value: float | Decimal | str, *, liang: bool = False) -> str:
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


def measure_unit(text: str) -> str:
    """The measure unit `text` starts with (folded: `千克`, `ml`), or ""; a Latin unit must
    end there (`m` of `mm` is not metres, `g` of `gb` not grams)."""
    for word in _MEASURE_WORDS:
        if text.startswith(word) and not (word.isascii() and text[len(word):len(word) + 1]
                                          .isascii() and text[len(word):len(word) + 1]
                                          .isalpha()):
            return word
    return ""


def header_measure(header: str) -> str:
    """The measure unit a header declares, `重量(千克)` -> 千克, `容量(ml)` -> ml, else ""."""
    unit = fold(unit_text(header))
    word = measure_unit(unit)
    return word if word == unit else ""


def in_column_unit(span: str, value: Decimal, header: str) -> Decimal:
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


# ---- numbers in a question ------------------------------------------------------------


@dataclass(frozen=True)
class NumberSpan:
    """A number written in a question: question[start:end] and its value."""

    start: int
    end: int
    value: Decimal
    percent: bool


def _longest_number(folded: str, start: int, end: int) -> NumberSpan | None:
    """The longest numeral starting at `start` within [start, end): `两万二一平米` reads
    两万二 (22000) and leaves 一; a trailing 千 of 千克 is the unit's, not the number's."""
    while start < end:
        stop = end
        while stop > start and folded.startswith(_UNIT_KILO, stop - 1):
            stop -= 1
        while stop > start and folded[stop - 1] in ".,点":
            stop -= 1
        parsed = parse_number(folded[start:stop]) if stop > start else None
        if parsed is not None:
            return NumberSpan(start, stop, parsed[0], parsed[1])
        end = stop - 1
    return None


def _money_spans(folded: str) -> list[NumberSpan]:
    spans = []
    for match in _MONEY.finditer(folded):
        amount = _money(match)
        if amount is not None:
            spans.append(NumberSpan(match.start(), match.end(), amount, False))
    return spans


@lru_cache(maxsize=4096)
def number_spans(question: str) -> tuple[NumberSpan, ...]:
    """The maximal numerals of a question, left to right (`十五万平` gives 十五万, `两块五`
    gives 2.5 for the whole)."""
    folded = fold(question)
    spans = []
    for run in _RUN.finditer(folded):
        offset = run.start()
        for piece in _NOT_THOUSANDS.split(run.group()):
            start, end = offset, offset + len(piece)
            offset = end + 1
            while start < end:
                # What cannot start a number: 万科 is no number, .5 of 1.5 is read with it.
                if folded[start] in ".,点万萬亿億百千" and not folded.startswith(
                        ("百分之",) + _BARE_HUNDRED, start):
                    start += 1
                    continue
                found = _longest_number(folded, start, end)
                if found is None:
                    start += 1
                    continue
                spans.append(found)
                start = found.end
    money = _money_spans(folded)
    kept = [s for s in spans if not any(s.start < m.end and m.start < s.end for m in money)]
    return tuple(sorted(kept + money, key=lambda s: s.start))


@dataclass(frozen=True)
class QuantitySpan:
    """A number with a measure unit in a question (`0.3千克`, `七百五十毫升`): its span
    including the unit, the number's end, and the amount in the dimension's base unit."""

    start: int
    number_end: int
    end: int
    dimension: str
    base_value: Decimal


def quantity_spans(question: str) -> list[QuantitySpan]:
    """The numbers of a question directly followed by a measure unit."""
    folded = fold(question)
    found = []
    for span in number_spans(question):
        rest = folded[span.end:].lstrip(" ")
        word = measure_unit(rest)
        if word and not span.percent:
            dimension, factor = MEASURE_UNITS[word]
            end = len(folded) - len(rest) + len(word)
            found.append(QuantitySpan(span.start, span.end, end, dimension, span.value * factor))
    return found


def implied_zero_spans(question: str) -> list[tuple[int, int, int]]:
    """(start, end, operator) where a question says a sign for a comparison with 0:
    `为负` / `负数` / `负值` (`< 0`), `为正` / `正数` (`> 0`)."""
    return [(m.start(), m.end(), IMPLIED_SIGN_OPS[m.group()[0]])
            for m in _IMPLIED_ZERO.finditer(fold(question))]


def is_implied_zero(text: str) -> bool:
    """A span that says only a sign (`负`, `负数`, `正值`): the number 0."""
    return bool(re.fullmatch(r"[负正](?:数|值)?", fold(text).strip()))
