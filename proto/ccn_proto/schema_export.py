"""JSON Schema for every message, generated from the Structs: what a node or tool written in
another language codes against. Checked in under proto/schema/; a test fails on drift.

The functions take the families to render, FAMILIES by default: job types' payloads and results
are defined in ccn_jobs, which sits above this package, and are rendered the same way from
ccn_jobs.schemas.JOB_FAMILIES into the same directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from ccn_proto import (
    compute_api,
    consensus,
    crawl,
    datasets,
    deadletter,
    domains,
    fetch,
    merge,
    node_protocol,
    receipts,
    registry,
    results,
    scheduler,
    validation,
)
from ccn_proto.commands import CommandError
from ccn_proto.domains import DomainEvent
from ccn_proto.envelope import Envelope
from ccn_proto.nodes import HeartbeatSample, NodeEvent

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"

# file name → the types it documents
FAMILIES: dict[str, tuple[Any, ...]] = {
    "node_events": (Envelope[NodeEvent],),
    "domain_events": (Envelope[DomainEvent],),
    "domain_commands": (
        domains.DomainCommand,
        domains.DomainPolicyReply,
        domains.DomainPolicyView,
        domains.ImportDomainsReply,
        CommandError,
    ),
    "telemetry": (Envelope[HeartbeatSample],),
    "registry_commands": (
        registry.RegistryCommand,
        registry.RegisterNodeReply,
        registry.ConsentReply,
        registry.OptOutReply,
        registry.StartSessionReply,
        registry.EndSessionReply,
        registry.HeartbeatReply,
        CommandError,
    ),
    "node_protocol": (node_protocol.NodeFrame, node_protocol.ServerFrame),
    "scheduler_commands": (
        scheduler.SchedulerCommand,
        scheduler.CreateJobReply,
        scheduler.CreateBatchReply,
        scheduler.ClaimJobsReply,
        scheduler.ClaimBatchReply,
        scheduler.HeldJobsReply,
        scheduler.NodeDisconnectedReply,
        scheduler.RenewLeasesReply,
        scheduler.SubmitResultReply,
        scheduler.SubmitResultsReply,
        scheduler.FailJobReply,
        scheduler.ReleaseJobReply,
        scheduler.CancelJobReply,
        scheduler.JobView,
        CommandError,
    ),
    "compute_api": (
        compute_api.RegisterNodeRequest,
        compute_api.ConsentRequest,
        compute_api.OptOutRequest,
        compute_api.TelemetryRequest,
        compute_api.StartSessionRequest,
        compute_api.EndSessionRequest,
        compute_api.JobResultRequest,
        compute_api.JobFailRequest,
        compute_api.FetchRequest,
        compute_api.SubmitJobRequest,
        compute_api.BatchLine,
        compute_api.BatchSubmitted,
        compute_api.JobResultView,
        compute_api.CancelJobRequest,
    ),
    "dead_letters": (
        Envelope[deadletter.DeadLetterEvent],
        deadletter.ReplayDeadLetter,
        deadletter.ReplayDeadLetterReply,
        CommandError,
    ),
    "fetch_events": (Envelope[fetch.FetchEvent],),
    "fetch_commands": (fetch.FetchPage, fetch.FetchedPage, fetch.FetchRefused, fetch.FetchFailed, CommandError),
    "receipts": (receipts.Receipt, receipts.KeySet),
    "crawl_events": (Envelope[crawl.CampaignEvent],),
    "consensus_events": (Envelope[consensus.ConsensusEvent],),
    "crawler_commands": (
        crawl.StartCampaign,
        crawl.PauseCampaign,
        crawl.ResumeCampaign,
        crawl.GetCampaign,
        crawl.ListCampaigns,
        crawl.CampaignView,
        crawl.CampaignList,
        CommandError,
    ),
    "dataset_events": (Envelope[datasets.DatasetEvent],),
    "dataset_commands": (datasets.DatasetCommand, CommandError),
    "merge_commands": (
        merge.ListReviews,
        merge.ReviewList,
        merge.ReviewDecided,
        merge.ListVersions,
        merge.VersionList,
        merge.VersionView,
        merge.DiffVersions,
        merge.DiffReply,
        merge.ExplainField,
        merge.FieldExplanation,
        merge.GetRecord,
        merge.RecordView,
        merge.RetractNodeEverywhere,
        merge.RetractionReply,
        CommandError,
    ),
    "result_events": (Envelope[results.ResultEvent],),
    "validation_commands": (validation.ValidationCommand, validation.QuarantineDecisionReply, CommandError),
    "consensus_commands": (
        consensus.AcceptConsensus,
        consensus.RejectConsensus,
        consensus.GetConsensus,
        consensus.ConsensusGroupView,
        CommandError,
    ),
}


Families = dict[str, tuple[Any, ...]]


def family_schema(name: str, families: Families = FAMILIES) -> dict[str, Any]:
    types = families[name]
    roots, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://community-compute.example/schema/{name}.json",
        "title": f"Community Compute {name.replace('_', ' ')}",
        "anyOf": list(roots),
        "$defs": components,
    }


def render(name: str, families: Families = FAMILIES) -> str:
    return msgspec.json.format(msgspec.json.encode(family_schema(name, families)), indent=2).decode() + "\n"


def export(directory: Path = SCHEMA_DIR, families: Families = FAMILIES) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in families:
        path = directory / f"{name}.json"
        path.write_text(render(name, families), encoding="utf-8")
        written.append(path)
    return written


def drifted(directory: Path = SCHEMA_DIR, families: Families = FAMILIES) -> list[str]:
    """Names of the families whose checked-in schema differs from the Structs."""
    return [
        name
        for name in families
        if not (directory / f"{name}.json").exists()
        or (directory / f"{name}.json").read_text(encoding="utf-8") != render(name, families)
    ]
