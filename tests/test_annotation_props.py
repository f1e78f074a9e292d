"""Property-based tests (hypothesis) of the annotation parsers: Aff-Wild2 VA/EXPR/submission files and
AFEW-VA clip JSON. On any generated input a parser returns its result or raises its one parse error,
whose message names the file and the line (or frame); nothing else escapes."""

from __future__ import annotations

import json
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectstream.scoring.abaw import (
    EXPR_HEADER,
    EXPR_HEADER_7,
    VA_HEADER,
    parse_expr,
    read_submission,
    read_va,
)
from affectstream.scoring.errors import AnnotationFormatError
from affectstream.training.data.afew_va import read_afew_va
from affectstream.training.errors import DataError

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HEADERS = [
    VA_HEADER,
    EXPR_HEADER,
    EXPR_HEADER_7,
    f"image_location,{VA_HEADER}",
    f"image_location,{EXPR_HEADER}",
]
numbers = st.one_of(
    st.integers(-12, 12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["-5", "-1", "nan", "inf", "1e400", "", " ", "0x1", "1_0", "٣"]),
)
cells = st.one_of(numbers, st.text(max_size=8))
rows = st.one_of(
    st.lists(cells, min_size=1, max_size=3).map(",".join),
    st.builds(
        lambda v, f, rest: f"{v}/{f:05d}.jpg,{rest}",
        st.sampled_from(["a", "b", "x/y"]),
        st.integers(0, 12),
        st.lists(numbers, min_size=1, max_size=2).map(",".join),
    ),
)
files = st.tuples(
    st.one_of(st.sampled_from(HEADERS), st.text(max_size=30)),
    st.lists(rows, max_size=12),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
).map(lambda t: t[2].join([t[0], *t[1]]) + (t[2] if t[3] else ""))


def _named(exc: Exception, path) -> None:
    assert str(exc).startswith(str(path)), str(exc)
    assert re.match(rf"{re.escape(str(path))}(:\d+:|: line 1 |: cannot read)", str(exc)), str(exc)


@SETTINGS
@given(text=files, raw=st.binary(max_size=40), use_raw=st.booleans())
def test_abaw_parsers_return_or_name_file_and_line(tmp_path, text, raw, use_raw):
    path = tmp_path / "video.txt"
    if use_raw:
        path.write_bytes(raw)
    else:
        path.write_text(text, encoding="utf-8")
    for parse in (read_va, parse_expr, read_submission):
        try:
            out = parse(path)
        except AnnotationFormatError as exc:
            _named(exc, path)
            continue
        if parse is read_va:
            assert out.ndim == 2 and out.shape[1] == 2 and np.isfinite(out).all()
        elif parse is parse_expr:
            values, classes = out
            assert len(classes) in (7, 8) and ((values >= -1) & (values < len(classes))).all()
        else:
            kind, videos = out
            assert kind in ("VA", "EXPR") and all(len(v) for v in videos.values())


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-20, 20), st.floats(), st.text(max_size=5)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
good_frame = st.fixed_dictionaries(
    {
        "valence": st.integers(-10, 10),
        "arousal": st.integers(-10, 10),
        "landmarks": st.just([[float(i), float(i)] for i in range(68)]),
    }
)
frame = st.one_of(
    good_frame,
    good_frame.flatmap(
        lambda f: st.sampled_from(list(f)).map(lambda k: {x: v for x, v in f.items() if x != k})
    ),
    good_frame.flatmap(
        lambda f: st.tuples(st.sampled_from(list(f)), json_values).map(lambda kv: f | {kv[0]: kv[1]})
    ),
    json_values,
)
documents = st.one_of(
    st.fixed_dictionaries({"frames": st.dictionaries(st.text(max_size=5), frame, max_size=4)}).map(
        json.dumps
    ),
    json_values.map(json.dumps),
    st.text(max_size=40),
)


@SETTINGS
@given(doc=documents)
def test_afew_va_parser_returns_or_names_file_and_frame(tmp_path, doc):
    path = tmp_path / "001.json"
    path.write_text(doc, encoding="utf-8")
    try:
        frames = read_afew_va(path)
    except DataError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        return
    for valence, arousal, pts in frames.values():
        assert -10 <= valence <= 10 and -10 <= arousal <= 10 and pts.shape == (68, 2)
