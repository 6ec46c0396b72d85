"""A node's life over HTTP, driven by a Hypothesis state machine with bodies that schemathesis
generates from the edge's own OpenAPI document: register → consent → telemetry → opt-out, and
between them an operator's job, taken, finished or failed by the nodes.

Litestar's document carries no OpenAPI links, and a link can only pass on what the step before
returned (consent's reply holds no session token), so the sequence is a RuleBasedStateMachine
rather than schemathesis's link-driven one: its rules keep each node's tokens, and each request
is a schemathesis case (positive, steered as in openapi_fuzz.steer) sent with them and checked
with the same checks. On top, what a sequence must show: an opted-out node's tokens are
refused from then on. Every service is still ready at the end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
import requests
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from hypothesis_jsonschema import from_schema
from schemathesis import APIOperation, Case, GenerationMode

from ccn_jobs.registry import JOB_TYPES
from ccn_proto.canonical import result_checksum
from tests.fuzz.figures import Tally
from tests.fuzz.hostile import fuzz_settings, spiked
from tests.fuzz.openapi_fuzz import checked_call, load_schema, operations_of, register_node
from tests.fuzz.stack import Stack, settled_readiness
from tests.fuzz.test_openapi_fuzz import fetch_document
from tests.support.sizes import small_and_full


@dataclass
class Node:
    api_token: str
    session_token: str
    retired: bool = False  # opted out, or never registered: its tokens must be refused
    offers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Size:
    sequences: int
    steps: int


SMALL = Size(sequences=4, steps=10)
FULL = Size(sequences=100, steps=40)


def valid_results() -> st.SearchStrategy[dict[str, Any]]:
    """Results that pass the job type's own checks (its schema, and `chars` == len(text)), with
    whatever text the schema allows, a control character included: that is where hostile
    strings ride into the read models."""
    schemas = [msgspec.json.schema(job.result_type) for job in JOB_TYPES.values()]
    drawn = st.one_of(*(from_schema(schema) for schema in schemas))
    return (drawn.flatmap(spiked) | drawn).map(
        lambda result: {**result, "chars": len(result["text"])} if "text" in result else result
    )


def _with_body(case: Case, body: Any) -> Case:
    case.body = body
    return case


def lifecycle_machine(schema: Any, base_url: str, admin_token: str, http: requests.Session, tally: Tally) -> type:
    operations = {(op.method.upper(), op.path): op for op in operations_of(schema)}

    def cases(method: str, path: str) -> st.SearchStrategy[Case]:
        """Positive cases, half of them with a control character in the body's free strings."""
        return (
            operations[(method, path)]
            .as_strategy(generation_mode=GenerationMode.POSITIVE)
            .flatmap(
                lambda case: (
                    spiked(case.body).map(lambda body: _with_body(case, body)) | st.just(case)
                    if isinstance(case.body, dict)
                    else st.just(case)
                )
            )
        )

    def send(operation: APIOperation, case: Case, token: str | None) -> requests.Response | None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        label = f"{operation.label} [stateful]"
        return checked_call(case, label, base_url=base_url, headers=headers, http=http, tally=tally)

    def refused_once_retired(node: Node, operation: APIOperation, response: requests.Response | None) -> None:
        if node.retired and response is not None and response.status_code < 400:
            tally.found(
                f"{operation.label} [stateful]: a retired node's token was accepted (HTTP {response.status_code})",
                response.text[:200],
            )

    class NodeLifecycle(RuleBasedStateMachine):
        nodes = Bundle("nodes")

        @initialize(
            target=nodes,
            register=cases("POST", "/compute/register-node"),
            consent=cases("POST", "/compute/consent"),
            telemetry=cases("POST", "/compute/telemetry"),
            opt_out=cases("POST", "/compute/opt-out"),
        )
        def a_whole_life(self, register: Case, consent: Case, telemetry: Case, opt_out: Case) -> Node:
            """Every sequence starts with one node's register → consent → telemetry, and ends
            (teardown) with its opt-out and a heartbeat that must then be refused; the rules
            interleave the rest."""
            node = self.register(register)
            if node.retired:  # the generated registration was refused: a valid one, then
                created = register_node(http, base_url)
                node = Node(api_token=created["api_token"], session_token=created["session_token"])
            self.consent(node, consent)
            self.telemetry(node, telemetry)
            self.last_life = (node, opt_out, telemetry)
            return node

        def teardown(self) -> None:
            life = getattr(self, "last_life", None)
            if life is not None:
                node, opt_out, telemetry = life
                self.opt_out(node, opt_out)
                self.telemetry(node, telemetry)

        @rule(target=nodes, case=cases("POST", "/compute/register-node"))
        def register(self, case: Case) -> Node:
            response = send(operations[("POST", "/compute/register-node")], case, token=None)
            if response is not None and response.status_code in (200, 201):
                body = response.json()
                return Node(api_token=body["api_token"], session_token=body["session_token"])
            return Node(api_token="cca_refused", session_token="ccs_refused", retired=True)

        @rule(node=nodes, case=cases("POST", "/compute/consent"))
        def consent(self, node: Node, case: Case) -> None:
            operation = operations[("POST", "/compute/consent")]
            refused_once_retired(node, operation, send(operation, case, node.api_token))

        @rule(node=nodes, case=cases("POST", "/compute/telemetry"))
        def telemetry(self, node: Node, case: Case) -> None:
            operation = operations[("POST", "/compute/telemetry")]
            refused_once_retired(node, operation, send(operation, case, node.session_token))

        @rule(node=nodes, case=cases("POST", "/compute/opt-out"))
        def opt_out(self, node: Node, case: Case) -> None:
            operation = operations[("POST", "/compute/opt-out")]
            response = send(operation, case, node.api_token)
            refused_once_retired(node, operation, response)
            if response is not None and response.status_code == 200:
                node.retired = True

        @rule(case=cases("POST", "/jobs"))
        def submit_job(self, case: Case) -> None:
            send(operations[("POST", "/jobs")], case, admin_token)

        @rule(node=nodes, case=cases("GET", "/compute/job"))
        def take_job(self, node: Node, case: Case) -> None:
            case.query = {**(case.query or {}), "job_types": sorted(JOB_TYPES), "wait_s": 0}
            operation = operations[("GET", "/compute/job")]
            response = send(operation, case, node.session_token)
            refused_once_retired(node, operation, response)
            if response is not None and response.status_code == 200:
                node.offers.append(response.json())

        @rule(node=nodes, case=cases("POST", "/compute/job/result"), result=valid_results(), honest=st.booleans())
        def finish_job(self, node: Node, case: Case, result: dict[str, Any], honest: bool) -> None:
            """A result for a job the node holds; with its true checksum, or the generated one."""
            if node.offers:
                offer = node.offers.pop()
                checksum = result_checksum(result) if honest else case.body.get("checksum", "")
                case.body = {"job_id": offer["job_id"], "result": result, "checksum": checksum}
            send(operations[("POST", "/compute/job/result")], case, node.session_token)

        @rule(node=nodes, case=cases("POST", "/compute/job/fail"))
        def fail_job(self, node: Node, case: Case) -> None:
            if node.offers:
                case.body = {**case.body, "job_id": node.offers.pop()["job_id"]}
            send(operations[("POST", "/compute/job/fail")], case, node.session_token)

    return NodeLifecycle


