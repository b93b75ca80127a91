import { describe, expect, it } from 'vitest';
import { buildReport, parseCsv, ReportOptionError, REPORT_CSV_COLUMNS, reportToCsv, chargedUsage, policyInForce } from '../../ledger/reports.js';
import type { LedgerRecord } from '../../ledger/replay.js';
import type { Charge, LedgerEntry, Usage } from '../../protocol/index.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 2, 3); // a Monday

let seq = 0;
function rec(time: number, entry: LedgerEntry): LedgerRecord {
  seq++;
  return { seq, time, subject: `ub.ledger.${entry.kind}.${entry.group}`, entry };
}
function base(group: string, user: string) {
  return { ts: new Date(T0).toISOString(), actor: user, group, user };
}
function usage(u: Partial<Usage>): Usage {
  return { cpuSeconds: 0, wallSeconds: 0, gpuSeconds: 0, peakRssBytes: 1e6, bytesRead: 100, bytesWritten: 10, ...u };
}
function charge(jobId: string, task: number, attempt: number, outcome: Charge['outcome'], u: Partial<Usage>): Charge {
  return {
    taskId: `${jobId}.t${task}`,
    jobId,
    attempt,
    execution: `w1.${task}.${attempt}`,
    outcome,
    usage: usage(u),
    provenance: {
      inputs: [],
      outputs: [],
      code: { ubatchVersion: '0.1.0', gitCommit: 'abc123', kind: 'noop' },
      params: {},
      worker: { id: 'w1', host: 'h1', pid: 1 },
      startedAt: new Date(T0).toISOString(),
      endedAt: new Date(T0 + 1000).toISOString(),
    },
  };
}
const charged = (time: number, group: string, user: string, charges: Charge[]) => rec(time, { kind: 'task.charged', ...base(group, user), charges });
const accepted = (time: number, group: string, user: string, jobId: string, name?: string) =>
  rec(time, { kind: 'job.accepted', ...base(group, user), jobId, jobKind: 'noop', ...(name !== undefined ? { name } : {}), tasks: 2, spec: { kind: 'noop' } });
const share = (time: number, scope: 'user' | 'group', group: string, user: string, s: number) => rec(time, { kind: 'share.set', ...base(group, user), actor: 'ops', scope, share: s });
const quota = (time: number, scope: 'user' | 'group', group: string, user: string, limits: Record<string, number>) => rec(time, { kind: 'quota.set', ...base(group, user), actor: 'ops', scope, limits });

