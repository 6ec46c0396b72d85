"""The crawler's work: campaign commands, the dispatcher that turns due pages into crawl jobs, and
the reactor that records each finished job's page.

Every campaign is folded in memory (ccn_core.domain.campaign: a campaign's history is its
frontier). From those states come the two indexes this process needs: which campaign a job
crawls for (`_job_campaign`), and the near-duplicate index of page signatures.

- Dispatch (every `dispatch_interval_s`): each running campaign's due pages become jobs in one
  `create_batch` to the scheduler, then one `pages_scheduled` event. The batch id is the
  campaign's and each item's key is the page's URL digest and crawl round, so the job id of a
  page's n-th crawl is always the same: a crash between the batch and the event re-sends the same
  batch, which creates nothing new, and the event then records the jobs that exist.
- Outcomes: a durable reactor on CCN_JOBS reads completed, dead and cancelled jobs. An unknown
  job's outcome that arrives while a dispatch is in progress waits for it to be recorded (a job
  can be claimed and finished between its batch and its `pages_scheduled`). A job of a
  campaign becomes `page_changed` (with its near-duplicate, if the index finds one),
  `page_unchanged` or `page_failed`, and the links of a fetched page join the frontier. Others'
  jobs are skipped after a dictionary lookup; their results are not even decoded.
- Sweep (every `sweep_interval_s`): the jobs still in flight are asked about (`get_job`); one that
  finished without the reactor hearing of it (another replica scheduled it, or its event was
  dead-lettered) is recorded from the job's own history. Nothing stays in flight for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from ccn_core import ids
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandClient, CommandContext, CommandServer, raise_command_error
from ccn_core.decider import fold
from ccn_core.domain.campaign import (
    CampaignCommand,
    CampaignDecider,
    CampaignState,
    PageReport,
    PageState,
    RecordOutcome,
    RecordScheduled,
    due_pages,
    host_of,
)
from ccn_core.errors import CcnError, NotFound
from ccn_core.eventstore import EventStore, OutgoingEvent, StoredEvent
from ccn_core.fetch_records import domain_record_id, record_event
from ccn_core.ids import new_correlation_id
from ccn_core.logging import get_logger
from ccn_crawler.near_duplicates import NearDuplicateIndex, from_hex, signature_of, to_hex
from ccn_jobs.registry import payload_refusal
from ccn_proto.commands import CommandError
from ccn_proto.crawl import (
    CampaignEvent,
    CampaignList,
    CampaignSettings,
    CampaignView,
    GetCampaign,
    ListCampaigns,
    PageChanged,
    PauseCampaign,
    ResumeCampaign,
    ScheduledPage,
    StartCampaign,
)
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.fetch import ExtractionYieldRecorded
from ccn_proto.jobs import JobCancelled, JobCompletedBytes, JobDead
from ccn_proto.scheduler import MAX_BATCH_JOBS, BatchJob, CreateBatch, CreateBatchReply, GetJob, JobView

log = get_logger("ccn.crawler")

SERVICE_ACTOR: Final = Actor(kind="service", id="crawler")
# a crawl job's own lease and retries: a page fetch is short, and a failed one is tried again
# at the campaign's next interval rather than at once
CRAWL_JOB_LEASE_S: Final = 120.0
CRAWL_JOB_MAX_RETRIES: Final = 2
FINISHED: Final = frozenset({"completed", "dead", "cancelled"})
# the longest a job's outcome waits for the dispatch that created it to be recorded
DISPATCH_WAIT_S: Final = 10.0

JobOutcomeEvent = JobCompletedBytes | JobDead | JobCancelled


def crawl_payload(settings: CampaignSettings, page: PageState) -> dict[str, Any]:
    """The crawl job's payload for one page: a conditional GET when the last crawl left validators."""
    payload: dict[str, Any] = {"url": page.url}
    if settings.fields:
        payload["fields"] = settings.fields
    if page.etag:
        payload["if_none_match"] = page.etag
    if page.last_modified:
        payload["if_modified_since"] = page.last_modified
    return payload


