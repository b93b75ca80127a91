/**
 * Fair-share accounting reports: one pass over the ledger (a replay, never a
 * second source of truth) folded into per-tenant and per-group figures, a
 * usage timeline, quotas and shares in force, decayed usage, and the
 * consistency check the design promises: the sum of charges equals the sum of
 * task usage.
 *
 * Charging follows the coordinator's accountant (coordinator/accountant.ts):
 * an attempt is charged `wallSeconds × allocatedCores` core-seconds (Slurm-style
 * allocation; `allocatedCores` defaults to 1) plus `gpuWeight × gpuSeconds` for
 * fair share; quota `cpu_hours` count the core-seconds part. Measured CPU
 * seconds (`cpuHours`) are reported beside it, never charged. Every attempt is
 * charged whatever its outcome (failed and retried attempts used the machine).
 *
 * Pure: records in, plain data out. No NATS, no I/O; the caller replays.
 */
import type { Charge, LedgerEntry } from '../protocol/index.js';
import type { LedgerRecord } from './replay.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Public report options; every field is optional. Times are ms since the epoch, compared with each record's server time. */
export interface ReportOptions {
  /** start of the window (inclusive) @default the first record */
  from?: number;
  /** end of the window (exclusive) @default after the last record */
  to?: number;
  /** only this group's tenants */
  group?: string;
  /** only this user's tenants (in every group they belong to) */
  user?: string;
  /** half-life of the usage decay, ms @default 604_800_000 (7 days) */
  halfLifeMs?: number;
  /** core-seconds charged per GPU-second @default 10 */
  gpuWeight?: number;
  /** instant the decayed usage is evaluated at (records after it do not count) @default `to`, else the last record's time */
  now?: number;
  /** the facility's capacity over the window, in core-seconds (registered worker slots × time) */
  capacityCoreSeconds?: number;
  /** capacity as a number of cores available over the whole window: capacity = cores × window length. Ignored when `capacityCoreSeconds` is given. */
  capacityCores?: number;
  /** jobs listed per tenant @default 5 */
  topJobs?: number;
  /** the interval quota use is measured over (a quota period) @default the report window */
  quotaWindow?: { from: number; to: number };
  /** timeline bucket length, ms @default 1 hour for windows up to 3 days, else 1 day (UTC days) */
  bucketMs?: number;
}

/** {@link ReportOptions} filled and checked. */
export interface CompiledReportOptions {
  from?: number;
  to?: number;
  group?: string;
  user?: string;
  halfLifeMs: number;
  gpuWeight: number;
  now?: number;
  capacityCoreSeconds?: number;
  capacityCores?: number;
  topJobs: number;
  quotaWindow?: { from: number; to: number };
  bucketMs?: number;
}

export const DEFAULT_REPORT_HALF_LIFE_MS = 7 * DAY_MS;
export const DEFAULT_REPORT_GPU_WEIGHT = 10;
/** The survey's requirement: user computing gets at least this fraction of the total processing capacity. */
export const USER_COMPUTING_TARGET_FRACTION = 0.1;

/** A report option that cannot be honoured (bad number, inverted window). */
export class ReportOptionError extends Error {
  override name = 'ReportOptionError';
  constructor(
    message: string,
    readonly option: string,
    readonly value: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function checkTime(option: string, v: number | undefined): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw new ReportOptionError(`${option} must be a finite ms epoch, got ${String(v)}`, option, v);
}
function checkPositive(option: string, v: number | undefined, allowZero = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new ReportOptionError(`${option} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${String(v)}`, option, v);
  }
}

