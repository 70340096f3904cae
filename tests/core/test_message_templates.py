"""Businesses' templates: rendered within bounds, and checked with the values each kind of message gets."""
from __future__ import annotations

import re
import time

import pytest
from jinja2 import TemplateError

from nextslot.core.business.message_templates import (
    LANGUAGES,
    SAMPLES,
    render_text,
    template_problem,
    template_problems,
)
from nextslot.reminders.templates import DEFAULTS


@pytest.mark.parametrize(("template", "why"), [
    ("{% for i in range(10**9) %}x{% endfor %}", "range() is limited"),
    ("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}"
     "{% endfor %}", "too long to render"),
    ("{% for a in 'x' * 5000 %}{% for b in 'x' * 5000 %}{% endfor %}{% endfor %}", "too long to render"),
    ("{{ 'x' * 10**9 }}", "longer than"),
    ("{{ [1] * 10**9 }}", "longer than"),
    ("{% for i in range(1000) %}{{ 'x' * 10**6 }}{% endfor %}", "longer than"),
    ("{% for i in range(1000) %}{{ 'x' * 9000 }}{% endfor %}", "longer than"),
    ("{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a %}" * 40, "longer than"),
    ("{% set a = 'xxxxxxxxxx' %}" + "{% set a %}{{ a }}{{ a }}{% endset %}" * 40, "longer than"),
    ("{{ 'ab'|replace('', 'x' * 9000) }}", "longer than"),
    ("{{ 10 ** (10 ** 10) }}", "too large a number"),
    ("{{ '%999999999d' % 1 }}", "with filters"),
    ("{{ 'x'.center(10**9) }}", "unsafe"),
    ("{{ 'x'|center(10**9) }}", "No filter named 'center'"),
    ("{{ lipsum(10**6) }}", "undefined"),
    ("{% set l = [1] %}{{ l.extend(l) }}", "unsafe"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "too deeply"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(19) }}", "too long"),
    ("x" * 6000, "at most"),
])
def test_rendering_is_bounded_in_time_size_and_depth_and_refused_past_the_bounds(template, why):
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=re.escape(why)):
        render_text(template, SAMPLES["reminder"])
    assert time.perf_counter() - started < 2
    assert why.lower() in template_problem("reminder", template).lower()


def test_ordinary_templates_render_as_before():
    assert render_text("{% for w in when.split()[:2] %}{{ w|upper }} {% endfor %}{{ ['a', 'b']|join(', ') }}"
                       "{{ ' ~ ' ~ name|replace('A', 'a') }}", {"when": "Tuesday 1 December", "name": "Ana"}) \
        == "TUESDAY 1 a, b ~ ana"


def test_a_template_compiled_once_renders_each_message_with_its_own_values_and_its_own_budget():
    """Templates are compiled once per process and text: every message still gets its own values, an edited
    text is compiled anew, and a hostile template is cut off on every render, not only the first."""
    assert render_text("Hi {{ name }}", {"name": "Ana"}) == "Hi Ana"
    assert render_text("Hi {{ name }}", {"name": "Ben"}) == "Hi Ben"
    assert render_text("Hi {{ name }}!", {"name": "Ana"}) == "Hi Ana!"
    slow = "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}" \
           "{% endfor %}"
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(TemplateError, match="too long to render"):
            render_text(slow, SAMPLES["reminder"])
        assert time.perf_counter() - started < 2


def test_a_template_that_raises_is_refused_with_a_reason_and_no_value_of_the_message():
    assert template_problem("confirmation", "{{ 1/0 }}") == "it divides by zero"
    assert template_problem("confirmation", "{{ name + 1 }}") == "it fails when rendered (TypeError)"
    assert "'minutes' is undefined" in template_problem("confirmation", "{{ minutes }}")  # a waitlist offer's
    assert template_problem("waitlist_offer", "Reply in {{ minutes }} minutes") is None


def test_every_default_renders_with_the_sample_values_of_its_kind():
    assert set(DEFAULTS) == set(LANGUAGES) and set(DEFAULTS["en"]) == set(SAMPLES)
    for language, kinds in DEFAULTS.items():
        for kind, text in kinds.items():
            assert template_problem(kind, text) is None, (language, kind)


def test_templates_are_checked_for_every_language_and_kind_they_set():
    assert template_problems({"en": {"reminder": "See you {{ when }}"}}) == []
    assert template_problems({"es": {"reminder": "{{ 1/0 }}"}, "it": {}, "fr": "x", "de": {"no_such": "x",
                                                                                          "cancelled": 5}}) == [
        ("business.details.templates.es.reminder", "it divides by zero"),
        ("business.details.templates.it", "not a language of ours (en, es, fr, de)"),
        ("business.details.templates.fr", "give the kinds of message and their templates"),
        ("business.details.templates.de.no_such", f"not a kind of message ({', '.join(SAMPLES)})"),
        ("business.details.templates.de.cancelled", "a template is text"),
    ]
    assert template_problems("x") == [("business.details.templates",
                                       "give templates as a mapping of language to kinds of message")]
