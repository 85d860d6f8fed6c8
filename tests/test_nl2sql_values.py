"""Condition-value alignment beyond verbatim: numerals said aloud, dates, quantities, units
only the header should carry, 0 said as a sign, shortened and lengthened names; the rules
that keep spans right (no span for two different values, no fuzzy span that cuts the
mention); decoding spans back (`value_from_span`) and snapping them to cells
(`closest_cell`). Every case is worked by hand, on tables built here."""

from __future__ import annotations

import pytest

from blogml.data.nl2sql import Question, Split, Table
from blogml.data.nl2sql_values import (
    FAILED,
    KINDS,
    Alignment,
    align_conditions,
    align_value,
    alignment_report,
    closest_cell,
    number_spans,
    to_number,
    value_from_span,
)


def at(question: str, mention: str, kind: str) -> Alignment:
    """The alignment of `mention`, which must occur once in `question`."""
    assert question.count(mention) == 1, (question, mention)
    start = question.index(mention)
    return Alignment(kind, start, start + len(mention))


def conditions(question: str, conds: list[list], header: list[str], types: list[str],
               rows: list[list] | None = None) -> list[Alignment]:
    """`align_conditions` of one question with these conditions on a table built here."""
    table = Table("t", "Table_t", "", header, types, rows or [])
    sql = {"sel": [0], "agg": [0], "cond_conn_op": 1 if len(conds) > 1 else 0,
           "conds": conds}
    return align_conditions(Question(1, "t", question, sql), table)


def spans(question: str, alignments: list[Alignment]) -> list[str]:
    return [question[a.start:a.end] if a.kind != "failed" else "" for a in alignments]


# ---- numerals said aloud --------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("百分之百", 100), ("百分之百五十", 150), ("一块一", 1.1), ("两块五", 2.5), ("三毛", 0.3),
    ("5角", 0.5), ("十三块九毛", 13.9), ("3元5角", 3.5), ("一块五毛五", 1.55),
    ("一百一", 110), ("两万二", 22000), ("叁万", 30000), ("拾伍", 15), ("壹佰贰拾", 120),
    ("百亿", 1e10), ("百万", 1e6), ("二零幺九", 2019),
])
def test_numerals_said_aloud_are_read_by_value(text, value):
    assert to_number(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["百", "千万", "块一", "毛", "百分之"])
def test_what_only_looks_like_a_numeral_is_none(text):
    assert to_number(text) is None


@pytest.mark.parametrize("question, expected", [
    ("两万二一平米的楼盘", [("两万二", 22000), ("一", 1)]),  # the longest numeral, then the rest
    ("低于十一块一股的", [("十一", 11), ("一", 1)]),  # 一股 is "a share", not 0.1
    ("价格100元5月份", [("100", 100), ("5", 5)]),  # after 元 tenths need 毛/角
    ("每股两块五的", [("两块五", 2.5)]),
    ("5千克的大米", [("5", 5)]),  # 千 belongs to 千克
    ("破百亿港元", [("百亿", 1e10)]),
    ("千万不要买", []),  # 千万: "by all means"
])
def test_number_spans_read_money_and_leave_units_their_characters(question, expected):
    found = [(question[s.start:s.end], float(s.value)) for s in number_spans(question)]
    assert found == [(text, pytest.approx(value)) for text, value in expected]


@pytest.mark.parametrize("text, header, value", [
    ("一块一", "价格(元)", "1.1"), ("两块五", "价格", "2.5"), ("三毛", "价格", "0.3"),
    ("十三块九毛", "股价", "13.9"), ("百分之百", "增长率(%)", "100"), ("一百一", "数量", "110"),
    ("叁万", "注册资金", "30000"), ("百亿", "市值(亿元)", "100"),
    ("0.3千克", "重量(克)", "300"), ("750毫升", "容量(升)", "0.75"), ("300g", "重量(千克)", "0.3"),
    ("15年", "年份", "2015"), ("一七年", "定增年度", "2017"), ("98年", "年份", "1998"),
    ("负", "涨幅", "0"), ("负数", "涨幅", "0"), ("正值", "涨幅", "0"),
])
def test_value_from_span_decodes_every_new_numeral_form(text, header, value):
    assert value_from_span(text, header, "real") == value


