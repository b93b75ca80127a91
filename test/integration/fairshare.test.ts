/**
 * Fair share, quotas and concurrency caps on a real nats-server (issue 3 acceptance).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readLedger } from '../../ledger/index.js';
import { UbatchApiError } from '../../protocol/index.js';
import { Coordinator } from '../../coordinator/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';

const until = async (pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

function busyByTenant(s: TestStack): Map<string, number> {
  const m = new Map<string, number>();
  for (const w of s.workers) for (const [, t, d] of w.slotLog) m.set(t, (m.get(t) ?? 0) + d);
  return m;
}

describe('fair share', () => {
  let s: TestStack | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it('a second user gets >= 40% of busy slots within seconds, not FIFO behind the first', async () => {
    s = await startStack({ workers: 2, worker: { slots: 4, fetchBatch: 1 } });
    for (const w of s.workers) w.recordSlots = true;
    const a = await s.client('alice');
    const b = await s.client('bob');
    const ja = await a.submit({ kind: 'noop', params: { tasks: 2000, sleep_ms: 100 } });
    await until(() => (busyByTenant(s!).get('default.alice') ?? 0) === 8, 10_000, 'alice to fill all 8 slots');
    await new Promise((r) => setTimeout(r, 1000));
    const jb = await b.submit({ kind: 'noop', params: { tasks: 2000, sleep_ms: 100 } });
    const t0 = Date.now();
    await until(() => (busyByTenant(s!).get('default.bob') ?? 0) >= 4, 5000, 'bob to hold at least 40% of the busy slots');
    const took = Date.now() - t0;
    // and it stays fair over the next second
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const m = busyByTenant(s);
      const busy = (m.get('default.alice') ?? 0) + (m.get('default.bob') ?? 0);
      samples.push((m.get('default.bob') ?? 0) / Math.max(1, busy));
    }
    expect(took).toBeLessThan(5000);
    expect(samples.reduce((x, y) => x + y, 0) / samples.length).toBeGreaterThanOrEqual(0.4);
    await a.cancel(ja.jobId);
    await b.cancel(jb.jobId);
  });

  it('groups with shares 60/40 get usage within ±5 percentage points', async () => {
    s = await startStack({ workers: 2, worker: { slots: 3, fetchBatch: 1 } });
    const ops = await s.client('ops');
    await ops.sharesSet('desc', 60);
    await ops.sharesSet('tvs', 40);
    await ops.sharesSet('desc', 1, 'dana');
    await ops.sharesSet('tvs', 1, 'tom');
    const dana = await s.client('dana');
    const tom = await s.client('tom');
    const start = Date.now();
    const jd = await dana.submit({ kind: 'noop', group: 'desc', params: { tasks: 5000, sleep_ms: 60 } });
    const jt = await tom.submit({ kind: 'noop', group: 'tvs', params: { tasks: 5000, sleep_ms: 60 } });
    await new Promise((r) => setTimeout(r, 15_000));
    await dana.cancel(jd.jobId);
    await tom.cancel(jt.jobId);
    const usage = new Map<string, number>();
    for (const r of await readLedger(s.connections[0]!)) {
      if (r.entry.kind !== 'task.charged' || r.time < start) continue;
      for (const c of r.entry.charges) usage.set(r.entry.group, (usage.get(r.entry.group) ?? 0) + c.usage.wallSeconds);
    }
    const d = usage.get('desc') ?? 0;
    const t = usage.get('tvs') ?? 0;
    expect(d + t).toBeGreaterThan(30); // 6 slots for ~15 s of 60 ms tasks
    expect(d / (d + t)).toBeGreaterThan(0.55);
    expect(d / (d + t)).toBeLessThan(0.65);
  });

  it('a concurrency cap of K holds at every instant across 4 workers x 4 slots', async () => {
    s = await startStack({ workers: 4, worker: { slots: 4 } });
    for (const w of s.workers) w.recordSlots = true;
    const ops = await s.client('ops');
    await ops.quotaSet('user', 'kim', { max_concurrent: 3 });
    const kim = await s.client('kim');
    const j = await kim.submit({ kind: 'noop', params: { tasks: 120, sleep_ms: 30 } });
    const info = await kim.wait(j.jobId, { timeoutMs: 60_000 });
    expect(info.state).toBe('succeeded');
    const events = s.workers.flatMap((w) => w.slotLog.filter(([, t]) => t === 'default.kim'));
    // at equal timestamps apply finishes first: a slot is freed before the next task can be released
    events.sort((x, y) => x[0] - y[0] || x[2] - y[2]);
    let cur = 0;
    let peak = 0;
    for (const [, , d] of events) {
      cur += d;
      peak = Math.max(peak, cur);
    }
    expect(events.length).toBe(240);
    expect(peak).toBe(3);
  });

  it('quota: a clear rejection over quota; a job reaching quota is held, resumes when raised, loses nothing', async () => {
    s = await startStack({ workers: 2, worker: { slots: 2 } });
    const ops = await s.client('ops');
    const quinn = await s.client('quinn');
    // estimate for noop: sleep seconds per task: 100 x 36 s = 1 hour
    await ops.quotaSet('user', 'quinn', { cpu_hours: 0.5 });
    try {
      await quinn.submit({ kind: 'noop', params: { tasks: 100, sleep_ms: 36_000 } });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UbatchApiError);
      expect((e as UbatchApiError).code).toBe('over_quota');
      expect((e as UbatchApiError).message).toMatch(/used 0\.00\d* of 0\.500 cpu-hours.*estimated at 1\.00 cpu-hours/);
    }
    // a job whose estimate fits but whose real use reaches the quota mid-job
    await ops.quotaSet('user', 'quinn', { cpu_hours: 60 / 3600 });
    const big = await quinn.submit({ kind: 'noop', params: { tasks: 20, sleep_ms: 1000 } });
    await ops.quotaSet('user', 'quinn', { cpu_hours: 3 / 3600 });
    await until(async () => (await quinn.get(big.jobId)).done >= 3, 20_000, 'the quota to be used up');
    // over quota: running tasks finish and are charged, queued ones are held
    await new Promise((r) => setTimeout(r, 2500));
    const held = await quinn.get(big.jobId);
    expect(held.state).toBe('running');
    expect(held.done).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await quinn.get(big.jobId)).done).toBe(held.done);
    const q = (await quinn.quotaGet()) as { user: { used: { cpu_hours: number } } };
    expect(q.user.used.cpu_hours * 3600).toBeGreaterThanOrEqual(3);
    // a new submission is refused while over quota
    await expect(quinn.submit({ kind: 'noop', params: { tasks: 1, sleep_ms: 1000 } })).rejects.toThrow(/over quota/);
    await ops.quotaSet('user', 'quinn', { cpu_hours: 1 });
    const fin = await quinn.wait(big.jobId, { timeoutMs: 60_000 });
    expect(fin.state).toBe('succeeded');
    expect(fin.done).toBe(20);
    expect(fin.failed).toBe(0);
  });

  it('replay: the sum of charges equals the sum of task usage, and a report rebuilt after a coordinator restart is identical', async () => {
    s = await startStack({ workers: 2, worker: { slots: 2 } });
    const ops = await s.client('ops');
    await ops.sharesSet('desc', 3);
    await ops.sharesSet('desc', 1, 'rae');
    const rae = await s.client('rae');
    const j1 = await rae.submit({ kind: 'noop', group: 'desc', params: { tasks: 30, sleep_ms: 20 } });
    const j2 = await rae.submit({ kind: 'noop', params: { tasks: 5, fail_indexes: [2] }, group: 'desc', resources: { max_attempts: 2 } });
    await rae.wait(j1.jobId, { timeoutMs: 60_000 });
    await rae.wait(j2.jobId, { timeoutMs: 60_000 });
    const to = new Date(Date.now() + 60_000).toISOString();
    type R = { records: number; checks: { equal: boolean; sumOfCharges: number }; tenants: { user: string; attempts: number; failedAttempts: number; jobs: number }[]; generatedAt?: string };
    const strip = (r: R) => JSON.parse(JSON.stringify(r, (k, v) => (k === 'generatedAt' || k === 'decayedAt' || k === 'decayedUsage' || k === 'fairShareFactor' || k === 'records' ? undefined : v))) as R;
    const before = (await ops.report({ to })) as R;
    expect(before.checks.equal).toBe(true);
    expect(before.checks.sumOfCharges).toBeGreaterThan(0);
    const t = before.tenants.find((x) => x.user === 'rae')!;
    expect(t.attempts).toBe(30 + 4 + 2); // 30 ok + 4 ok + 2 failed attempts of task 2
    expect(t.failedAttempts).toBe(2);
    expect(t.jobs).toBe(2);
    // restart the coordinator (a new process state rebuilt from KV and the ledger)
    await s.coordinator.close();
    const c2 = await Coordinator.create({ nc: await s.connect(), service: { operators: ['ops'] } }, { outputRoot: `${s.dir}/out2`, flushMs: 20 });
    void c2.run();
    const after = await (async () => {
      for (;;) {
        try {
          return (await ops.report({ to })) as R;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
    expect(strip(after)).toEqual(strip(before));
    // the only new records a restart may add are ledger seals (the closing coordinator seals its open block)
    expect(after.records).toBeGreaterThanOrEqual(before.records);
    await c2.close();
  });

  it('capacity is the registered worker slots over time; reports show usage as a fraction of it', async () => {
    s = await startStack({ workers: 2, worker: { slots: 2 }, coordinator: { capacitySampleMs: 200 } });
    const ops = await s.client('ops');
    const u = await s.client('uma');
    const from = new Date().toISOString();
    const j = await u.submit({ kind: 'noop', params: { tasks: 8, sleep_ms: 500 } });
    await u.wait(j.jobId, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    const r = (await ops.report({ from, to: new Date().toISOString() })) as { capacity?: { coreHours: number; fraction: number }; groups: { group: string; fractionOfCapacity?: number }[] };
    // 4 slots for a few seconds: some core-seconds of capacity, of which the job used a fair part
    expect(r.capacity).toBeDefined();
    expect(r.capacity!.coreHours * 3600).toBeGreaterThan(4);
    expect(r.capacity!.fraction).toBeGreaterThan(0.05);
    expect(r.capacity!.fraction).toBeLessThanOrEqual(1);
    expect(r.groups.find((g) => g.group === 'default')!.fractionOfCapacity).toBeCloseTo(r.capacity!.fraction, 6);
  });
});
