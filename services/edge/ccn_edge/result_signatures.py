"""Whether a node's result may go on to the scheduler, as far as its signature goes: pure.

A node that registered a public key signs every result over (job id, attempt, checksum)
(ccn_proto.receipts); the edge checks the signature against the key the registry returned when
it authenticated the node's session, and refuses a result that is unsigned, signed for another
attempt or job, or not signed by that key (422 `bad_signature`): a stolen session token alone
cannot put words in the node's mouth. A node that registered no key (an older node) has its
results passed on unsigned; a signature from it cannot be checked, so it is refused as well.
"""

from __future__ import annotations

from ccn_core.receipts import BadNodeSignature, verify_result_signature


def result_signature_problem(
    public_key: str | None, *, job_id: str, attempt: int | None, checksum: str, signature: str | None
) -> BadNodeSignature | None:
    """Why this result is refused for its signature, or None when it may go on."""
    if public_key is None:
        if signature is None:
            return None
        return BadNodeSignature(
            "this node registered no public key, so its signature cannot be checked: send results without "
            "`signature`, or register a new node with a key",
            field="signature",
        )
    if signature is None:
        return BadNodeSignature(
            "this node registered a public key: sign each result (`signature` over job id, attempt and checksum)",
            field="signature",
        )
    if attempt is None:
        return BadNodeSignature("send the offer's `attempt` with the result's signature", field="attempt")
    try:
        verify_result_signature(public_key, job_id, attempt, checksum, signature)
    except BadNodeSignature as exc:
        return exc
    return None
