"""A cell named by a shorter or longer form of it: 武大 for 武汉大学, 申通 for 申通快递,
中国建行黑龙江分行 for 中国建设银行股份有限公司黑龙江省分行, 黑龙江省尚志市绿松食品有限公司
for 黑龙江绿松食品有限公司.

The relation is a chain of characters shared in order (`chains`): the question's span and
the cell agree on a subsequence, the span may skip characters of the cell (an
abbreviation) and hold a few of its own (a longer form). `is_evidence` says when such a
chain is enough: two characters are, when they make at least half of the cell's distinctive
part (its `core`, without a legal-form suffix such as 有限公司, so that 公司 alone is no
evidence for any company); longer chains may hold a few characters of their own. The
column's other cells decide between rivals (`better_rival`): 中国银行 names the cell
中国银行, not 中国建设银行, when both are in the column.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from blogml.data.nl2sql_numbers import fold

# Legal-form and group words that end many names and tell no cell from another.
GENERIC_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "股份公司", "集团", "控股", "股份",
                    "公司")
MENTION_GAP = 0.6  # cost of a span character that is not the cell's (a longer form)
VALUE_GAP = 0.1  # cost of a skipped cell character (an abbreviation skips many)
MAX_GAP = 6  # span characters at most between two shared ones
BARRIER = "\0"  # a character of the text that no chain crosses (another condition's mention)
_QUALIFIER = re.compile(r"\s*[(（\[【][^()（）\[\]【】]*[)）\]】]\s*$")


@lru_cache(maxsize=16384)
def letters(text: str) -> str:
    """The folded characters of a cell that can be said: no punctuation, no spaces
    (《卡农》 is 卡农, `车用汽油（ⅥA）` is 车用汽油ⅵa)."""
    return "".join(char for char in fold(str(text))
                   if not unicodedata.category(char).startswith(("P", "Z", "C")))


@lru_cache(maxsize=16384)
def word_ends(text: str) -> tuple[int, ...]:
    """Where a cell's words end, counted in `letters`: first its distinctive part (without
    a trailing qualifier in brackets and legal-form suffixes), then after each suffix put
    back (宝龙地产控股有限公司: 4 宝龙地产, 6 控股, 10 有限公司)."""
    ends, core = [len(letters(text))], fold(str(text)).strip()
    while True:
        stripped = _QUALIFIER.sub("", core)
        stripped = next((stripped[:-len(suffix)] for suffix in GENERIC_SUFFIXES
                         if stripped.endswith(suffix) and len(stripped) > len(suffix)), stripped)
        if stripped == core or not letters(stripped):
            break
        core = stripped
        ends.append(len(letters(core)))
    return tuple(sorted(set(ends)))


def core_length(text: str) -> int:
    """How many leading `letters` of a cell are its distinctive part (see `word_ends`)."""
    return word_ends(text)[0]


@dataclass(frozen=True)
class Chain:
    """Characters of text[start:end] shared in order with a cell: `matched` of them,
    `extra` span characters not shared, `core_matched` shared ones in the cell's core,
    `first` and `last` the first and the last core letter shared; `members` the shared
    (text index, cell letter index) pairs."""

    start: int
    end: int
    score: float
    matched: int
    extra: int
    core_matched: int
    first: int
    last: int
    members: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)


def _trimmed(members: list[tuple[int, int]], cell: str) -> list[tuple[int, int]]:
    """A chain's (text index, cell letter index) pairs without what only looks shared: a
    tail in the suffix (legal form, bracketed qualifier) that is not two or more adjacent
    letters ending a word (the 有 of 有多少 is not the 有 of 有限公司, the 文 of 文档 not the
    文 of （中文）; 公司 of 股份有限公司 is), and a lone character cut off by the span's own
    ones at either end where the cell skips nothing (the 位 of 岗位要研究生 is not the 位 of
    学位研究生; but the 府 of 世茂天府 stays, 天 standing for 悦 of 世茂悦府)."""
    ends = word_ends(cell)

    def suffix_ok(members: list[tuple[int, int]]) -> bool:
        run = 1
        while run < len(members) and members[-run - 1][1] == members[-run][1] - 1:
            run += 1
        return members[-1][1] < ends[0] or (run >= 2 and members[-1][1] + 1 in ends)

    while members and not suffix_ok(members):
        members = members[:-1]
    while len(members) > 1 and members[1][0] - members[0][0] > 1 and \
            members[1][1] - members[0][1] == 1:
        members = members[1:]
    while len(members) > 1 and members[-1][0] - members[-2][0] > 1 and \
            members[-1][1] - members[-2][1] == 1:
        members = members[:-1]
    return members


def _chain(members: list[tuple[int, int]], cell: str) -> Chain:
    (start, first), (last, last_letter) = members[0], members[-1]
    extra = last - start + 1 - len(members)
    skipped = last_letter - first + 1 - len(members)
    score = len(members) - MENTION_GAP * extra - VALUE_GAP * skipped
    core = [j for _, j in members if j < core_length(cell)]
    return Chain(start, last + 1, round(score, 6), len(members), extra, len(core),
                 core[0] if core else -1, core[-1] if core else -1, tuple(members))


def chains(text: str, cell: str) -> list[Chain]:
    """The best chain ending at each shared character of folded `text`, `_trimmed`, best
    first (then longest, then leftmost): a chain scores 1 per shared character, less
    MENTION_GAP per span character between them and VALUE_GAP per cell character skipped
    between them. No chain crosses a BARRIER character of `text`."""
    target = letters(cell)
    barriers = [0]
    for char in text:
        barriers.append(barriers[-1] + (char == BARRIER))
    where: dict[str, list[int]] = {}
    for j, char in enumerate(target):
        where.setdefault(char, []).append(j)
    points = [(i, j) for i, char in enumerate(text) for j in where.get(char, ())]
    score: list[float] = []
    back: list[int] = []
    for k, (i, j) in enumerate(points):
        best, previous = 1.0, -1
        for p in range(k - 1, -1, -1):
            pi, pj = points[p]
            if i - pi - 1 > MAX_GAP or barriers[pi] != barriers[i]:
                break
            if pi < i and pj < j:
                candidate = 1 + score[p] - MENTION_GAP * (i - pi - 1) - VALUE_GAP * (j - pj - 1)
                if candidate > best:
                    best, previous = candidate, p
        score.append(best)
        back.append(previous)
    found: dict[tuple[int, int], Chain] = {}
    for k in range(len(points)):
        members, p = [], k
        while p >= 0:
            members.append(points[p])
            p = back[p]
        members = _trimmed(members[::-1], cell)
        if members:
            chain = _chain(members, cell)
            if (chain.start, chain.end) not in found or \
                    chain.score > found[chain.start, chain.end].score:
                found[chain.start, chain.end] = chain
    return sorted(found.values(), key=lambda c: (-c.score, -c.matched, c.start))


def is_evidence(chain: Chain, cell: str) -> bool:
    """Enough shared characters to say the span names the cell. Counted in the cell's core
    (公司 is no evidence for a company): two or three, adjacent in the span, making half
    the core (three: 3 of 7, 舒美家 of 广西舒美家科技) and either starting it or ending
    before its end in its first half (武大 of
    武汉大学, 川大 of 四川大学, but not 大学 of 剑桥大学 nor 出版社 of 九州出版社: a name's
    last characters say what kind of thing it is, its first ones which); or four and more,
    with at most about one span character of its own per two shared ones."""
    core = core_length(cell)
    if chain.core_matched < 2 or chain.extra > (chain.matched - 1) // 2:
        return False
    if chain.core_matched >= 4:
        return True
    if chain.extra:
        return False
    if chain.core_matched == 3 and chain.first == 0:
        return True  # one character a word, as abbreviations go: 中科大, 上食协
    heads = chain.first == 0 or (2 * chain.first < core and chain.last + 1 < core)
    return 3 * chain.core_matched - 2 >= core and heads  # 2 of 4, 3 of 7


def fit(text: str, cell: str) -> tuple[float, float]:
    """How well a whole span names a cell: the best chain's score, then the share of the
    cell's core it covers (中国银行 fits the cell 中国银行 better than 中国建设银行)."""
    found = chains(fold(text), cell)
    if not found:
        return (0.0, 0.0)
    return (round(found[0].score, 6), found[0].core_matched / core_length(cell))