def settings_refusal(settings: CampaignSettings) -> CommandError | None:
    """Why the campaign's jobs could not be created (its fields' rules, above all), checked by the
    job type itself before the campaign starts, so no campaign starts that could make no job."""
    # a seed stands in for every page's URL: the decider checks each seed as a URL itself
    return payload_refusal(settings.job_type, {"url": settings.seeds[0], "fields": settings.fields}, field="settings")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def page_report(result: dict[str, Any]) -> PageReport:
    """What a crawl_domain_page result (ccn_jobs.crawl_domain_page) says about its page, read
    leniently: a field of the wrong type is ignored rather than failing the record (the result
    was checked against its type when it was submitted)."""
    fetch = result.get("fetch")
    fetch = fetch if isinstance(fetch, dict) else {}
    status = fetch.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    failure = None
    if fetch.get("outcome") != "fetched":
        failure = _text(fetch.get("reason")) or _text(fetch.get("outcome")) or "not_fetched"
    elif status is not None and status >= 400:
        failure = f"http_{status}"
    links = result.get("links")
    return PageReport(
        status=status,
        not_modified=status == 304,
        content_hash=_text(result.get("text_sha256")) or _text(fetch.get("body_sha256")),
        etag=_text(fetch.get("etag")),
        last_modified=_text(fetch.get("last_modified")),
        links=tuple(link for link in links if isinstance(link, str)) if isinstance(links, list) else (),
        final_url=_text(fetch.get("final_url")),
        fields_found=_count(result.get("fields_found")),
        fields_asked=_count(result.get("fields_asked")),
        failure=failure,
    )


def yield_record(envelope: Envelope[Any], changed: PageChanged) -> OutgoingEvent:
    """The crawl's extraction yield as a fetch record of the page's domain, for crawl analytics;
    its id derives from the page event's, so a redelivered outcome records it once."""
    domain = host_of(changed.url)
    record = ExtractionYieldRecorded(
        domain=domain, job_id=changed.job_id, fields_asked=changed.fields_asked, fields_found=changed.fields_found
    )
    return record_event(
        domain_record_id(domain),
        record,
        event_id=ids.derived_event_id("extraction_yield", envelope.event_id),
        now=envelope.occurred_at,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.event_id,
        actor=SERVICE_ACTOR,
    )


def _job_key(page: PageState) -> str:
    digest = hashlib.sha256(page.url.encode()).hexdigest()[:40]
    return f"{digest}-{page.crawls + page.failed}"