def run_lifecycles(document: dict[str, Any], stack: Stack, size: Size, tally: Tally) -> None:
    schema = load_schema(document)
    with requests.Session() as http:
        machine = lifecycle_machine(schema, stack.edge_url, stack.settings.admin_token, http, tally)
        run_state_machine_as_test(
            machine,
            settings=settings(fuzz_settings(size.sequences), stateful_step_count=size.steps),
        )


@pytest.mark.parametrize(
    "size",
    small_and_full(SMALL, FULL, "the long fuzzing run"),
)
async def test_node_lifecycles_with_generated_bodies_leave_every_service_ready(
    stack: Stack, tally: Tally, size: Size
) -> None:
    document = await fetch_document(f"{stack.edge_url}/schema/openapi.json")
    await asyncio.to_thread(run_lifecycles, document, stack, size, tally)
    for service, why in (await settled_readiness(stack)).items():
        tally.found(f"{service} not ready after the lifecycles", f"after {tally.examples} requests: {why}")
    lifecycle = {
        "POST /compute/register-node",
        "POST /compute/consent",
        "POST /compute/telemetry",
        "POST /compute/opt-out",
    }
    assert lifecycle <= set(tally.covered), f"never reached: {sorted(lifecycle - set(tally.covered))}"
    assert not tally.findings, tally.failure_report()