/** A small facility: groups desc and tvs, three users, a GPU job, retries, quotas and shares changed over time. */
function ledger(): LedgerRecord[] {
  seq = 0;
  return [
    share(T0, 'group', 'desc', 'ops', 40),
    share(T0, 'group', 'tvs', 'ops', 20),
    share(T0, 'user', 'desc', 'alice', 2),
    quota(T0, 'user', 'desc', 'alice', { cpu_hours: 100, gpu_hours: 10 }),
    quota(T0, 'group', 'tvs', 'ops', { cpu_hours: 50 }),
    accepted(T0 + HOUR, 'desc', 'alice', 'ja1', 'photo-z'),
    // 2 tasks of 4 cores × 1 h; task 2 failed once then ok
    charged(T0 + 2 * HOUR, 'desc', 'alice', [
      charge('ja1', 1, 1, 'ok', { cpuSeconds: 12_000, wallSeconds: 3600, allocatedCores: 4 }),
      charge('ja1', 2, 1, 'retried', { cpuSeconds: 600, wallSeconds: 900, allocatedCores: 4 }),
    ]),
    charged(T0 + 3 * HOUR, 'desc', 'alice', [charge('ja1', 2, 2, 'ok', { cpuSeconds: 13_000, wallSeconds: 3600, allocatedCores: 4 })]),
    accepted(T0 + 4 * HOUR, 'desc', 'bob', 'jb1', '<script>alert(1)</script>'),
    // a GPU task: 1 core × 2 h, 1 GPU-hour (charged 1*2 + 10*1 = 12 core-hours)
    charged(T0 + 5 * HOUR, 'desc', 'bob', [charge('jb1', 1, 1, 'ok', { cpuSeconds: 7000, wallSeconds: 7200, gpuSeconds: 3600 })]),
    accepted(T0 + DAY, 'tvs', 'carol', 'jc1'),
    charged(T0 + DAY + HOUR, 'tvs', 'carol', [charge('jc1', 1, 1, 'ok', { cpuSeconds: 3000, wallSeconds: 3600, allocatedCores: 2 }), charge('jc1', 2, 1, 'failed', { cpuSeconds: 10, wallSeconds: 36 })]),
    // alice's quota raised later; the gpu limit removed (negative value)
    quota(T0 + 2 * DAY, 'user', 'desc', 'alice', { cpu_hours: 200, gpu_hours: -1 }),
    share(T0 + 2 * DAY, 'group', 'tvs', 'ops', 60),
    accepted(T0 + 3 * DAY, 'desc', 'alice', 'ja2'),
    charged(T0 + 3 * DAY, 'desc', 'alice', [charge('ja2', 1, 1, 'ok', { cpuSeconds: 3600, wallSeconds: 3600 })]),
    // a duplicate delivery of an attempt already charged: must not count twice
    charged(T0 + 3 * DAY + HOUR, 'desc', 'alice', [charge('ja2', 1, 1, 'ok', { cpuSeconds: 3600, wallSeconds: 3600 })]),
    rec(T0 + 3 * DAY + 2 * HOUR, { kind: 'job.closed', ...base('desc', 'alice'), jobId: 'ja2', state: 'succeeded', done: 1, failed: 0, outputs: [] }),
  ];
}

const close = (a: number, b: number, rel = 1e-12) => expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));

