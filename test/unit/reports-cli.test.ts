// `ubatch report`, `ubatch ledger export` and `ubatch shares simulate`: their pure
// parts (flags → options, ranking, share overrides, policy comparison), then the
// three commands end to end against a real nats-server holding a ledger.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, type UsageRecord } from '../../coordinator/fairshare/index.js';
import { applyPolicyEntry, buildReport, emptyPolicy, type Report } from '../../ledger/reports.js';
import { chargeMsgId, LedgerWriter } from '../../ledger/writer.js';
import type { LedgerRecord } from '../../ledger/replay.js';
import { findNatsServer, NatsServer } from '../../ops/nats-server.js';
import { CliUsageError } from '../../ops/errors.js';
import { registerLedgerExportCommand } from '../../ops/commands/ledger-export.js';
import { parseDurationMs, parseQuotaPeriod, parseTimeOption, rankReport, registerReportCommand, reportOptionsFromFlags, reportToTable, type ReportFlags } from '../../ops/commands/report.js';
import { buildShareTree, comparePolicies, parseShareOverrides, registerSharesSimulateCommand, renderPolicyComparison } from '../../ops/commands/shares-simulate.js';
import type { Runtime } from '../../ops/commands/runtime.js';
import { ensureStreams, type Charge, type LedgerEntry } from '../../protocol/index.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 0, 6);
const base = (group: string, user: string) => ({ ts: new Date(T0).toISOString(), actor: user, group, user });
function charge(jobId: string, i: number, wallSeconds: number, cores = 1): Charge {
  return {
    taskId: `${jobId}.${i}`,
    jobId,
    attempt: 1,
    execution: `w.${jobId}.${i}`,
    outcome: 'ok',
    usage: { cpuSeconds: wallSeconds * cores * 0.9, wallSeconds, gpuSeconds: 0, peakRssBytes: 1, bytesRead: 1, bytesWritten: 1, allocatedCores: cores },
    provenance: { inputs: [], outputs: [], code: { ubatchVersion: '0', gitCommit: 'x', kind: 'noop' }, params: {}, worker: { id: 'w', host: 'h', pid: 1 }, startedAt: '', endedAt: '' },
  };
}

const flags = (f: Partial<ReportFlags> = {}): ReportFlags => ({ format: 'table', halfLife: '7d', gpuWeight: '10', topJobs: '5', quotaPeriod: 'month', ...f });

describe('report flags', () => {
  const now = Date.UTC(2025, 2, 15, 12);
  it('parses durations, times and quota periods, and names the bad option', () => {
    expect(parseDurationMs('3d', '--half-life')).toBe(3 * DAY_MS);
    expect(parseDurationMs('90m', '--x')).toBe(90 * 60_000);
    expect(parseDurationMs('1.5h', '--x')).toBe(1.5 * HOUR);
    expect(() => parseDurationMs('3', '--half-life')).toThrow(/--half-life/);
    expect(() => parseDurationMs('0d', '--half-life')).toThrow(CliUsageError);
    expect(parseTimeOption('2025-03-01', '--from', now)).toBe(Date.UTC(2025, 2, 1));
    expect(parseTimeOption('2025-03-01T06:00:00Z', '--from', now)).toBe(Date.UTC(2025, 2, 1, 6));
    expect(parseTimeOption('7d', '--from', now)).toBe(now - 7 * DAY_MS);
    expect(parseTimeOption('now', '--to', now)).toBe(now);
    expect(() => parseTimeOption('yesterday', '--from', now)).toThrow(/--from/);
    expect(parseQuotaPeriod('week')).toBe('week');
    expect(parseQuotaPeriod('30d')).toEqual({ days: 30 });
    expect(parseQuotaPeriod('window')).toBeUndefined();
    expect(() => parseQuotaPeriod('fortnight')).toThrow(CliUsageError);
  });

  it('turns flags into report options: window, capacity, quota period of the window end', () => {
    const o = reportOptionsFromFlags(flags({ from: '2025-02-01', to: '2025-03-01', capacityCores: '100', halfLife: '3d', gpuWeight: '4' }), undefined, now);
    expect(o).toMatchObject({ from: Date.UTC(2025, 1, 1), to: Date.UTC(2025, 2, 1), capacityCores: 100, halfLifeMs: 3 * DAY_MS, gpuWeight: 4, now: Date.UTC(2025, 2, 1) });
    // to is exclusive: the quota period is February's
    expect(o.quotaWindow).toEqual({ from: Date.UTC(2025, 1, 1), to: Date.UTC(2025, 2, 1) });
    expect(reportOptionsFromFlags(flags({ capacityCoreHours: '10' }), 'alice', now)).toMatchObject({ user: 'alice', capacityCoreSeconds: 36_000, now });
    expect(reportOptionsFromFlags(flags({ quotaPeriod: 'window' }), undefined, now).quotaWindow).toBeUndefined();
    expect(() => reportOptionsFromFlags(flags({ all: true, group: 'desc' }), undefined, now)).toThrow(/--all/);
    expect(() => reportOptionsFromFlags(flags({ group: 'desc' }), 'alice', now)).toThrow(CliUsageError);
    expect(() => reportOptionsFromFlags(flags({ from: '2025-03-02', to: '2025-03-01' }), undefined, now)).toThrow(/--to/);
    expect(() => reportOptionsFromFlags(flags({ capacityCores: '0' }), undefined, now)).toThrow(/--capacity-cores/);
  });
});