def test_value_from_span_leaves_text_columns_as_they_are():
    assert value_from_span("一块一", "名称", "text") == "一块一"
    assert value_from_span("15年", "名称", "text") == "15年"


# ---- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize("question, value, mention", [
    ("你好，2016年6月10号生产的是什么", "2016-06-10", "2016年6月10号"),
    ("12年的1月份卖了多少", "2012年1月", "12年的1月份"),
    ("13年到15年的投资额", "2013", "13年"),
    ("一三年的投资额", "2013年", "一三年"),
    ("2016.6.10生产的", "2016-06-10", "2016.6.10"),
    ("生产日期是一八年的五月二十九日的酒", "2018/5/29//", "一八年的五月二十九日"),
    ("有效期到2019年3月31号的药", "20190331", "2019年3月31号"),
    ("今年6月10日上映的电影", "2016-06-10", "6月10日"),  # the year left out
    ("五月二十号有多少个活动", "5月20日", "五月二十号"),
    ("2016年9月份生产的产品", "2016.09", "2016年9月份"),
    ("7月17在北美上映的", "2019-07-17", "7月17"),  # a day without 日 after its month
])
def test_dates_said_another_way_align_as_dates(question, value, mention):
    assert align_value(question, value, "日期") == at(question, mention, "date")


def test_a_date_prefers_the_mention_with_every_part():
    question = "2015年7月生产、7月4日出厂、2015年7月4号检验的"
    assert align_value(question, "2015-07-04", "日期") == \
        at(question, "2015年7月4号", "date")
    question = "2015年7月生产、7月4日出厂的"  # no whole date: the day before the year
    assert align_value(question, "2015-07-04", "日期") == at(question, "7月4日", "date")
    question = "2015年7月生产的"  # a dated day said by its month: the best there is
    assert align_value(question, "2015-07-04", "日期") == \
        at(question, "2015年7月", "date")


def test_a_date_never_aligns_to_another_date():
    assert align_value("2012年1月的销量", "2012年3月", "月份") == FAILED
    assert align_value("2015年的销量", "2015-07-04", "日期") == FAILED  # a year alone
    assert align_value("10号线的站点", "2019-10-10", "日期") == FAILED  # a day alone


def test_a_year_of_a_real_column_aligns_and_decodes_to_the_year():
    question = "哪些证券15年增发价大于20"
    alignment = align_value(question, "2015", "定增年度")
    assert alignment == at(question, "15年", "date")
    assert value_from_span("15年", "定增年度", "real") == "2015"


# ---- quantities, units, implied numbers -----------------------------------------------


@pytest.mark.parametrize("question, value, mention", [
    ("你知道每袋300克的淀粉是哪家的", "300g/袋", "每袋300克"),
    ("一袋260克的淀粉", "260g/袋", "一袋260克"),
    ("规格为0.3千克的", "300g/袋", "0.3千克"),
    ("每罐七百五十毫升的杀虫剂", "750mL/罐", "每罐七百五十毫升"),
    ("每瓶一点五升的玉米油", "1.5L/瓶", "每瓶一点五升"),
    ("扣24分的失信行为", "24分/次", "24分"),
    ("每股十三块九毛的金科股份", "Rmb13.90", "十三块九毛"),
    ("定价13.9元的那只", "Rmb13.90", "13.9元"),
    ("需要录用两个人的岗位", "2人", "两个人"),
])
def test_quantities_align_by_amount_unit_and_what_they_are_per(question, value, mention):
    assert align_value(question, value, "规格") == at(question, mention, "quantity")