describe('buildReport', () => {
  it('sums every charge once, per tenant, group and in total; the sum of charges equals the sum of task usage', () => {
    const r = buildReport(ledger());
    const alice = r.tenants.find((t) => t.user === 'alice');
    const bob = r.tenants.find((t) => t.user === 'bob');
    const carol = r.tenants.find((t) => t.user === 'carol');
    // alice: 4 cores × (1 h + 0.25 h + 1 h) + 1 core × 1 h = 10 core-hours
    close(alice!.coreHours, 10);
    close(alice!.chargedCoreHours, 10);
    close(alice!.cpuHours, (12_000 + 600 + 13_000 + 3600) / 3600);
    expect(alice).toMatchObject({ tasks: 3, attempts: 4, failedAttempts: 1, jobs: 2 });
    close(bob!.coreHours, 2);
    close(bob!.gpuHours, 1);
    close(bob!.chargedCoreHours, 12);
    close(carol!.coreHours, 2 + 0.01);
    expect(carol).toMatchObject({ tasks: 1, attempts: 2, failedAttempts: 1, jobs: 1 });
    const desc = r.groups.find((g) => g.group === 'desc');
    close(desc!.chargedCoreHours, 22);
    expect(desc!.users).toBe(2);
    close(r.totals.chargedCoreHours, 22 + 2.01);
    expect(r.totals).toMatchObject({ tasks: 5, attempts: 7, failedAttempts: 2, jobs: 4, tenants: 3, groups: 2 });
    expect(r.checks.duplicateCharges).toBe(1);
    expect(r.checks.equal).toBe(true);
    close(r.checks.sumOfCharges, r.checks.sumOfTaskUsage);
    // independent check: the sum over raw charges
    const raw = chargedUsage(ledger()).reduce((s, u) => s + u.coreSeconds + 10 * u.gpuSeconds, 0) / 3600;
    close(r.checks.sumOfCharges, raw);
    // a group's decayed usage is its users' (same instant, same half-life)
    const desc2 = r.fairShare.groups['desc']!;
    close(desc2.decayedUsage, desc2.users['alice']!.decayedUsage + desc2.users['bob']!.decayedUsage, 1e-9);
    expect(desc2.share).toBe(40);
  });

  it('charges two executions of the same attempt (a redelivery after a server crash) but not a repeat of one execution', () => {
    seq = 0;
    const a = charge('jx', 1, 1, 'ok', { wallSeconds: 3600 });
    const redelivered = { ...a, execution: 'w2.7' };
    const r = buildReport([charged(T0, 'g', 'u', [a]), charged(T0 + 1, 'g', 'u', [redelivered]), charged(T0 + 2, 'g', 'u', [a])]);
    close(r.totals.coreHours, 2);
    expect(r.totals.attempts).toBe(2);
    expect(r.checks.duplicateCharges).toBe(1);
    expect(chargedUsage([charged(T0, 'g', 'u', [a, redelivered, a])])).toHaveLength(2);
  });

  it('filters by group, by user and by time window', () => {
    const byGroup = buildReport(ledger(), { group: 'tvs' });
    expect(byGroup.tenants.map((t) => `${t.group}.${t.user}`)).toEqual(['tvs.carol']);
    expect(byGroup.groups.map((g) => g.group)).toEqual(['tvs']);
    close(byGroup.totals.coreHours, 2.01);

    const byUser = buildReport(ledger(), { user: 'bob' });
    expect(byUser.tenants.map((t) => t.user)).toEqual(['bob']);
    close(byUser.totals.chargedCoreHours, 12);
    expect(byUser.groups[0]).toMatchObject({ group: 'desc', users: 1 });

    // the first day only: alice's job ja1 and bob's; not carol (day 1) nor ja2 (day 3)
    const day0 = buildReport(ledger(), { from: T0, to: T0 + DAY });
    close(day0.totals.chargedCoreHours, 9 + 12);
    expect(day0.totals.jobs).toBe(2);
    expect(day0.tenants.find((t) => t.user === 'carol')).toBeUndefined();
    expect(day0.checks.equal).toBe(true);
    expect(day0.checks.duplicateCharges).toBe(0);
    // from is inclusive, to exclusive (on the record's server time)
    const edge = buildReport(ledger(), { from: T0 + 2 * HOUR, to: T0 + 3 * HOUR });
    close(edge.totals.coreHours, 4 + 1);
  });

  it('applies the latest quota and share entries in force before the end of the window', () => {
    const early = buildReport(ledger(), { to: T0 + DAY + 2 * HOUR });
    const aliceEarly = early.tenants.find((t) => t.user === 'alice')!;
    expect(aliceEarly.quota).toEqual({ cpuHours: 100, gpuHours: 10 });
    expect(aliceEarly.share).toBe(2);
    // quota use over the report window: 9 core-hours of 100
    close(aliceEarly.quotaUse!, 0.09);
    close(aliceEarly.gpuQuotaUse!, 0);
    expect(early.groups.find((g) => g.group === 'tvs')).toMatchObject({ share: 20 });
    close(early.groups.find((g) => g.group === 'tvs')!.quotaUse!, 2.01 / 50);
    close(early.groups.find((g) => g.group === 'desc')!.normalizedShare!, 40 / 60);

    const late = buildReport(ledger());
    const aliceLate = late.tenants.find((t) => t.user === 'alice')!;
    expect(aliceLate.quota).toEqual({ cpuHours: 200 });
    expect(aliceLate.gpuQuotaUse).toBeUndefined();
    close(aliceLate.quotaUse!, 10 / 200);
    expect(late.groups.find((g) => g.group === 'tvs')!.share).toBe(60);
    close(late.groups.find((g) => g.group === 'tvs')!.normalizedShare!, 60 / 100);
    expect(policyInForce(ledger()).groupShares.get('tvs')).toBe(60);

    // an explicit quota window (a quota period) instead of the report window
    const q = buildReport(ledger(), { quotaWindow: { from: T0 + 2 * DAY, to: T0 + 4 * DAY } });
    close(q.tenants.find((t) => t.user === 'alice')!.quotaUse!, 1 / 200);
  });

  it('lists each tenant’s top jobs by charged core-hours, with names from job.accepted', () => {
    const r = buildReport(ledger(), { topJobs: 1 });
    const alice = r.tenants.find((t) => t.user === 'alice')!;
    expect(alice.topJobs).toHaveLength(1);
    expect(alice.topJobs[0]).toMatchObject({ jobId: 'ja1', name: 'photo-z' });
    close(alice.topJobs[0]!.coreHours, 9);
    const all = buildReport(ledger());
    expect(all.tenants.find((t) => t.user === 'alice')!.topJobs.map((j) => j.jobId)).toEqual(['ja1', 'ja2']);
    expect(buildReport(ledger(), { topJobs: 0 }).tenants.every((t) => t.topJobs.length === 0)).toBe(true);
  });

  it('decays usage with the half-life, evaluated at `now`', () => {
    seq = 0;
    const records = [charged(T0, 'g', 'u', [charge('j', 1, 1, 'ok', { wallSeconds: 3600, allocatedCores: 8 })])];
    const half = buildReport(records, { halfLifeMs: DAY, now: T0 + DAY });
    close(half.tenants[0]!.decayedUsage, 4);
    close(half.groups[0]!.decayedUsage, 4);
    const quarter = buildReport(records, { halfLifeMs: DAY, now: T0 + 2 * DAY });
    close(quarter.tenants[0]!.decayedUsage, 2);
    const week = buildReport(records, { now: T0 + 7 * DAY }); // default half-life 7 d
    close(week.tenants[0]!.decayedUsage, 4);
    // GPU-seconds weigh gpuWeight core-seconds
    const gpu = [charged(T0, 'g', 'u', [charge('j', 1, 1, 'ok', { wallSeconds: 0, gpuSeconds: 3600 })])];
    close(buildReport(gpu, { gpuWeight: 3, now: T0 }).tenants[0]!.decayedUsage, 3);
    // usage before the window still decays into it; usage after `now` does not count
    const r = buildReport(ledger(), { from: T0 + 3 * DAY, halfLifeMs: DAY, now: T0 + 3 * DAY });
    const alice = r.tenants.find((t) => t.user === 'alice')!;
    close(alice.coreHours, 1);
    // ja1's attempts at +2 h (4 + 1 core-hours) and +3 h (4), ja2 at +3 d (1)
    const exact = 5 * Math.pow(2, -(3 * DAY - 2 * HOUR) / DAY) + 4 * Math.pow(2, -(3 * DAY - 3 * HOUR) / DAY) + 1;
    close(alice.decayedUsage, exact, 1e-9);
  });

  it('timeline buckets sum to the totals (hourly for short windows, daily for long ones)', () => {
    const long = buildReport(ledger());
    expect(long.bucketMs).toBe(DAY);
    expect(long.timeline.length).toBeGreaterThanOrEqual(4);
    const sum = (r: ReturnType<typeof buildReport>) => r.timeline.reduce((s, b) => s + Object.values(b.byGroup).reduce((a, v) => a + v, 0), 0);
    close(sum(long), long.totals.chargedCoreHours);
    close(long.timeline[0]!.byGroup['desc']!, 21);
    const starts = long.timeline.map((b) => b.bucketStart);
    expect(starts.every((s, i) => i === 0 || s - starts[i - 1]! === DAY)).toBe(true);
    const short = buildReport(ledger(), { from: T0, to: T0 + DAY });
    expect(short.bucketMs).toBe(HOUR);
    expect(short.timeline).toHaveLength(24);
    close(sum(short), short.totals.chargedCoreHours);
    close(short.timeline[2]!.byGroup['desc']!, 5);
  });

  it('reports usage as a fraction of capacity against the 10% target', () => {
    // 2.01 tvs core-hours in a one-day window on 10 cores = 240 core-hours
    const r = buildReport(ledger(), { from: T0 + DAY, to: T0 + 2 * DAY, capacityCores: 10 });
    close(r.totals.capacityCoreHours!, 240);
    close(r.groups.find((g) => g.group === 'tvs')!.fractionOfCapacity!, 2.01 / 240);
    expect(r.groups.find((g) => g.group === 'desc')!.fractionOfCapacity).toBe(0);
    expect(r.capacity).toMatchObject({ target: 0.1, meetsTarget: false });
    const busy = buildReport(ledger(), { from: T0, to: T0 + DAY, capacityCoreSeconds: 10 * 3600 });
    close(busy.capacity!.fraction, 11 / 10); // allocated core-hours 9 + 2, GPU weight not counted against cores
    expect(busy.capacity!.meetsTarget).toBe(true);
  });

  it('keeps tenants with a share but no usage, and the Fair Tree input covers everyone whatever the filter', () => {
    seq = 0;
    const records = [...ledger(), share(T0 + DAY, 'user', 'tvs', 'dave', 5)];
    const r = buildReport(records, { group: 'tvs' });
    expect(r.tenants.map((t) => t.user)).toEqual(['carol', 'dave']);
    expect(r.tenants[1]).toMatchObject({ share: 5, chargedCoreHours: 0, attempts: 0 });
    expect(Object.keys(r.fairShare.groups).sort()).toEqual(['desc', 'tvs']);
    expect(Object.keys(r.fairShare.groups['desc']!.users).sort()).toEqual(['alice', 'bob']);
  });

  it('rejects options it cannot honour', () => {
    expect(() => buildReport([], { from: T0, to: T0 })).toThrow(ReportOptionError);
    expect(() => buildReport([], { halfLifeMs: 0 })).toThrow(/halfLifeMs/);
    expect(() => buildReport([], { capacityCores: -1 })).toThrow(/capacityCores/);
    expect(() => buildReport([], { topJobs: 1.5 })).toThrow(/topJobs/);
    const empty = buildReport([]);
    expect(empty).toMatchObject({ tenants: [], groups: [], timeline: [], records: 0 });
    expect(empty.checks.equal).toBe(true);
  });
});

