"""schemathesis against a live service's own OpenAPI document, with real credentials.

Each operation of the fetched document is fuzzed in three ways, from one worker thread (the
services answer in the test's loop):

* positive and negative cases from schemathesis (`operation.as_strategy`), checked with its
  `not_a_server_error`, `negative_data_rejection`, `missing_required_header`, `ignored_auth`,
  and response-schema and content-type conformance for the successes (the document's 400 schema
  is Litestar's, not the body the services send: the 4xx bodies get `typed_refusal` instead);
* every JSON body, once valid, made hostile (tests/fuzz/hostile.py) and sent raw: never a 5xx,
  always a typed refusal, and always a refusal for what the issue names as bad input.

Credentials come from the operation's security requirement: the admin token, or the API or
session token of a node registered (and consented) here; a node that opted out or ended its
session is replaced by a fresh one. The fetched document is steered (`steer`) towards the inputs
that reach past the first check: where it says only "a string" or "an object", the hint says
what the services accept (the registered job types and their payload and result schemas, the
current consent), and query parameters get formats that draw timestamps and cursors shaped like
the real ones. Negative cases still stray outside all of it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_schema_conformance,
)

from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_jobs.registry import JOB_TYPES
from tests.fuzz.figures import Tally
from tests.fuzz.hostile import JSON, MUST_REFUSE, MUTATIONS, fuzz_settings, hostile

COMPUTE_API_SCHEMA = Path(__file__).parents[2] / "proto" / "schema" / "compute_api.json"
REQUEST_TIMEOUT_S = 15.0
MAX_WAIT_S = 0.3  # long polls are cut to this: the fuzzer is after inputs, not after waiting
ERROR_FIELDS = {"code", "message", "field", "correlation_id"}


# -- checks -------------------------------------------------------------------------------------


def typed_refusal(ctx: CheckContext, response: Response, case: Case) -> None:
    """Every 4xx carries the project's error body (ccn_web.http.ErrorBody), echoing the
    response's correlation id."""
    if 400 <= response.status_code < 500:
        problem = error_body_problem(response.status_code, response.headers, response.content)
        if problem:
            raise AssertionError(problem)


def error_body_problem(status: int, headers: Any, content: bytes) -> str | None:
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} without a JSON error body: {content[:120]!r}"
    if not isinstance(body, dict) or set(body) != ERROR_FIELDS:
        return f"{status} body is not {{code, message, field, correlation_id}}: {content[:200]!r}"
    if not isinstance(body["code"], str) or not body["code"] or not isinstance(body["message"], str):
        return f"{status} body without a code and message: {content[:200]!r}"
    if body["field"] is not None and not isinstance(body["field"], str):
        return f"{status} body with a non-string field: {content[:200]!r}"
    header = _header(headers, "x-correlation-id")
    if body["correlation_id"] != header:
        return f"{status} body's correlation_id {body['correlation_id']!r} is not the header's {header!r}"
    return None


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else str(value)
    return None


