"""Dates and years as tables store them and as Chinese questions say them.

A table writes `2016-06-10`, `2016.6.10`, `2018/5/29`, `20190331`, `2012年1月`, `2013年`
or a bare year `2016`; a question says `2016年6月10号`, `12年的1月份`, `一八年的五月二十九日`,
`13年`, or leaves the year out (`6月10日`). `date_value` reads a value or cell as a date,
`date_mentions` finds the dates of a question part by part (year, month, day) and
`date_rank` says whether, and how exactly, a run of those parts names a value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from blogml.data.nl2sql_numbers import DIGITS, fold

_CN = "零〇一幺二三四五六七八九"
_CN_DAY = (r"三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九]")
_YEAR = (rf"(?<![0-9])(?:[0-9]{{4}}|[0-9]{{2}})|(?<![{_CN}十])(?:[{_CN}]{{4}}|[{_CN}]{{2}})")
_MONTH = r"(?<![0-9])(?:1[0-2]|0?[1-9])(?![0-9])|十[一二]?|[一二三四五六七八九]"
_DAY = rf"(?<![0-9])(?:3[01]|[12][0-9]|0?[1-9])(?![0-9])|{_CN_DAY}"
# Numeric forms first (2016-06-10, 2016.6, 20190331), then the spoken one, each part
# optional: 2016年6月10号, 12年的1月份, 6月10日, 13年. A day needs 日/号 unless a month
# precedes it (7月17在北美); `_mention_parts` drops a bare day otherwise.
_MENTION = re.compile(
    rf"(?<![0-9.])(?P<ny>(?:19|20)[0-9]{{2}})(?P<nsep>[-./])(?P<nm>1[0-2]|0?[1-9])"
    rf"(?:(?P=nsep)(?P<nd>3[01]|[12][0-9]|0?[1-9]))?(?![0-9])"
    rf"|(?<![0-9])(?P<cy>(?:19|20)[0-9]{{2}})(?P<cm>0[1-9]|1[0-2])(?P<cd>0[1-9]|[12][0-9]|3[01])"
    rf"(?![0-9])"
    rf"|(?:(?P<y>{_YEAR})年(?:的)?)?(?:(?P<m>{_MONTH})月份?(?:的)?)?"
    rf"(?:(?P<d>{_DAY})(?P<dsuffix>[日号])?(?![0-9{_CN}十万千百亿]))?")
_VALUE_FORMS = [re.compile(pattern) for pattern in (
    r"(?P<y>[0-9]{4})\s*[-./年]\s*(?P<m>[0-9]{1,2})\s*[-./月]\s*(?P<d>[0-9]{1,2})\s*[日号]?",
    r"(?P<y>(?:19|20)[0-9]{2})(?P<m>[0-9]{2})(?P<d>[0-9]{2})",
    r"(?P<y>[0-9]{4})\s*[-./年]\s*(?P<m>[0-9]{1,2})\s*(?:月份?)?",
    r"(?P<y>[0-9]{4}|[0-9]{2})\s*年?度?",
    r"(?P<m>[0-9]{1,2})\s*月份?(?:\s*(?P<d>[0-9]{1,2})\s*[日号])?",
)]
_VALUE_TRAILER = re.compile(r"[\s/.\-]+$")
PARTS = ("year", "month", "day")


@dataclass(frozen=True)
class DateParts:
    """A date that may lack parts: 2012年1月 is (2012, 1, None), 6月10日 (None, 6, 10).
    `short_year`: the year was said with two digits (13年), so only year % 100 is known."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    short_year: bool = False

    def present(self) -> tuple[str, ...]:
        return tuple(part for part in PARTS if getattr(self, part) is not None)


@dataclass(frozen=True)
class DatePart:
    """One part of a date said in a question: question[start:end] (`12年`, `1月份`)."""

    name: str
    start: int
    end: int
    value: int


def _spoken_int(text: str) -> int:
    """12, 一二 (digit by digit), 十二, 二十九, 三十一: the small numbers of dates."""
    if text.isdigit():
        return int(text)
    if "十" not in text:
        return int("".join(str(DIGITS[char]) for char in text))
    tens, _, units = text.partition("十")
    return (DIGITS[tens] if tens else 1) * 10 + (DIGITS[units] if units else 0)


def full_year(year: int, short: bool) -> int:
    """13 -> 2013, 98 -> 1998: a two-digit year in the century a table most likely means."""
    if not short:
        return year
    return 2000 + year if year < 50 else 1900 + year


def _valid(month: int | None, day: int | None) -> bool:
    return (month is None or 1 <= month <= 12) and (day is None or 1 <= day <= 31)


