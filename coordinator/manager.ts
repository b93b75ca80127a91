/**
 * JobManager: the coordinator's state machine. Accepts jobs (validate, plan,
 * persist, ledger), releases tasks while each tenant has credit, folds task
 * outcomes (first accepted attempt wins; its outputs are renamed into place),
 * runs the reduce stage, closes jobs, and persists everything it needs to
 * resume after a restart in KV (result messages are acked only after the
 * state that includes them is persisted).
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { hats } from '../astro/index.js';
import {
  ApiCode,
  decode,
  encode,
  eventSubject,
  isValid,
  JobSpec,
  KvKey,
  ListRequest,
  JobRef,
  SubmitRequest,
  Streams,
  TaskResult,
  taskConsumerName,
  taskSubject,
  TERMINAL_STATES,
  UbatchApiError,
  validateOrThrow,
  writesHatsCatalog,
  hatsLeavesOf,
  type JobEvent,
  type JobInfo,
  type JobStateName,
  type RankingDoc,
  type RankingEntry,
  type ResultsReply,
  type SubmitReply,
  type Task,
  type TaskOutcome,
  type Topology,
} from '../protocol/index.js';
import { buildReport, type LedgerRecord, type LedgerWriter, type Report } from '../ledger/index.js';
import { Bitset } from './bitset.js';
import { capacityCoreSeconds, liveSlots } from './capacity.js';
import { commitOutputs, discardAttempt } from './commit.js';
import { fairTreeRanking } from './fairshare/index.js';
import { Accountant, QUOTA_FIELDS, type QuotaLimits, type QuotaView } from './accountant.js';
import { fromDoc, mapTaskCount, MAX_FAILURES_KEPT, MAX_SUMMARIES_KEPT, newJobId, tenantOf, toDoc, type JobDoc, type JobRecord, type PlanUnit } from './jobs.js';
import type { CompiledCoordinatorOptions } from './options.js';
import { planJob, type Plan } from './planner.js';
import type { CoordinatorMetrics, Log } from './types.js';

interface TenantState {
  group: string;
  user: string;
  /** released and not finished, by capability */
  inflight: Map<string, number>;
}

/** Kinds whose planner packs partitions into tasks by the live worker slots (coordinator/planner.ts batchPartitions). */
const BATCHED_KINDS: ReadonlySet<string> = new Set(['catalog.sql', 'periodogram', 'crossmatch']);

