"""Intake answers checked against the service's questions, the same way for every channel."""
from __future__ import annotations

import math
from typing import Any

from nextslot.core.results import Rejected
from nextslot.schemas.inputs import BIGINT
from nextslot.schemas.service_rules import IntakeQuestion

YES = {"yes", "y", "true", "1", "on", "si", "sí", "oui", "ja"}
NO = {"no", "n", "false", "0", "off", "non", "nein"}
MAX_TEXT = 2000


def check_answers(questions: list[dict[str, Any]], answers: dict[str, Any]) -> dict[str, Any] | Rejected:
    """Answers cleaned to each question's type (choices spelled as configured), or the first problem.

    A service without questions keeps whatever was given: it is free-form notes to the business.
    """
    if not questions:
        return answers
    asked = [IntakeQuestion.model_validate(q) for q in questions]
    by_key = {q.key: q for q in asked}
    unknown = [k for k in answers if k not in by_key]
    if unknown:
        return Rejected("unknown_intake_question",
                        f"This service does not ask '{unknown[0]}'. Its questions: "
                        f"{'; '.join(f'{q.key} ({q.label})' for q in asked)}.", f"intake.{unknown[0]}",
                        tuple(by_key))
    cleaned: dict[str, Any] = {}
    for q in asked:
        value = answers.get(q.key)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if q.required:
                return Rejected("intake_required", f"Please answer: {q.label}", f"intake.{q.key}")
            continue
        answer = cleaned_answer(q, value)
        if isinstance(answer, Rejected):
            return answer
        cleaned[q.key] = answer
    return cleaned


def cleaned_answer(q: IntakeQuestion, value: Any) -> Any:
    field = f"intake.{q.key}"
    if q.type == "number":
        try:
            number = float(str(value).replace(",", "."))
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and abs(number) <= BIGINT):  # 'nan', '1e400': nothing JSON can store
            return Rejected("intake_invalid", f"{q.label}: give a number.", field)
        return int(number) if number.is_integer() else number
    if q.type == "yes_no":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in YES or word in NO:
            return word in YES
        return Rejected("intake_invalid", f"{q.label}: answer yes or no.", field)
    text = str(value)
    if len(text) > MAX_TEXT:
        return Rejected("intake_invalid", f"{q.label}: keep it under {MAX_TEXT} characters.", field)
    if q.type == "choice":
        match = next((o for o in q.options if o.casefold() == text.casefold()), None)
        if match is None:
            return Rejected("intake_invalid", f"{q.label}: choose one of {', '.join(q.options)}.", field,
                            tuple(q.options))
        return match
    return text
