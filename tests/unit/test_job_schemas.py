"""Each job type's payload and result schema is exported under proto/schema/ (job_<name>.json)
and checked in; the schemas say what a node in another language must send and accept."""

from __future__ import annotations

from ccn_jobs.registry import JOB_TYPES
from ccn_jobs.schemas import job_families
from ccn_proto.schema_export import drifted, family_schema


def test_every_job_type_has_a_schema_family() -> None:
    assert set(job_families()) == {f"job_{name}" for name in JOB_TYPES}


def test_checked_in_job_schemas_match_the_structs() -> None:
    assert drifted(families=job_families()) == [], "proto/schema/ is stale: run `ccn schema export` and commit it"


def test_a_job_schema_documents_payload_and_result() -> None:
    schema = family_schema("job_link_entities", job_families())
    assert [root["$ref"] for root in schema["anyOf"]] == [
        "#/$defs/LinkEntitiesPayload",
        "#/$defs/LinkEntitiesResult",
    ]
    record = schema["$defs"]["OrganisationRecord"]
    assert record["required"] == ["record_id", "source", "name"]
    assert schema["$defs"]["LinkEntitiesPayload"]["properties"]["records"]["maxItems"] == 1000
