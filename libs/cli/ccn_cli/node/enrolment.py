"""Getting and keeping the right to connect: register (or reuse the stored node), record
consent to the current terms, and replace a session token the edge no longer accepts.

Every step is safe to repeat: registration under the stored Idempotency-Key returns the same
node, consent to a version already recorded records nothing, and a new session supersedes the
oldest of the node's sessions."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import msgspec

from ccn_cli.node.credentials import (
    NodeCredentials,
    load_credentials,
    new_credentials,
    save_credentials,
    signing_key,
)
from ccn_cli.node.edge_http import EdgeHttp, EdgeRefused, EdgeRejected
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.logging import get_logger
from ccn_core.receipts import new_private_key, public_key_of
from ccn_proto.receipts import Receipt

log = get_logger("ccn.node.enrolment")
T = TypeVar("T")


class NodeRefused(Exception):
    """The edge will not take this node as it is; the message says why and what to do."""


class Enrolment:
    def __init__(self, edge: EdgeHttp, path: Path, *, edge_url: str, node_version: str) -> None:
        self._edge = edge
        self._path = path
        self._edge_url = edge_url
        self._node_version = node_version
        self._credentials: NodeCredentials | None = None

    @property
    def credentials(self) -> NodeCredentials:
        if self._credentials is None:
            raise RuntimeError("enrol() first")
        return self._credentials

    async def job_receipt(self, job_id: str) -> Receipt | None:
        """The receipt for this node's result of `job_id`, asked with its current session token
        (None: none issued yet)."""
        return await self._edge.job_receipt(self.credentials.session_token or "-", job_id)

    async def enrol(self) -> NodeCredentials:
        """Registered and consenting, or NodeRefused; EdgeUnavailable means try again later."""
        credentials = self._credentials or load_credentials(self._path)
        if credentials is None:
            credentials = new_credentials(self._edge_url)
            self._save(credentials)  # the Idempotency-Key is on disk before the edge sees it
        if credentials.edge_url != self._edge_url:
            raise NodeRefused(
                f"{self._path} holds a node of {credentials.edge_url}, not of {self._edge_url}; "
                "give this edge's node another --name"
            )
        self._credentials = credentials
        if not credentials.registered and credentials.signing_key is None:
            # a file from before nodes had keys, not yet registered: it registers with one
            credentials = msgspec.structs.replace(credentials, signing_key=new_private_key())
            self._save(credentials)
        if not credentials.registered:
            key = signing_key(credentials)
            public_key = public_key_of(key) if key is not None else None
            reply = await self._call(self._edge.register(credentials.idempotency_key, self._node_version, public_key))
            credentials = msgspec.structs.replace(
                credentials,
                node_public_id=reply.node_public_id,
                api_token=reply.api_token,
                session_token=reply.session_token,
            )
            self._save(credentials)
            log.info("node registered", node_public_id=reply.node_public_id, created=reply.created)
        version = current_consent_version()
        consent = await self._call(self._edge.consent(_api_token(credentials), version, consent_catalogue()[version]))
        if credentials.consent_version != consent.consent_version:
            credentials = msgspec.structs.replace(credentials, consent_version=consent.consent_version)
            self._save(credentials)
            log.info("consent recorded", consent_version=consent.consent_version)
        return credentials

    async def refresh_session(self) -> str:
        """A new session token, stored; NodeRefused when the API token itself is refused."""
        credentials = self.credentials
        reply = await self._call(self._edge.start_session(_api_token(credentials)))
        credentials = msgspec.structs.replace(credentials, session_token=reply.session_token)
        self._save(credentials)
        log.info("session started", session_id=reply.session_id)
        return reply.session_token

    def refused(self, why: str) -> NodeRefused:
        node = self._credentials.node_public_id if self._credentials else None
        return NodeRefused(
            f"the edge refuses node {node or '(unregistered)'}: {why}. If this node opted out or was banned, "
            f"it cannot come back: start a new one with another --name, or remove {self._path}"
        )

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except EdgeRefused as exc:
            raise self.refused(exc.message) from None
        except EdgeRejected as exc:
            raise NodeRefused(
                f"the edge rejects this node's request ({exc.message}); is {self._edge_url} an edge?"
            ) from None

    def _save(self, credentials: NodeCredentials) -> None:
        save_credentials(self._path, credentials)
        self._credentials = credentials


def _api_token(credentials: NodeCredentials) -> str:
    if credentials.api_token is None:
        raise RuntimeError("the node is not registered")
    return credentials.api_token