class Crawler:
    def __init__(
        self,
        repository: AggregateRepository[CampaignCommand, CampaignState, CampaignEvent],
        client: CommandClient,
        *,
        list_campaign_ids: Callable[[], Any],
        records: EventStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_size: int = MAX_BATCH_JOBS,
    ) -> None:
        self._campaigns = repository
        self._decider = CampaignDecider()
        self._client = client
        self._list_campaign_ids = list_campaign_ids
        self._records = records
        self._clock = clock
        self._batch_size = batch_size
        self._known: set[str] = set()
        self._dispatching: asyncio.Event | None = None  # set once the dispatch in progress is recorded
        self._job_campaign: dict[str, str] = {}
        self.near_duplicates = NearDuplicateIndex()
        self.dispatched = 0
        self.recorded = 0

    # ---- state ----

    async def load_all(self) -> None:
        """Fold every campaign the stream holds into the repository's cache (nothing else runs
        yet), and index their jobs and signatures."""
        for campaign_id in sorted(await self._list_campaign_ids()):
            loaded = await self._campaigns.load(campaign_id, fresh=True)
            self._index(loaded.state, signatures=True)

    async def _refresh(self, campaign_id: str) -> CampaignState:
        """The campaign as its stream has it now, folded apart from the repository's cache. The
        cached state is a mutable fold that only the repository's writers (one at a time per
        campaign) may advance: a fresh load beside them would apply their events to it twice."""
        history = await self._campaigns.history(campaign_id)
        state = fold(self._decider, campaign_id, [envelope.data for envelope in history])
        self._index(state)
        return state

    def _index(self, state: CampaignState, *, signatures: bool = False) -> None:
        """Index the campaign's jobs in flight (and, once at start, its pages' signatures: later
        ones are indexed as they are recorded)."""
        if state.settings is None:
            return
        self._known.add(state.campaign_id)
        for job_id in state.in_flight:
            self._job_campaign[job_id] = state.campaign_id
        if not signatures:
            return
        for page in state.pages.values():
            if page.signature and (minhash := from_hex(page.signature)) is not None:
                self.near_duplicates.add(page.url, minhash)

    async def _execute(self, campaign_id: str, command: CampaignCommand, meta: EventMeta) -> CampaignState:
        executed = await self._campaigns.execute(campaign_id, command, meta)
        if executed.state.settings is not None:
            self._known.add(campaign_id)
        return executed.state

    # ---- commands ----

    def register_all(self, server: CommandServer) -> None:
        server.register("start_campaign", StartCampaign, self.start)
        server.register("pause_campaign", PauseCampaign, self.pause)
        server.register("resume_campaign", ResumeCampaign, self.resume)
        server.register("get_campaign", GetCampaign, self.get)
        server.register("list_campaigns", ListCampaigns, self.list)

    @staticmethod
    def _admin_meta(ctx: CommandContext, by: str) -> EventMeta:
        return EventMeta(correlation_id=ctx.correlation_id, causation_id=ctx.causation_id, actor=Actor("admin", by))

    async def start(self, command: StartCampaign, ctx: CommandContext) -> CampaignView:
        refusal = settings_refusal(command.settings)
        if refusal is not None:
            raise_command_error(refusal)
        state = await self._execute(command.campaign_id, command, self._admin_meta(ctx, command.by))
        log.info("campaign started", campaign=command.campaign_id, pages=len(state.pages))
        return state.view(self._clock())

    async def pause(self, command: PauseCampaign, ctx: CommandContext) -> CampaignView:
        state = await self._execute(command.campaign_id, command, self._admin_meta(ctx, command.by))
        return state.view(self._clock())

    async def resume(self, command: ResumeCampaign, ctx: CommandContext) -> CampaignView:
        state = await self._execute(command.campaign_id, command, self._admin_meta(ctx, command.by))
        return state.view(self._clock())

    async def get(self, command: GetCampaign, ctx: CommandContext) -> CampaignView:
        state = await self._refresh(command.campaign_id)
        if state.settings is None:
            raise NotFound(f"no campaign {command.campaign_id}")
        return state.view(self._clock())

    async def list(self, command: ListCampaigns, ctx: CommandContext) -> CampaignList:
        now = self._clock()
        views = []
        for campaign_id in sorted(set(await self._list_campaign_ids()) | self._known):
            state = await self._refresh(campaign_id)
            if state.settings is not None:
                views.append(state.view(now))
        return CampaignList(campaigns=views)

    # ---- dispatch ----

    async def dispatch_once(self) -> int:
        """Schedule every running campaign's due pages; how many jobs were scheduled."""
        scheduled = 0
        self._dispatching = asyncio.Event()
        try:
            for campaign_id in sorted(self._known):
                try:
                    scheduled += await self._dispatch(campaign_id)
                except CcnError as exc:
                    log.warning("campaign dispatch deferred", campaign=campaign_id, error=str(exc))
        finally:
            self._dispatching.set()
            self._dispatching = None
        return scheduled

    async def _dispatch(self, campaign_id: str) -> int:
        loaded = await self._campaigns.load(campaign_id, fresh=False)
        state = loaded.state
        if state.settings is None:
            return 0
        due = due_pages(state, self._clock(), self._batch_size)
        if not due:
            return 0
        correlation_id = new_correlation_id()
        jobs = [
            BatchJob(
                job_type=state.settings.job_type,
                payload=crawl_payload(state.settings, page),
                item_key=_job_key(page),
                max_retries=CRAWL_JOB_MAX_RETRIES,
                lease_s=CRAWL_JOB_LEASE_S,
            )
            for page in due
        ]
        reply = await self._client.call(
            "scheduler",
            "create_batch",
            CreateBatch(batch_id=f"crawl-{campaign_id}", dataset_source=f"campaign:{campaign_id}", jobs=jobs),
            CreateBatchReply,
            correlation_id=correlation_id,
        )
        pages = tuple(
            ScheduledPage(url=page.url, job_id=job_id) for page, job_id in zip(due, reply.job_ids, strict=True)
        )
        for item in pages:
            self._job_campaign[item.job_id] = campaign_id
        meta = EventMeta(correlation_id=correlation_id, actor=SERVICE_ACTOR)
        await self._execute(campaign_id, RecordScheduled(pages=pages), meta)
        self.dispatched += len(pages)
        log.info("crawl jobs scheduled", campaign=campaign_id, jobs=len(pages), created=reply.created)
        return len(pages)

    # ---- outcomes ----

    async def on_job_event(self, envelope: Envelope[Any], stored: StoredEvent) -> None:
        if (dispatching := self._dispatching) is not None and self._in_flight_url(envelope.aggregate_id) is None:
            # a job this dispatch just created can be claimed and finished before the dispatch
            # has recorded it: wait for the dispatch (milliseconds) before calling the job another's
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dispatching.wait(), DISPATCH_WAIT_S)
        campaign_id = self._job_campaign.get(envelope.aggregate_id)
        if campaign_id is None:
            return
        meta = EventMeta(
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
            actor=SERVICE_ACTOR,
            idempotency_key=envelope.event_id,
        )
        match envelope.data:
            case JobCompletedBytes(result=raw):
                result = msgspec.json.decode(raw)
                command = self._outcome_of(envelope.aggregate_id, result if isinstance(result, dict) else {})
            case JobDead(reason=reason):
                command = RecordOutcome(job_id=envelope.aggregate_id, reason=f"dead: {reason}")
            case JobCancelled(reason=reason):
                command = RecordOutcome(job_id=envelope.aggregate_id, reason=f"cancelled: {reason or ''}")
            case _:
                return
        await self._record(campaign_id, command, meta)

    def _outcome_of(self, job_id: str, result: dict[str, Any]) -> RecordOutcome:
        report = page_report(result)
        text = result.get("text")
        minhash = signature_of(text) if isinstance(text, str) and report.failure is None else None
        url = self._in_flight_url(job_id)
        near = self.near_duplicates.nearest(url, minhash) if minhash is not None and url else None
        return RecordOutcome(
            job_id=job_id,
            report=report,
            near_duplicate=near,
            signature=to_hex(minhash) if minhash is not None else None,
        )

    def _in_flight_url(self, job_id: str) -> str | None:
        campaign_id = self._job_campaign.get(job_id)
        cached = self._campaigns.cached(campaign_id) if campaign_id else None
        return cached.state.in_flight.get(job_id) if cached is not None else None

    async def _record(self, campaign_id: str, command: RecordOutcome, meta: EventMeta) -> None:
        executed = await self._campaigns.execute(campaign_id, command, meta)
        self._job_campaign.pop(command.job_id, None)
        for envelope in executed.events:
            data = envelope.data
            if not isinstance(data, PageChanged):
                continue
            if data.signature and (minhash := from_hex(data.signature)) is not None:
                self.near_duplicates.add(data.url, minhash)
            if data.fields_asked and self._records is not None:
                await self._records.append(yield_record(envelope, data))
        self.recorded += 1

    # ---- sweep ----

    async def sweep_once(self) -> int:
        """Record the jobs in flight that finished unheard; how many were."""
        found = 0
        for campaign_id in sorted(self._known):
            state = await self._refresh(campaign_id)
            for job_id in list(state.in_flight):
                try:
                    view = await self._client.call(
                        "scheduler", "get_job", GetJob(job_id=job_id), JobView, correlation_id=new_correlation_id()
                    )
                except NotFound:
                    command = RecordOutcome(job_id=job_id, reason="job_missing")
                except CcnError as exc:
                    log.warning("crawl sweep deferred", campaign=campaign_id, error=str(exc))
                    return found
                else:
                    if view.status not in FINISHED:
                        continue
                    if view.status == "completed":
                        command = self._outcome_of(job_id, view.result or {})
                    else:
                        command = RecordOutcome(job_id=job_id, reason=f"{view.status}: swept")
                meta = EventMeta(correlation_id=new_correlation_id(), actor=SERVICE_ACTOR)
                await self._record(campaign_id, command, meta)
                found += 1
        return found

    async def run_loop(self, every_s: float, step: Callable[[], Any], name: str, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await step()
            except CcnError as exc:
                log.warning(f"{name} deferred", error=str(exc))
            except Exception:
                log.exception(f"{name} failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=every_s)
