"""Node key pairs end to end, against the real registry, scheduler and edge on real NATS and
Postgres: a node registers with or without a public key (the node.registered event records it),
the edge passes on a result signed with the registered key and refuses (422 bad_signature, a
typed error frame) one that is forged, unsigned or signed for another attempt, while a node
without a key keeps working unsigned; and GET /receipts/keys serves the published keys."""

# ruff: noqa: F811 - `edge` is test_edge_jobs' fixture, imported to be requested by name

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import nats
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.receipts import decode_key_set, ensure_key_ring, public_key_of, sign_result, verify_receipt
from ccn_core.topology import NODES
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from tests.integration.test_edge_jobs import Edge, connected, create_job, edge, job_view, next_frame  # noqa: F401


async def _register(http: aiohttp.ClientSession, edge: Edge, public_key: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"consent_flag": True, "user_agent": "test-node/0.1"}
    if public_key is not None:
        body["public_key"] = public_key
    async with http.post(
        f"{edge.url}/compute/register-node", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    ) as response:
        assert response.status == 201, await response.text()
        node: dict[str, Any] = await response.json()
    version = current_consent_version()
    async with http.post(
        f"{edge.url}/compute/consent",
        json={"consent_version": version, "consent_hash": consent_catalogue()[version]},
        headers={"Authorization": f"Bearer {node['api_token']}"},
    ) as response:
        assert response.status == 200
    return node


async def _registered_event(edge: Edge, node_id: str) -> dict[str, Any]:
    client = await nats.connect(edge.settings.effective_nats_url)
    try:
        message = await client.jetstream().get_last_msg(NODES.name, f"ccn.node.{node_id}.registered")
    finally:
        await client.close()
    data: dict[str, Any] = json.loads(message.data or b"{}")["data"]
    return data


async def _take_job(http: aiohttp.ClientSession, edge: Edge, node: dict[str, Any]) -> dict[str, Any]:
    async with http.get(
        f"{edge.url}/compute/job",
        params={"job_types": "extract_text", "wait_s": "5"},
        headers={"Authorization": f"Bearer {node['session_token']}"},
    ) as response:
        assert response.status == 200, await response.text()
        offer: dict[str, Any] = await response.json()
    return offer


async def _post_result(
    http: aiohttp.ClientSession, edge: Edge, node: dict[str, Any], offer: dict[str, Any], **extra: Any
) -> tuple[int, dict[str, Any]]:
    result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
    body = {"job_id": offer["job_id"], "result": result, "checksum": result_checksum(result), **extra}
    async with http.post(
        f"{edge.url}/compute/job/result",
        json=body,
        headers={"Authorization": f"Bearer {node['session_token']}", "X-Correlation-ID": offer["correlation_id"]},
    ) as response:
        return response.status, await response.json()


async def test_registration_with_and_without_a_key_refuses_bad_keys_and_the_keys_are_published(edge: Edge) -> None:
    key = Ed25519PrivateKey.generate()
    async with aiohttp.ClientSession() as http:
        signed = await _register(http, edge, public_key_of(key))
        unsigned = await _register(http, edge, None)
        async with http.post(
            f"{edge.url}/compute/register-node", json={"public_key": "_" * 43}, headers={"Idempotency-Key": "k" * 20}
        ) as response:
            assert response.status == 400
            refusal = await response.json()
        assert refusal["field"] == "public_key" and "not an Ed25519 public key" in refusal["message"]
        # the last: the identity point, a small-order key with which one signature passes for any message
        for bad_key in ["short", "", "=" * 43, "A" * 44, "AQ" + "A" * 41]:
            async with http.post(f"{edge.url}/compute/register-node", json={"public_key": bad_key}) as response:
                assert response.status == 400, bad_key
                assert (await response.json())["field"] == "public_key"
    assert (await _registered_event(edge, signed["node_public_id"]))["public_key"] == public_key_of(key)
    assert (await _registered_event(edge, unsigned["node_public_id"])).get("public_key") is None

    # the published receipt keys: public, cacheable (the validation service's ring, made with
    # the stack as `ccn up` makes it)
    async with aiohttp.ClientSession() as http:
        ring = ensure_key_ring(edge.settings.receipt_keys_path, datetime.now(UTC))
        async with http.get(f"{edge.url}/receipts/keys") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"].startswith("public")
            keys = decode_key_set(await response.read())
    receipt = ring.issue_receipt(
        job_id="job-1",
        attempt=1,
        node_id="node-1",
        result_checksum="d" * 64,
        verdict="validated",
        now=datetime.now(UTC),
    )
    assert verify_receipt(receipt, keys).key_id == ring.active.key_id
    assert msgspec.json.decode(msgspec.json.encode(keys))["keys"][0]["status"] == "active"
    (edge.settings.receipt_keys_path / "keys.json").write_bytes(b"{damaged")
    async with aiohttp.ClientSession() as http, http.get(f"{edge.url}/receipts/keys") as response:
        assert response.status == 503
        assert (await response.json())["code"] == "unavailable"


