import { describe, expect, it } from 'vitest';
import {
  compileFairShareOptions,
  DAY_MS,
  DecayedUsage,
  InvalidFairShareOptionError,
  InvalidTenantNameError,
  InvalidUsageRecordError,
  parseTenantKey,
  tenantKey,
  type UsageRecord,
} from '../../coordinator/fairshare/index.js';
import { mulberry32 } from '../../astro/random.js';

const HOUR = 3_600_000;

/** Small seeded PRNG (mulberry32) so the random ledgers are reproducible. */

function rec(group: string, user: string, coreSeconds: number, at: number, gpuSeconds = 0): UsageRecord {
  return { group, user, coreSeconds, gpuSeconds, at };
}

describe('compileFairShareOptions', () => {
  it('fills the documented defaults', () => {
    const o = compileFairShareOptions();
    expect(o.halfLifeMs).toBe(7 * DAY_MS);
    expect(o.gpuWeight).toBe(10);
    expect(o.now).toBe(Date.now);
  });

  it('keeps given values and rejects meaningless ones', () => {
    expect(compileFairShareOptions({ halfLifeMs: HOUR, gpuWeight: 0 })).toMatchObject({ halfLifeMs: HOUR, gpuWeight: 0 });
    expect(() => compileFairShareOptions({ halfLifeMs: 0 })).toThrow(InvalidFairShareOptionError);
    expect(() => compileFairShareOptions({ halfLifeMs: Number.NaN })).toThrow(/halfLifeMs/);
    expect(() => compileFairShareOptions({ halfLifeMs: Infinity })).toThrow(InvalidFairShareOptionError);
    expect(() => compileFairShareOptions({ gpuWeight: -1 })).toThrow(/gpuWeight/);
  });
});

describe('tenantKey', () => {
  it('joins group and user with a dot and splits back at the first dot', () => {
    expect(tenantKey('desc', 'ann')).toBe('desc.ann');
    expect(tenantKey('desc', 'jane.doe')).toBe('desc.jane.doe');
    expect(parseTenantKey('desc.jane.doe')).toEqual({ group: 'desc', user: 'jane.doe' });
  });

  it('rejects names that would make the key ambiguous', () => {
    expect(() => tenantKey('de.sc', 'ann')).toThrow(InvalidTenantNameError);
    expect(() => tenantKey('', 'ann')).toThrow(InvalidTenantNameError);
    expect(() => tenantKey('desc', '')).toThrow(InvalidTenantNameError);
    expect(() => parseTenantKey('nodot')).toThrow(InvalidTenantNameError);
  });
});