def better_rival(text: str, cell: str, cells: Iterable[str]) -> bool:
    """Some other cell of the column fits the span strictly better than `cell` does."""
    own = fit(text, cell)
    key, chars = letters(cell), set(fold(text))
    for other in cells:
        other_letters = letters(other)
        if other_letters == key or len(chars.intersection(other_letters)) < 2:
            continue
        if fit(text, other) > own:
            return True
    return False


def _pieces(chain: Chain, cell: str) -> list[Chain]:
    """A chain cut where the span inserts two or more characters of its own without
    skipping any of the cell's (黄土坎的那个支行: 黄土坎 and 支行); where it also skips cell
    characters, the span says something else there (世茂天府 for 世茂悦府) and is not cut."""
    pieces, current = [], [chain.members[0]]
    for (i, j), (next_i, next_j) in zip(chain.members, chain.members[1:]):
        if next_i - i > 2 and next_j - j == 1:
            pieces.append(current)
            current = []
        current.append((next_i, next_j))
    pieces.append(current)
    trimmed = [_trimmed(piece, cell) for piece in pieces] if len(pieces) > 1 else []
    return [_chain(piece, cell) for piece in trimmed if piece]


def cell_spans(question: str, cell: str, cells: Iterable[str]) -> list[tuple[int, int]]:
    """Spans of `question` that name `cell` by a shorter or longer form, best first. A
    chain that is no evidence rules out the weaker chains inside its span (世茂天府 does not
    name 世茂悦府 through 世茂) except its `_pieces`, and a span another cell fits better is
    skipped."""
    folded = fold(question)
    cells = tuple(cells)
    spans: list[tuple[int, int]] = []
    seen: list[tuple[int, int]] = []
    for chain in chains(folded, cell):
        if any(chain.start < end and start < chain.end for start, end in seen):
            continue
        seen.append((chain.start, chain.end))
        for candidate in [chain] if is_evidence(chain, cell) else _pieces(chain, cell):
            if is_evidence(candidate, cell) and not better_rival(
                    question[candidate.start:candidate.end], cell, cells):
                spans.append((candidate.start, candidate.end))
    return spans
