"""The API's OpenAPI 3.1 document, written by hand next to the views it describes."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render

_ERROR = {"$ref": "#/components/responses/Error"}
_SESSION = {
    "description": "The session",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}},
}


def _op(summary: str, ok: dict, *params: str, status: str = "200", **extra) -> dict:
    return {
        "summary": summary,
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
        "responses": {status: ok, "401": _ERROR, "404": _ERROR, "409": _ERROR},
        **extra,
    }


SCHEMA = {
    "openapi": "3.1.0",
    "info": {
        "title": "Labsite API",
        "version": "1",
        "description": "Start, follow and check lab sandboxes. Browser calls use the session "
        "cookie and the X-CSRFToken header; scripts send `Authorization: Token <token>` "
        "(create one under /accounts/tokens/).",
    },
    "security": [{"token": []}, {"cookie": []}],
    "paths": {
        "/api/labs/": {
            "get": _op(
                "List labs",
                {
                    "description": "Labs",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/LabList"}}
                    },
                },
            )
        },
        "/api/labs/{lab_id}/sessions/": {
            "post": _op(
                "Start a lab (or return the session already running for it)",
                _SESSION,
                "lab_id",
                status="201",
            )
            | {"responses": {"200": _SESSION, "201": _SESSION, "401": _ERROR, "409": _ERROR}}
        },
        "/api/sessions/{session_id}/": {"get": _op("Get a session", _SESSION, "session_id")},
        "/api/sessions/{session_id}/extend/": {
            "post": _op("Add time to a running session", _SESSION, "session_id")
        },
        "/api/sessions/{session_id}/stop/": {
            "post": _op("Stop a session and remove its sandbox", _SESSION, "session_id")
        },
        "/api/sessions/{session_id}/reset/": {
            "post": _op(
                "Replace the sandbox with a fresh one (returns the new session)",
                _SESSION,
                "session_id",
                status="201",
            )
        },
        "/api/sessions/{session_id}/steps/{number}/check/": {
            "post": _op(
                "Run a step's check inside the sandbox",
                {
                    "description": "The check's result",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CheckResult"}}
                    },
                },
                "session_id",
                "number",
            )
        },
    },
    "components": {
        "securitySchemes": {
            "token": {"type": "apiKey", "in": "header", "name": "Authorization"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
        },
        "parameters": {
            "lab_id": {
                "name": "lab_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer"},
            },
            "session_id": {
                "name": "session_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            },
            "number": {
                "name": "number",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
        },
        "responses": {
            "Error": {
                "description": "An error, explained",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "LabList": {
                "type": "object",
                "properties": {"labs": {"type": "array", "items": {"type": "object"}}},
            },
            "Session": {
                "type": "object",
                "required": ["id", "state", "terminal_url", "events_url"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "lab": {"type": "integer"},
                    "state": {
                        "type": "string",
                        "enum": [
                            "requested",
                            "starting",
                            "running",
                            "stopping",
                            "stopped",
                            "expired",
                            "failed",
                        ],
                    },
                    "state_label": {"type": "string"},
                    "progress": {"type": "object"},
                    "failure_message": {"type": "string"},
                    "expires_at": {"type": ["string", "null"], "format": "date-time"},
                    "seconds_left": {"type": ["integer", "null"]},
                    "can_extend": {"type": "boolean"},
                    "terminal_url": {"type": "string"},
                    "events_url": {"type": "string"},
                    "steps": {"type": "array", "items": {"type": "object"}},
                },
            },
            "CheckResult": {
                "type": "object",
                "required": ["step", "passed", "output"],
                "properties": {
                    "step": {"type": "integer"},
                    "passed": {"type": "boolean"},
                    "output": {"type": "string"},
                    "timed_out": {"type": "boolean"},
                },
            },
        },
    },
}


def schema(request):
    return JsonResponse(SCHEMA, json_dumps_params={"ensure_ascii": False, "indent": 1})


def docs(request):
    operations = [
        (method.upper(), path, op["summary"])
        for path, item in SCHEMA["paths"].items()
        for method, op in item.items()
    ]
    return render(request, "labs/api_docs.html", {"operations": operations, "schema": SCHEMA})