function rec(seq: number, time: number, entry: LedgerEntry): LedgerRecord {
  return { seq, time, subject: `ub.ledger.${entry.kind}`, entry };
}

describe('rankReport', () => {
  it('fills Fair Tree ranks and factors from the report: the group over its share ranks last', () => {
    // A (share 1) used 10 core-hours, B (share 1) used 1: B's users come first
    const records = [
      rec(1, T0, { kind: 'task.charged', ...base('A', 'ann'), charges: [charge('ja', 1, 36_000)] }),
      rec(2, T0, { kind: 'task.charged', ...base('B', 'bob'), charges: [charge('jb', 1, 3600)] }),
      rec(3, T0, { kind: 'task.charged', ...base('B', 'bea'), charges: [charge('jc', 1, 1800)] }),
    ];
    const r = rankReport(buildReport(records, { now: T0 }));
    const rank = (u: string) => r.tenants.find((t) => t.user === u)!;
    expect(rank('bea').rank).toBe(1);
    expect(rank('bob').rank).toBe(2);
    expect(rank('ann').rank).toBe(3);
    expect(rank('bea').fairShareFactor).toBe(1);
    expect(rank('ann').fairShareFactor).toBeCloseTo(1 / 3, 12);
    expect(r.groups.find((g) => g.group === 'B')!.rank).toBe(1);
    // a filtered report still ranks against everybody
    const onlyA = rankReport(buildReport(records, { now: T0, group: 'A' }));
    expect(onlyA.tenants).toHaveLength(1);
    expect(onlyA.tenants[0]!.rank).toBe(3);
    const table = reportToTable(r);
    expect(table).toContain('sum of charges = sum of task usage');
    expect(table).toMatch(/bea/);
  });
});

