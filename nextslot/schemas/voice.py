"""Voice platforms' tool-call requests, as they document them (unknown fields are ignored; what is given is
checked like any input, and a caller's number is no longer than a customer's phone may be)."""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from nextslot.schemas.inputs import Input

Arguments = dict[str, Any] | str | None  # an object, or a JSON string of one
MAX_VAPI_TOOL_CALLS = 10  # a turn's parallel calls are a few; more is a runaway model or a flood, refused unrun


class VapiFunction(Input):
    name: str
    arguments: Arguments = None


class VapiToolCall(Input):
    """One call of `toolCallList`: `name`/`arguments` at the top, or nested in `function` (both are sent)."""

    id: str = Field(min_length=1, max_length=150)
    name: str | None = None
    arguments: Arguments = None
    function: VapiFunction | None = None

    @model_validator(mode="after")
    def _name_from_function(self) -> VapiToolCall:
        if self.function is not None:
            self.name = self.name or self.function.name
            self.arguments = self.arguments if self.arguments is not None else self.function.arguments
        if not self.name:
            raise ValueError("a tool call needs a name (or function.name)")
        return self


class Customer(Input):
    number: str | None = Field(None, max_length=40)


class VapiCall(Input):
    id: str | None = Field(None, max_length=150)
    customer: Customer | None = None


class VapiMessage(Input):
    type: str
    toolCallList: list[VapiToolCall] | None = Field(None, max_length=MAX_VAPI_TOOL_CALLS)
    call: VapiCall | None = None
    customer: Customer | None = None

    @property
    def call_id(self) -> str | None:
        return self.call.id if self.call else None

    @property
    def caller_number(self) -> str | None:
        for customer in (self.call and self.call.customer, self.customer):
            if customer and customer.number:
                return customer.number
        return None


class VapiRequest(Input):
    message: VapiMessage


class RetellCall(Input):
    call_id: str | None = Field(None, max_length=200)
    direction: str | None = None
    from_number: str | None = Field(None, max_length=40)
    to_number: str | None = Field(None, max_length=40)

    @property
    def caller_number(self) -> str | None:
        """The customer's number: who called in, or who was called on an outbound call."""
        return self.to_number if self.direction == "outbound" else self.from_number


class RetellRequest(Input):
    """A custom function call with the default payload (not "args only", which leaves out the name)."""

    name: str = Field(min_length=1, max_length=200)
    call: RetellCall = Field(default_factory=RetellCall)
    args: dict[str, Any] | None = None


ELEVENLABS_FIELDS = {  # body properties an ElevenLabs tool fills from its system dynamic variables, not the model
    "conversation_id": "conversation_id", "system__conversation_id": "conversation_id",
    "caller_id": "caller_id", "system__caller_id": "caller_id",
}


class ElevenLabsCall(Input):
    """What an ElevenLabs webhook tool says about the conversation, beside the arguments the model filled in:
    the body properties set from `system__conversation_id` and `system__caller_id` (see the README)."""

    conversation_id: str | None = Field(None, max_length=200)
    caller_id: str | None = Field(None, max_length=40)

    @classmethod
    def split(cls, body: dict[str, Any]) -> tuple[ElevenLabsCall, dict[str, Any]]:
        """(the conversation's details, the tool's arguments) from a request body."""
        ours = {ELEVENLABS_FIELDS[k]: v for k, v in body.items() if k in ELEVENLABS_FIELDS and v not in ("", None)}
        return cls.model_validate(ours), {k: v for k, v in body.items() if k not in ELEVENLABS_FIELDS}
