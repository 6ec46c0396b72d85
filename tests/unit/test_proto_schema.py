from ccn_proto.results import REASON_CODES
from ccn_proto.schema_export import FAMILIES, drifted, family_schema


def test_checked_in_schema_matches_the_structs() -> None:
    assert drifted() == [], "proto/schema/ is stale: run `ccn schema export` and commit the result"


def test_every_event_type_is_documented() -> None:
    schema = family_schema("node_events")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert {
        "node.registered",
        "node.consent_recorded",
        "node.opted_out",
        "node.session_started",
        "node.session_ended",
    } <= tags
    assert set(FAMILIES) == {
        "node_events",
        "telemetry",
        "registry_commands",
        "scheduler_commands",
        "compute_api",
        "node_protocol",
        "dead_letters",
        "domain_events",
        "fetch_events",
        "fetch_commands",
        "crawl_events",
        "crawler_commands",
        "domain_commands",
        "dataset_events",
        "dataset_commands",
        "merge_commands",
        "consensus_events",
        "consensus_commands",
        "result_events",
        "receipts",
        "validation_commands",
    }


def test_every_consensus_event_is_documented() -> None:
    schema = family_schema("consensus_events")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert tags == {
        "consensus.replica_issued",
        "consensus.result_recorded",
        "consensus.partial",
        "consensus.replica_requested",
        "consensus.replica_lost",
        "consensus.verified",
        "consensus.finalised",
        "consensus.sent_to_review",
        "consensus.review_rejected",
        "consensus.node_agreed",
        "consensus.node_disagreed",
        "consensus.decided",
    }


def test_every_dead_letter_event_is_documented() -> None:
    schema = family_schema("dead_letters")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert tags == {"deadletter.recorded", "deadletter.replayed", "deadletter.replay_failed"}


def test_every_domain_policy_event_is_documented() -> None:
    schema = family_schema("domain_events")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert tags == {"domain.allowed", "domain.blocked", "domain.policy_updated"}


def test_every_domain_policy_command_is_documented() -> None:
    schema = family_schema("domain_commands")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert tags == {"allow", "block", "update", "get", "import"}


def test_every_dataset_event_is_documented() -> None:
    schema = family_schema("dataset_events")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert tags == {
        "dataset.merge_applied",
        "dataset.review_requested",
        "dataset.review_approved",
        "dataset.review_rejected",
        "dataset.node_retracted",
        "dataset.version_published",
    }


def test_every_verdict_event_is_documented() -> None:
    schema = family_schema("result_events")
    tags = {
        d["properties"]["type"]["enum"][0]
        for d in schema["$defs"].values()
        if "type" in d.get("properties", {}) and "enum" in d["properties"]["type"]
    }
    assert tags == {
        "result.validated",
        "result.rejected",
        "result.released",
        "result.discarded",
        "result.receipt_issued",
    }
    assert set(schema["$defs"]["Reason"]["properties"]["code"]["enum"]) == set(REASON_CODES)