describe('DecayedUsage', () => {
  it('halves at the half-life (injected clock)', () => {
    let clock = 1_700_000_000_000;
    const usage = new DecayedUsage({ now: () => clock });
    usage.add(rec('desc', 'ann', 1000, clock));
    expect(usage.value('desc', 'ann')).toBe(1000);
    clock += 7 * DAY_MS;
    expect(usage.value('desc', 'ann')).toBeCloseTo(500, 9);
    clock += 7 * DAY_MS;
    expect(usage.value('desc', 'ann')).toBeCloseTo(250, 9);
    // the group and total aggregates decay identically
    expect(usage.groupValue('desc')).toBeCloseTo(250, 9);
    expect(usage.totalValue()).toBeCloseTo(250, 9);
    // an explicit time overrides the clock
    expect(usage.value('desc', 'ann', clock - 7 * DAY_MS)).toBeCloseTo(500, 9);
  });

  it('weighs older usage less and charges GPU-seconds with gpuWeight', () => {
    const t = 1_000 * DAY_MS;
    const usage = new DecayedUsage({ halfLifeMs: DAY_MS, gpuWeight: 10, now: () => t });
    usage.add(rec('g', 'old', 100, t - 3 * DAY_MS)); // 3 half-lives ago: 100/8
    usage.add(rec('g', 'new', 100, t - DAY_MS)); // 1 half-life ago: 100/2
    usage.add(rec('g', 'gpu', 0, t, 5)); // 5 GPU-s * 10 = 50 now
    expect(usage.value('g', 'old')).toBeCloseTo(12.5, 10);
    expect(usage.value('g', 'new')).toBeCloseTo(50, 10);
    expect(usage.value('g', 'gpu')).toBeCloseTo(50, 10);
    expect(usage.value('g', 'old')).toBeLessThan(usage.value('g', 'new'));
    expect(usage.groupValue('g')).toBeCloseTo(112.5, 10);
    expect(usage.value('g', 'nobody')).toBe(0);
    expect(usage.groupValue('nogroup')).toBe(0);
  });

  it('keeps a user in several groups as separate tenants', () => {
    const t = 0;
    const usage = new DecayedUsage({ now: () => t });
    usage.add(rec('desc', 'ann', 10, t));
    usage.add(rec('lsst', 'ann', 30, t));
    expect(usage.value('desc', 'ann')).toBe(10);
    expect(usage.value('lsst', 'ann')).toBe(30);
    expect([...usage.snapshot(t).entries()].sort()).toEqual([
      ['desc.ann', 10],
      ['lsst.ann', 30],
    ]);
    expect(usage.tenantCount).toBe(2);
    expect(usage.recordCount).toBe(2);
  });

  it('matches the direct sum over a random ledger, in order and shuffled', () => {
    const rand = mulberry32(42);
    const halfLifeMs = 2 * DAY_MS;
    const t0 = 1_700_000_000_000;
    const records: UsageRecord[] = [];
    for (let i = 0; i < 20_000; i++) {
      records.push(rec(`g${Math.floor(rand() * 4)}`, `u${Math.floor(rand() * 25)}`, rand() * 3600, t0 + rand() * 60 * DAY_MS, rand() < 0.2 ? rand() * 100 : 0));
    }
    const inOrder = [...records].sort((a, b) => a.at - b.at);
    const query = t0 + 61 * DAY_MS;
    const expected = new Map<string, number>();
    for (const r of records) {
      const w = (r.coreSeconds + 10 * r.gpuSeconds) * Math.pow(2, -(query - r.at) / halfLifeMs);
      expected.set(`${r.group}.${r.user}`, (expected.get(`${r.group}.${r.user}`) ?? 0) + w);
    }
    for (const ledger of [inOrder, records]) {
      const usage = new DecayedUsage({ halfLifeMs });
      for (const r of ledger) usage.add(r);
      const snap = usage.snapshot(query);
      expect(snap.size).toBe(expected.size);
      let total = 0;
      for (const [key, value] of expected) {
        total += value;
        expect(Math.abs((snap.get(key) ?? NaN) - value) / value).toBeLessThan(1e-9);
      }
      expect(Math.abs(usage.totalValue(query) - total) / total).toBeLessThan(1e-9);
      const g0 = [...expected].filter(([k]) => k.startsWith('g0.')).reduce((s, [, v]) => s + v, 0);
      expect(Math.abs(usage.groupValue('g0', query) - g0) / g0).toBeLessThan(1e-9);
    }
  });

  it('stays finite and exact over a ledger spanning far more than 1024 half-lives', () => {
    const halfLifeMs = HOUR;
    const usage = new DecayedUsage({ halfLifeMs });
    const spanDays = 100 * 365; // 100 years of daily records = 876,000 half-lives
    // the naive "usage * 2^(t/h)" accumulator would overflow a double here
    expect(Math.pow(2, (spanDays * DAY_MS) / halfLifeMs)).toBe(Infinity);
    for (let d = 0; d <= spanDays; d++) usage.add(rec('g', 'u', 100, d * DAY_MS));
    const end = spanDays * DAY_MS;
    // geometric series with ratio 2^-24 (one day = 24 half-lives): 100 / (1 - 2^-24)
    expect(usage.value('g', 'u', end)).toBeCloseTo(100 / (1 - 2 ** -24), 9);
    // one hour later everything halved
    expect(usage.value('g', 'u', end + HOUR)).toBeCloseTo(50 / (1 - 2 ** -24), 9);
    // 2000 half-lives later the value underflows cleanly to 0 (no NaN, no Infinity)
    expect(usage.value('g', 'u', end + 2000 * HOUR)).toBe(0);
  });

  it('rejects records that cannot be charged, naming the tenant and field', () => {
    const usage = new DecayedUsage();
    expect(() => usage.add(rec('g', 'u', -1, 0))).toThrow(InvalidUsageRecordError);
    expect(() => usage.add(rec('g', 'u', 1, 0, Number.NaN))).toThrow(/gpuSeconds/);
    expect(() => usage.add(rec('g', 'u', 1, Number.POSITIVE_INFINITY))).toThrow(/'g\.u'.*'at'/);
    expect(() => usage.add(rec('g.x', 'u', 1, 0))).toThrow(InvalidTenantNameError);
    // a payload decoded from JSON may carry strings: never concatenate them into a charge
    expect(() => usage.add({ ...rec('g', 'u', 1, 0), coreSeconds: '5' as unknown as number })).toThrow(/coreSeconds/);
    expect(usage.recordCount).toBe(0);
  });
});