async def test_over_http_a_signed_result_passes_and_forged_or_missing_signatures_are_refused(edge: Edge) -> None:
    key = Ed25519PrivateKey.generate()
    async with aiohttp.ClientSession() as http:
        node = await _register(http, edge, public_key_of(key))
        created = await create_job(edge)
        offer = await _take_job(http, edge, node)
        assert offer["job_id"] == created.job_id
        result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
        checksum = result_checksum(result)
        forger = Ed25519PrivateKey.generate()
        refusals = [
            {},  # unsigned, from a node that registered a key
            {
                "attempt": offer["attempt"],
                "signature": sign_result(forger, offer["job_id"], offer["attempt"], checksum),
            },
            {
                "attempt": offer["attempt"] + 1,
                "signature": sign_result(key, offer["job_id"], offer["attempt"] + 1, "0" * 64),
            },
            {"signature": sign_result(key, offer["job_id"], offer["attempt"], checksum)},  # no attempt
        ]
        for extra in refusals:
            status, body = await _post_result(http, edge, node, offer, **extra)
            assert status == 422, body
            assert body["code"] == "bad_signature" and body["field"] in ("signature", "attempt"), body
        status, body = await _post_result(
            http,
            edge,
            node,
            offer,
            attempt=offer["attempt"],
            signature=sign_result(key, offer["job_id"], offer["attempt"], checksum),
        )
        assert status == 200, body
        assert body["status"] == "validating"
        view = await job_view(edge, created.job_id)
        assert view.status == "completed"

        # a node without a key works unsigned, and may not send a signature it cannot back
        keyless = await _register(http, edge, None)
        await create_job(edge, 1)
        offer = await _take_job(http, edge, keyless)
        stray = sign_result(Ed25519PrivateKey.generate(), offer["job_id"], offer["attempt"], "0" * 64)
        status, body = await _post_result(http, edge, keyless, offer, attempt=offer["attempt"], signature=stray)
        assert status == 422 and body["code"] == "bad_signature" and "registered no public key" in body["message"]
        status, body = await _post_result(http, edge, keyless, offer)
        assert status == 200 and body["status"] == "validating", body


async def test_over_the_socket_a_forged_signature_gets_a_typed_error_and_the_signed_result_an_ack(edge: Edge) -> None:
    key = Ed25519PrivateKey.generate()
    async with aiohttp.ClientSession() as http:
        node = await _register(http, edge, public_key_of(key))
        created = await create_job(edge)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
            assert offer["type"] == "job_offer" and offer["job_id"] == created.job_id, offer
            result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
            checksum = result_checksum(result)
            frame = {"type": "result", "job_id": offer["job_id"], "result": result, "checksum": checksum}
            forged = sign_result(Ed25519PrivateKey.generate(), offer["job_id"], offer["attempt"], checksum)
            await ws.send_json({**frame, "signature": forged})
            error = await next_frame(ws)
            assert error["type"] == "error" and error["code"] == "bad_signature", error
            assert error["job_id"] == created.job_id
            await ws.send_json(frame)  # unsigned
            error = await next_frame(ws)
            assert error["type"] == "error" and error["code"] == "bad_signature", error
            wrong_attempt = sign_result(key, offer["job_id"], offer["attempt"] + 1, checksum)
            await ws.send_json({"type": "results", "results": [{**_item(frame), "signature": wrong_attempt}]})
            error = await next_frame(ws)
            assert error["type"] == "error" and error["code"] == "bad_signature", error
            await ws.send_json({**frame, "signature": sign_result(key, offer["job_id"], offer["attempt"], checksum)})
            ack = await next_frame(ws)
            assert ack == {"type": "ack", "job_id": created.job_id, "status": "validating"}, ack
    view = await job_view(edge, created.job_id)
    assert view.status == "completed" and view.result == result


def _item(frame: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in frame.items() if key != "type"}
