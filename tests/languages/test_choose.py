"""Which language a page or a tool speaks: stated, then the browser's (quality values), then the default;
anything hostile or unknown falls back and is never echoed."""
from __future__ import annotations

import pytest

from nextslot.languages import choose, from_accept_language, known


@pytest.mark.parametrize(("header", "expected"), [
    ("es-ES,es;q=0.9,en;q=0.8", "es"),
    ("en-GB;q=0.3, fr-CA;q=0.7, de;q=0.5", "fr"),  # quality wins over position
    ("de;q=0.5, fr;q=0.5", "de"),  # equal quality: the earlier one
    ("ja, zh-CN;q=0.9, de-AT;q=0.1", "de"),  # unknown ones are skipped
    ("ja, zh-CN;q=0.9", None),
    ("es;q=0, fr;q=0.001", "fr"),  # q=0 means "not this one"
    ("es;q=2, de", "de"),  # an impossible quality does not count
    ("es;q=abc", None),
    ("*", None),
    ("", None),
    (None, None),
    ("es" + ",x" * 2000, None),  # longer than any browser sends: ignored whole
])
def test_accept_language_negotiation_honours_quality_and_skips_what_we_do_not_speak(header, expected):
    assert from_accept_language(header) == expected


@pytest.mark.parametrize("hostile", [
    "x" * 10_000, "es\x00", "es\n", "<script>alert(1)</script>", "es'; DROP TABLE customers; --", "../../etc/passwd",
    "es-" + "a" * 40, "", " ", "zz", "english", 42, None, ["es"],
])
def test_hostile_or_unknown_language_values_are_not_ours(hostile):
    assert known(hostile) is None
    assert choose(hostile) == "en"
    assert choose(hostile, default="fr") == "fr"


def test_regional_tags_map_to_their_language():
    assert [known(tag) for tag in ("es-MX", "fr_CA", "DE-at", "en-US")] == ["es", "fr", "de", "en"]
    assert choose(None, "pt-BR", "de") == "de"