/** Fills defaults and rejects conflicts. Pure. */
export function compileReportOptions(o: ReportOptions = {}): CompiledReportOptions {
  checkTime('from', o.from);
  checkTime('to', o.to);
  checkTime('now', o.now);
  if (o.from !== undefined && o.to !== undefined && o.to <= o.from) throw new ReportOptionError(`to (${new Date(o.to).toISOString()}) must be after from (${new Date(o.from).toISOString()})`, 'to', o.to);
  checkPositive('halfLifeMs', o.halfLifeMs);
  checkPositive('gpuWeight', o.gpuWeight, true);
  checkPositive('capacityCoreSeconds', o.capacityCoreSeconds);
  checkPositive('capacityCores', o.capacityCores);
  checkPositive('bucketMs', o.bucketMs);
  const topJobs = o.topJobs ?? 5;
  if (!Number.isInteger(topJobs) || topJobs < 0) throw new ReportOptionError(`topJobs must be an integer >= 0, got ${String(topJobs)}`, 'topJobs', topJobs);
  if (o.quotaWindow !== undefined) {
    checkTime('quotaWindow.from', o.quotaWindow.from);
    checkTime('quotaWindow.to', o.quotaWindow.to);
    if (o.quotaWindow.to <= o.quotaWindow.from) throw new ReportOptionError('quotaWindow.to must be after quotaWindow.from', 'quotaWindow', o.quotaWindow);
  }
  return {
    ...(o.from !== undefined ? { from: o.from } : {}),
    ...(o.to !== undefined ? { to: o.to } : {}),
    ...(o.group !== undefined ? { group: o.group } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    halfLifeMs: o.halfLifeMs ?? DEFAULT_REPORT_HALF_LIFE_MS,
    gpuWeight: o.gpuWeight ?? DEFAULT_REPORT_GPU_WEIGHT,
    ...(o.now !== undefined ? { now: o.now } : {}),
    ...(o.capacityCoreSeconds !== undefined ? { capacityCoreSeconds: o.capacityCoreSeconds } : {}),
    ...(o.capacityCores !== undefined ? { capacityCores: o.capacityCores } : {}),
    topJobs,
    ...(o.quotaWindow !== undefined ? { quotaWindow: { ...o.quotaWindow } } : {}),
    ...(o.bucketMs !== undefined ? { bucketMs: o.bucketMs } : {}),
  };
}

/** Quota limits in force (from `quota.set`; the ledger's snake_case keys, camelCased). */
export interface QuotaLimitsView {
  cpuHours?: number;
  gpuHours?: number;
  maxConcurrent?: number;
  storedBytes?: number;
}

export interface TopJob {
  jobId: string;
  name?: string;
  /** charged core-hours of the job in the window (GPU-weighted) */
  coreHours: number;
}

export interface TenantReport {
  group: string;
  user: string;
  /** measured CPU time, hours */
  cpuHours: number;
  gpuHours: number;
  wallHours: number;
  /** allocated core-hours: wall × allocatedCores (what quotas count as cpu-hours) */
  coreHours: number;
  /** coreHours + gpuWeight × gpuHours: what fair share charges */
  chargedCoreHours: number;
  /** attempts that ended ok */
  tasks: number;
  attempts: number;
  /** attempts that did not end ok (failed, retried, cancelled) */
  failedAttempts: number;
  /** distinct jobs accepted or charged in the window */
  jobs: number;
  /** the user's quota (user scope: it covers the user in every group) */
  quota?: QuotaLimitsView;
  /** fraction of the cpu-hours quota used in the quota window (by the user, all groups) */
  quotaUse?: number;
  /** fraction of the gpu-hours quota used in the quota window */
  gpuQuotaUse?: number;
  /** the user's raw share among the group's users, when one was set */
  share?: number;
  /** decayed charged core-hours at `decayedAt` */
  decayedUsage: number;
  /** Fair Tree factor in (0, 1]; filled by a caller that ranks (ops/commands/report.ts) */
  fairShareFactor?: number;
  /** Fair Tree rank (1 = best); filled with fairShareFactor */
  rank?: number;
  topJobs: TopJob[];
}

export interface GroupReport {
  group: string;
  /** the group's raw share among groups, when one was set */
  share?: number;
  /** share / sum of the shares of all groups known to the ledger (missing shares count 1) */
  normalizedShare?: number;
  cpuHours: number;
  gpuHours: number;
  wallHours: number;
  coreHours: number;
  chargedCoreHours: number;
  tasks: number;
  attempts: number;
  jobs: number;
  failedAttempts: number;
  users: number;
  quota?: QuotaLimitsView;
  quotaUse?: number;
  gpuQuotaUse?: number;
  /** coreHours / capacity (core-hours) of the window */
  fractionOfCapacity?: number;
  /** this group's fraction of the charged core-hours of the report */
  fractionOfUsage: number;
  decayedUsage: number;
  /** Fair Tree rank among groups; filled by a caller that ranks */
  rank?: number;
}

export interface ReportTotals {
  cpuHours: number;
  gpuHours: number;
  wallHours: number;
  coreHours: number;
  chargedCoreHours: number;
  tasks: number;
  attempts: number;
  failedAttempts: number;
  jobs: number;
  tenants: number;
  groups: number;
  capacityCoreHours?: number;
  /** coreHours / capacityCoreHours */
  fractionOfCapacity?: number;
}

export interface TimelineBucket {
  /** bucket start, ms epoch */
  bucketStart: number;
  /** charged core-hours per group in the bucket (groups absent when 0) */
  byGroup: Record<string, number>;
}

/** Shares and decayed usage of every tenant the ledger knows at `decayedAt` (not only the filtered ones): the input of a Fair Tree ranking. */
export interface FairShareInput {
  groups: Record<string, { share?: number; decayedUsage: number; users: Record<string, { share?: number; decayedUsage: number }> }>;
}

export interface ReportChecks {
  /** charged core-hours summed charge by charge as read */
  sumOfCharges: number;
  /** the same summed from the per-tenant task usage (core-hours + gpuWeight × gpu-hours) */
  sumOfTaskUsage: number;
  /** the same summed over the timeline buckets */
  sumOfTimeline: number;
  equal: boolean;
  /** charges in the report (window and filter) of an execution (task, attempt, execution id) already charged: not counted again (must be 0) */
  duplicateCharges: number;
}

export interface Report {
  generatedAt: string;
  /** the window asked for (absent: open) */
  from?: string;
  to?: string;
  /** the window the figures span: the one asked for, closed by the first/last record where open */
  span?: { from: string; to: string };
  filter: { group?: string; user?: string };
  halfLifeMs: number;
  gpuWeight: number;
  /** the instant decayed usage is evaluated at */
  decayedAt?: string;
  quotaWindow?: { from: string; to: string };
  bucketMs: number;
  totals: ReportTotals;
  /** user computing's share of capacity against the survey's 10% requirement (when a capacity was given) */
  capacity?: { coreHours: number; usedCoreHours: number; fraction: number; target: number; meetsTarget: boolean };
  groups: GroupReport[];
  tenants: TenantReport[];
  timeline: TimelineBucket[];
  fairShare: FairShareInput;
  checks: ReportChecks;
  records: number;
}

interface Decay {
  value: number;
  at: number;
}

interface TenantAcc {
  group: string;
  user: string;
  cpuS: number;
  gpuS: number;
  wallS: number;
  coreS: number;
  tasks: number;
  attempts: number;
  failed: number;
  jobs: Set<string>;
  /** jobId → charged core-seconds in the window */
  jobCharge: Map<string, number>;
}

interface QuotaAcc {
  coreS: number;
  gpuS: number;
}

function newTenant(group: string, user: string): TenantAcc {
  return { group, user, cpuS: 0, gpuS: 0, wallS: 0, coreS: 0, tasks: 0, attempts: 0, failed: 0, jobs: new Set(), jobCharge: new Map() };
}

const QUOTA_KEYS: Record<string, keyof QuotaLimitsView> = {
  cpu_hours: 'cpuHours',
  gpu_hours: 'gpuHours',
  max_concurrent: 'maxConcurrent',
  stored_bytes: 'storedBytes',
};

/** Shares and quotas in force, folded the way the accountant folds them. */
export interface PolicyInForce {
  groupShares: Map<string, number>;
  /** group → user → share */
  userShares: Map<string, Map<string, number>>;
  /** quota key `u:<user>` or `g:<group>` → limits (snake_case, as in the ledger) */
  quotas: Map<string, Record<string, number>>;
}

export function emptyPolicy(): PolicyInForce {
  return { groupShares: new Map(), userShares: new Map(), quotas: new Map() };
}

/** Applies one share.set / quota.set entry (later entries override; a negative limit removes it, as the accountant does). */
export function applyPolicyEntry(p: PolicyInForce, e: LedgerEntry): void {
  if (e.kind === 'share.set') {
    if (e.scope === 'group') p.groupShares.set(e.group, e.share);
    else {
      let m = p.userShares.get(e.group);
      if (!m) p.userShares.set(e.group, (m = new Map()));
      m.set(e.user, e.share);
    }
  } else if (e.kind === 'quota.set') {
    const key = e.scope === 'group' ? `g:${e.group}` : `u:${e.user}`;
    const cur = { ...(p.quotas.get(key) ?? {}) };
    for (const [k, v] of Object.entries(e.limits)) {
      if (v < 0) delete cur[k];
      else cur[k] = v;
    }
    p.quotas.set(key, cur);
  }
}

/** Shares and quotas in force just before `before` (ms; default: after every record). */
export function policyInForce(records: Iterable<LedgerRecord>, before: number = Infinity): PolicyInForce {
  const p = emptyPolicy();
  for (const r of records) if (r.time < before && (r.entry.kind === 'share.set' || r.entry.kind === 'quota.set')) applyPolicyEntry(p, r.entry);
  return p;
}

/** One charge as a fair-share usage record (structurally `UsageRecord` of coordinator/fairshare). */
export interface ChargedUsage {
  group: string;
  user: string;
  /** wall × allocatedCores */
  coreSeconds: number;
  gpuSeconds: number;
  /** the record's server time, ms */
  at: number;
}

/**
 * Remembers which executions (task, attempt, execution id) were charged, to
 * count each once. Keyed by the taskId string the record already holds, with
 * the first charge as the value: no key string is built per charge (at a few
 * million charges, building one costs more than the rest of the fold).
 */
export class ChargeSeen {
  private readonly byTask = new Map<string, Charge | Charge[]>();

  /** true the first time an execution is seen, false for a repeat */
  add(c: Charge): boolean {
    const prev = this.byTask.get(c.taskId);
    if (prev === undefined) {
      this.byTask.set(c.taskId, c);
      return true;
    }
    const list = Array.isArray(prev) ? prev : [prev];
    for (const p of list) if (p.attempt === c.attempt && p.execution === c.execution) return false;
    if (list === prev) list.push(c);
    else this.byTask.set(c.taskId, [prev as Charge, c]);
    return true;
  }
}

/** Every charge (repeats of one execution of a task attempt dropped) as a usage record, in ledger order. */
export function chargedUsage(records: Iterable<LedgerRecord>): ChargedUsage[] {
  const out: ChargedUsage[] = [];
  const seen = new ChargeSeen();
  for (const { entry: e, time } of records) {
    if (e.kind !== 'task.charged') continue;
    for (const c of e.charges) {
      if (!seen.add(c)) continue;
      out.push({ group: e.group, user: e.user, coreSeconds: c.usage.wallSeconds * (c.usage.allocatedCores ?? 1), gpuSeconds: c.usage.gpuSeconds, at: time });
    }
  }
  return out;
}

function quotaView(limits: Record<string, number> | undefined): QuotaLimitsView | undefined {
  if (!limits) return undefined;
  const v: QuotaLimitsView = {};
  let any = false;
  for (const [k, x] of Object.entries(limits)) {
    const name = QUOTA_KEYS[k];
    if (name) {
      v[name] = x;
      any = true;
    }
  }
  return any ? v : undefined;
}

function fold(d: Decay, amount: number, at: number, k: number): void {
  if (at >= d.at) {
    if (at !== d.at) d.value *= Math.exp((d.at - at) * k);
    d.value += amount;
    d.at = at;
  } else d.value += amount * Math.exp((at - d.at) * k);
}

function decayedAt(d: Decay | undefined, now: number, k: number): number {
  if (!d || d.value === 0) return 0;
  return d.at === now ? d.value : d.value * Math.exp((d.at - now) * k);
}

function sameSum(values: number[]): boolean {
  const ref = values[0] ?? 0;
  const scale = Math.max(1e-9, ...values.map(Math.abs));
  return values.every((v) => Math.abs(v - ref) <= 1e-9 * scale);
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined || !Number.isFinite(ms) ? undefined : new Date(ms).toISOString();
}

/**
 * The accounting report of a ledger, in a single pass over its records
 * (O(entries) time; memory grows with tenants, jobs and distinct task attempts).
 *
 * - usage, tasks, jobs and top jobs count records in [from, to) of the tenants
 *   that pass the group/user filter;
 * - shares and quotas are the last `share.set` / `quota.set` entries before `to`;
 * - decayed usage counts every charge up to `now` (also those before `from`:
 *   history decays into the window) with the given half-life;
 * - quota use counts the user's (or group's) core-hours in `quotaWindow`,
 *   in every group, whatever the filter.
 */
export function buildReport(records: Iterable<LedgerRecord>, opts: ReportOptions = {}): Report {
  const o = compileReportOptions(opts);
  const kMs = Math.LN2 / o.halfLifeMs;
  const gw = o.gpuWeight;
  const from = o.from ?? -Infinity;
  const to = o.to ?? Infinity;
  // decayed usage counts charges up to `now`; with no `now`, up to `to`
  const decayCutoff = o.now ?? to;
  const decayInclusive = o.now !== undefined;
  const qFrom = o.quotaWindow?.from ?? from;
  const qTo = o.quotaWindow?.to ?? to;
  const fGroup = o.group;
  const fUser = o.user;

  const policy = emptyPolicy();
  const tenants = new Map<string, Map<string, TenantAcc>>();
  const decay = new Map<string, { total: Decay; users: Map<string, Decay> }>();
  const quotaUser = new Map<string, QuotaAcc>();
  const quotaGroup = new Map<string, QuotaAcc>();
  const jobNames = new Map<string, string>();
  const seen = new ChargeSeen();
  const hourly = new Map<number, Map<string, number>>();
  let lastHour = NaN;
  let lastHourMap: Map<string, number> | undefined;
  let sumOfCharges = 0;
  let duplicates = 0;
  let first = Infinity;
  let last = -Infinity;
  let lastAny = -Infinity;
  let count = 0;

  const tenantOf = (group: string, user: string): TenantAcc => {
    let g = tenants.get(group);
    if (!g) tenants.set(group, (g = new Map()));
    let t = g.get(user);
    if (!t) g.set(user, (t = newTenant(group, user)));
    return t;
  };

  for (const r of records) {
    count++;
    const e = r.entry;
    const t = r.time;
    if (t > lastAny) lastAny = t;
    const inWindow = t >= from && t < to;
    if (inWindow) {
      if (t < first) first = t;
      if (t > last) last = t;
    }
    const passes = (fGroup === undefined || e.group === fGroup) && (fUser === undefined || e.user === fUser);
    switch (e.kind) {
      case 'task.charged': {
        const counted = decayInclusive ? t <= decayCutoff : t < decayCutoff;
        const inQuota = t >= qFrom && t < qTo;
        const acc = inWindow && passes ? tenantOf(e.group, e.user) : undefined;
        let dg: { total: Decay; users: Map<string, Decay> } | undefined;
        let du: Decay | undefined;
        if (counted) {
          dg = decay.get(e.group);
          if (!dg) decay.set(e.group, (dg = { total: { value: 0, at: t }, users: new Map() }));
          du = dg.users.get(e.user);
          if (!du) dg.users.set(e.user, (du = { value: 0, at: t }));
        }
        for (const c of e.charges) {
          if (!seen.add(c)) {
            if (acc) duplicates++;
            continue;
          }
          const u = c.usage;
          const coreS = u.wallSeconds * (u.allocatedCores ?? 1);
          const charged = coreS + gw * u.gpuSeconds;
          if (dg && du) {
            fold(du, charged, t, kMs);
            fold(dg.total, charged, t, kMs);
          }
          if (inQuota) {
            let qu = quotaUser.get(e.user);
            if (!qu) quotaUser.set(e.user, (qu = { coreS: 0, gpuS: 0 }));
            qu.coreS += coreS;
            qu.gpuS += u.gpuSeconds;
            let qg = quotaGroup.get(e.group);
            if (!qg) quotaGroup.set(e.group, (qg = { coreS: 0, gpuS: 0 }));
            qg.coreS += coreS;
            qg.gpuS += u.gpuSeconds;
          }
          if (acc) {
            acc.cpuS += u.cpuSeconds;
            acc.gpuS += u.gpuSeconds;
            acc.wallS += u.wallSeconds;
            acc.coreS += coreS;
            acc.attempts++;
            if (c.outcome === 'ok') acc.tasks++;
            else acc.failed++;
            acc.jobs.add(c.jobId);
            acc.jobCharge.set(c.jobId, (acc.jobCharge.get(c.jobId) ?? 0) + charged);
            sumOfCharges += charged;
            const hour = Math.floor(t / HOUR_MS);
            if (hour !== lastHour || !lastHourMap) {
              lastHourMap = hourly.get(hour);
              if (!lastHourMap) hourly.set(hour, (lastHourMap = new Map()));
              lastHour = hour;
            }
            lastHourMap.set(e.group, (lastHourMap.get(e.group) ?? 0) + charged);
          }
        }
        break;
      }
      case 'job.accepted':
        if (e.name !== undefined) jobNames.set(e.jobId, e.name);
        if (inWindow && passes) tenantOf(e.group, e.user).jobs.add(e.jobId);
        break;
      case 'share.set':
      case 'quota.set':
        if (t < to) applyPolicyEntry(policy, e);
        break;
      default:
        break;
    }
  }

  // tenants with a share in force show up even without usage
  for (const [group, users] of policy.userShares) {
    if (fGroup !== undefined && group !== fGroup) continue;
    for (const user of users.keys()) if (fUser === undefined || user === fUser) tenantOf(group, user);
  }
  if (fUser === undefined) for (const group of policy.groupShares.keys()) if ((fGroup === undefined || group === fGroup) && !tenants.has(group)) tenants.set(group, new Map());

  const now = o.now ?? (o.to !== undefined ? o.to : Number.isFinite(lastAny) ? lastAny : undefined);
  const decayedOf = (d: Decay | undefined): number => (now === undefined ? 0 : decayedAt(d, now, kMs) / 3600);

  // the span the figures cover
  const spanFrom = o.from ?? (Number.isFinite(first) ? first : undefined);
  const spanTo = o.to ?? (Number.isFinite(last) ? last + 1 : undefined);
  const spanMs = spanFrom !== undefined && spanTo !== undefined ? spanTo - spanFrom : undefined;
  let capacityCoreSeconds = o.capacityCoreSeconds;
  if (capacityCoreSeconds === undefined && o.capacityCores !== undefined && spanMs !== undefined) capacityCoreSeconds = (o.capacityCores * spanMs) / 1000;

  // normalised group shares: every group the ledger knows, a missing share counts 1 (as the accountant's share tree does)
  const knownGroups = new Set<string>([...decay.keys(), ...policy.groupShares.keys(), ...policy.userShares.keys(), ...tenants.keys()]);
  let shareSum = 0;
  for (const g of knownGroups) shareSum += policy.groupShares.get(g) ?? 1;

  const tenantReports: TenantReport[] = [];
  const groupReports: GroupReport[] = [];
  const totals: ReportTotals = { cpuHours: 0, gpuHours: 0, wallHours: 0, coreHours: 0, chargedCoreHours: 0, tasks: 0, attempts: 0, failedAttempts: 0, jobs: 0, tenants: 0, groups: 0 };
  let sumOfTaskUsage = 0;
  const groupNames = [...tenants.keys()].sort();
  for (const group of groupNames) {
    const users = tenants.get(group) ?? new Map<string, TenantAcc>();
    const gq = policy.quotas.get(`g:${group}`);
    const gqUse = quotaGroup.get(group);
    const gr: GroupReport = {
      group,
      ...(policy.groupShares.has(group) ? { share: policy.groupShares.get(group) } : {}),
      ...(shareSum > 0 ? { normalizedShare: (policy.groupShares.get(group) ?? 1) / shareSum } : {}),
      cpuHours: 0,
      gpuHours: 0,
      wallHours: 0,
      coreHours: 0,
      chargedCoreHours: 0,
      tasks: 0,
      attempts: 0,
      jobs: 0,
      failedAttempts: 0,
      users: 0,
      fractionOfUsage: 0,
      decayedUsage: fUser === undefined ? decayedOf(decay.get(group)?.total) : 0,
    };
    const gView = quotaView(gq);
    if (gView) {
      gr.quota = gView;
      if (gView.cpuHours !== undefined && gView.cpuHours > 0) gr.quotaUse = (gqUse?.coreS ?? 0) / 3600 / gView.cpuHours;
      if (gView.gpuHours !== undefined && gView.gpuHours > 0) gr.gpuQuotaUse = (gqUse?.gpuS ?? 0) / 3600 / gView.gpuHours;
    }
    for (const user of [...users.keys()].sort()) {
      const a = users.get(user);
      if (!a) continue;
      const uq = quotaView(policy.quotas.get(`u:${user}`));
      const uqUse = quotaUser.get(user);
      const chargedS = a.coreS + gw * a.gpuS;
      const top = [...a.jobCharge.entries()]
        .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
        .slice(0, o.topJobs)
        .map(([jobId, s]): TopJob => {
          const name = jobNames.get(jobId);
          return { jobId, ...(name !== undefined ? { name } : {}), coreHours: s / 3600 };
        });
      const share = policy.userShares.get(group)?.get(user);
      const tr: TenantReport = {
        group,
        user,
        cpuHours: a.cpuS / 3600,
        gpuHours: a.gpuS / 3600,
        wallHours: a.wallS / 3600,
        coreHours: a.coreS / 3600,
        chargedCoreHours: chargedS / 3600,
        tasks: a.tasks,
        attempts: a.attempts,
        failedAttempts: a.failed,
        jobs: a.jobs.size,
        ...(share !== undefined ? { share } : {}),
        decayedUsage: decayedOf(decay.get(group)?.users.get(user)),
        topJobs: top,
      };
      if (uq) {
        tr.quota = uq;
        if (uq.cpuHours !== undefined && uq.cpuHours > 0) tr.quotaUse = (uqUse?.coreS ?? 0) / 3600 / uq.cpuHours;
        if (uq.gpuHours !== undefined && uq.gpuHours > 0) tr.gpuQuotaUse = (uqUse?.gpuS ?? 0) / 3600 / uq.gpuHours;
      }
      tenantReports.push(tr);
      sumOfTaskUsage += tr.coreHours + gw * tr.gpuHours;
      gr.cpuHours += tr.cpuHours;
      gr.gpuHours += tr.gpuHours;
      gr.wallHours += tr.wallHours;
      gr.coreHours += tr.coreHours;
      gr.chargedCoreHours += tr.chargedCoreHours;
      gr.tasks += tr.tasks;
      gr.attempts += tr.attempts;
      gr.failedAttempts += tr.failedAttempts;
      gr.jobs += tr.jobs;
      gr.users++;
      if (fUser !== undefined) gr.decayedUsage += tr.decayedUsage;
    }
    groupReports.push(gr);
  }
  for (const gr of groupReports) {
    totals.cpuHours += gr.cpuHours;
    totals.gpuHours += gr.gpuHours;
    totals.wallHours += gr.wallHours;
    totals.coreHours += gr.coreHours;
    totals.chargedCoreHours += gr.chargedCoreHours;
    totals.tasks += gr.tasks;
    totals.attempts += gr.attempts;
    totals.failedAttempts += gr.failedAttempts;
    totals.jobs += gr.jobs;
    totals.tenants += gr.users;
  }
  totals.groups = groupReports.length;
  for (const gr of groupReports) {
    gr.fractionOfUsage = totals.chargedCoreHours > 0 ? gr.chargedCoreHours / totals.chargedCoreHours : 0;
    if (capacityCoreSeconds !== undefined) gr.fractionOfCapacity = gr.coreHours / (capacityCoreSeconds / 3600);
  }
  let capacity: Report['capacity'];
  if (capacityCoreSeconds !== undefined) {
    const capH = capacityCoreSeconds / 3600;
    totals.capacityCoreHours = capH;
    totals.fractionOfCapacity = totals.coreHours / capH;
    capacity = { coreHours: capH, usedCoreHours: totals.coreHours, fraction: totals.fractionOfCapacity, target: USER_COMPUTING_TARGET_FRACTION, meetsTarget: totals.fractionOfCapacity >= USER_COMPUTING_TARGET_FRACTION };
  }

  // timeline: hourly accumulation, re-bucketed by the window's length
  const bucketMs = o.bucketMs ?? (spanMs !== undefined && spanMs <= 3 * DAY_MS ? HOUR_MS : DAY_MS);
  const timeline: TimelineBucket[] = [];
  let sumOfTimeline = 0;
  if (spanFrom !== undefined && spanTo !== undefined) {
    const aligned = (ms: number) => Math.floor(ms / bucketMs) * bucketMs;
    const start = aligned(spanFrom);
    const byBucket = new Map<number, Record<string, number>>();
    const nBuckets = Math.max(1, Math.ceil((spanTo - start) / bucketMs));
    if (nBuckets > 100_000) throw new ReportOptionError(`the timeline would have ${nBuckets} buckets of ${bucketMs} ms; use a longer bucketMs`, 'bucketMs', bucketMs);
    for (let i = 0; i < nBuckets; i++) byBucket.set(start + i * bucketMs, {});
    for (const [hour, groups] of hourly) {
      // an hour falls wholly inside one bucket when buckets are whole hours; otherwise its start decides
      const b = aligned(hour * HOUR_MS);
      let rec = byBucket.get(b);
      if (!rec) byBucket.set(b, (rec = {}));
      for (const [g, s] of groups) {
        rec[g] = (rec[g] ?? 0) + s / 3600;
        sumOfTimeline += s / 3600;
      }
    }
    for (const b of [...byBucket.keys()].sort((x, y) => x - y)) timeline.push({ bucketStart: b, byGroup: byBucket.get(b) ?? {} });
  }

  // the Fair Tree input: every tenant known, whatever the filter
  const fairShare: FairShareInput = { groups: {} };
  for (const g of [...knownGroups].sort()) {
    const gs = policy.groupShares.get(g);
    const entry: FairShareInput['groups'][string] = { ...(gs !== undefined ? { share: gs } : {}), decayedUsage: decayedOf(decay.get(g)?.total), users: {} };
    const users = new Set<string>([...(decay.get(g)?.users.keys() ?? []), ...(policy.userShares.get(g)?.keys() ?? [])]);
    for (const u of [...users].sort()) {
      const us = policy.userShares.get(g)?.get(u);
      entry.users[u] = { ...(us !== undefined ? { share: us } : {}), decayedUsage: decayedOf(decay.get(g)?.users.get(u)) };
    }
    fairShare.groups[g] = entry;
  }

  const sumCharges = sumOfCharges / 3600;
  const report: Report = {
    generatedAt: new Date().toISOString(),
    ...(o.from !== undefined ? { from: iso(o.from) } : {}),
    ...(o.to !== undefined ? { to: iso(o.to) } : {}),
    ...(spanFrom !== undefined && spanTo !== undefined ? { span: { from: iso(spanFrom) ?? '', to: iso(spanTo) ?? '' } } : {}),
    filter: { ...(fGroup !== undefined ? { group: fGroup } : {}), ...(fUser !== undefined ? { user: fUser } : {}) },
    halfLifeMs: o.halfLifeMs,
    gpuWeight: gw,
    ...(now !== undefined ? { decayedAt: iso(now) } : {}),
    ...(Number.isFinite(qFrom) && Number.isFinite(qTo) ? { quotaWindow: { from: iso(qFrom) ?? '', to: iso(qTo) ?? '' } } : {}),
    bucketMs,
    totals,
    ...(capacity ? { capacity } : {}),
    groups: groupReports,
    tenants: tenantReports,
    timeline,
    fairShare,
    checks: { sumOfCharges: sumCharges, sumOfTaskUsage, sumOfTimeline, equal: sameSum([sumCharges, sumOfTaskUsage, sumOfTimeline, totals.chargedCoreHours]), duplicateCharges: duplicates },
    records: count,
  };
  return report;
}

// ---------------------------------------------------------------- CSV

export const REPORT_CSV_COLUMNS = [
  'level',
  'group',
  'user',
  'cpu_hours',
  'gpu_hours',
  'wall_hours',
  'core_hours',
  'charged_core_hours',
  'tasks',
  'attempts',
  'failed_attempts',
  'jobs',
  'users',
  'share',
  'normalized_share',
  'quota_cpu_hours',
  'quota_gpu_hours',
  'quota_max_concurrent',
  'quota_stored_bytes',
  'quota_use',
  'gpu_quota_use',
  'decayed_usage',
  'fair_share_factor',
  'rank',
  'fraction_of_usage',
  'fraction_of_capacity',
  'top_jobs',
] as const;

/** RFC 4180 field: quoted when it holds a comma, quote or line break; a leading =+-@ is prefixed with ' so spreadsheets do not run it. */
export function csvField(v: string | number | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * One CSV table (header + rows): a row per tenant (`level` = tenant), per group
 * (`group`) and one `total`. Numbers are written in full precision so the file
 * reads back to the same values. Top jobs: `jobId:coreHours` joined by `;`.
 */
export function reportToCsv(r: Report): string {
  const lines: string[] = [REPORT_CSV_COLUMNS.join(',')];
  const row = (cells: Record<(typeof REPORT_CSV_COLUMNS)[number], string | number | undefined>) => lines.push(REPORT_CSV_COLUMNS.map((c) => csvField(cells[c])).join(','));
  for (const t of r.tenants) {
    row({
      level: 'tenant',
      group: t.group,
      user: t.user,
      cpu_hours: t.cpuHours,
      gpu_hours: t.gpuHours,
      wall_hours: t.wallHours,
      core_hours: t.coreHours,
      charged_core_hours: t.chargedCoreHours,
      tasks: t.tasks,
      attempts: t.attempts,
      failed_attempts: t.failedAttempts,
      jobs: t.jobs,
      users: undefined,
      share: t.share,
      normalized_share: undefined,
      quota_cpu_hours: t.quota?.cpuHours,
      quota_gpu_hours: t.quota?.gpuHours,
      quota_max_concurrent: t.quota?.maxConcurrent,
      quota_stored_bytes: t.quota?.storedBytes,
      quota_use: t.quotaUse,
      gpu_quota_use: t.gpuQuotaUse,
      decayed_usage: t.decayedUsage,
      fair_share_factor: t.fairShareFactor,
      rank: t.rank,
      fraction_of_usage: undefined,
      fraction_of_capacity: undefined,
      top_jobs: t.topJobs.map((j) => `${j.jobId}:${j.coreHours}`).join(';'),
    });
  }
  for (const g of r.groups) {
    row({
      level: 'group',
      group: g.group,
      user: undefined,
      cpu_hours: g.cpuHours,
      gpu_hours: g.gpuHours,
      wall_hours: g.wallHours,
      core_hours: g.coreHours,
      charged_core_hours: g.chargedCoreHours,
      tasks: g.tasks,
      attempts: g.attempts,
      failed_attempts: g.failedAttempts,
      jobs: g.jobs,
      users: g.users,
      share: g.share,
      normalized_share: g.normalizedShare,
      quota_cpu_hours: g.quota?.cpuHours,
      quota_gpu_hours: g.quota?.gpuHours,
      quota_max_concurrent: g.quota?.maxConcurrent,
      quota_stored_bytes: g.quota?.storedBytes,
      quota_use: g.quotaUse,
      gpu_quota_use: g.gpuQuotaUse,
      decayed_usage: g.decayedUsage,
      fair_share_factor: undefined,
      rank: g.rank,
      fraction_of_usage: g.fractionOfUsage,
      fraction_of_capacity: g.fractionOfCapacity,
      top_jobs: undefined,
    });
  }
  const t = r.totals;
  row({
    level: 'total',
    group: undefined,
    user: undefined,
    cpu_hours: t.cpuHours,
    gpu_hours: t.gpuHours,
    wall_hours: t.wallHours,
    core_hours: t.coreHours,
    charged_core_hours: t.chargedCoreHours,
    tasks: t.tasks,
    attempts: t.attempts,
    failed_attempts: t.failedAttempts,
    jobs: t.jobs,
    users: t.tenants,
    share: undefined,
    normalized_share: undefined,
    quota_cpu_hours: undefined,
    quota_gpu_hours: undefined,
    quota_max_concurrent: undefined,
    quota_stored_bytes: undefined,
    quota_use: undefined,
    gpu_quota_use: undefined,
    decayed_usage: undefined,
    fair_share_factor: undefined,
    rank: undefined,
    fraction_of_usage: t.chargedCoreHours > 0 ? 1 : 0,
    fraction_of_capacity: t.fractionOfCapacity,
    top_jobs: undefined,
  });
  return `${lines.join('\n')}\n`;
}

/** Parses RFC 4180 CSV text into rows of fields (quoted fields, doubled quotes, CRLF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
    i++;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
