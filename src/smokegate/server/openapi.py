"""The OpenAPI document of the server's routes, hand-written: Starlette has no schema generator
worth the name, and the document is the contract users script against; a test checks that every
route is in it (tests/server/test_server.py)."""

from __future__ import annotations

from typing import Any

from smokegate import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = _json(_ref("Error"), "error")


def openapi_document() -> dict[str, Any]:
    release_q = {
        "name": "release",
        "in": "query",
        "schema": {"type": "string"},
        "description": "NAMESPACE/NAME of the HelmRelease",
    }
    counts = {
        "type": "object",
        "properties": {
            k: {"type": "integer"} for k in ("passed", "failed", "error", "skipped", "total")
        },
    }
    summary = {
        "type": "object",
        "required": ["id", "release", "revision", "trigger", "verdict", "passed"],
        "properties": {
            "id": {"type": "string"},
            "jobId": {"type": ["integer", "null"]},
            "release": {"type": "string", "example": "apps/podinfo"},
            "revision": {"type": "string", "example": "6.6.1"},
            "trigger": {
                "type": "string",
                "enum": ["webhook", "watch", "schedule", "manual", "flagger"],
            },
            "verdict": {"type": "string", "enum": ["passed", "failed", "error"]},
            "passed": {"type": "boolean"},
            "startedAt": {"type": "number", "description": "epoch seconds"},
            "finishedAt": {"type": "number"},
            "duration": {"type": "number"},
            "counts": counts,
            "message": {"type": "string"},
        },
    }
    list_of = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": _ref("RunSummary")}},
    }
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smokegate server",
            "version": __version__,
            "description": "Post-deploy smoke tests for Flux HelmReleases: triggers, history,"
            " gates.",
        },
        "paths": {
            "/hooks/flux": {
                "post": {
                    "summary": "Flux notification-controller webhook (generic, generic-hmac)",
                    "parameters": [
                        {
                            "name": "X-Signature",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "sha256=<hex HMAC of the raw body>; required when "
                            "webhook secrets are configured",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("FluxEvent")}},
                    },
                    "responses": {
                        "202": _json(
                            _ref("Queued"), "queued (or a duplicate of a queued/done job)"
                        ),
                        "200": _json(
                            {"type": "object"},
                            "ignored: not a HelmRelease, another reason, no suites",
                        ),
                        "400": _ERR,
                        "401": _ERR,
                        "408": _ERR,
                        "413": _ERR,
                        "415": _ERR,
                        "422": _ERR,
                    },
                }
            },
            "/api/v1/runs": {
                "get": {
                    "summary": "Runs, newest first",
                    "parameters": [
                        release_q,
                        {"name": "revision", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "default": 50},
                        },
                    ],
                    "responses": {"200": _json(list_of, "runs")},
                },
                "post": {
                    "summary": "Ask for a run (a re-run if the revision was tested)",
                    "security": bearer,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["release"],
                                    "properties": {
                                        "release": {"type": "string"},
                                        "revision": {"type": "string"},
                                        "suites": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json({"type": "object"}, "queued"),
                        "401": _ERR,
                        "403": _ERR,
                        "422": _ERR,
                    },
                },
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "summary": "One run with its full report; ?format=json|junit downloads it",
                    "parameters": [
                        {
                            "name": "run_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["json", "junit"]},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "the run",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "allOf": [
                                            _ref("RunSummary"),
                                            {
                                                "type": "object",
                                                "properties": {
                                                    "report": {
                                                        "type": "object",
                                                        "description": "smokegate.io/report/v1",
                                                    }
                                                },
                                            },
                                        ]
                                    }
                                },
                                "application/xml": {"schema": {"type": "string"}},
                            },
                        },
                        "404": _ERR,
                    },
                }
            },
            "/api/v1/jobs/{job_id}": {
                "get": {
                    "summary": "A queued job's state (and its run once done)",
                    "parameters": [
                        {
                            "name": "job_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {"200": _json({"type": "object"}, "the job"), "404": _ERR},
                }
            },
            "/api/v1/releases": {
                "get": {
                    "summary": "The latest verdict of every release and revision",
                    "responses": {"200": _json(list_of, "latest run per (release, revision)")},
                }
            },
            "/gates/flagger": {
                "post": {
                    "summary": "Flagger webhook: run (once per checksum) or look up the verdict",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("FlaggerPayload")}},
                    },
                    "responses": {
                        "200": {"description": "passed"},
                        "412": {"description": "failed: the summary"},
                        "503": {"description": "still running: Flagger retries"},
                        "404": {"description": "no suites map to this canary"},
                        "400": _ERR,
                    },
                }
            },
            "/gates/argo": {
                "get": {
                    "summary": "Argo Rollouts web metric: successCondition: result.passed == true",
                    "parameters": [
                        {**release_q, "required": True},
                        {"name": "revision", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(_ref("GateVerdict"), "latest verdict"),
                        "400": _ERR,
                        "404": _ERR,
                    },
                }
            },
            "/api/v1/status": {
                "get": {
                    "summary": "This replica: worker id, leader or not, running jobs, queue",
                    "responses": {"200": _json({"type": "object"}, "status")},
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness (store reachable)",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition format"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "RunSummary": summary,
                "Queued": {
                    "type": "object",
                    "properties": {
                        "queued": {"type": "boolean"},
                        "duplicate": {"type": "boolean"},
                        "jobId": {"type": "integer"},
                        "release": {"type": "string"},
                        "revision": {"type": "string"},
                    },
                },
                "FluxEvent": {
                    "type": "object",
                    "required": ["involvedObject"],
                    "properties": {
                        "involvedObject": {
                            "type": "object",
                            "properties": {
                                k: {"type": "string"}
                                for k in (
                                    "kind",
                                    "namespace",
                                    "name",
                                    "uid",
                                    "apiVersion",
                                    "resourceVersion",
                                )
                            },
                        },
                        "severity": {"type": "string", "enum": ["trace", "info", "error"]},
                        "timestamp": {"type": "string"},
                        "message": {"type": "string"},
                        "reason": {"type": "string"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        "reportingController": {"type": "string"},
                        "reportingInstance": {"type": "string"},
                    },
                },
                "FlaggerPayload": {
                    "type": "object",
                    "required": ["name", "namespace"],
                    "properties": {
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                        "phase": {"type": "string"},
                        "checksum": {"type": "string"},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "GateVerdict": {
                    "type": "object",
                    "properties": {
                        "passed": {"type": "boolean"},
                        "verdict": {"type": "string"},
                        "release": {"type": "string"},
                        "revision": {"type": "string"},
                        "runId": {"type": "string"},
                        "counts": counts,
                        "finishedAt": {"type": "number"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
