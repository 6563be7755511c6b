"""NGSI v2's error answer: ``{"error": <name>, "description": <why>}`` with the HTTP status the
specification gives each name (section "Error Responses")."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

STATUS = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "NotAcceptable": 406,
    "Conflict": 409,
    "TooManyResults": 409,
    "RequestEntityTooLarge": 413,
    "UnsupportedMediaType": 415,
    "InternalServerError": 500,
}
ERROR_SCHEMA: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "description": {"type": "string"}},
                "required": ["error", "description"],
            }
        }
    },
    "description": "NGSI v2 error",
}


class NgsiError(Exception):
    """A request NGSI v2 says to refuse; ``error`` is one of the specification's names."""

    def __init__(self, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.headers = headers

    @property
    def status(self) -> int:
        return STATUS[self.error]

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": self.error, "description": self.description}
        return JSONResponse(body, status_code=self.status, headers=headers or self.headers)


def bad(description: str) -> NgsiError:
    return NgsiError("BadRequest", description)


def not_found(
    description: str = "The requested entity has not been found. Check type and id",
) -> NgsiError:
    return NgsiError("NotFound", description)


def for_status(status: int, description: str) -> NgsiError:
    """The NGSI name for an HTTP status raised outside the NGSI handlers (routing, validation)."""
    names = {v: k for k, v in reversed(STATUS.items())}
    if status == 422:
        return bad(description)
    return NgsiError(
        names.get(status, "InternalServerError" if status >= 500 else "BadRequest"), description
    )


# Why writes are refused (docs/store.md, "Writes"): the city's data comes from its devices, each
# over MQTT or LoRaWAN with its own credentials, numbered and deduplicated on (device, seq); a
# write over NGSI would be a second, unnumbered way into the public flood page.
READ_ONLY = (
    "this NGSI v2 service is read-only: its entities are what the city's devices measure, and "
    "devices report over MQTT or LoRaWAN with their own credentials, not over NGSI; read, "
    "subscribe, or run a context broker of your own fed by a subscription"
)
