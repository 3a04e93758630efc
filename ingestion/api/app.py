"""The ingestion API as a FastAPI app: post surveys, look them up, health and metrics.

``create_app`` takes its collaborators (settings, limits, the delivery buffer) and reads no
environment. Surveys are validated, given ids (``records``), journaled through the buffer's
``add`` (group-committed, ``committer``) and only then answered 202: a 202 is durable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingestion.api import lookup
from ingestion.api.auth import ApiKeyAuth
from ingestion.api.buffer import RecordBuffer
from ingestion.api.committer import GroupCommitter
from ingestion.api.config import ApiConfig
from ingestion.api.idempotency import Entry, IdempotencyCache
from ingestion.api.metrics import CONTENT_TYPE, Metrics
from ingestion.api.models import (
    Accepted,
    BatchResult,
    ErrorBody,
    FlightSurveys,
    Health,
    SurveyRecord,
)
from ingestion.api.records import event_record, identify, survey_json
from ingestion.api.validation import BODY, BodyError, FieldError, parse_body
from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.events import Survey, utc_now

log = logging.getLogger("contrail.api")

API_VERSION = "1.0.0"
SURVEYS_ROUTE = "/v1/surveys"
MAX_IDEMPOTENCY_KEY = 255

DESCRIPTION = """\
Contrail's ingestion API. Apps and kiosks post passenger surveys; each accepted survey is
journaled to disk before the answer (a 202 is durable) and delivered, Kinesis Firehose style,
to the stream loader.

- **Authentication**: every `/v1` route needs an `X-API-Key` header holding one of the
  configured keys (`CONTRAIL_API_KEYS`, comma-separated, or a keys file, one per line).
  `/healthz`, `/metrics` and `/openapi.json` are open.
- **Retries**: send an `Idempotency-Key` header (or give each survey its own `survey_id`).
  A retry gets the same `event_id` and `survey_id` and is not buffered again while the key is
  remembered (the most recent keys, in memory); older retries carry the same `event_id`, and
  staging drops the duplicate.
- **Errors**: every error body is `{"errors": [{"path": ..., "reason": ...}]}`.
- The interactive docs UI is disabled: it would load its assets from the internet. Read this
  spec at `/openapi.json` (committed as `docs/openapi.json`).