describe('shares simulate (pure parts)', () => {
  it('parses --share overrides for groups and users', () => {
    const o = parseShareOverrides(['desc=40', 'tvs=20.5', 'desc.alice=2']);
    expect(o.groups).toEqual(new Map([['desc', 40], ['tvs', 20.5]]));
    expect(o.users.get('desc')?.get('alice')).toBe(2);
    expect(() => parseShareOverrides(['desc'])).toThrow(/--share/);
    expect(() => parseShareOverrides(['desc=-1'])).toThrow(CliUsageError);
  });

  it('builds share trees from the ledger policy plus overrides, missing shares counting 1', () => {
    const p = emptyPolicy();
    applyPolicyEntry(p, { kind: 'share.set', ...base('A', 'ops'), scope: 'group', share: 3 });
    applyPolicyEntry(p, { kind: 'share.set', ...base('A', 'ann'), scope: 'user', share: 5 });
    const usage = [{ group: 'B', user: 'bob', coreSeconds: 1, gpuSeconds: 0, at: T0 }];
    expect(buildShareTree(p, usage)).toEqual({ groups: { A: { share: 3, users: { ann: { share: 5 } } }, B: { share: 1, users: { bob: { share: 1 } } } } });
    const sim = buildShareTree(p, usage, parseShareOverrides(['B=9', 'C=2']), true);
    expect(sim).toEqual({ groups: { A: { share: 1, users: { ann: { share: 1 } } }, B: { share: 9, users: { bob: { share: 1 } } }, C: { share: 2, users: {} } } });
  });

  it('shows how another share or half-life would have ranked the same history', () => {
    // days 0-2: A uses 3x what B uses, equal shares → B ranks first. Give A 90% of the shares and A ranks first.
    const usage: UsageRecord[] = [];
    for (let h = 0; h < 48; h++) {
      usage.push({ group: 'A', user: 'ann', coreSeconds: 3000, gpuSeconds: 0, at: T0 + h * HOUR });
      usage.push({ group: 'B', user: 'bob', coreSeconds: 1000, gpuSeconds: 0, at: T0 + h * HOUR });
    }
    const tree = (a: number, b: number) => ({ groups: { A: { share: a, users: { ann: { share: 1 } } }, B: { share: b, users: { bob: { share: 1 } } } } });
    const c = comparePolicies(usage, { halfLifeMs: 7 * DAY_MS, gpuWeight: 10, tree: tree(1, 1) }, { halfLifeMs: 3 * DAY_MS, gpuWeight: 10, tree: tree(9, 1) }, { windowMs: DAY_MS, from: T0, to: T0 + 2 * DAY_MS });
    expect(c.windows).toHaveLength(2);
    const w = c.windows[0]!;
    const a = w.groups.find((g) => g.group === 'A')!;
    expect(a.usageFraction).toBeCloseTo(0.75, 12);
    expect(a.current).toEqual({ share: 0.5, rank: 2 });
    expect(a.simulated).toEqual({ share: 0.9, rank: 1 });
    expect(w.rankChanges.map((t) => t.tenant).sort()).toEqual(['A.ann', 'B.bob']);
    expect(c.summary.find((s) => s.group === 'A')).toMatchObject({ windowsRankDiffers: 2, meanRankCurrent: 2, meanRankSimulated: 1 });
    expect(c.simulated.halfLifeMs).toBe(3 * DAY_MS);
    const text = renderPolicyComparison(c);
    expect(text).toContain('rank sim');
    expect(text).toContain('up 1');
  });
});

// ------------------------------------------------------------- end to end over NATS

const BIN = findNatsServer();
if (BIN === undefined) console.warn('reports-cli: nats-server not found (UBATCH_NATS_SERVER, PATH, /usr/sbin, /usr/bin): skipping the end-to-end command tests');

function capture(cwd: string): { rt: Runtime; stdout: () => string; stderr: () => string } {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  return { rt: { io: { out, err }, exitCode: 0, env: {}, cwd }, stdout: () => o, stderr: () => e };
}

async function run(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = capture(cwd);
  const program = new Command('ubatch').option('-s, --server <url>').option('-u, --user <name>').exitOverride();
  program.configureOutput({ writeOut: (s) => void c.rt.io.out.write(s), writeErr: (s) => void c.rt.io.err.write(s) });
  // the lead's program.ts registers `ledger summary` first; the export must join that group
  program.command('ledger').command('summary').action(() => undefined);
  registerReportCommand(program, c.rt);
  registerLedgerExportCommand(program, c.rt);
  registerSharesSimulateCommand(program, c.rt);
  await program.parseAsync(['node', 'ubatch', ...args]);
  await new Promise((r) => setImmediate(r));
  return { code: c.rt.exitCode, stdout: c.stdout(), stderr: c.stderr() };
}

