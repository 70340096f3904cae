"""Businesses' own message templates: rendered in a bounded sandbox, and checked before they are stored.

A business writes these, and the dispatcher renders them for every tenant in one batch, so a template
may use the message's values and nothing else, and no template may take more than a moment, a few
kilobytes, or a shallow stack: every call, operator, filter and loop step is counted against one budget,
operators that multiply sizes are checked before they run, and the output is cut off past a limit.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, cast

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from nextslot.core.business.longest_values import has_bound, longest_values
from nextslot.core.sms_text import SMS_LIMIT, sms_length

MAX_SOURCE = 5_000  # characters of one template
MAX_TEXT = 10_000  # characters of the message, and the size of any value made on the way
MAX_RANGE = 1_000  # items of one range()
MAX_STEPS = 50_000  # calls, operators, filters and loop steps in one rendering
MAX_DEPTH = 20  # nested calls (macros calling macros)
MAX_BITS = 10_000  # of an integer made by * or **
MAX_SECONDS = 2.0  # a backstop behind MAX_STEPS: wide enough that a loaded machine (a GC pause) never refuses a default
# str methods whose result can be far longer than what they are given; the filters below do the useful ones
AMPLIFYING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "join",
                        "replace", "translate"})
FILTERS = ("abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int", "join", "last",
           "length", "list", "lower", "max", "min", "replace", "reverse", "round", "sort", "string", "striptags",
           "sum", "title", "trim", "truncate", "unique", "upper", "wordcount")
LANGUAGES = ("en", "es", "fr", "de")

BOOKING = {"name": "Ana", "service": "Check-up", "business": "Example", "code": "KX7-42P", "customer": "Ana",
           "when": "Tuesday 1 December at 9:30 am", "previous_when": "Monday 30 November at 4:00 pm",
           "manage_url": "https://example.com/m/x", "calendar_url": "https://example.com/ics/x.ics",
           "pay_url": "https://example.com/pay/x", "deposit": "GBP 20.00", "pay_by": "Monday 30 November at 9:00 am"}
# the values the dispatcher gives each kind of message, so a template is tried with what it will get
SAMPLES: dict[str, dict[str, str]] = {
    **{kind: BOOKING for kind in ("confirmation", "reminder", "rescheduled", "cancelled", "deposit_requested",
                                  "staff_rescheduled", "staff_cancelled")},
    "waitlist_offer": {"name": "Ana", "business": "Example", "service": "Check-up", "minutes": "30", "party": "2",
                       "when": "Tuesday 1 December at 9:30 am", "offer_url": "https://example.com/w/x"},
    "business_webhook_disabled": {"business": "Example", "endpoint_id": "7", "url": "https://example.com/hook",
                                  "reason": "deliveries failed for a day; last: HTTP 500",
                                  "reenable": 'PUT /v1/webhooks/7 with {"active": true}',
                                  "at": "2026-12-01T09:30:00+00:00", "when": "Tuesday 1 December at 9:30 am"},
    "business_calendar_reconnect": {"business": "Example", "staff": "Dr Okafor", "provider": "Google",
                                    "account": "okafor@example.com", "reason": "invalid_grant",
                                    "reconnect": "the console's Calendars page, Dr Okafor: Connect again",
                                    "at": "2026-12-01T09:30:00+00:00", "when": "Tuesday 1 December at 9:30 am"},
}


@dataclass
class Budget:
    deadline: float
    steps: int = 0
    depth: int = 0

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS or time.monotonic() > self.deadline:
            raise SecurityError("the template takes too long to render")


_budget: ContextVar[Budget] = ContextVar("template_budget")


def spend() -> Budget:
    budget = _budget.get(None)
    if budget is None:
        raise SecurityError("templates are rendered through render_text")
    budget.spend()
    return budget


def size(value: Any, limit: int = MAX_TEXT) -> int:
    """Characters a value amounts to (strings inside lists and dicts too); stops counting past `limit`."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | set | frozenset):
        total = len(value)
        for item in value:
            if total > limit:
                break
            total += size(item, limit - total)
        return total
    return 0


def bounded(value: Any) -> Any:
    if size(value) > MAX_TEXT:
        raise SecurityError(f"the template makes a text longer than {MAX_TEXT} characters")
    return value


def capped_range(*args: int) -> range:
    if len(range(*args)) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return range(*args)


def joined(*parts: Any) -> str:
    texts = [str(part) for part in parts]
    if sum(map(len, texts)) > MAX_TEXT:
        raise SecurityError(f"the template makes a text longer than {MAX_TEXT} characters")
    return "".join(texts)


