"""What the README counts and lists is read from the code, so the two cannot drift apart."""
from __future__ import annotations

import re
from pathlib import Path

from nextslot.tools.registry import TOOLS

README = Path(__file__).parent.parent / "README.md"
NUMBERS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split())}


def test_the_readme_counts_and_lists_every_tool_of_the_registry_in_its_order():
    text = " ".join(README.read_text().split())  # one line: the paragraph wraps anywhere
    found = re.search(r"## Agent tools (\w+) tools, one registry .*? run through the same `execute`: (.*?)\. Inputs",
                      text)
    assert found, "the README's 'Agent tools' paragraph changed shape: update this test with it"
    count, listed = found.groups()
    assert NUMBERS[count.lower()] == len(TOOLS)
    assert re.findall(r"`(\w+)`", listed) == list(TOOLS)
