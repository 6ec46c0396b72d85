"""What a job type is: a name, a version, typed payload and result, and a pure handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from ccn_jobs.consensus_rules import ConsensusSpec
from ccn_jobs.crawl import CrawlSpec
from ccn_jobs.result_rules import NO_RULES, ResultRules, rules_problems
from ccn_proto.nodes import ConsentScope

P = TypeVar("P", bound=msgspec.Struct)
R = TypeVar("R", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class JobType(Generic[P, R]):
    """One kind of work a node can do.

    `handler` is pure and deterministic: the same payload gives a result that encodes to the
    same bytes on every node, so replicas can be compared by checksum. `version` changes
    whenever the handler's output for some input would change; results are only compared
    between equal versions. `sample_payloads` are a few representative inputs: the
    determinism test runs each in two processes and compares the results' bytes.
    `consent_scope` is the kind of work it is: a node is offered it only when it consented to
    that scope. `crawl`: how a crawl job type fetches its pages through the proxy before the
    handler runs (ccn_jobs.crawl); None for every job type that fetches nothing. `consensus`: how
    many nodes' results must agree, and how they are compared (ccn_jobs.consensus_rules); None:
    one replica, its validated result finalised alone.
    `result_rules`: the business rules a result must meet beyond its schema, checked by the
    validation service (ccn_jobs.result_rules); by default none. They are versioned on their
    own, and `schema_version` names both versions: what a result was judged against."""

    name: str
    version: str
    payload_type: type[P]
    result_type: type[R]
    handler: Callable[[P], R]
    consent_scope: ConsentScope
    description: str = ""
    sample_payloads: tuple[P, ...] = ()
    crawl: CrawlSpec[P] | None = None
    consensus: ConsensusSpec | None = None
    result_rules: ResultRules = NO_RULES

    def __post_init__(self) -> None:
        problems = rules_problems(self.result_type, self.result_rules)
        if problems:
            raise ValueError(f"job type {self.name}: its result rules do not fit its result: {'; '.join(problems)}")

    @property
    def schema_version(self) -> str:
        """The job type's version and its result rules' version: "3+rules.2"."""
        return f"{self.version}+rules.{self.result_rules.version}"
