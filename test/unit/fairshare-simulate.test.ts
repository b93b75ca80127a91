import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  InvalidFairShareOptionError,
  simulatePolicy,
  type ShareTree,
  type UsageRecord,
} from '../../coordinator/fairshare/index.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 0, 6); // a Monday

const tree: ShareTree = {
  groups: {
    A: { share: 50, users: { ann: { share: 1 }, al: { share: 1 } } },
    B: { share: 50, users: { bob: { share: 1 } } },
  },
};

/** Hourly records: `perDay[g]` core-seconds per day for group g's first user, over [startDay, endDay). */
function stream(startDay: number, endDay: number, perDay: Record<string, number>): UsageRecord[] {
  const users: Record<string, string> = { A: 'ann', B: 'bob' };
  const out: UsageRecord[] = [];
  for (let h = startDay * 24; h < endDay * 24; h++) {
    for (const [group, amount] of Object.entries(perDay)) {
      if (amount > 0) out.push({ group, user: users[group] ?? 'x', coreSeconds: amount / 24, gpuSeconds: 0, at: T0 + h * HOUR });
    }
  }
  return out;
}

describe('simulatePolicy', () => {
  it('drops a group that used more in rank, and reports each window’s usage fractions', () => {
    // days 0-7: A uses 3x what B uses; days 7-14: B uses 3x what A uses
    const records = [...stream(0, 7, { A: 3000, B: 1000 }), ...stream(7, 14, { A: 1000, B: 3000 })];
    const { windows } = simulatePolicy(records, tree, { windowMs: 7 * DAY_MS, halfLifeMs: 2 * DAY_MS, from: T0, to: T0 + 14 * DAY_MS });
    expect(windows).toHaveLength(2);
    const [w1, w2] = windows;
    expect(w1?.from).toBe(T0);
    expect(w1?.to).toBe(T0 + 7 * DAY_MS);
    expect(w2?.to).toBe(T0 + 14 * DAY_MS);
    expect(w1?.groupUsageFraction.A).toBeCloseTo(0.75, 12);
    expect(w1?.groupUsageFraction.B).toBeCloseTo(0.25, 12);
    expect(w2?.groupUsageFraction.B).toBeCloseTo(0.75, 12);
    // A used more in window 1: B ranks first; then B used more with a short half-life: A first
    expect(w1?.groupRank).toEqual({ B: 1, A: 2 });
    expect(w1?.ranking[0]?.tenant).toBe('B.bob');
    expect(w2?.groupRank).toEqual({ A: 1, B: 2 });
    // inside A the idle user al (zero usage) ranks first
    expect(w2?.ranking.map((r) => r.tenant)).toEqual(['A.al', 'A.ann', 'B.bob']);
  });

  it('lets the half-life decide how long past usage counts', () => {
    // A used heavily for a week, then B moderately for two days
    const records = [...stream(0, 7, { A: 1000 }), ...stream(7, 9, { B: 500 })];
    const run = (halfLifeMs: number) =>
      simulatePolicy(records, tree, { windowMs: 9 * DAY_MS, halfLifeMs, from: T0, to: T0 + 9 * DAY_MS }).windows[0]?.groupRank;
    // 1-day half-life: A's old 7000 decays to ~360, B's recent 1000 to ~540 -> B ranks worse
    expect(run(DAY_MS)).toEqual({ A: 1, B: 2 });
    // 30-day half-life: A's 7000 still dominates -> A ranks worse
    expect(run(30 * DAY_MS)).toEqual({ B: 1, A: 2 });
  });

  it('lets shares and the GPU weight change the outcome', () => {
    const records: UsageRecord[] = [
      { group: 'A', user: 'ann', coreSeconds: 1000, gpuSeconds: 0, at: T0 },
      { group: 'B', user: 'bob', coreSeconds: 0, gpuSeconds: 200, at: T0 },
    ];
    const opts = { windowMs: DAY_MS, from: T0, to: T0 + DAY_MS };
    // gpuWeight 10: B charged 2000 > A 1000 with equal shares -> A first
    expect(simulatePolicy(records, tree, { ...opts, gpuWeight: 10 }).windows[0]?.groupRank).toEqual({ A: 1, B: 2 });
    // gpuWeight 1: B charged 200 -> B first
    expect(simulatePolicy(records, tree, { ...opts, gpuWeight: 1 }).windows[0]?.groupRank).toEqual({ B: 1, A: 2 });
    // gpuWeight 10 but B holds 80 % of the shares: LF_B = 0.8/(2/3) = 1.2 > LF_A = 0.2/(1/3) = 0.6
    const skewed: ShareTree = {
      groups: { A: { share: 20, users: { ann: { share: 1 }, al: { share: 1 } } }, B: { share: 80, users: { bob: { share: 1 } } } },
    };
    expect(simulatePolicy(records, skewed, { ...opts, gpuWeight: 10 }).windows[0]?.groupRank).toEqual({ B: 1, A: 2 });
  });

  it('warms up on records before `from`, ignores records after `to`, reports progress and honours abort', () => {
    const records = [...stream(0, 3, { A: 900 }), ...stream(3, 6, { B: 100 }), ...stream(6, 8, { B: 1e6 })];
    const progress: [number, number][] = [];
    const { windows } = simulatePolicy(records, tree, {
      windowMs: DAY_MS,
      from: T0 + 3 * DAY_MS,
      to: T0 + 6 * DAY_MS,
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(windows).toHaveLength(3);
    expect(progress).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    // A's usage before `from` is not in the fractions but still ranks A below B
    expect(windows.every((w) => w.groupUsageFraction.A === 0 && w.groupUsageFraction.B === 1)).toBe(true);
    expect(windows.every((w) => w.groupRank.B === 1)).toBe(true);
    const controller = new AbortController();
    controller.abort();
    expect(() => simulatePolicy(records, tree, { windowMs: DAY_MS, signal: controller.signal })).toThrow(/abort/i);
  });

  it('covers the record span by default, and checks its options', () => {
    const records = stream(0, 2, { A: 24 });
    const { windows } = simulatePolicy(records, tree, { windowMs: DAY_MS });
    expect(windows[0]?.from).toBe(T0);
    expect(windows.at(-1)?.to).toBe((records.at(-1)?.at ?? 0) + 1);
    expect(windows.reduce((s, w) => s + (w.groupUsageFraction.A ?? 0), 0)).toBe(2);
    expect(simulatePolicy([], tree, { windowMs: DAY_MS }).windows).toEqual([]);
    expect(() => simulatePolicy(records, tree, { windowMs: 0 })).toThrow(InvalidFairShareOptionError);
    expect(() => simulatePolicy(records, tree, { windowMs: 1 })).toThrow(/maxWindows/);
    expect(() => simulatePolicy(records, tree, { windowMs: DAY_MS, from: T0, to: T0 })).toThrow(/'to'/);
  });
});