@lru_cache(maxsize=8192)
def date_value(value: str) -> DateParts | None:
    """A condition value or cell that is a date or a year, else None: `2016-06-10`,
    `2018/5/29//`, `20190331`, `2016.09`, `2012年1月`, `2013年`, `2016` (a year between
    1900 and 2099), `5月`, `6月10日`."""
    text = _VALUE_TRAILER.sub("", fold(str(value)).strip())
    for form in _VALUE_FORMS:
        match = form.fullmatch(text)
        if not match:
            continue
        groups = match.groupdict()
        year = int(groups["y"]) if groups.get("y") else None
        month = int(groups["m"]) if groups.get("m") else None
        day = int(groups["d"]) if groups.get("d") else None
        short = year is not None and len(groups["y"]) == 2
        if short and not text.endswith(("年", "年度")):
            return None  # a bare 13 is no year
        if year is not None and not short and not 1900 <= year <= 2099:
            return None
        return DateParts(year, month, day, short) if _valid(month, day) else None
    return None


def _mention_parts(match: re.Match) -> list[DatePart]:
    """The parts of one `_MENTION` match, each with its own span (a part's span holds its
    年/月/日 word, so 12年的1月份 gives 12年 and 1月份)."""
    groups = [("year", "ny"), ("month", "nm"), ("day", "nd"), ("year", "cy"), ("month", "cm"),
              ("day", "cd"), ("year", "y"), ("month", "m"), ("day", "d")]
    parts = []
    for name, group in groups:
        if match.group(group) is None:
            continue
        start, end = match.span(group)
        text = match.group(group)
        if group in ("y", "m"):
            end += 1  # 年 / 月
            if group == "m" and match.string.startswith("份", end):
                end += 1
        if group == "d":
            if match.group("dsuffix") is None and match.group("m") is None:
                continue  # a bare number is no day
            end = match.end("dsuffix") if match.group("dsuffix") else end
        value = _spoken_int(text)
        if name == "year" and len(text) == 2:
            parts.append(DatePart("short_year", start, end, value))
        else:
            parts.append(DatePart(name, start, end, value))
    return parts


@lru_cache(maxsize=4096)
def date_mentions(question: str) -> tuple[tuple[DatePart, ...], ...]:
    """The dates a question says, each as its parts in order (year, month, day)."""
    found = []
    for match in _MENTION.finditer(fold(question)):
        if match.end() > match.start():
            parts = _mention_parts(match)
            if parts and _valid(*[next((p.value for p in parts if p.name == name), None)
                                  for name in ("month", "day")]):
                found.append(tuple(parts))
    return tuple(found)


def _part_matches(part: DatePart, value: DateParts) -> bool:
    if part.name == "short_year":
        return value.year is not None and value.year % 100 == part.value
    if part.name == "year" and value.short_year:
        return value.year is not None and part.value % 100 == value.year
    return getattr(value, part.name) == part.value


def date_rank(parts: Sequence[DatePart], value: DateParts) -> int | None:
    """How exactly a run of a mention's parts names `value`, smaller is better, or None:
    0 every part of the value said (13年 for 2013), 1 all but the year (6月10日 for
    2016-06-10), 2 the year and month of a dated day (2015年7月 for 2015-07-04). Every
    part said must equal the value's, and a lone part names only a value of one part."""
    if not parts or not all(_part_matches(part, value) for part in parts):
        return None
    said = {"year" if part.name == "short_year" else part.name for part in parts}
    wanted = set(value.present())
    if said == wanted:
        return 0
    if len(said) < 2:
        return None
    if said == wanted - {"year"}:
        return 1
    if said == wanted - {"day"} and "month" in said:
        return 2
    return None


def date_spans(question: str, value: DateParts) -> list[tuple[int, int, int]]:
    """(rank, start, end) of every run of a question's date parts that names `value`, best
    rank first, then leftmost: the alignments of a date value."""
    found = []
    for parts in date_mentions(question):
        for i in range(len(parts)):
            for j in range(i + 1, len(parts) + 1):
                rank = date_rank(parts[i:j], value)
                if rank is not None:
                    found.append((rank, parts[i].start, parts[j - 1].end))
    return sorted(found)


def whole_mention(text: str) -> tuple[DatePart, ...] | None:
    """The parts of a span that is one whole date mention (`15年`, `2016年6月10号`,
    `6月10日`), else None: for decoding a span and for snapping it to a cell."""
    folded = fold(text).strip()
    mentions = date_mentions(folded)
    if len(mentions) != 1 or mentions[0][0].start != 0 or mentions[0][-1].end != len(folded):
        return None
    return mentions[0]


def spoken_year(text: str) -> int | None:
    """The year a span says and nothing else (`15年` 2015, `一七年` 2017, `2016年`)."""
    parts = whole_mention(text)
    if parts is None or len(parts) != 1 or parts[0].name not in ("year", "short_year"):
        return None
    return full_year(parts[0].value, parts[0].name == "short_year")