def test_a_real_column_in_a_measure_unit_aligns_converted_and_decodes_back():
    question = "重量超过0.3千克的包裹"
    alignment = align_value(question, "300", "重量(克)")
    assert alignment == at(question, "0.3千克", "normalised")
    assert value_from_span("0.3千克", "重量(克)", "real") == "300"
    assert align_value("重量超过5千克的", "5000", "重量(克)").kind == "normalised"


def test_a_multiplier_the_header_lacks_aligns_as_unit():
    question = "总资产超过一百亿的证券"
    alignment = align_value(question, "100", "总资产")
    assert alignment == at(question, "一百", "unit")  # the rest decodes to the gold value
    assert value_from_span("一百", "总资产", "real") == "100"
    question = "租赁收入超过了7千万的公司"  # 70000 in thousands: no span decodes to it
    assert align_value(question, "70000", "租赁收入") == at(question, "7千万", "unit")
    # When the header says its unit, the numeral is normalised, not a unit guess.
    assert align_value(question, "7000", "租赁收入(万元)").kind == "normalised"
    assert align_value("收入超过30万的", "7", "收入") == FAILED  # no unit's factor


def test_zero_said_as_a_sign_aligns_with_its_operator():
    question = "一周涨跌幅为负的股票"
    assert conditions(question, [[1, 1, "0"]], ["名称", "涨跌幅"], ["text", "real"]) == \
        [at(question, "负", "implied")]
    question = "溢价率为负数并且涨幅为正的股票"
    assert conditions(question, [[1, 1, "0"], [2, 0, "0"]], ["名称", "溢价率", "涨幅"],
                      ["text", "real", "real"]) == [at(question, "负数", "implied"),
                                                    at(question, "正", "implied")]
    assert conditions("涨跌幅为负的股票", [[1, 0, "0"]], ["名称", "涨跌幅"],
                      ["text", "real"]) == [FAILED]  # 负 does not say `> 0`
    assert conditions("项目负责人是谁", [[1, 1, "0"]], ["名称", "经费"],
                      ["text", "real"]) == [FAILED]  # 负责 is no sign


# ---- names shortened or lengthened ----------------------------------------------------


@pytest.mark.parametrize("question, value, mention", [
    ("请问有哪些课程是武大开设的", "武汉大学", "武大"),
    ("能帮我估算一下申通在18年的每股盈余吗", "申通快递", "申通"),
    ("中国建行黑龙江分行在哪", "中国建设银行股份有限公司黑龙江省分行", "中国建行黑龙江分行"),
    ("黑龙江省尚志市绿松食品有限公司生产了什么", "黑龙江绿松食品有限公司",
     "黑龙江省尚志市绿松食品有限公司"),
    ("请问哪个区有清华附小", "清华大学附属小学", "清华附小"),
    ("中科大的项目中有哪些是创意组的", "中国科学技术大学", "中科大"),
    ("重庆正川永成有多少注册证", "重庆正川永成医药材料有限公司", "重庆正川永成"),  # not 有
    ("你知道一五年第四季度被抽查的企业吗", "2015年第4季度", "一五年第四季度"),
    ("乙二醇型发动机冷却液合格吗", "长效防冻液(乙二醇型发动机冷却液)", "乙二醇型发动机冷却液"),
    ("黄土坎的那个支行招几个人", "黄土坎支行", "黄土坎"),
])
def test_a_shorter_or_longer_form_of_a_name_aligns_as_cell(question, value, mention):
    assert align_value(question, value, "名称") == at(question, mention, "cell")


@pytest.mark.parametrize("question, value", [
    ("世界大学里牛津排第几", "剑桥大学"),  # 大学 says what kind of thing, not which
    ("这家公司在哪里", "武汉劲宝食品有限公司"),  # 公司 is no evidence
    ("有哪些物流快递公司", "申通快递"),
    ("世茂天府的均价", "世茂悦府"),  # 世茂 is part of another name here
    ("北海的楼盘", "北京"),
    ("出版社叫九州的那本", "九州出版社"),
])
def test_too_little_evidence_does_not_align(question, value):
    assert align_value(question, value, "名称") == FAILED


