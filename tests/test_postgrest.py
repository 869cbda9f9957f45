"""PostgREST strings: every column name comes back with the exact span that a rename would edit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tableshift.postgrest import (
    OPERATORS,
    Condition,
    Embed,
    Field,
    PostgrestSyntaxError,
    Select,
    parse_logic,
    parse_realtime_filter,
    parse_select,
    split_columns,
)


def _walk(items):
    for item in items:
        yield item
        if isinstance(item, Embed):
            yield from _walk(item.items)


def _assert_spans(text: str, items) -> None:
    for item in _walk(items):
        name = item.relation if isinstance(item, Embed) else item.name
        assert text[item.start : item.end] == name, (text, item)


def _only(text: str) -> Field:
    sel = parse_select(text)
    _assert_spans(text, sel.items)
    (item,) = sel.items
    assert isinstance(item, Field)
    return item


# --------------------------------------------------------------------------- select: fields


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_select_empty_or_blank_means_no_explicit_columns(text):
    assert parse_select(text) == Select(items=())


@pytest.mark.parametrize(
    "text, name, alias, cast, json_path, aggregate",
    [
        ("*", "*", None, None, None, None),
        ("col", "col", None, None, None, None),
        ("alias:col", "col", "alias", None, None, None),
        ("col::text", "col", None, "text", None, None),
        ("alias:col::int", "col", "alias", "int", None, None),
        ("metadata->key", "metadata", None, None, "->key", None),
        ("metadata->>key", "metadata", None, None, "->>key", None),
        ("data->0->>name", "data", None, None, "->0->>name", None),
        ("k:data->a->>b::text", "data", "k", "text", "->a->>b", None),
        ("data->-1", "data", None, None, "->-1", None),
        ('data->"a key"', "data", None, None, '->"a key"', None),
        ("my-col", "my-col", None, None, None, None),
        ("col$1", "col$1", None, None, None, None),
        ("count", "count", None, None, None, "count"),
        ("count()", "count", None, None, None, "count"),
        ("total:count()", "count", "total", None, None, "count"),
        ("count()::int", "count", None, None, None, "count"),
        ("amount.sum()", "amount", None, None, None, "sum"),
        ("amount.avg()::int", "amount", None, None, None, "avg"),
        ("id.count()", "id", None, None, None, "count"),
        ("lo:price.min()", "price", "lo", None, None, "min"),
        ("price.max()", "price", None, None, None, "max"),
        ("amount::int.sum()", "amount", None, "int", None, "sum"),
        ("count.sum()", "count", None, None, None, "sum"),
    ],
)
def test_select_alias_cast_json_and_aggregate_keep_name_span(text, name, alias, cast, json_path, aggregate):
    f = _only(text)
    # the aggregate's own cast (`.avg()::int`) is its result's, apart from the column's (`::int.sum()`)
    assert f.aggregate_cast == ("int" if text.endswith("()::int") else None)
    assert (f.name, f.alias, f.cast, f.json_path, f.aggregate, f.quoted) == (
        name,
        alias,
        cast,
        json_path,
        aggregate,
        False,
    )


@pytest.mark.parametrize(
    "text, name, alias, quoted",
    [
        ('"my col"', "my col", None, True),
        ('a:"my col"::text', "my col", "a", True),
        ('"weird,(col)"', "weird,(col)", None, True),
        ('"x y":col', "col", "x y", False),
    ],
)
def test_select_quoted_name_span_is_inside_the_quotes(text, name, alias, quoted):
    f = _only(text)
    assert (f.name, f.alias, f.quoted) == (name, alias, quoted)


def test_select_whitespace_anywhere_outside_quotes_keeps_offsets_into_original_text():
    text = "  id ,\n\tname :: text ,\n  author : profiles ! inner ( email )  "
    sel = parse_select(text)
    _assert_spans(text, sel.items)
    assert [f.name for f in sel.fields()] == ["id", "name"]
    assert sel.fields()[1].cast == "text"
    (embed,) = sel.embeds()
    assert (embed.relation, embed.alias, embed.hints) == ("profiles", "author", ("inner",))
    assert [i.name for i in embed.items] == ["email"]


def test_select_multiple_columns_in_order_with_offsets():
    text = "id, created_at,title"
    sel = parse_select(text)
    assert [(f.name, f.start, f.end) for f in sel.fields()] == [
        ("id", 0, 2),
        ("created_at", 4, 14),
        ("title", 15, 20),
    ]


# --------------------------------------------------------------------------- select: embeds


@pytest.mark.parametrize(
    "text, relation, alias, hints, spread, inner",
    [
        ("rel(a, b)", "rel", None, (), False, ["a", "b"]),
        ("rel()", "rel", None, (), False, []),
        ("rel(*)", "rel", None, (), False, ["*"]),
        ("rel(count)", "rel", None, (), False, ["count"]),
        ("rel!inner(id)", "rel", None, ("inner",), False, ["id"]),
        ("rel!author_id_fkey(col)", "rel", None, ("author_id_fkey",), False, ["col"]),
        ("rel!author_id_fkey!inner(col)", "rel", None, ("author_id_fkey", "inner"), False, ["col"]),
        ("a:rel!fkey(col)", "rel", "a", ("fkey",), False, ["col"]),
        ("...rel(col)", "rel", None, (), True, ["col"]),
        ("...rel!inner(x:col)", "rel", None, ("inner",), True, ["col"]),
        ('"my rel"(col)', "my rel", None, (), False, ["col"]),
    ],
)
def test_select_embed_shapes_keep_relation_span(text, relation, alias, hints, spread, inner):
    sel = parse_select(text)
    _assert_spans(text, sel.items)
    (embed,) = sel.embeds()
    assert sel.fields() == ()
    assert (embed.relation, embed.alias, embed.hints, embed.spread) == (relation, alias, hints, spread)
    assert [i.name for i in embed.items] == inner


def test_select_embedded_count_is_an_aggregate():
    (embed,) = parse_select("comments(count)").embeds()
    (f,) = embed.items
    assert isinstance(f, Field) and f.aggregate == "count"


def test_select_nested_embeds_keep_every_span():
    text = "*, author:profiles!author_id(name, avatar_url, org:orgs(name))"
    sel = parse_select(text)
    _assert_spans(text, sel.items)
    assert [f.name for f in sel.fields()] == ["*"]
    (author,) = sel.embeds()
    assert (author.relation, author.alias, author.hints) == ("profiles", "author", ("author_id",))
    name, avatar, org = author.items
    assert (name.name, avatar.name) == ("name", "avatar_url")
    assert isinstance(org, Embed) and (org.relation, org.alias) == ("orgs", "org")
    assert org.items[0].start == text.rindex("name")


def test_select_fields_and_embeds_split_top_level_items_only():
    sel = parse_select("id, posts(id, tags(name)), title")
    assert [f.name for f in sel.fields()] == ["id", "title"]
    assert [e.relation for e in sel.embeds()] == ["posts"]


# --------------------------------------------------------------------------- select: malformed


@pytest.mark.parametrize(
    "text, offset",
    [
        ("a, b(c", 4),
        ("a)", 1),
        ("a,,b", 2),
        ("a,", 2),
        ("alias:", 6),
        ("a::", 3),
        ("a b", 2),
        ('"abc', 0),
        ('a, ""', 3),
        ("(", 0),
        ("rel(", 3),
        ("rel!inner", 9),
        ("rel!(a)", 4),
        ("a.foo()", 2),
        ("a.sum(x)", 6),
        ("a.sum", 5),
        ("...*", 3),
        ("...rel", 6),
        ("a:*", 2),
        ("a#b", 1),
        ("a->", 3),
        ("a->>b(c)", 5),
        ("a: :b", 3),
        ("a:b:c", 3),
        ("x(a))", 4),
    ],
)
def test_select_malformed_raises_with_offset(text, offset):
    with pytest.raises(PostgrestSyntaxError) as info:
        parse_select(text)
    assert info.value.offset == offset
    assert str(info.value) == f"{info.value.message} at offset {offset}"
    assert isinstance(info.value, ValueError)


def test_select_deep_nesting_is_a_syntax_error_not_a_crash():
    text = "a(" * 500 + "b" + ")" * 500
    with pytest.raises(PostgrestSyntaxError):
        parse_select(text)


# --------------------------------------------------------------------------- logic


def _conds(text: str) -> list[tuple[str, str, bool, str]]:
    conds = parse_logic(text)
    for c in conds:
        assert text[c.start : c.end] == c.column
    return [(c.column, c.operator, c.negated, c.value) for c in conds]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "expires_at.is.null,expires_at.gt.2025-01-01",
            [("expires_at", "is", False, "null"), ("expires_at", "gt", False, "2025-01-01")],
        ),
        (
            "status.eq.queued,and(priority.gt.5,created_at.lt.2025-01-01T00:00:00.000Z)",
            [
                ("status", "eq", False, "queued"),
                ("priority", "gt", False, "5"),
                ("created_at", "lt", False, "2025-01-01T00:00:00.000Z"),
            ],
        ),
        ("name.not.ilike.*bot*", [("name", "ilike", True, "*bot*")]),
        ("id.in.(1,2,3)", [("id", "in", False, "(1,2,3)")]),
        ('id.in.("a,b",c)', [("id", "in", False, '("a,b",c)')]),
        ("id.not.in.()", [("id", "in", True, "()")]),
        ("tags.cs.{a,b}", [("tags", "cs", False, "{a,b}")]),
        ('title.eq."hello, world"', [("title", "eq", False, '"hello, world"')]),
        ('title.eq."a (b), c",x.eq.1', [("title", "eq", False, '"a (b), c"'), ("x", "eq", False, "1")]),
        ("not.and(a.eq.1,b.eq.2)", [("a", "eq", False, "1"), ("b", "eq", False, "2")]),
        ("not.or(a.eq.1,and(b.eq.2,c.neq.3))", [("a", "eq", False, "1"), ("b", "eq", False, "2"), ("c", "neq", False, "3")]),
        ("metadata->>kind.eq.x", [("metadata", "eq", False, "x")]),
        ("data->0->>name.eq.x", [("data", "eq", False, "x")]),
        ("score.gt.0.5", [("score", "gt", False, "0.5")]),
        ("col.eq(any).{a,b}", [("col", "eq", False, "{a,b}")]),
        ("col.like(all).{a*,b*}", [("col", "like", False, "{a*,b*}")]),
        ("body.fts(english).cat", [("body", "fts", False, "cat")]),
        ("body.not.plfts(simple).a b", [("body", "plfts", True, "a b")]),
        ("body.wfts.cat & dog", [("body", "wfts", False, "cat & dog")]),
        ("author.name.eq.x", [("author.name", "eq", False, "x")]),
        ("a.b.c.not.is.null", [("a.b.c", "is", True, "null")]),
        ("not.eq.1", [("not", "eq", False, "1")]),
        ("a.eq.", [("a", "eq", False, "")]),
        ("a.isdistinct.null, b.ov.{1,2}", [("a", "isdistinct", False, "null"), ("b", "ov", False, "{1,2}")]),
        ('"my col".eq.1', [("my col", "eq", False, "1")]),
        ("a.eq.1, or(b.is.true, c.neq.2)", [("a", "eq", False, "1"), ("b", "is", False, "true"), ("c", "neq", False, "2")]),
    ],
)
def test_logic_conditions_flattened_in_order_with_column_spans(text, expected):
    assert _conds(text) == expected


def test_logic_offsets_point_into_nested_groups():
    text = "status.eq.queued,and(priority.gt.5,created_at.lt.2025-01-01)"
    starts = [c.start for c in parse_logic(text)]
    assert starts == [0, text.index("priority"), text.index("created_at")]


@pytest.mark.parametrize("op", sorted(OPERATORS - {"in"}))
def test_logic_every_operator_is_known(op):
    assert _conds(f"col.{op}.v") == [("col", op, False, "v")]
    assert _conds(f"col.not.{op}.v") == [("col", op, True, "v")]


@pytest.mark.parametrize(
    "text, offset",
    [
        ("", 0),
        ("a.eq", 4),
        ("a.zz.1", 2),
        ("a.b", 2),
        ("a", 1),
        ("and(a.eq.1", 3),
        ("a.eq.1)", 6),
        ("a.eq.1,", 7),
        (",a.eq.1", 0),
        ("a.eq.1,,b.eq.2", 7),
        ("and()", 4),
        ("id.in.(1,2", 6),
        ("id.in.1", 6),
        ("a.eq(x", 4),
        ("a.eq(any.1", 4),
        ('title.eq."abc', 9),
        ("a->.eq.1", 3),
        ("a .eq.1", 1),
        ("not.and(a.eq.1))", 15),
    ],
)
def test_logic_malformed_raises_with_offset(text, offset):
    with pytest.raises(PostgrestSyntaxError) as info:
        parse_logic(text)
    assert info.value.offset == offset


# --------------------------------------------------------------------------- realtime filter


@pytest.mark.parametrize(
    "text, column, op, negated, value",
    [
        ("id=eq.5", "id", "eq", False, "5"),
        ("status=in.(a,b)", "status", "in", False, "(a,b)"),
        ("user_id=neq.abc-123", "user_id", "neq", False, "abc-123"),
        ("created_at=gte.2025-01-01T00:00:00Z", "created_at", "gte", False, "2025-01-01T00:00:00Z"),
        (" id = not.eq.5", "id", "eq", True, "5"),
    ],
)
def test_realtime_filter_column_before_equals(text, column, op, negated, value):
    cond = parse_realtime_filter(text)
    assert cond == Condition(column, cond.start, cond.end, op, negated, value)
    assert text[cond.start : cond.end] == column


@pytest.mark.parametrize(
    "text, offset", [("", 0), ("id", 2), ("id=", 3), ("id=zz.5", 3), ("id=eq", 5), ("=eq.1", 0)]
)
def test_realtime_filter_malformed_raises_with_offset(text, offset):
    with pytest.raises(PostgrestSyntaxError) as info:
        parse_realtime_filter(text)
    assert info.value.offset == offset


# --------------------------------------------------------------------------- on_conflict


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a, b", (("a", 0, 1), ("b", 3, 4))),
        ("id", (("id", 0, 2),)),
        ("  user_id ,post_id  ", (("user_id", 2, 9), ("post_id", 11, 18))),
        ('"my col",b', (("my col", 1, 7), ("b", 9, 10))),
        ('"a,b", c', (("a,b", 1, 4), ("c", 7, 8))),
    ],
)
def test_split_columns_trims_whitespace_and_keeps_spans(text, expected):
    assert split_columns(text) == expected


@pytest.mark.parametrize(
    "text, offset", [("", 0), ("  ", 2), ("a,", 2), ("a,,b", 2), (",a", 0), ("a b", 2), ('"x', 0), ("a(b)", 1)]
)
def test_split_columns_empty_or_odd_pieces_raise(text, offset):
    with pytest.raises(PostgrestSyntaxError) as info:
        split_columns(text)
    assert info.value.offset == offset


# --------------------------------------------------------------------------- properties

_PIECES = list("abc_x0 ,()!:.*\"->{}=\n\t") + [
    "not.",
    "and(",
    "or(",
    ".eq.",
    ".in.(",
    "count",
    ".sum()",
    "::",
    "->>",
    "...",
    "!inner",
]
_soup = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))


@settings(max_examples=400)
@given(_soup)
def test_property_parsers_return_or_raise_syntax_error_only(text):
    for parse in (parse_select, parse_logic, split_columns, parse_realtime_filter):
        try:
            result = parse(text)
        except PostgrestSyntaxError as exc:
            assert 0 <= exc.offset <= len(text)
            continue
        if parse is parse_select:
            _assert_spans(text, result.items)
        elif parse is parse_logic:
            assert all(text[c.start : c.end] == c.column for c in result)
        elif parse is split_columns:
            assert all(text[s:e] == name for name, s, e in result)
        else:
            assert text[result.start : result.end] == result.column


_ident = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True)
_ws = st.sampled_from(["", "", " ", "\n  "])


@st.composite
def _select_item(draw, depth):
    """(text, names) for one item; names are the field/relation names in walk order."""
    alias = draw(st.one_of(st.none(), _ident))
    prefix = f"{alias}:" if alias else ""
    if depth < 3 and draw(st.booleans()):
        rel = draw(_ident)
        hints = draw(st.lists(_ident, max_size=2))
        inner, names = draw(_select_list(depth + 1))
        spread = "..." if draw(st.booleans()) else ""
        text = f"{spread}{prefix}{rel}{''.join('!' + h for h in hints)}({inner})"
        return text, [rel, *names]
    quoted = draw(st.booleans())
    name = draw(st.from_regex(r"[a-z][a-z ,()]{0,6}", fullmatch=True)) if quoted else draw(_ident)
    body = f'"{name}"' if quoted else name
    body += draw(st.sampled_from(["", "->a", "->>b", "->0->>c"]))
    body += draw(st.sampled_from(["", "::text", ".sum()", ".count()::int"]))
    return prefix + body, [name]


@st.composite
def _select_list(draw, depth=0):
    parts = draw(st.lists(_select_item(depth), max_size=4))
    sep = draw(_ws) + "," + draw(_ws)
    return sep.join(t for t, _ in parts), [n for _, ns in parts for n in ns]


@settings(max_examples=300)
@given(_select_list())
def test_property_generated_selects_parse_and_every_span_is_the_name(case):
    text, names = case
    sel = parse_select(text)
    _assert_spans(text, sel.items)
    walked = [i.relation if isinstance(i, Embed) else i.name for i in _walk(sel.items)]
    assert walked == names


_values = {
    "in": st.sampled_from(["(1,2,3)", '("a,b",c)', "()"]),
    "cs": st.sampled_from(["{a,b}", "{}"]),
}


@st.composite
def _condition(draw):
    column = ".".join(draw(st.lists(_ident.filter(lambda s: s not in OPERATORS and s != "not"), min_size=1, max_size=3)))
    op = draw(st.sampled_from(sorted(OPERATORS)))
    neg = "not." if draw(st.booleans()) else ""
    default = st.sampled_from(["1", "0.5", "null", "2025-01-01T00:00:00Z", '"x, (y)"', "a b", ""])
    value = draw(_values.get(op, default))
    path = draw(st.sampled_from(["", "->>k", "->0->k"]))
    return f"{column}{path}.{neg}{op}.{value}", column


@st.composite
def _logic(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            inner, cols = draw(_logic(depth + 1))
            group = draw(st.sampled_from(["and", "or", "not.and", "not.or"]))
            parts.append((f"{group}({inner})", cols))
        else:
            text, col = draw(_condition())
            parts.append((text, [col]))
    sep = "," + draw(st.sampled_from(["", " "]))
    return sep.join(t for t, _ in parts), [c for _, cs in parts for c in cs]


@settings(max_examples=300)
@given(_logic())
def test_property_generated_logic_parses_and_every_span_is_the_column(case):
    text, columns = case
    conds = parse_logic(text)
    assert [c.column for c in conds] == columns
    assert all(text[c.start : c.end] == c.column for c in conds)


@given(st.lists(_ident, min_size=1, max_size=5), _ws)
def test_property_split_columns_round_trips_names(names, ws):
    text = ("," + ws).join(ws + n + ws for n in names)
    parts = split_columns(text)
    assert [p[0] for p in parts] == names
    assert all(text[s:e] == n for n, s, e in parts)
