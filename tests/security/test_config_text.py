"""A configuration pasted into the console is untrusted text: aliases that expand a few hundred bytes into
billions of values, nesting past any limit, impossible dates and tagged values each get a clear answer at once,
never a 500 or minutes of one worker's CPU."""
from __future__ import annotations

import time

import pytest

from nextslot.schemas.config import BusinessConfig
from nextslot.schemas.config_text import MAX_NESTING, ConfigTextError, read_config_text
from tests.conftest import EXAMPLES
from tests.server.test_console import clients, console, csrf_of  # noqa: F401 - the signed-in console


def laughs(levels: int, fan: int = 10) -> str:
    lines = ["l0: &l0 [lol]"] + [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]"
                                 for i in range(1, levels + 1)]
    return "business:\n  details:\n    junk:\n" + "\n".join("      " + line for line in lines)


HANG_SECONDS = 30

HOSTILE = {
    "aliases": laughs(9),
    "deep": "business: " + "[" * 5000 + "]" * 5000,
    "impossible date": "business:\n  closures:\n    - date: 2026-02-30\n",
    "tagged date": "closures: [!!timestamp 2026-02-30]",
    "tagged float": "x: !!float nonsense",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_is_refused_or_left_to_the_fields_at_once(name):
    started = time.monotonic()
    try:
        data = read_config_text(HOSTILE[name])
    except ConfigTextError as error:
        assert str(error)
    else:  # the date stays text, for the config's own date field to refuse
        assert data == {"business": {"closures": [{"date": "2026-02-30"}]}}
    # a hang guard, not a timing claim: the aliases took minutes of CPU before; 5,000 brackets take about a second
    # on a busy 2-core machine, so a tighter bound failed on noise
    assert time.monotonic() - started < HANG_SECONDS


def test_the_examples_and_any_config_within_the_limits_read_as_before():
    import yaml

    for path in EXAMPLES.glob("*.yaml"):  # dates come as text now, and read as the same dates
        assert BusinessConfig.model_validate(read_config_text(path.read_text())) == BusinessConfig.model_validate(
            yaml.safe_load(path.read_text()))
    assert read_config_text("a: " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1))
    assert read_config_text("anchor: &kept 1\nplain: 2") == {"anchor": 1, "plain": 2}  # an anchor alone is harmless


def test_the_console_answers_each_hostile_config_with_a_form_error_not_a_500(console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"))
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    for name, text in HOSTILE.items():
        answer = client.post(f"/console/{slug}/settings/config", data={"csrf": csrf, "config": text})
        assert answer.status_code in (200, 303, 400, 422), (name, answer.status_code)
        assert "Something went wrong" not in answer.text, name