def test_the_column_cells_keep_a_short_form_from_naming_the_wrong_cell():
    question = "中国银行的网点有几个"
    assert align_value(question, "中国建设银行", "银行").kind == "fuzzy"
    assert align_value(question, "中国建设银行", "银行",
                       cells=["中国建设银行", "中国银行"]) == FAILED
    assert align_value("保利的股价", "保利地产", "公司",
                       cells=["保利地产", "保利发展"]) == Alignment("cell", 0, 2)  # a tie


def test_characters_of_an_enumeration_name_the_values_they_start():
    question = "北上广的库存量总共是多少"
    assert conditions(question, [[0, 2, "北京"], [0, 2, "上海"], [0, 2, "广州"]],
                      ["城市", "库存"], ["text", "real"]) == [
        Alignment("cell", 0, 1), Alignment("cell", 1, 2), Alignment("cell", 2, 3)]
    assert align_value(question, "北京", "城市") == FAILED  # alone, 北 is no evidence


# ---- spans stay right -----------------------------------------------------------------


def test_a_span_is_never_taken_by_two_different_values():
    question = "2012年1月的销量是多少"
    assert conditions(question, [[0, 2, "2012年1月"], [0, 2, "2012年3月"]], ["月份", "销量"],
                      ["text", "real"]) == [at(question, "2012年1月", "verbatim"), FAILED]
    question = "北京的楼盘均价"  # 北京市 would fuzzily take the 北京 of the other column
    assert conditions(question, [[0, 2, "北京"], [1, 2, "北京市"]], ["城市", "地区", "均价"],
                      ["text", "text", "real"]) == [at(question, "北京", "verbatim"), FAILED]
    question = "12年1月和12年3月的销量"
    assert spans(question, conditions(question, [[0, 2, "2012年1月"], [0, 2, "2012年3月"]],
                                      ["月份", "销量"], ["text", "real"])) == ["12年1月", "12年3月"]
    # A month alone is too little for a month of a year: it may be of another year.
    assert align_value("2012年1月和3月的销量", "2012年3月", "月份") == FAILED


def test_equal_values_may_share_a_span_and_nested_values_may_nest():
    question = "北京的楼盘均价"
    assert conditions(question, [[0, 2, "北京"], [1, 2, "北京"]], ["城市", "地区", "均价"],
                      ["text", "text", "real"]) == [Alignment("verbatim", 0, 2)] * 2
    question = "香港国际机场有哪些优惠"  # 香港 is part of the value 香港国际机场
    assert conditions(question, [[0, 2, "香港"], [1, 2, "香港国际机场"]],
                      ["城市", "机场", "优惠"], ["text", "text", "text"]) == [
        Alignment("verbatim", 0, 2), Alignment("verbatim", 0, 6)]


def test_a_stricter_kind_of_a_later_condition_goes_first():
    """The verbatim 中欧电器 of the second condition is aligned before the first one's
    shortened form could take it."""
    question = "中欧电器生产的洗衣机"
    assert conditions(question, [[0, 2, "中欧电器有限公司"], [1, 2, "中欧电器"]],
                      ["企业", "品牌", "产品"], ["text", "text", "text"]) == [
        FAILED, Alignment("verbatim", 0, 4)]


def test_a_claimed_mention_inside_a_name_is_masked_not_reused():
    question = "天卓活动2B铅笔的数量是多少"
    assert spans(question, conditions(question, [[0, 2, "天卓活动铅笔"], [1, 2, "2B"]],
                                      ["名称", "型号", "数量"], ["text", "text", "real"])) == \
        ["天卓活动", "2B"]