class Steps(NodeTransformer):
    """Every `{% for %}` steps through `environment.stepped` and every `~` joins through `environment.joined`,
    so both are counted like calls (jinja2 compiles them to plain Python loops and joins)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.EnvironmentAttribute("stepped"), [node.iter], [], None, None,
                               lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.EnvironmentAttribute("joined"), node.nodes, [], None, None, lineno=node.lineno)


class MessageSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox (no list.append and the like), with every amplifier counted and capped."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
        self.globals = {"range": capped_range, "dict": dict}  # no lipsum(n), no namespace() to grow across loops
        self.filters = {name: counted(self.filters[name]) for name in FILTERS}
        self.filters["join"] = counted(checked_join)
        self.filters["replace"] = counted(checked_replace)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return cast(nodes.Template, Steps().visit(super()._parse(source, name, filename)))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr not in AMPLIFYING and super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - jinja2's own
        budget = spend()
        if budget.depth >= MAX_DEPTH:
            raise SecurityError("the template calls itself too deeply")
        budget.depth += 1
        try:
            return bounded(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        spend()
        if operator == "%" and isinstance(left, str | bytes):
            raise SecurityError("format text with filters, not with %")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and (
                right > MAX_BITS or left.bit_length() * right > MAX_BITS):
            raise SecurityError("the template makes too large a number")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(times, int) and size(seq) * max(times, 0) > MAX_TEXT:
                    raise SecurityError(f"the template makes a text longer than {MAX_TEXT} characters")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_BITS:
                raise SecurityError("the template makes too large a number")
        return bounded(super().call_binop(context, operator, left, right))

    joined = staticmethod(joined)

    @staticmethod
    def concat(parts: Iterable[str]) -> str:  # the bodies of macros, {% set %} and {% filter %} blocks
        return joined(*parts)

    @staticmethod
    def stepped(iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            spend()
            yield item


def counted(f: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(f)  # keeps jinja2's pass_context / pass_environment marks
    def run(*args: Any, **kwargs: Any) -> Any:
        spend()
        return bounded(f(*args, **kwargs))

    return run


def checked_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = [str(item[attribute] if attribute is not None else item) for item in value]
    return joined(*(part for i, item in enumerate(items) for part in ((str(d), item) if i else (item,))))


def checked_replace(s: Any, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(s), str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if len(text) + min(found, count if count is not None and count >= 0 else found) * len(new) > MAX_TEXT:
        raise SecurityError(f"the template makes a text longer than {MAX_TEXT} characters")
    return text.replace(old, new, -1 if count is None else count)


ENV = MessageSandbox()


@lru_cache(maxsize=256)
def compiled(text: str) -> Template:
    """A template compiled once per process (compiling is ~0.7 ms, rendering ~0.01); rendering a compiled
    template is thread-safe, and every render still runs within its own budget."""
    return ENV.from_string(text)


def render_text(text: str, values: dict[str, str]) -> str:
    """Render a template within the limits above; a template past any of them raises SecurityError."""
    if len(text) > MAX_SOURCE:
        raise SecurityError(f"a template is at most {MAX_SOURCE} characters")
    token = _budget.set(Budget(time.monotonic() + MAX_SECONDS))
    try:
        out, length = [], 0
        for chunk in compiled(text).generate(**values):
            spend()
            length += len(chunk)
            if length > MAX_TEXT:
                raise SecurityError(f"the message is longer than {MAX_TEXT} characters")
            out.append(chunk)
        return "".join(out)
    finally:
        _budget.reset(token)


def template_problem(kind: str, text: str, language: str = "en") -> str | None:
    """Why a business's template for this kind would not render with the values it will be given, if it
    would not: a typo, an unknown field, a division by zero, too much work, or a text message longer than Twilio
    takes when the values are as long as they can be."""
    try:
        render_text(text, SAMPLES[kind])
        if has_bound(kind) and (length := sms_length(render_text(text, longest_values(kind, language)))) > SMS_LIMIT:
            return (f"with the longest names, links and times it can be given it comes to {length} characters, and "
                    f"a text message takes at most {SMS_LIMIT} (Twilio refuses longer ones): shorten it")
    except TemplateError as error:
        return str(error.message or error)
    except ZeroDivisionError:
        return "it divides by zero"
    except Exception as error:  # noqa: BLE001 - anything a template can raise is a reason to refuse it
        return f"it fails when rendered ({type(error).__name__})"  # the type only: never a value's text
    return None


def template_problems(templates: Any) -> list[tuple[str, str]]:
    """(field, problem) for every override in `details.templates` that is not a known language and kind
    with a template that renders."""
    where = "business.details.templates"
    if not isinstance(templates, dict):
        return [(where, "give templates as a mapping of language to kinds of message")]
    problems = []
    for language, kinds in templates.items():
        if language not in LANGUAGES:
            problems.append((f"{where}.{language}", f"not a language of ours ({', '.join(LANGUAGES)})"))
        elif not isinstance(kinds, dict):
            problems.append((f"{where}.{language}", "give the kinds of message and their templates"))
        else:
            for kind, text in kinds.items():
                field_name = f"{where}.{language}.{kind}"
                if kind not in SAMPLES:
                    problems.append((field_name, f"not a kind of message ({', '.join(SAMPLES)})"))
                elif not isinstance(text, str):
                    problems.append((field_name, "a template is text"))
                elif problem := template_problem(kind, text, language):
                    problems.append((field_name, problem))
    return problems


def whatsapp_template_problems(templates: Any) -> list[tuple[str, str]]:
    """(field, problem) for each WhatsApp template variable that is not a value its kind of message has (the
    shape itself is checked by `BusinessDetails`)."""
    problems = []
    for language, kinds in (templates or {}).items() if isinstance(templates, dict) else ():
        for kind, template in (kinds or {}).items() if isinstance(kinds, dict) else ():
            names = (template or {}).get("variables") or [] if isinstance(template, dict) else []
            for i, name in enumerate(names):
                if kind in SAMPLES and isinstance(name, str) and name not in SAMPLES[kind]:
                    problems.append((f"business.details.whatsapp_templates.{language}.{kind}.variables.{i}",
                                     f"not a value of this message ({', '.join(sorted(SAMPLES[kind]))})"))
    return problems
