"""`TaggedUnion`, the shared logic of the optimizer, optbench and claim sections, tested
directly on a tiny hand-made union: `shape` picks circle (own key `radius`) or square (own
key `side`); both share `color`."""

from __future__ import annotations

from typing import Any

from blogml.config.schema import Float, Issues, Section, Str, TaggedUnion, merged_fields

SHARED = {"color": Str("red", "fill colour")}
OWN = {"circle": {"radius": Float(1.0, min=0.0)}, "square": {"side": Float(1.0, min=0.0)}}
FOREIGN = "is a key of {owners}, not of {tag}; remove it or change shape"


def shapes(tag: Str, **kwargs: Any) -> TaggedUnion:
    fields = {"shape": tag, **SHARED}
    variants = {name: Section({**fields, **own}) for name, own in OWN.items()}
    return TaggedUnion(merged_fields(v.fields for v in variants.values()), "a shape",
                       tag="shape", variants=variants, foreign=FOREIGN, **kwargs)


SHAPE = shapes(Str("circle", choices=list(OWN)))


def check(union: TaggedUnion, value: Any) -> tuple[Any, list[tuple[str, str]]]:
    issues = Issues()
    resolved = union.check(value, "s", issues)
    return resolved, issues.items


def test_the_tag_picks_the_variant_whose_keys_and_defaults_are_resolved():
    assert check(SHAPE, {"shape": "square", "side": 2}) == (
        {"shape": "square", "color": "red", "side": 2.0}, [])
    assert check(SHAPE, {"shape": "circle", "color": "blue"}) == (
        {"shape": "circle", "color": "blue", "radius": 1.0}, [])


def test_the_default_tag_applies_when_the_tag_is_absent():
    assert check(SHAPE, {"radius": 3}) == ({"shape": "circle", "color": "red", "radius": 3.0},
                                           [])
    assert SHAPE.default() == {"shape": "circle", "color": "red", "radius": 1.0}


def test_a_key_of_the_other_variant_is_reported_with_its_owner_and_dropped():
    resolved, issues = check(SHAPE, {"shape": "square", "radius": 2, "side": 3})
    assert issues == [("s.radius", "is a key of circle, not of square; remove it or change "
                                   "shape")]  # once: not also as an unknown key
    assert resolved == {"shape": "square", "color": "red", "side": 3.0}


def test_a_key_of_several_other_variants_names_them_all():
    variants = {**SHAPE.variants, "disc": Section({**SHAPE.variants["circle"].fields})}
    union = TaggedUnion(SHAPE.fields, "", tag="shape", variants=variants, foreign=FOREIGN)
    _, issues = check(union, {"shape": "square", "radius": 2})
    assert issues == [("s.radius", "is a key of circle, disc, not of square; remove it or "
                                   "change shape")]


def test_a_key_of_no_variant_is_reported_as_unknown():
    assert check(SHAPE, {"shape": "square", "sidee": 2})[1] == [
        ("s.sidee", "unknown key; did you mean 'side'?")]


def test_an_unknown_tag_is_reported_with_a_suggestion_and_the_value_kept_as_written():
    assert check(SHAPE, {"shape": "squar", "side": 2}) == (
        {"shape": "squar", "side": 2}, [("s.shape", "unknown value 'squar'; did you mean "
                                                    "'square'?")])
    assert check(SHAPE, {"shape": 3})[1] == [("s.shape", "must be one of circle, square, got 3")]
    worded = shapes(Str("circle", choices=list(OWN)),
                    unknown="unknown shape {tag!r}; {suggestion}")
    assert check(worded, {"shape": "squar"})[1] == [
        ("s.shape", "unknown shape 'squar'; did you mean 'square'?")]


def test_a_required_tag_that_is_missing_is_reported():
    required = shapes(Str(choices=list(OWN)))
    assert check(required, {"radius": 2}) == (
        {"radius": 2}, [("s.shape", "missing required key (one of circle, square)")])
    assert check(required, {"shape": "circle"})[1] == []


def test_a_value_that_is_not_a_mapping_is_rejected():
    assert check(SHAPE, [1]) == ([1], [("s", "must be a mapping, got a list")])


def test_a_nested_tag_judges_the_keys_of_each_dependent_part():
    def variant(name: str) -> Section:
        return Section({"geom": Section({"shape": Str("circle", choices=list(OWN)),
                                         **OWN[name]}),
                        "paint": Section(SHARED)})
    variants = {name: variant(name) for name in OWN}
    union = TaggedUnion(variants["circle"].fields, "", tag="geom.shape", variants=variants,
                        parts=("geom",), foreign="is a {part} key of {owners}, not of {tag}")
    resolved, issues = check(union, {"geom": {"shape": "square", "radius": 2},
                                     "paint": {"colour": "blue"}})
    assert issues == [("s.geom.radius", "is a geom key of circle, not of square"),
                      ("s.paint.colour", "unknown key; did you mean 'color'?")]
    assert resolved["geom"] == {"shape": "square", "side": 1.0}
    assert check(union, {"geom": {"radius": 2}})[0]["geom"] == {"shape": "circle",
                                                                "radius": 2.0}