export class JobManager {
  readonly jobs = new Map<string, JobRecord>();
  /** jobs that still have map tasks to release (release rounds scan only these) */
  private readonly releasable = new Set<JobRecord>();
  /** jobs changed since the last flush */
  private readonly dirtyJobs = new Set<JobRecord>();
  private readonly tenants = new Map<string, TenantState>();
  private readonly consumersMade = new Set<string>();
  readonly acct: Accountant;
  /** resolves once the ledger follower has applied the entry with this sequence */
  waitLedger: (seq: number) => Promise<void> = async () => {};
  private releasing: Promise<void> | undefined;
  private releaseAgain = false;
  private rankingDirty = false;
  private lastRanking = '';
  /**
   * live worker slots for planning (catalog.sql batches partitions by them), refreshed at most every 5 s; a stale
   * count is answered at once and refreshed in the background (walking the KV bucket costs a submit several ms)
   */
  private slotsSeen = { at: 0, slots: 0 };
  private slotsRefresh: Promise<number> | undefined;
  private async poolSlots(): Promise<number> {
    if (Date.now() - this.slotsSeen.at <= 5000) return this.slotsSeen.slots;
    this.slotsRefresh ??= liveSlots(this.topo.workers)
      .catch(() => 0)
      .then((slots) => {
        this.slotsSeen = { at: Date.now(), slots };
        return slots;
      })
      .finally(() => (this.slotsRefresh = undefined));
    return this.slotsSeen.slots > 0 ? this.slotsSeen.slots : this.slotsRefresh;
  }

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly topo: Topology,
    private readonly ledger: LedgerWriter,
    private readonly opts: CompiledCoordinatorOptions,
    private readonly log: Log,
    private readonly metrics: CoordinatorMetrics,
  ) {
    this.acct = new Accountant({ halfLifeMs: opts.halfLifeMs });
  }

  // ---------------------------------------------------------------- restore

  /** Rebuild in-memory state from KV (job documents, specs, plans). */
  async load(): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.topo.jobs.keys('job.>')) keys.push(k);
    for (const k of keys) {
      const e = await this.topo.jobs.get(k);
      if (!e || e.operation !== 'PUT') continue;
      const doc = decode(e.value) as JobDoc;
      const jobId = doc.info.jobId;
      const specE = await this.topo.jobs.get(KvKey.spec(jobId));
      const spec = specE && specE.operation === 'PUT' ? decode(specE.value) : undefined;
      if (!isValid(JobSpec, spec)) {
        this.log.error({ jobId }, 'job has no valid stored spec; skipping it');
        continue;
      }
      const terminal = TERMINAL_STATES.has(doc.info.state);
      const units = !terminal && doc.hasUnits ? await this.loadUnits(jobId) : undefined;
      const r = fromDoc(doc, spec, units);
      this.jobs.set(jobId, r);
      if (!terminal) {
        this.releasable.add(r);
        const t = this.tenant(r);
        t.inflight.set(r.capability, (t.inflight.get(r.capability) ?? 0) + this.inflightOf(r));
        await this.ensureConsumer(r.capability, r.info.group, r.info.user);
      }
    }
    this.log.info({ jobs: this.jobs.size, active: [...this.jobs.values()].filter((j) => !TERMINAL_STATES.has(j.info.state)).length }, 'job state restored');
    // a job whose map tasks all finished before a crash still needs its reduce or close
    for (const r of this.jobs.values()) if (!TERMINAL_STATES.has(r.info.state)) await this.advance(r);
    this.rankingDirty = true;
    this.kickRelease();
  }

  private async loadUnits(jobId: string): Promise<PlanUnit[] | undefined> {
    const e = await this.topo.jobs.get(KvKey.plan(jobId));
    const data = e && e.operation === 'PUT' ? e.value : await this.topo.artifacts.getBlob(`plans/${jobId}`);
    return data ? (decode(data) as PlanUnit[]) : undefined;
  }

  private inflightOf(r: JobRecord): number {
    const mapReleased = Math.min(r.info.released, mapTaskCount(r));
    const reduceOpen = r.reduceReleased && r.info.state === 'reducing' ? 1 : 0;
    return mapReleased - r.finished.count + reduceOpen;
  }

  private tenant(r: JobRecord): TenantState {
    const k = tenantOf(r);
    let t = this.tenants.get(k);
    if (!t) this.tenants.set(k, (t = { group: r.info.group, user: r.info.user, inflight: new Map() }));
    return t;
  }

  // ---------------------------------------------------------------- API

  async submit(user: string, body: unknown): Promise<SubmitReply | Record<string, unknown>> {
    const req = validateOrThrow(SubmitRequest, body, 'invalid request', '', ApiCode.InvalidSpec);
    const spec = structuredClone(req.spec);
    const size = encode(spec).length;
    if (size > this.opts.maxSpecBytes) throw new UbatchApiError(ApiCode.TooLarge, `job spec is ${size} bytes; the limit is ${this.opts.maxSpecBytes}`, '/spec');
    const group = this.acct.resolveGroup(user, spec.group);
    spec.group = group;
    if (spec.idempotency_key && !req.dryRun) {
      const prior = await this.topo.jobs.get(KvKey.idem(user, spec.idempotency_key.replace(/[^A-Za-z0-9_-]/g, '_')));
      if (prior && prior.operation === 'PUT') {
        const jobId = new TextDecoder().decode(prior.value);
        const r = this.jobs.get(jobId);
        if (r) return { jobId, tasks: r.info.total, duplicate: true, state: r.info.state };
      }
    }
    let plan: Plan;
    try {
      plan = await planJob(spec, BATCHED_KINDS.has(spec.kind) ? { slots: await this.poolSlots() } : {});
    } catch (err) {
      if (err instanceof UbatchApiError) throw new UbatchApiError(err.code, err.message, err.where ? `/spec${err.where}` : undefined, err.details);
      throw err;
    }
    const cores = spec.resources?.cores ?? 1;
    const est = this.acct.estimate(spec.kind, paramsForHistory(spec), plan.count, plan.estimateCoreSeconds * cores);
    const estimateCoreSeconds = est.coreSeconds;
    if (req.dryRun) return this.quote(user, group, spec, plan, estimateCoreSeconds, est.basis);
    this.acct.checkSubmit(user, group, estimateCoreSeconds);
    const jobId = newJobId();
    if (!spec.output?.path && spec.kind !== 'noop') spec.output = { path: `${this.opts.outputRoot}/${user}/${jobId}` };
    const now = new Date().toISOString();
    const total = plan.count + (plan.hasReduce ? 1 : 0);
    const info: JobInfo = {
      jobId,
      kind: spec.kind,
      ...(spec.name ? { name: spec.name } : {}),
      user,
      group,
      state: 'queued',
      total,
      released: 0,
      done: 0,
      failed: 0,
      hasReduce: plan.hasReduce,
      createdAt: now,
      updatedAt: now,
      ...(spec.output?.path ? { output: spec.output.path } : {}),
      failures: [],
      usage: { cpuSeconds: 0, wallSeconds: 0, gpuSeconds: 0 },
    };
    const r: JobRecord = {
      info,
      spec,
      capability: plan.capability,
      ...(plan.units ? { units: plan.units } : {}),
      finished: new Bitset(plan.count),
      ok: new Bitset(plan.count),
      reduceReleased: false,
      leaves: [],
      outputs: [],
      summaries: [],
      rowsOut: 0,
      pendingAcks: [],
      lastProgressEvent: 0,
    };
    // durable before we answer: spec, plan, job document, ledger entry
    // (spec and plan before the job document: a restart only restores jobs whose document it finds)
    const units = plan.units ? encode(plan.units) : undefined;
    await Promise.all([
      this.topo.jobs.put(KvKey.spec(jobId), encode(spec)),
      // a plan that fits one KV value is one write; the object store takes several round trips
      ...(units ? [units.length <= this.opts.planInKvMaxBytes ? this.topo.jobs.put(KvKey.plan(jobId), units) : this.topo.artifacts.putBlob({ name: `plans/${jobId}` }, units)] : []),
    ]);
    await this.topo.jobs.put(KvKey.job(jobId), encode(toDoc(r)));
    await this.ledger.append({ kind: 'job.accepted', ts: now, actor: user, group, user, jobId, jobKind: spec.kind, ...(spec.name ? { name: spec.name } : {}), tasks: total, spec }, `accepted/${jobId}`);
    if (spec.idempotency_key) await this.topo.jobs.put(KvKey.idem(user, spec.idempotency_key.replace(/[^A-Za-z0-9_-]/g, '_')), new TextEncoder().encode(jobId));
    this.jobs.set(jobId, r);
    this.releasable.add(r);
    this.tenant(r);
    await this.ensureConsumer(plan.capability, group, user);
    this.metrics.job(spec.kind, 'accepted');
    this.emit(r, 'state');
    this.kickRelease();
    return { jobId, tasks: total, duplicate: false, state: info.state };
  }

  /**
   * The job `user` may see (`read`: its owner, operators, and members of the job's group when the job
   * declares `share_with_group`) or act on (`act`: cancel, re-run — owner and operators only).
   * Anyone else gets `not_found`, the same answer as for a job that does not exist.
   */
  private own(user: string, jobId: unknown, operator: boolean, access: 'read' | 'act' = 'act'): JobRecord {
    const ref = validateOrThrow(JobRef, { jobId }, 'invalid request', '', ApiCode.BadRequest);
    const r = this.jobs.get(ref.jobId);
    if (!r || !(operator || r.info.user === user || (access === 'read' && this.sharedWith(r, user)))) throw new UbatchApiError(ApiCode.NotFound, `no job ${ref.jobId}`, '/jobId');
    return r;
  }

  /** a job shared with its group (spec.share_with_group) is readable by the group's members (operators' share entries) */
  private sharedWith(r: JobRecord, user: string): boolean {
    return r.spec.share_with_group === true && (this.acct.memberships.get(user) ?? []).includes(r.info.group);
  }

  /** the owner of a job that another user may read because it is shared with a group they belong to */
  sharedOwner(user: string, jobId: string): string | undefined {
    const r = this.jobs.get(jobId);
    return r && r.info.user !== user && this.sharedWith(r, user) ? r.info.user : undefined;
  }

  get(user: string, body: unknown, operator = false): JobInfo {
    return this.own(user, (body as { jobId?: unknown } | null)?.jobId, operator, 'read').info;
  }

  list(user: string, body: unknown, operator = false): JobInfo[] {
    const req = validateOrThrow(ListRequest, body ?? {}, 'invalid request', '', ApiCode.BadRequest);
    const out: JobInfo[] = [];
    for (const r of this.jobs.values()) {
      if (!(operator && req.all) && r.info.user !== user && !(req.shared && this.sharedWith(r, user))) continue;
      if (req.state && r.info.state !== req.state) continue;
      out.push(r.info);
    }
    out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
    return out.slice(0, req.limit ?? 100);
  }

  async cancel(user: string, body: unknown, operator = false): Promise<JobInfo> {
    const r = this.own(user, (body as { jobId?: unknown } | null)?.jobId, operator);
    if (TERMINAL_STATES.has(r.info.state)) return r.info;
    await this.topo.jobs.put(KvKey.cancel(r.info.jobId), encode({ by: user, at: Date.now() }));
    await this.close(r, 'cancelled', `cancelled by ${user}`);
    return r.info;
  }

  /** re-run a job: the same stored spec as a new job (without its idempotency key) */
  async rerun(user: string, body: unknown, operator = false): Promise<SubmitReply | Record<string, unknown>> {
    const r = this.own(user, (body as { jobId?: unknown } | null)?.jobId, operator);
    const spec = structuredClone(r.spec);
    delete spec.idempotency_key;
    return this.submit(r.info.user, { spec });
  }

  /** an accounting report: a replay of the ledger (users see their own tenants, operators any) */
  async report(user: string, body: unknown, operator: boolean, records: () => Promise<LedgerRecord[]>): Promise<Report> {
    const b = (body ?? {}) as { group?: unknown; user?: unknown; from?: unknown; to?: unknown };
    const opt = (k: string, v: unknown): string | undefined => {
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new UbatchApiError(ApiCode.BadRequest, `${k} must be a name`, `/${k}`);
      return v;
    };
    const time = (k: string, v: unknown): number | undefined => {
      if (v === undefined) return undefined;
      const t = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
      if (!Number.isFinite(t)) throw new UbatchApiError(ApiCode.BadRequest, `${k} must be an ISO date or ms epoch`, `/${k}`);
      return t;
    };
    const group = opt('group', b.group);
    let who = opt('user', b.user);
    if (!operator) {
      if (who !== undefined && who !== user) throw new UbatchApiError(ApiCode.Forbidden, `only operators may read another user's accounting`, '/user');
      who = user;
    }
    const from = time('from', b.from);
    const to = time('to', b.to);
    const recs = await records();
    // capacity: the registered worker slots over the window (hourly samples kept by the accountant)
    const capFrom = from ?? recs[0]?.time ?? Date.now();
    const capacity = await capacityCoreSeconds(this.topo.shares, capFrom, to ?? Date.now());
    return buildReport(recs, { ...(group ? { group } : {}), ...(who ? { user: who } : {}), ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), ...(capacity > 0 ? { capacityCoreSeconds: capacity } : {}), halfLifeMs: this.opts.halfLifeMs, now: Date.now() });
  }

  results(user: string, body: unknown, operator = false): ResultsReply {
    const r = this.own(user, (body as { jobId?: unknown } | null)?.jobId, operator, 'read');
    return {
      jobId: r.info.jobId,
      state: r.info.state,
      ...(r.info.output ? { output: r.info.output } : {}),
      files: r.outputs,
      failures: r.info.failures,
      summaries: r.summaries,
    };
  }

  // ---------------------------------------------------------------- release

  kickRelease(): void {
    if (this.releasing) {
      this.releaseAgain = true;
      return;
    }
    this.releasing = this.releaseRound()
      .catch((err) => {
        this.metrics.swallowed('release');
        this.log.error({ err }, 'release round failed; will retry');
        setTimeout(() => this.kickRelease(), 500);
      })
      .finally(() => {
        this.releasing = undefined;
        if (this.releaseAgain) {
          this.releaseAgain = false;
          this.kickRelease();
        }
      });
  }

  private async releaseRound(): Promise<void> {
    await this.foldChargesBeforeCredit();
    for (;;) {
      let progressed = false;
      for (const r of this.releasable) if (!(r.info.state === 'queued' || r.info.state === 'running') || r.info.released >= mapTaskCount(r)) this.releasable.delete(r);
      const order = [...this.releasable];
      order.sort((a, b) => (a.info.createdAt < b.info.createdAt ? -1 : 1));
      const byUser = new Map<string, number>();
      const byGroup = new Map<string, number>();
      for (const t of this.tenants.values()) {
        const n = [...t.inflight.values()].reduce((a, x) => a + x, 0);
        byUser.set(t.user, (byUser.get(t.user) ?? 0) + n);
        byGroup.set(t.group, (byGroup.get(t.group) ?? 0) + n);
      }
      for (const r of order) {
        const credit = this.creditFor(r, byUser, byGroup);
        if (credit <= 0) continue;
        const n = Math.min(credit, this.opts.releaseChunk, mapTaskCount(r) - r.info.released);
        if (n <= 0) continue;
        await this.releaseMap(r, n);
        byUser.set(r.info.user, (byUser.get(r.info.user) ?? 0) + n);
        byGroup.set(r.info.group, (byGroup.get(r.info.group) ?? 0) + n);
        progressed = true;
      }
      if (!progressed) break;
    }
  }

  /**
   * cpu/gpu-hour quotas are post-paid: before granting credit to a tenant with such a quota, fold every
   * charge already in UB_LEDGER. A worker appends its charge before it reports the result that frees the
   * credit, so without this the release following a result can run ahead of the accountant and let one
   * more task start after the quota was reached (fault matrix row 10).
   */
  private async foldChargesBeforeCredit(): Promise<void> {
    const limited = (k: string) => {
      const q = this.acct.quotas.get(k);
      return q !== undefined && (q.cpu_hours !== undefined || q.gpu_hours !== undefined);
    };
    let any = false;
    for (const r of this.releasable) if (limited(`u:${r.info.user}`) || limited(`g:${r.info.group}`)) any = true;
    if (!any) return;
    const last = (await this.jsm.streams.info(Streams.ledger)).state.last_seq;
    await this.waitLedger(last);
  }

  /** how many more tasks this job's tenant may have released and unfinished right now */
  private creditFor(r: JobRecord, byUser: Map<string, number>, byGroup: Map<string, number>): number {
    const { user, group } = r.info;
    if (this.acct.exhausted(user, group)) return 0; // held until the quota is raised or the period rolls over
    const t = this.tenant(r);
    const tenantInflight = [...t.inflight.values()].reduce((a, x) => a + x, 0);
    return Math.min(
      this.opts.maxQueuedPerTenant - tenantInflight,
      this.acct.maxConcurrent('user', user) - (byUser.get(user) ?? 0),
      this.acct.maxConcurrent('group', group) - (byGroup.get(group) ?? 0),
    );
  }

  private async quote(user: string, group: string, spec: JobSpec, plan: Plan, estimateCoreSeconds: number, basis: string): Promise<Record<string, unknown>> {
    const slots = await liveSlots(this.topo.workers, plan.capability);
    const queuedAhead = [...this.tenants.values()].reduce((a, t) => a + (t.inflight.get(plan.capability) ?? 0), 0);
    const perTask = plan.count > 0 ? estimateCoreSeconds / plan.count : 0;
    const startS = slots > 0 ? (queuedAhead * perTask) / slots : undefined;
    const cap = Math.min(this.acct.maxConcurrent('user', user), this.acct.maxConcurrent('group', group));
    const parallel = Math.min(slots, cap, plan.count);
    const runS = parallel > 0 ? estimateCoreSeconds / parallel : undefined;
    let quotaError: string | undefined;
    try {
      this.acct.checkSubmit(user, group, estimateCoreSeconds);
    } catch (e) {
      quotaError = (e as Error).message;
    }
    const now = Date.now();
    return {
      dryRun: true,
      kind: spec.kind,
      group,
      tasks: plan.count + (plan.hasReduce ? 1 : 0),
      partitions: (plan.units ?? []).slice(0, 10_000).map((u) => ({ order: u.partition?.order ?? -1, pixel: u.partition?.pixel ?? 0, ...(u.partition?.rows !== undefined ? { rows: u.partition.rows } : {}) })),
      estimate: { coreHours: estimateCoreSeconds / 3600, basis },
      credit: { user: this.acct.quotaView('user', user), group: this.acct.quotaView('group', group), maxConcurrent: Number.isFinite(cap) ? cap : null, ...(quotaError ? { wouldBeRejected: quotaError } : {}) },
      schedule: {
        workerSlots: slots,
        queuedAhead,
        ...(startS !== undefined ? { estimatedStart: new Date(now + startS * 1000).toISOString() } : {}),
        ...(startS !== undefined && runS !== undefined ? { estimatedFinish: new Date(now + (startS + runS) * 1000).toISOString() } : {}),
        ...(slots === 0 ? { note: `no live worker advertises capability ${plan.capability}` } : {}),
      },
    };
  }

  // ---------------------------------------------------------------- quotas and shares (operators)

  private requireOperator(user: string, operator: boolean, what: string): void {
    if (!operator) throw new UbatchApiError(ApiCode.Forbidden, `only operators may ${what}; ${user} is not an operator`);
  }

  async quotaSet(actor: string, body: unknown, operator: boolean): Promise<QuotaView> {
    this.requireOperator(actor, operator, 'change quotas');
    const b = (body ?? {}) as { scope?: unknown; name?: unknown; limits?: unknown };
    if (b.scope !== 'user' && b.scope !== 'group') throw new UbatchApiError(ApiCode.BadRequest, 'scope must be "user" or "group"', '/scope');
    if (typeof b.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(b.name)) throw new UbatchApiError(ApiCode.BadRequest, 'name must be a user or group name', '/name');
    const limits: Record<string, number> = {};
    const raw = (b.limits ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(raw)) {
      if (!(QUOTA_FIELDS as readonly string[]).includes(k)) throw new UbatchApiError(ApiCode.BadRequest, `unknown quota field ${k}; known: ${QUOTA_FIELDS.join(', ')}`, `/limits/${k}`);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new UbatchApiError(ApiCode.BadRequest, `${k} must be a number (negative removes the limit)`, `/limits/${k}`);
      limits[k] = v;
    }
    if (Object.keys(limits).length === 0) throw new UbatchApiError(ApiCode.BadRequest, 'no limits given', '/limits');
    const group = b.scope === 'group' ? b.name : 'default';
    const user = b.scope === 'user' ? b.name : '_';
    const ack = await this.ledger.append({ kind: 'quota.set', ts: new Date().toISOString(), actor, group, user, scope: b.scope, limits }, `quota/${actor}/${Date.now()}/${Math.random().toString(36).slice(2)}`);
    await this.waitLedger(ack.seq);
    this.kickRelease();
    return this.acct.quotaView(b.scope, b.name);
  }

  quotaGet(user: string, body: unknown, operator: boolean): { user: QuotaView; groups: QuotaView[]; memberships: string[] } {
    const b = (body ?? {}) as { user?: unknown };
    const who = typeof b.user === 'string' ? b.user : user;
    if (who !== user && !operator) throw new UbatchApiError(ApiCode.Forbidden, `only operators may read another user's quota`, '/user');
    const groups = this.acct.memberships.get(who) ?? ['default'];
    return { user: this.acct.quotaView('user', who), groups: groups.map((g) => this.acct.quotaView('group', g)), memberships: groups };
  }

  async sharesSet(actor: string, body: unknown, operator: boolean): Promise<{ group: string; user?: string; share: number }> {
    this.requireOperator(actor, operator, 'change shares');
    const b = (body ?? {}) as { group?: unknown; user?: unknown; share?: unknown };
    if (typeof b.group !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(b.group)) throw new UbatchApiError(ApiCode.BadRequest, 'group must be a group name', '/group');
    if (b.user !== undefined && (typeof b.user !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(b.user))) throw new UbatchApiError(ApiCode.BadRequest, 'user must be a user name', '/user');
    if (typeof b.share !== 'number' || !Number.isFinite(b.share) || b.share < 0) throw new UbatchApiError(ApiCode.BadRequest, 'share must be a number >= 0', '/share');
    const scope = b.user === undefined ? 'group' : 'user';
    const ack = await this.ledger.append({ kind: 'share.set', ts: new Date().toISOString(), actor, group: b.group, user: (b.user as string | undefined) ?? '_', scope, share: b.share }, `share/${actor}/${Date.now()}/${Math.random().toString(36).slice(2)}`);
    await this.waitLedger(ack.seq);
    this.rankingDirty = true;
    return { group: b.group, ...(b.user !== undefined ? { user: b.user as string } : {}), share: b.share };
  }

  private taskFor(r: JobRecord, index: number, stage: 'map' | 'reduce', unit?: PlanUnit): Task {
    return {
      taskId: stage === 'reduce' ? `${r.info.jobId}.r` : `${r.info.jobId}.${index}`,
      jobId: r.info.jobId,
      index,
      stage,
      kind: r.info.kind,
      user: r.info.user,
      group: r.info.group,
      capability: r.capability,
      ...(unit?.partition ? { partition: unit.partition } : {}),
      ...(unit?.unit !== undefined ? { unit: unit.unit } : {}),
    };
  }

  private async releaseMap(r: JobRecord, n: number): Promise<void> {
    const from = r.info.released;
    const subject = taskSubject(r.capability, r.info.group, r.info.user);
    const acks: Promise<unknown>[] = [];
    for (let i = from; i < from + n; i++) {
      const task = this.taskFor(r, i, 'map', r.units?.[i]);
      acks.push(this.js.publish(subject, encode(task), { msgID: task.taskId, expect: { streamName: Streams.tasks }, timeout: 10_000 }));
    }
    await Promise.all(acks);
    r.info.released = from + n;
    const t = this.tenant(r);
    const before = t.inflight.get(r.capability) ?? 0;
    t.inflight.set(r.capability, before + n);
    if (r.info.state === 'queued') {
      r.info.state = 'running';
      this.emit(r, 'state');
    }
    this.touch(r);
    this.rankingDirty = true;
    if (before === 0) void this.publishRanking();
  }

  private async releaseReduce(r: JobRecord): Promise<void> {
    const partials: string[] = [];
    for (const o of r.outputs) partials.push(o.path);
    const task = this.taskFor(r, -1, 'reduce', { unit: { partials } });
    await this.js.publish(taskSubject(r.capability, r.info.group, r.info.user), encode(task), { msgID: task.taskId, expect: { streamName: Streams.tasks }, timeout: 10_000 });
    r.reduceReleased = true;
    r.info.released = r.info.total;
    r.info.state = 'reducing';
    const t = this.tenant(r);
    t.inflight.set(r.capability, (t.inflight.get(r.capability) ?? 0) + 1);
    this.emit(r, 'state');
    this.touch(r);
    this.rankingDirty = true;
    void this.publishRanking();
  }

  async ensureConsumer(capability: string, group: string, user: string): Promise<void> {
    const name = taskConsumerName(capability, group, user);
    if (this.consumersMade.has(name)) return;
    await this.jsm.consumers.add(Streams.tasks, {
      durable_name: name,
      filter_subject: taskSubject(capability, group, user),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: this.opts.ackWaitMs * 1_000_000,
      max_deliver: -1,
      max_ack_pending: -1,
      max_waiting: 4096,
    });
    this.consumersMade.add(name);
  }

  // ---------------------------------------------------------------- ranking

  /** Fair-share ranking of tenants with released work, for the workers (KV ub-shares/ranking). */
  async publishRanking(): Promise<void> {
    if (!this.rankingDirty) return;
    this.rankingDirty = false;
    const entries: RankingEntry[] = [];
    const now = Date.now();
    const active = [...this.tenants.values()].filter((t) => [...t.inflight.values()].some((n) => n > 0));
    const ranks = active.length > 0 ? fairTreeRanking(this.acct.shareTreeFor(active), this.acct.usageLookup(now)) : [];
    for (const tr of ranks) {
      const t = this.tenants.get(tr.tenant);
      if (!t) continue;
      // a tenant over quota is left out: workers stop pulling its queued tasks (held, not dropped)
      if (this.acct.exhausted(t.user, t.group)) continue;
      for (const [capability, backlog] of t.inflight) {
        if (backlog > 0) entries.push({ tenant: tr.tenant, group: t.group, user: t.user, capability, backlog, rank: tr.rank });
      }
    }
    const doc: RankingDoc = { ts: now, entries };
    const key = JSON.stringify(entries.map((e) => [e.tenant, e.capability, e.backlog > 0, e.rank]));
    // backlog counts change every task; only publish when the order or the set of tenants with work changes, or once a second
    if (key === this.lastRanking && now - this.lastRankingAt < 1000) return;
    this.lastRanking = key;
    this.lastRankingAt = now;
    for (const [tk, t] of this.tenants) for (const [cap, n] of t.inflight) this.metrics.queueDepth(tk, cap, n);
    await this.topo.shares.put(KvKey.ranking, encode(doc));
  }
  private lastRankingAt = 0;
  markRankingDirty(): void {
    this.rankingDirty = true;
  }

  // ---------------------------------------------------------------- fold

  /** Fold one result message (a batch of outcomes). The message is acked after the next flush. */
  async fold(m: JsMsg): Promise<void> {
    let res: TaskResult;
    try {
      const v = decode(m.data, m.subject);
      if (!isValid(TaskResult, v)) throw new Error('does not match the TaskResult schema');
      res = v;
    } catch (err) {
      this.metrics.swallowed('bad-result');
      this.log.error({ err, subject: m.subject, seq: m.seq }, 'dropping an invalid result message');
      m.term();
      return;
    }
    const r = this.jobs.get(res.jobId);
    if (!r) {
      this.log.warn({ jobId: res.jobId }, 'result for an unknown job; dropping it');
      m.ack();
      return;
    }
    for (const o of res.outcomes) await this.foldOutcome(r, o);
    r.pendingAcks.push(m);
    this.markDirty(r);
    await this.advance(r);
    this.kickRelease();
  }

  private async foldOutcome(r: JobRecord, o: TaskOutcome): Promise<void> {
    if (TERMINAL_STATES.has(r.info.state)) {
      // late or stale attempt of a closed job: its files never become visible
      await discardAttempt(o.outputTmp);
      return;
    }
    const t = this.tenant(r);
    r.info.usage.cpuSeconds += o.usage.cpuSeconds;
    r.info.usage.wallSeconds += o.usage.wallSeconds;
    r.info.usage.gpuSeconds += o.usage.gpuSeconds;
    if (o.stage === 'reduce') {
      if (r.info.state !== 'reducing') {
        await discardAttempt(o.outputTmp);
        return;
      }
      t.inflight.set(r.capability, Math.max(0, (t.inflight.get(r.capability) ?? 0) - 1));
      if (o.status === 'ok') {
        await this.accept(r, o);
        r.info.done += 1;
        // a reduce over the partitions that succeeded: partial when some map tasks failed
        await this.close(r, r.info.failed === 0 ? 'succeeded' : 'partial', r.info.failed === 0 ? undefined : `${r.info.failed} of ${mapTaskCount(r)} map tasks failed; the reduce covers the others`);
      } else {
        r.info.failed += 1;
        this.recordFailure(r, o);
        await this.close(r, 'failed', `reduce failed: ${o.error?.message ?? 'unknown error'}`);
      }
      return;
    }
    if (!r.finished.set(o.index)) {
      // a second successful attempt (stale worker): first accepted wins
      await discardAttempt(o.outputTmp);
      return;
    }
    t.inflight.set(r.capability, Math.max(0, (t.inflight.get(r.capability) ?? 0) - 1));
    this.rankingDirty = true;
    if (o.status === 'ok') {
      try {
        await this.accept(r, o);
        r.ok.set(o.index);
        r.info.done += 1;
      } catch (err) {
        r.info.failed += 1;
        this.recordFailure(r, { ...o, error: { code: 'commit_failed', message: (err as Error).message, retryable: false } });
      }
    } else {
      r.info.failed += 1;
      this.recordFailure(r, o);
    }
    this.touch(r);
  }

  private async accept(r: JobRecord, o: TaskOutcome): Promise<void> {
    const outputs = o.outputs ?? [];
    if (o.outputTmp && outputs.length > 0) await commitOutputs(o.taskId, o.outputTmp, outputs, o.outputRel ?? []);
    else await discardAttempt(o.outputTmp);
    for (const f of outputs) r.outputs.push(f);
    if (o.rows !== undefined) r.rowsOut += o.rows;
    if (o.stage === 'map' && writesHatsCatalog(r.info.kind, r.info.hasReduce)) r.leaves.push(...hatsLeavesOf(r.units?.[o.index], outputs, o.rows));
    if (o.summary !== undefined && r.summaries.length < MAX_SUMMARIES_KEPT) r.summaries.push({ taskId: o.taskId, summary: o.summary });
  }

  private recordFailure(r: JobRecord, o: TaskOutcome): void {
    if (r.info.failures.length < MAX_FAILURES_KEPT) {
      r.info.failures.push({ taskId: o.taskId, index: o.index, attempt: o.attempt, error: o.error ?? { code: 'unknown', message: 'failed without an error', retryable: false } });
    }
  }

  /** After folding: release the reduce task or close the job when every map task has finished. */
  private async advance(r: JobRecord): Promise<void> {
    if (TERMINAL_STATES.has(r.info.state) || r.info.state === 'reducing') return;
    if (r.finished.count < mapTaskCount(r)) {
      const now = Date.now();
      if (now - r.lastProgressEvent > 500) {
        r.lastProgressEvent = now;
        this.emit(r, 'progress');
      }
      return;
    }
    if (r.info.hasReduce) {
      if (r.ok.count === 0) return this.close(r, 'failed', 'every map task failed; reduce skipped');
      if (!r.reduceReleased) await this.releaseReduce(r);
      return;
    }
    const state: JobStateName = r.info.failed === 0 ? 'succeeded' : r.ok.count > 0 ? 'partial' : 'failed';
    await this.close(r, state, state === 'succeeded' ? undefined : `${r.info.failed} of ${mapTaskCount(r)} tasks failed`);
  }

  private async close(r: JobRecord, state: JobStateName, error?: string): Promise<void> {
    if (TERMINAL_STATES.has(r.info.state)) return;
    if (state !== 'cancelled' && writesHatsCatalog(r.info.kind, r.info.hasReduce) && r.leaves.length > 0 && r.info.output) {
      try {
        await hats.writeHatsMetadata(r.info.output, { name: r.spec.name ?? r.info.jobId, raColumn: 'ra', decColumn: 'dec', partitions: r.leaves, extraProperties: { ubatch_job_id: r.info.jobId } });
      } catch (err) {
        this.log.warn({ err, jobId: r.info.jobId }, 'could not write HATS metadata for the output');
        error = `${error ? error + '; ' : ''}HATS metadata not written: ${(err as Error).message}`;
      }
    }
    // in-flight work of a closed job no longer holds the tenant's credit
    const t = this.tenant(r);
    const open = this.inflightOf(r);
    if (state === 'cancelled' && open > 0) t.inflight.set(r.capability, Math.max(0, (t.inflight.get(r.capability) ?? 0) - open));
    r.info.state = state;
    r.info.closedAt = new Date().toISOString();
    if (error) r.info.error = error;
    this.touch(r);
    await this.ledger.append(
      { kind: 'job.closed', ts: r.info.closedAt, actor: this.opts.id, group: r.info.group, user: r.info.user, jobId: r.info.jobId, state, done: r.info.done, failed: r.info.failed, outputs: r.outputs.slice(0, 10_000) },
      `closed/${r.info.jobId}`,
    );
    this.metrics.job(r.info.kind, state);
    this.emit(r, 'state', error);
    this.rankingDirty = true;
    this.kickRelease();
    await discardAttempt(r.info.output ? `${r.info.output.replace(/\/+$/, '')}${r.info.output.endsWith('.parquet') ? '.ubatch' : '/.ubatch'}/tmp` : undefined);
  }

  private touch(r: JobRecord): void {
    r.info.updatedAt = new Date().toISOString();
    this.markDirty(r);
  }

  private markDirty(r: JobRecord): void {
    this.dirtyJobs.add(r);
  }

  private emit(r: JobRecord, type: JobEvent['type'], message?: string): void {
    const ev: JobEvent = { jobId: r.info.jobId, type, state: r.info.state, total: r.info.total, done: r.info.done, failed: r.info.failed, ts: new Date().toISOString(), ...(message ? { message } : {}) };
    this.js.publish(eventSubject(r.info.user, r.info.jobId), encode(ev)).catch((err) => {
      this.metrics.swallowed('event');
      this.log.warn({ err, jobId: r.info.jobId }, 'could not publish a job event');
    });
  }

  // ---------------------------------------------------------------- persist

  /** Persist changed jobs, then ack the result messages folded into them. */
  async flush(): Promise<void> {
    const dirty = [...this.dirtyJobs];
    this.dirtyJobs.clear();
    await Promise.all(
      dirty.map(async (r) => {
        const acks = r.pendingAcks.splice(0, r.pendingAcks.length);
        try {
          await this.topo.jobs.put(KvKey.job(r.info.jobId), encode(toDoc(r)));
        } catch (err) {
          this.markDirty(r);
          r.pendingAcks.unshift(...acks);
          throw err;
        }
        for (const m of acks) m.ack();
        if (TERMINAL_STATES.has(r.info.state)) {
          // closed jobs keep only their public info in memory
          r.units = undefined;
        }
      }),
    );
    await this.publishRanking();
  }
}

/** the parameters workers record in provenance (see worker/daemon.ts), so estimates match the history's key */
function paramsForHistory(spec: JobSpec): unknown {
  const s = JSON.stringify(spec.params ?? {});
  return s.length <= 4096 ? spec.params ?? {} : { truncated: true, bytes: s.length };
}