@pytest.mark.parametrize("question, value, mention", [
    ("冯玉祥自己叙述的那本书", "冯玉祥自述", "冯玉祥自己叙述"),  # not 冯玉祥自
    ("木森林的灯具", "木林森", "木森林"),  # not 木森
    ("西安神电电器公司有哪些产品", "西安神电电器有限公司", "西安神电电器公司"),  # not …公司有
    ("S7-400指令列表的文档", "S7-400指令列表（中文）", "S7-400指令列表"),  # not …的文
    ("新标准大学英语综合教程教材是谁编的", "新标准大学英语综合教程（3）", "新标准大学英语综合教程"),
    ("一盒30克（3克×10袋）的", "30克（3克×10袋）/盒", "盒30克（3克×10袋）"),  # bracket and all
])
def test_fuzzy_spans_cover_the_whole_mention_and_no_more(question, value, mention):
    assert align_value(question, value, "名称") == at(question, mention, "fuzzy")


# ---- snapping a span to a cell --------------------------------------------------------


@pytest.mark.parametrize("text, cells, expected", [
    ("ＡＢＣ", ["abd", "abc"], "abc"),  # equal after folding
    ("九十五号", ["92号", "95号"], "95号"),  # equal with its numerals read
    ("武大", ["武汉理工大学", "武汉大学", "华中科技大学"], "武汉大学"),
    ("申通", ["圆通速递", "申通快递"], "申通快递"),
    ("黑龙江省尚志市绿松食品有限公司", ["黑龙江红星食品有限公司", "黑龙江绿松食品有限公司"],
     "黑龙江绿松食品有限公司"),
    ("中国银行", ["中国建设银行", "中国银行"], "中国银行"),
    ("15年3月29日", ["2015-03-28", "2015-03-29", "2016-03-29"], "2015-03-29"),
    ("6月10号", ["2016-06-01", "2016-06-10"], "2016-06-10"),
    ("每袋五百克", ["250克/袋", "500克/袋"], "500克/袋"),
    ("世茂天府", ["万科城", "世茂悦府", "保利"], "世茂悦府"),  # by edit distance
    ("完全无关", ["甲", "乙"], "甲"),  # a tie goes to the first
])
def test_closest_cell_names_the_cell_a_span_means(text, cells, expected):
    assert closest_cell(text, cells) == expected


def test_closest_cell_of_a_real_column_is_the_numerically_nearest():
    assert closest_cell("十五万", ["14", "15.5", "15"], header="面积(万平)",
                        column_type="real") == "15"
    assert closest_cell("一块一", ["1", "1.2", "1.1"], column_type="real") == "1.1"


def test_closest_cell_is_none_only_without_cells():
    assert closest_cell("武大", []) is None
    assert closest_cell("", ["甲"]) == "甲"


# ---- the report -----------------------------------------------------------------------


def test_the_report_counts_every_kind():
    assert KINDS[0] == "verbatim" and KINDS[-1] == "failed"
    table = Table("t", "Table_t", "", ["名称", "日期", "涨幅"], ["text", "text", "real"],
                  [["武汉大学", "2016-06-10", 1.0]])
    questions = [
        Question(1, "t", "武大在2016年6月10号涨幅为负吗",
                 {"sel": [0], "agg": [0], "cond_conn_op": 1,
                  "conds": [[0, 2, "武汉大学"], [1, 2, "2016-06-10"], [2, 1, "0"]]}),
        Question(2, "t", "武汉大学的涨幅", {"sel": [2], "agg": [0], "cond_conn_op": 0,
                                        "conds": [[0, 2, "武汉大学"], [1, 2, "2017-01-01"]]}),
    ]
    report = alignment_report(Split("val", questions, {"t": table}, [], None))
    assert report["counts"] == {"verbatim": 1, "normalised": 0, "date": 1, "quantity": 0,
                                "unit": 0, "implied": 1, "fuzzy": 0, "cell": 1, "failed": 1}
    assert report["values"] == 5 and report["questions_fully_aligned"] == 0.5
    assert report["cell"] == pytest.approx(0.2)