describe('reportToCsv', () => {
  it('round-trips: parsing the CSV gives back every figure and name', () => {
    seq = 0;
    const records = [...ledger(), accepted(T0 + 3 * DAY, 'desc', 'alice', 'jq', 'has, comma "and" quotes')];
    const r = buildReport(records, { capacityCores: 4 });
    const rows = parseCsv(reportToCsv(r));
    expect(rows[0]).toEqual([...REPORT_CSV_COLUMNS]);
    const col = (name: string) => REPORT_CSV_COLUMNS.indexOf(name as (typeof REPORT_CSV_COLUMNS)[number]);
    const body = rows.slice(1);
    expect(body).toHaveLength(r.tenants.length + r.groups.length + 1);
    for (const t of r.tenants) {
      const row = body.find((x) => x[col('level')] === 'tenant' && x[col('group')] === t.group && x[col('user')] === t.user)!;
      expect(Number(row[col('charged_core_hours')])).toBe(t.chargedCoreHours);
      expect(Number(row[col('cpu_hours')])).toBe(t.cpuHours);
      expect(Number(row[col('decayed_usage')])).toBe(t.decayedUsage);
      expect(Number(row[col('attempts')])).toBe(t.attempts);
      expect(row[col('quota_cpu_hours')]).toBe(t.quota?.cpuHours === undefined ? '' : String(t.quota.cpuHours));
      expect(row[col('top_jobs')]).toBe(t.topJobs.map((j) => `${j.jobId}:${j.coreHours}`).join(';'));
    }
    for (const g of r.groups) {
      const row = body.find((x) => x[col('level')] === 'group' && x[col('group')] === g.group)!;
      expect(Number(row[col('core_hours')])).toBe(g.coreHours);
      expect(Number(row[col('fraction_of_capacity')])).toBe(g.fractionOfCapacity);
    }
    const total = body.find((x) => x[col('level')] === 'total')!;
    expect(Number(total[col('charged_core_hours')])).toBe(r.totals.chargedCoreHours);
    // awkward text survives quoting
    expect(parseCsv('a,"has, comma ""and"" quotes"\r\nx,y\n')).toEqual([
      ['a', 'has, comma "and" quotes'],
      ['x', 'y'],
    ]);
  });
});
