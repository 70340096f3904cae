"""A business configuration written as YAML (or JSON, which YAML reads too), read as plain data.

Staff paste it into the console, so it is read as untrusted text: no aliases (a few lines of them expand to
billions of values, and checking them would hold a worker for minutes), no deeper nesting than any config needs,
and dates left as text for the config's own fields to check (PyYAML's own reading raises on 2026-02-30).
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_NESTING = 30  # a config's deepest values sit about six levels down


class ConfigTextError(ValueError):
    """The text could not be read as a configuration; the message says where and why, for the person who wrote it."""


class ConfigLoader(yaml.SafeLoader):
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        where = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            raise ComposerError(None, None, "aliases (*name) are not accepted; write the values out", where)
        if self.depth >= MAX_NESTING:
            raise ComposerError(None, None, f"values nest more than {MAX_NESTING} deep", where)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


ConfigLoader.yaml_implicit_resolvers = {  # a date-looking value stays text: the field it fills reads it
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_config_text(text: str) -> Any:
    """The text's data; ConfigTextError when it is not YAML, or holds what a configuration never needs."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader, narrowed further above
    except yaml.YAMLError as error:
        raise ConfigTextError(f"That is not valid YAML: {error}.") from None
    except (ValueError, OverflowError):  # an explicit tag (!!timestamp, !!float) on a value it cannot take
        raise ConfigTextError("A tagged value in it cannot be read; leave out the !!tag.") from None