"""

_ERRORS = {"model": ErrorBody}
_SECURITY = {"security": [{"ApiKey": []}]}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _errors(
    status: int, errors: list[FieldError], headers: dict[str, str] | None = None
) -> Response:
    return _json(status, {"errors": [e.as_dict() for e in errors]}, headers)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _idempotency_key_error(key: str) -> FieldError | None:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        return FieldError(
            "Idempotency-Key",
            f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters (a UUID is ideal)",
        )
    return None


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` bytes (read no further)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit():
        if int(length) > limit:
            return None
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, api_config: ApiConfig, buffer: RecordBuffer) -> FastAPI:
    """The API over ``buffer``; lookups read ``settings.serving_path``."""
    if not api_config.api_keys and not api_config.allow_no_auth:
        raise ContrailError(
            "no API keys configured: set CONTRAIL_API_KEYS=key1,key2 or give a keys file "
            "(one key per line); to run without authentication on a trusted machine, pass "
            "--insecure-no-auth"
        )
    metrics = Metrics()
    auth = ApiKeyAuth(api_config.api_keys)
    cache = IdempotencyCache(api_config.idempotency_capacity)
    committer = GroupCommitter(buffer, metrics)
    snapshot = settings.serving_path

    def flush(what: str) -> None:
        started = time.perf_counter()
        try:
            keys = buffer.flush() if what == "all" else buffer.flush_due()
        except Exception:
            metrics.count_flush_error()
            log.exception("flushing the delivery buffer failed; records stay journaled")
            return
        if keys:
            metrics.observe_flush(time.perf_counter() - started, len(keys))

    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(api_config.flush_poll_s)
            await asyncio.to_thread(flush, "due")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(flush_loop())
        try:
            yield
        finally:
            task.cancel()
            await committer.close()
            await asyncio.to_thread(flush, "all")

    app = FastAPI(
        title="Contrail ingestion API",
        version=API_VERSION,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )

    def reply(method: str, route: str, response: Response) -> Response:
        metrics.count_request(method, route, response.status_code)
        return response

    def denied(request: Request) -> Response | None:
        reason = auth.check(request.headers.get("x-api-key"))
        if reason is None:
            return None
        return _errors(401, [FieldError("X-API-Key", reason)], {"WWW-Authenticate": "X-API-Key"})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            FieldError(
                ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]),
                f"{error['msg']} (got {error.get('input')!r})",
            )
            for error in exc.errors()
        ]
        return _errors(422, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        reason = str(exc.detail)
        if exc.status_code == 404:
            reason = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            reason = f"{request.method} is not allowed on {request.url.path}"
        return _errors(exc.status_code, [FieldError("url", reason)], exc.headers)

    @app.post(
        SURVEYS_ROUTE,
        status_code=202,
        summary="Submit one survey, or an array of up to 500",
        response_model=Accepted | BatchResult,
        responses={
            202: {"description": "Every survey accepted and journaled (durable)."},
            207: {
                "model": BatchResult,
                "description": "An array with some surveys accepted and some rejected.",
            },
            401: {**_ERRORS, "description": "Missing or invalid X-API-Key."},
            409: {
                **_ERRORS,
                "description": "The Idempotency-Key was used for a different survey.",
            },
            413: {**_ERRORS, "description": "The body is larger than the limit."},
            415: {**_ERRORS, "description": "The body is not JSON."},
            422: {
                "model": ErrorBody | BatchResult,
                "description": "Invalid: one error per field (single survey or body), or "
                "per-item results when every item of an array is rejected.",
            },
            503: {**_ERRORS, "description": "The surveys could not be journaled; retry."},
        },
        openapi_extra={
            **_SECURITY,
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
                    "description": "Makes retries safe: the same key gets the same event_id "
                    "and survey_id and is not buffered twice. For an array, item i uses "
                    "'<key>#<i>'.",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Survey"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Survey"},
                                    "minItems": 1,
                                    "maxItems": api_config.max_batch,
                                },
                            ]
                        }
                    }
                },
            },
        },
    )
    async def post_surveys(request: Request) -> Response:
        method = "POST"
        refusal = denied(request)
        if refusal is not None:
            return reply(method, SURVEYS_ROUTE, refusal)
        content_type = request.headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            return reply(
                method,
                SURVEYS_ROUTE,
                _errors(
                    415,
                    [FieldError("Content-Type", f"{content_type!r}: send application/json")],
                ),
            )
        body = await _read_body(request, api_config.max_body_bytes)
        if body is None:
            return reply(
                method,
                SURVEYS_ROUTE,
                _errors(
                    413,
                    [
                        FieldError(
                            BODY,
                            f"body larger than {api_config.max_body_bytes} bytes; send fewer "
                            f"surveys per request (at most {api_config.max_batch})",
                        )
                    ],
                ),
            )
        header_key = request.headers.get("idempotency-key")
        if header_key is not None:
            problem = _idempotency_key_error(header_key)
            if problem is not None:
                return reply(method, SURVEYS_ROUTE, _errors(422, [problem]))
        try:
            parsed = parse_body(body, max_batch=api_config.max_batch)
        except BodyError as exc:
            metrics.count_surveys(accepted=0, rejected=1, replayed=0)
            return reply(method, SURVEYS_ROUTE, _errors(422, exc.errors))
        return reply(method, SURVEYS_ROUTE, await accept(parsed.items, parsed.is_batch, header_key))

    async def accept(items: list[Any], is_batch: bool, header_key: str | None) -> Response:
        loop = asyncio.get_running_loop()
        journaled: asyncio.Future[None] = loop.create_future()
        submitted_at = utc_now()
        results: list[dict[str, Any]] = []
        records: list[bytes] = []
        created: list[tuple[str, Entry]] = []
        waits: list[asyncio.Future[None]] = []
        replayed = 0
        for index, item in enumerate(items):
            if not isinstance(item, Survey):
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "errors": [e.as_dict() for e in item],
                    }
                )
                continue
            payload = survey_json(item)
            identity = identify(item, payload, header_key, index if is_batch else None)
            entry = cache.get(identity.key) if identity.key is not None else None
            if entry is not None and entry.fingerprint != identity.fingerprint:
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "errors": [
                            {
                                "path": "Idempotency-Key",
                                "reason": "this key was already used for a different survey; "
                                "use a new key for a new survey",
                            }
                        ],
                        "conflict": True,
                    }
                )
                continue
            if entry is not None:
                replayed += 1
                waits.append(entry.journaled)
                event_id, survey_id, again = entry.event_id, entry.survey_id, True
            else:
                records.append(event_record(payload, identity, submitted_at))
                event_id, survey_id, again = identity.event_id, identity.survey_id, False
                if identity.key is not None:
                    entry = Entry(event_id, survey_id, identity.fingerprint, journaled)
                    cache.put(identity.key, entry)
                    created.append((identity.key, entry))
            results.append(
                {
                    "index": index,
                    "status": "accepted",
                    "event_id": event_id,
                    "survey_id": survey_id,
                    "replayed": again,
                }
            )
        if records:
            committer.submit(records, journaled)
            waits.append(journaled)
        try:
            for future in dict.fromkeys(waits):
                await asyncio.shield(future)
        except Exception as exc:
            for key, entry in created:
                cache.discard(key, entry)
            log.error("journaling %d surveys failed: %s", len(records), exc)
            return _errors(
                503,
                [
                    FieldError(
                        BODY,
                        f"could not journal the surveys ({exc}); nothing from this request "
                        "is guaranteed accepted, retry it with the same Idempotency-Key",
                    )
                ],
            )
        rejected = sum(1 for r in results if r["status"] == "rejected")
        metrics.count_surveys(accepted=len(records), rejected=rejected, replayed=replayed)
        if not is_batch:
            result = results[0]
            if result["status"] == "rejected":
                return _json(409, {"errors": result["errors"]})
            del result["index"]
            return _json(202, result)
        for result in results:
            result.pop("conflict", None)
        accepted = len(results) - rejected
        status = 202 if rejected == 0 else 207 if accepted else 422
        return _json(status, {"results": results, "accepted": accepted, "rejected": rejected})

    @app.get(
        "/v1/surveys/{survey_id}",
        summary="One survey from the published snapshot (no names)",
        response_model=SurveyRecord,
        responses={
            401: _ERRORS,
            404: {**_ERRORS, "description": "The snapshot has no such survey."},
            422: _ERRORS,
            503: {**_ERRORS, "description": "No snapshot has been published yet."},
        },
        openapi_extra=_SECURITY,
    )
    async def get_survey(survey_id: str, request: Request) -> Response:
        route = "/v1/surveys/{survey_id}"
        refusal = denied(request)
        if refusal is not None:
            return reply("GET", route, refusal)
        try:
            row = await asyncio.to_thread(lookup.survey_by_id, snapshot, survey_id)
        except ContrailError as exc:
            return reply("GET", route, _errors(503, [FieldError("snapshot", str(exc))]))
        if row is None:
            reason = f"no survey {survey_id!r} in the published snapshot (it may not be built yet)"
            return reply("GET", route, _errors(404, [FieldError("survey_id", reason)]))
        return reply("GET", route, _json(200, row))

    @app.get(
        "/v1/flights/{flight_id}/surveys",
        summary="The surveys of one flight from the published snapshot (no names)",
        response_model=FlightSurveys,
        responses={
            401: _ERRORS,
            404: {**_ERRORS, "description": "The snapshot has no survey of this flight."},
            422: _ERRORS,
            503: {**_ERRORS, "description": "No snapshot has been published yet."},
        },
        openapi_extra=_SECURITY,
    )
    async def get_flight_surveys(
        flight_id: str,
        request: Request,
        limit: int = Query(1000, ge=1, le=lookup.MAX_FLIGHT_SURVEYS),
    ) -> Response:
        route = "/v1/flights/{flight_id}/surveys"
        refusal = denied(request)
        if refusal is not None:
            return reply("GET", route, refusal)
        try:
            rows = await asyncio.to_thread(lookup.surveys_by_flight, snapshot, flight_id, limit + 1)
        except ContrailError as exc:
            return reply("GET", route, _errors(503, [FieldError("snapshot", str(exc))]))
        if not rows:
            reason = f"no survey of flight {flight_id!r} in the published snapshot"
            return reply("GET", route, _errors(404, [FieldError("flight_id", reason)]))
        payload = {
            "flight_id": flight_id,
            "count": min(len(rows), limit),
            "truncated": len(rows) > limit,
            "surveys": rows[:limit],
        }
        return reply("GET", route, _json(200, payload))

    @app.get("/healthz", summary="Liveness, with the buffer's fill", response_model=Health)
    async def healthz() -> Response:
        payload = {
            "status": "ok",
            "buffered_records": buffer.buffered_records,
            "buffered_bytes": buffer.buffered_bytes,
        }
        return reply("GET", "/healthz", _json(200, payload))

    @app.get(
        "/metrics",
        summary="Counters and latencies in Prometheus text format",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        text = metrics.render(buffer.buffered_records, buffer.buffered_bytes)
        metrics.count_request("GET", "/metrics", 200)
        return Response(text, media_type=CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = spec.setdefault("components", {})
            components.setdefault("schemas", {})["Survey"] = Survey.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components["securitySchemes"] = {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            }
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.metrics = metrics
    app.state.idempotency = cache
    return app
