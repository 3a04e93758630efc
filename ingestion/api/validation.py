"""Validate a POST body, a survey object or an array of them, before anything is buffered.

The whole body is parsed and validated in one pydantic-core pass (``validate_json`` on the
raw bytes). In an array every item is validated on its own, so one bad item costs only its
own errors; each error names the field (``path``) and says what is wrong (``reason``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from ingestion.events import Survey

BODY = "body"  # path of errors about the body as a whole
ITEM = "survey"  # path of errors about a batch item as a whole

SURVEY_FIELDS: tuple[str, ...] = tuple(Survey.model_fields)


@dataclass(frozen=True)
class FieldError:
    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class BodyError(Exception):
    """The body as a whole is unusable (not JSON, wrong type, empty, too many items)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.path}: {e.reason}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class ParsedBody:
    is_batch: bool
    # Per item in body order: the validated survey, or its errors.
    items: list[Any]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        close = difflib.get_close_matches(name, SURVEY_FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown field{hint}; surveys use the canonical field names of the Survey schema"
    if kind == "model_type":
        return f"expected a survey object, got {_json_type(error['input'])}"
    return f"{error['msg']} (got {_shown(error['input'])})"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One error per field path, in the order pydantic reports them."""
    by_path: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or ITEM
        by_path.setdefault(path, []).append(_reason(error))
    return [FieldError(path, "; ".join(reasons)) for path, reasons in by_path.items()]


def _keep_errors(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        return field_errors(exc)


# All items valid (the common case) costs one pass with no Python per item; otherwise a
# second pass keeps each item's errors.
_BATCH = TypeAdapter(list[Survey])
_BATCH_ITEMS = TypeAdapter(list[Annotated[Survey, WrapValidator(_keep_errors)]])


def _invalid_json(exc: ValidationError) -> BodyError | None:
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            detail = error.get("ctx", {}).get("error", error["msg"])
            return BodyError([FieldError(BODY, f"not valid JSON: {detail}")])
    return None


def parse_body(body: bytes, *, max_batch: int) -> ParsedBody:
    """Validate a body holding one survey object or an array of up to ``max_batch`` of them."""
    start = body.lstrip()[:1]
    if start == b"{":
        try:
            return ParsedBody(False, [Survey.model_validate_json(body)])
        except ValidationError as exc:
            raise _invalid_json(exc) or BodyError(field_errors(exc)) from None
    if start == b"[":
        try:
            items = _BATCH.validate_json(body)
        except ValidationError as exc:
            invalid = _invalid_json(exc)
            if invalid is not None:
                raise invalid from None
            items = _BATCH_ITEMS.validate_json(body)
        if not items:
            raise BodyError([FieldError(BODY, "empty array: send at least one survey")])
        if len(items) > max_batch:
            raise BodyError(
                [
                    FieldError(
                        BODY,
                        f"array of {len(items)} surveys; at most {max_batch} are accepted per "
                        "request, split it into several requests",
                    )
                ]
            )
        return ParsedBody(True, items)
    if not start:
        raise BodyError(
            [FieldError(BODY, "empty body: send a survey object or an array of surveys")]
        )
    try:
        value = pydantic_core.from_json(body)
    except ValueError as exc:
        raise BodyError([FieldError(BODY, f"not valid JSON: {exc}")]) from None
    raise BodyError(
        [
            FieldError(
                BODY,
                f"expected a survey object or an array of survey objects, got {_json_type(value)}",
            )
        ]
    )