def conforms_when_successful(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    if response.status_code >= 400:
        return None
    content_type_conformance(ctx, response, case)
    return response_schema_conformance(ctx, response, case)


def rejects_invalid_data(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis's negative_data_rejection, except for cases whose only invalid parts are
    the query string (an extra or repeated query parameter is ignored by design; an invalid
    value of a known one is judged by the other checks: no 5xx, a typed refusal) or, on an
    operation without header parameters, the headers (there the only header is the token,
    which the fuzzer sets itself)."""
    meta = case.meta
    if meta is None:
        return None
    ignored = {ParameterLocation.QUERY}
    headers = [p.name for p in case.operation.iter_parameters() if p.location == ParameterLocation.HEADER]
    if all(name.lower() == "authorization" for name in headers):  # the security scheme's, set by the fuzzer
        ignored.add(ParameterLocation.HEADER)
    if not any(info.mode.is_negative for location, info in meta.components.items() if location not in ignored):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    rejects_invalid_data,
    missing_required_header,
    ignored_auth,
    conforms_when_successful,
    typed_refusal,
]


# -- steering -----------------------------------------------------------------------------------


def _timestamps() -> st.SearchStrategy[str]:
    """ISO-8601 timestamps with offsets, Python's and PostgreSQL's edges included."""
    edges = st.sampled_from(["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z"])
    offsets = st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
    )
    return edges | st.datetimes(timezones=st.just(UTC) | offsets).map(lambda moment: moment.isoformat())


def _cursors() -> st.SearchStrategy[str]:
    """Cursors shaped like those the read APIs hand out (base64url of a JSON array: a
    timestamp, sequence numbers, a stream name), with any of their fields out of range."""
    numbers = st.sampled_from([2**63, -(2**63) - 1, 2**15, 2**31, 2**63 - 1, 2**64, 10**30]) | st.integers()
    fields = st.tuples(
        _timestamps(), numbers, st.sampled_from(["CCN_NODES", "CCN_JOBS"]) | st.text(max_size=20), numbers
    ).flatmap(lambda full: st.integers(3, 4).map(lambda n: list(full[:n])))
    return fields.map(lambda array: base64.urlsafe_b64encode(json.dumps(array).encode()).decode().rstrip("="))


schemathesis.openapi.format("ccn-timestamp", _timestamps())
schemathesis.openapi.format("ccn-cursor", _cursors())


def steer(document: dict[str, Any]) -> dict[str, Any]:
    """The fetched document with generation hints (see the module docstring)."""
    steered: dict[str, Any] = json.loads(json.dumps(document))
    schemas = steered.setdefault("components", {}).setdefault("schemas", {})
    job_types = list(JOB_TYPES.values())
    documents, components = msgspec.json.schema_components(
        [job.payload_type for job in job_types] + [job.result_type for job in job_types],
        ref_template="#/components/schemas/{name}",
    )
    schemas.update(components)
    version = current_consent_version()
    # what the services accept, where the document says only "a string" or "an object"
    hints = {
        ("SubmitJobRequest", "job_type"): {"enum": sorted(JOB_TYPES)},
        ("SubmitJobRequest", "payload"): {"anyOf": list(documents[: len(job_types)])},
        ("JobResultRequest", "result"): {"anyOf": list(documents[len(job_types) :])},
        ("ConsentRequest", "consent_version"): {"enum": [version]},
        ("ConsentRequest", "consent_hash"): {"enum": [consent_catalogue()[version]]},
    }
    # the request Structs forbid unknown fields, which the Litestar-made document does not say
    # (their own schema in proto/schema does): closed here, positive cases are positive
    for name, definition in _proto_definitions().items():
        if name in schemas and definition.get("additionalProperties") is False:
            schemas[name]["additionalProperties"] = False
    for (schema_name, prop), hint in hints.items():
        properties = schemas.get(schema_name, {}).get("properties", {})
        if prop in properties:
            properties[prop] = hint
    for path in steered.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                fmt = {"since": "ccn-timestamp", "cursor": "ccn-cursor"}.get(parameter["name"])
                if fmt:
                    for branch in parameter["schema"].get("oneOf", [parameter["schema"]]):
                        if branch.get("type") == "string":
                            branch["format"] = fmt
    return steered


def _proto_definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = json.loads(COMPUTE_API_SCHEMA.read_text())["$defs"]
    return definitions


# -- credentials --------------------------------------------------------------------------------


class Credentials:
    """Bearer tokens by security scheme, for the worker thread. Node tokens belong to a node
    registered and consented here; once it opts out or ends its session, the next call gets a
    fresh node, so the fuzzing reaches past the token check."""

    def __init__(self, edge_url: str, admin_token: str, http: requests.Session) -> None:
        self._edge_url = edge_url
        self._admin_token = admin_token
        self._http = http
        self._node: dict[str, Any] | None = None

    def headers(self, operation: APIOperation) -> dict[str, str]:
        schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
        if "AdminToken" in schemes:
            return {"Authorization": f"Bearer {self._admin_token}"}
        if "NodeApiToken" in schemes:
            return {"Authorization": f"Bearer {self.node()['api_token']}"}
        if "NodeSessionToken" in schemes:
            return {"Authorization": f"Bearer {self.node()['session_token']}"}
        return {}

    def node(self) -> dict[str, Any]:
        if self._node is None:
            self._node = register_node(self._http, self._edge_url)
        return self._node

    def answered(self, operation: APIOperation, status: int) -> None:
        """A node whose tokens the last call may have retired is replaced."""
        retiring = {("POST", "/compute/opt-out"), ("DELETE", "/compute/session")}
        if ((operation.method.upper(), operation.path) in retiring and status < 400) or status in (401, 403):
            self._node = None


def register_node(http: requests.Session, edge_url: str) -> dict[str, Any]:
    response = http.post(
        f"{edge_url}/compute/register-node",
        json={"consent_flag": True, "user_agent": "fuzz/1.0"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    version = current_consent_version()
    consented = http.post(
        f"{edge_url}/compute/consent",
        json={"consent_version": version, "consent_hash": consent_catalogue()[version]},
        headers={"Authorization": f"Bearer {node['api_token']}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert consented.status_code == 200, consented.text
    return node


# -- the runs -----------------------------------------------------------------------------------


def tame(case: Case) -> None:
    """A long poll is cut short, whatever else the case holds."""
    wait = (case.query or {}).get("wait_s")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and MAX_WAIT_S < wait <= 30:
        case.query["wait_s"] = MAX_WAIT_S


def describe(method: str, path: str, query: Any, body: Any, limit: int = 300) -> str:
    text = f"{method} {path}"
    if query:
        text += f" query={query!r}"
    if isinstance(body, dict | list | str | bytes | int | float):
        text += f" body={body!r}"
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def fuzz_operation(
    operation: APIOperation,
    mode: GenerationMode,
    examples: int,
    *,
    base_url: str,
    credentials: Credentials,
    http: requests.Session,
    tally: Tally,
) -> None:
    """`examples` cases of one operation in one generation mode, each checked; failures are
    collected in the tally (the run goes on, so one report lists them all)."""

    @fuzz_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Case) -> None:
        tame(case)
        label = f"{operation.label} [{mode.value}]"
        response = checked_call(
            case, label, base_url=base_url, headers=credentials.headers(operation), http=http, tally=tally
        )
        if response is not None:
            credentials.answered(operation, response.status_code)

    one()


def checked_call(
    case: Case,
    label: str,
    *,
    base_url: str,
    headers: dict[str, str],
    http: requests.Session,
    tally: Tally,
) -> requests.Response | None:
    """Send one case and run the checks on its answer; what is wrong goes to the tally under
    `label`. None when nothing answered."""
    try:
        response = case.call(base_url=base_url, session=http, headers=headers, timeout=REQUEST_TIMEOUT_S)
    except requests.RequestException as exc:
        tally.found(
            f"{label}: no answer ({type(exc).__name__})",
            describe(case.method, case.formatted_path, case.query, case.body),
        )
        return None
    tally.sent(case.operation.label, str(response.status_code))
    try:
        case.validate_response(
            response,
            checks=CHECKS,
            headers=headers,
            transport_kwargs={"base_url": base_url, "session": http, "headers": headers},
        )
    except FailureGroup as group:
        for failure in group.exceptions:
            tally.found(
                f"{label}: {failure.title} (HTTP {response.status_code})",
                f"{describe(case.method, case.formatted_path, case.query, case.body)} -> {response.text[:200]!r}",
            )
    return response  # type: ignore[no-any-return]


def fuzz_raw_bodies(
    operation: APIOperation,
    examples: int,
    *,
    base_url: str,
    credentials: Credentials,
    http: requests.Session,
    tally: Tally,
) -> None:
    """Valid bodies of the operation, made hostile and sent as raw bytes: `examples` of each
    class of mutation, so that every class reaches every operation even in a small run."""
    for mutation in MUTATIONS:
        _fuzz_raw_bodies(
            operation, mutation, examples, base_url=base_url, credentials=credentials, http=http, tally=tally
        )


def _fuzz_raw_bodies(
    operation: APIOperation,
    mutation: str,
    examples: int,
    *,
    base_url: str,
    credentials: Credentials,
    http: requests.Session,
    tally: Tally,
) -> None:
    @fuzz_settings(examples)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        tame(case)
        document: JSON = case.body if isinstance(case.body, dict | list) else {}
        done, body = data.draw(hostile(document, mutation, typed_keys(operation.schema.raw_schema)))
        headers = {
            **credentials.headers(operation),
            "Content-Type": "application/json",
            **{k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "content-type")},
        }
        label = f"{operation.label} [hostile body: {done}]"
        try:
            response = http.request(
                case.method,
                base_url + case.formatted_path,
                params=case.query,
                data=body,
                headers=headers,
                timeout=REQUEST_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            tally.found(f"{label}: no answer ({type(exc).__name__})", repr(body[:200]))
            return
        tally.sent(operation.label, str(response.status_code))
        credentials.answered(operation, response.status_code)
        for problem in raw_problems(done, response):
            tally.found(f"{label}: {problem}", f"body={body[:240]!r} -> {response.text[:200]!r}")

    one()


def raw_problems(mutation: str, response: requests.Response) -> Iterable[str]:
    status = response.status_code
    if status >= 500:
        yield f"server error (HTTP {status})"
    elif status >= 400:
        problem = error_body_problem(status, response.headers, response.content)
        if problem:
            yield f"untyped refusal (HTTP {status})"
    elif mutation in MUST_REFUSE:
        yield f"accepted (HTTP {status}) where a 400 was due"


def typed_keys(document: dict[str, Any]) -> frozenset[str]:
    """The property names the document's schemas type: where "60" for 60 is wrong."""
    schemas = document.get("components", {}).get("schemas", {}).values()
    return frozenset(name for schema in schemas for name in schema.get("properties", {}))


def takes_input(operation: APIOperation) -> bool:
    """Whether a negative case can be made of the operation: a body, a parameter or a token."""
    parameters = (operation.query, operation.headers, operation.path_parameters, operation.cookies)
    return (
        bool(operation.body)
        or any(len(group) for group in parameters)
        or bool(operation.definition.raw.get("security"))
    )


def operations_of(schema: Any) -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def load_schema(document: dict[str, Any]) -> Any:
    # a body over the size limit is refused with 413, which is as much a refusal as a 400
    refusals = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": refusals}}})
    return schemathesis.openapi.from_dict(steer(document), config=config)