describe.skipIf(BIN === undefined)('report, ledger export and shares simulate against a real ledger', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let dir: string;
  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    await ensureStreams(await jetstreamManager(nc));
    dir = await mkdtemp(join(tmpdir(), 'reports-cli-'));
    const w = new LedgerWriter(jetstream(nc));
    const entries: LedgerEntry[] = [
      { kind: 'share.set', ...base('desc', 'ops'), scope: 'group', share: 40 },
      { kind: 'share.set', ...base('tvs', 'ops'), scope: 'group', share: 20 },
      { kind: 'quota.set', ...base('desc', 'alice'), scope: 'user', limits: { cpu_hours: 1000 } },
      { kind: 'job.accepted', ...base('desc', 'alice'), jobId: 'ja', jobKind: 'noop', name: 'photo-z', tasks: 2, spec: {} },
      { kind: 'task.charged', ...base('desc', 'alice'), charges: [charge('ja', 1, 3600, 4), charge('ja', 2, 1800, 4)] },
      { kind: 'job.accepted', ...base('tvs', 'carol'), jobId: 'jc', jobKind: 'noop', tasks: 1, spec: {} },
      { kind: 'task.charged', ...base('tvs', 'carol'), charges: [charge('jc', 1, 7200, 1)] },
    ];
    let i = 0;
    for (const e of entries) await w.append(e, e.kind === 'task.charged' ? chargeMsgId(e.charges) : `test/${i++}`);
  }, 30_000);
  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await server?.cleanup().catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('report --json: usage, quota use and ranks from the replayed ledger', async () => {
    const r = await run(['report', '--server', server.url, '--json', '--capacity-cores', '1000'], dir);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.checks.equal).toBe(true);
    expect(rep.totals.chargedCoreHours).toBeCloseTo(4 + 2 + 2, 9);
    const alice = rep.tenants.find((t) => t.user === 'alice')!;
    expect(alice.quotaUse).toBeCloseTo(6 / 1000, 9);
    expect(alice.topJobs[0]).toMatchObject({ jobId: 'ja', name: 'photo-z' });
    // desc: share 40 of 60 for 6 of 8 core-hours; tvs: 20 of 60 for 2 → tvs is under its share and ranks first
    expect(rep.groups.find((g) => g.group === 'tvs')!.rank).toBe(1);
    expect(rep.tenants.find((t) => t.user === 'carol')!.fairShareFactor).toBe(1);
    expect(rep.capacity?.target).toBe(0.1);
  });

  it('report --user and --format html --out write the filtered report', async () => {
    const byUser = await run(['report', '--server', server.url, '--user', 'carol', '--format', 'csv'], dir);
    expect(byUser.code).toBe(0);
    const lines = byUser.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('tenant,'))).toHaveLength(1);
    expect(lines.some((l) => l.startsWith('tenant,tvs,carol,'))).toBe(true);
    const html = await run(['report', '--server', server.url, '--group', 'desc', '--format', 'html', '--out', 'desc.html'], dir);
    expect(html.code).toBe(0);
    expect(html.stderr).toContain('desc.html');
    const text = await readFile(join(dir, 'desc.html'), 'utf8');
    expect(text).toContain('<svg');
    expect(text).toContain('alice');
    expect(text).not.toContain('carol');
    const table = await run(['report', '--server', server.url], dir);
    expect(table.stdout).toContain('charged core-hours');
  });

  it('ledger export --out x.parquet writes a row per charge and per other entry', async () => {
    const r = await run(['ledger', 'export', '--server', server.url, '--out', 'ledger.parquet', '--json'], dir);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ rows: 3 + 5, records: 7, format: 'parquet' });
    const db = await DuckDBInstance.create(':memory:');
    try {
      const conn = await db.connect();
      const rows = (await conn.runAndReadAll(`SELECT "group", sum(core_seconds) AS core FROM read_parquet('${join(dir, 'ledger.parquet')}') WHERE kind = 'task.charged' GROUP BY 1 ORDER BY 1`)).getRowObjectsJS();
      conn.closeSync();
      expect(rows).toEqual([
        { group: 'desc', core: 4 * 5400 },
        { group: 'tvs', core: 7200 },
      ]);
    } finally {
      db.closeSync();
    }
  });

  it('shares simulate --json compares the policy in force with the simulated one', async () => {
    const r = await run(['shares', 'simulate', '--server', server.url, '--share', 'tvs=200', '--half-life', '1d', '--window', '1h', '--json'], dir);
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout) as { windows: { groups: { group: string; current: { share: number }; simulated: { share: number } }[] }[]; simulated: { halfLifeMs: number } };
    expect(c.windows.length).toBeGreaterThanOrEqual(1);
    expect(c.simulated.halfLifeMs).toBe(DAY_MS);
    const tvs = c.windows[0]!.groups.find((g) => g.group === 'tvs')!;
    expect(tvs.current.share).toBeCloseTo(20 / 60, 12);
    expect(tvs.simulated.share).toBeCloseTo(200 / 240, 12);
    const bad = run(['shares', 'simulate', '--server', server.url, '--share', 'tvs'], dir);
    await expect(bad).rejects.toBeInstanceOf(CliUsageError);
  });
});
