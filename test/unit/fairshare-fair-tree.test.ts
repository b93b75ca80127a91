import { describe, expect, it } from 'vitest';
import {
  computeFairTree,
  DecayedUsage,
  fairTreeGroups,
  fairTreeRanking,
  InvalidShareTreeError,
  InvalidUsageRecordError,
  type ShareTree,
  type TenantRank,
  type UsageLookup,
} from '../../coordinator/fairshare/index.js';
import { mulberry32 } from '../../astro/random.js';

function lookup(groups: Record<string, number>, tenants: Record<string, number>): UsageLookup {
  return (group, user) => (user === undefined ? groups[group] ?? 0 : tenants[`${group}.${user}`] ?? 0);
}

/** Group usage as the sum of its users, like DecayedUsage.groupValue for users all in the tree. */
function summedLookup(tenants: Record<string, number>): UsageLookup {
  const groups: Record<string, number> = {};
  for (const [key, v] of Object.entries(tenants)) {
    const g = key.slice(0, key.indexOf('.'));
    groups[g] = (groups[g] ?? 0) + v;
  }
  return lookup(groups, tenants);
}

function order(ranking: TenantRank[]): string[] {
  return ranking.map((r) => r.tenant);
}

function ranks(ranking: TenantRank[]): Record<string, number> {
  return Object.fromEntries(ranking.map((r) => [r.tenant, r.rank]));
}


describe('fairTreeRanking: hand-computed example', () => {
  // Groups A (share 60) and B (share 40).
  //   A: a1 (share 1, usage 500), a2 (share 1, usage 100)  -> A usage 600
  //   B: b1 (share 1, usage  50), b2 (share 3, usage 250)  -> B usage 300
  // Total usage 900.
  //
  // Group level:  S_A = 60/100 = 0.6, U_A = 600/900 = 2/3  -> LF_A = 0.6 / (2/3) = 0.9
  //               S_B = 40/100 = 0.4, U_B = 300/900 = 1/3  -> LF_B = 0.4 / (1/3) = 1.2
  //   => B before A (B is under-served, A over-served).
  // Inside B:     S_b1 = 1/4, U_b1 = 50/300 = 1/6          -> LF = 0.25 * 6   = 1.5
  //               S_b2 = 3/4, U_b2 = 250/300 = 5/6        -> LF = 0.75 * 6/5 = 0.9
  // Inside A:     S_a1 = 1/2, U_a1 = 500/600 = 5/6        -> LF = 0.5 * 6/5  = 0.6
  //               S_a2 = 1/2, U_a2 = 100/600 = 1/6        -> LF = 0.5 * 6    = 3.0
  // Depth first:  b1 (1), b2 (2), a2 (3), a1 (4); fair-share factor rank/N Slurm-style:
  //               4/4 = 1, 3/4, 2/4, 1/4.
  //
  // A plain sort of all tenants by global share / global usage would give instead
  //   a2: (0.6*0.5)/(100/900) = 2.7,  b1: (0.4*0.25)/(50/900) = 1.8,
  //   b2: (0.4*0.75)/(250/900) = 1.08, a1: (0.6*0.5)/(500/900) = 0.54
  // i.e. a2, b1, b2, a1: Fair Tree puts a2 behind all of B because group A as a whole is over-served.
  const tree: ShareTree = {
    groups: {
      A: { share: 60, users: { a1: { share: 1 }, a2: { share: 1 } } },
      B: { share: 40, users: { b1: { share: 1 }, b2: { share: 3 } } },
    },
  };
  const usage = summedLookup({ 'A.a1': 500, 'A.a2': 100, 'B.b1': 50, 'B.b2': 250 });

  it('orders users depth first by Level FS', () => {
    const ranking = fairTreeRanking(tree, usage);
    expect(order(ranking)).toEqual(['B.b1', 'B.b2', 'A.a2', 'A.a1']);
    expect(ranking.map((r) => r.rank)).toEqual([1, 2, 3, 4]);
    expect(ranking.map((r) => r.fairShareFactor)).toEqual([1, 0.75, 0.5, 0.25]);
  });

  it('reports Level FS, normalised shares and usage per level', () => {
    const byTenant = new Map(fairTreeRanking(tree, usage).map((r) => [r.tenant, r]));
    const b1 = byTenant.get('B.b1');
    expect(b1?.levelFs.group).toBeCloseTo(1.2, 12);
    expect(b1?.levelFs.user).toBeCloseTo(1.5, 12);
    expect(b1?.share).toEqual({ group: 0.4, user: 0.25 });
    expect(b1?.decayedUsage).toBe(50);
    const a1 = byTenant.get('A.a1');
    expect(a1?.levelFs.group).toBeCloseTo(0.9, 12);
    expect(a1?.levelFs.user).toBeCloseTo(0.6, 12);
    expect(byTenant.get('A.a2')?.levelFs.user).toBeCloseTo(3, 12);
    expect(byTenant.get('B.b2')?.levelFs.user).toBeCloseTo(0.9, 12);
    expect(byTenant.get('B.b2')?.group).toBe('B');
    expect(byTenant.get('B.b2')?.user).toBe('b2');
  });

  it('differs from a plain global share/usage sort', () => {
    const plain = [
      { t: 'A.a1', v: (0.6 * 0.5) / (500 / 900) },
      { t: 'A.a2', v: (0.6 * 0.5) / (100 / 900) },
      { t: 'B.b1', v: (0.4 * 0.25) / (50 / 900) },
      { t: 'B.b2', v: (0.4 * 0.75) / (250 / 900) },
    ]
      .sort((x, y) => y.v - x.v)
      .map((x) => x.t);
    expect(plain).toEqual(['A.a2', 'B.b1', 'B.b2', 'A.a1']);
    expect(order(fairTreeRanking(tree, usage))).not.toEqual(plain);
  });

  it('gives the group ranking', () => {
    const groups = fairTreeGroups(tree, usage);
    expect(groups.map((g) => [g.group, g.rank, g.tenants])).toEqual([
      ['B', 1, 2],
      ['A', 2, 2],
    ]);
    expect(groups[0]?.levelFs).toBeCloseTo(1.2, 12);
  });

  it('works from a DecayedUsage (same usage, charged a half-life ago, gives the same order)', () => {
    const t = 100 * 86_400_000;
    const du = new DecayedUsage({ now: () => t });
    const charged: [string, string, number][] = [['A', 'a1', 1000], ['A', 'a2', 200], ['B', 'b1', 100], ['B', 'b2', 500]];
    for (const [group, user, core] of charged) {
      du.add({ group, user, coreSeconds: core, gpuSeconds: 0, at: t - 7 * 86_400_000 });
    }
    const ranking = fairTreeRanking(tree, du.usageAt());
    expect(order(ranking)).toEqual(['B.b1', 'B.b2', 'A.a2', 'A.a1']);
    expect(ranking[0]?.decayedUsage).toBeCloseTo(50, 9);
  });
});

describe('fairTreeRanking: ties (Slurm rules, deterministic order)', () => {
  it('sibling users with equal Level FS share the best rank of the tie; the next rank skips', () => {
    // G (share 1): x, y, z equal shares; usage x = y = 100, z = 50 -> LF z = (1/3)/(50/250) = 5/3, x = y = (1/3)/(100/250) = 5/6
    // H (share 1): h with usage 1000 -> group LF_G = 0.5/(250/1250) = 2.5, LF_H = 0.5/(1000/1250) = 0.625
    const tree: ShareTree = {
      groups: {
        H: { share: 1, users: { h: { share: 1 } } },
        G: { share: 1, users: { y: { share: 1 }, x: { share: 1 }, z: { share: 1 } } },
      },
    };
    const ranking = fairTreeRanking(tree, summedLookup({ 'G.x': 100, 'G.y': 100, 'G.z': 50, 'H.h': 1000 }));
    expect(order(ranking)).toEqual(['G.z', 'G.x', 'G.y', 'H.h']); // tie x/y ordered by name
    expect(ranking.map((r) => r.rank)).toEqual([1, 2, 2, 4]);
    // Slurm: fs = rank/N counting down from N: 4/4, 3/4, 3/4, 1/4
    expect(ranking.map((r) => r.fairShareFactor)).toEqual([1, 0.75, 0.75, 0.25]);
  });

  it('sibling groups with equal Level FS have their users merged before ranking', () => {
    // P and Q: share 50 each, usage 100 each -> LF_P = LF_Q = 0.5 / 0.5 = 1 (tie)
    // P: p1 usage 90 -> LF 0.5/0.9 = 0.556; p2 usage 10 -> LF 0.5/0.1 = 5
    // Q: q1, q2 usage 50 each -> LF 0.5/0.5 = 1
    // merged and sorted: p2 (5), q1 = q2 (1), p1 (0.556)
    // (without merging, P first by name would give p2, p1, q1, q2)
    const tree: ShareTree = {
      groups: {
        Q: { share: 50, users: { q2: { share: 1 }, q1: { share: 1 } } },
        P: { share: 50, users: { p1: { share: 1 }, p2: { share: 1 } } },
      },
    };
    const result = computeFairTree(tree, summedLookup({ 'P.p1': 90, 'P.p2': 10, 'Q.q1': 50, 'Q.q2': 50 }));
    expect(order(result.tenants)).toEqual(['P.p2', 'Q.q1', 'Q.q2', 'P.p1']);
    expect(result.tenants.map((r) => r.rank)).toEqual([1, 2, 2, 4]);
    expect(result.groups.map((g) => [g.group, g.rank])).toEqual([
      ['P', 1],
      ['Q', 1],
    ]);
  });

  it('tied users from merged groups are ordered by group name, then user name', () => {
    const tree: ShareTree = {
      groups: {
        beta: { share: 1, users: { ann: { share: 1 } } },
        alpha: { share: 1, users: { zed: { share: 1 }, bob: { share: 1 } } },
      },
    };
    // no usage at all: every Level FS is Infinity, everything ties
    const ranking = fairTreeRanking(tree, () => 0);
    expect(order(ranking)).toEqual(['alpha.bob', 'alpha.zed', 'beta.ann']);
    expect(ranking.every((r) => r.rank === 1 && r.fairShareFactor === 1)).toBe(true);
    expect(ranking.every((r) => r.levelFs.group === Infinity && r.levelFs.user === Infinity)).toBe(true);
  });

  it('treats Level FS equal up to float noise as a tie, unless the tolerance is 0', () => {
    const tree: ShareTree = { groups: { G: { share: 1, users: { u: { share: 1 }, v: { share: 1 } } } } };
    const usage = summedLookup({ 'G.u': 100, 'G.v': 100 * (1 + 4e-16) });
    expect(fairTreeRanking(tree, usage).map((r) => r.rank)).toEqual([1, 1]);
    expect(order(fairTreeRanking(tree, usage))).toEqual(['G.u', 'G.v']);
    const strict = fairTreeRanking(tree, summedLookup({ 'G.u': 100 * (1 + 4e-16), 'G.v': 100 }), { relativeTieTolerance: 0 });
    expect(order(strict)).toEqual(['G.v', 'G.u']);
    expect(strict.map((r) => r.rank)).toEqual([1, 2]);
  });
});

describe('fairTreeRanking: zero usage, zero shares, users in several groups', () => {
  it('ranks zero-usage tenants first, zero-share tenants last', () => {
    const tree: ShareTree = {
      groups: {
        busy: { share: 10, users: { heavy: { share: 1 }, fresh: { share: 1 } } },
        idle: { share: 1, users: { newbie: { share: 1 } } },
        guest: { share: 0, users: { visitor: { share: 1 } } },
      },
    };
    const ranking = fairTreeRanking(tree, summedLookup({ 'busy.heavy': 5000 }));
    // idle never used anything: LF = S/0 = Infinity; guest has S = 0: LF = 0 even with no usage (Slurm rule)
    expect(order(ranking)).toEqual(['idle.newbie', 'busy.fresh', 'busy.heavy', 'guest.visitor']);
    expect(ranking.map((r) => r.rank)).toEqual([1, 2, 3, 4]);
    expect(ranking[0]?.levelFs).toEqual({ group: Infinity, user: Infinity });
    expect(ranking[1]?.levelFs.user).toBe(Infinity);
    expect(ranking[3]?.levelFs.group).toBe(0);
  });

  it('ranks a user in several groups once per group, each with its own usage', () => {
    const tree: ShareTree = {
      groups: {
        desc: { share: 1, users: { ann: { share: 1 }, bo: { share: 1 } } },
        lsst: { share: 1, users: { ann: { share: 1 }, cy: { share: 1 } } },
      },
    };
    // desc: 100 (ann 90, bo 10) LF 0.5/0.25 = 2; lsst: 300 (ann 30, cy 270) LF 0.5/0.75 = 0.667
    const ranking = fairTreeRanking(tree, summedLookup({ 'desc.ann': 90, 'desc.bo': 10, 'lsst.ann': 30, 'lsst.cy': 270 }));
    expect(order(ranking)).toEqual(['desc.bo', 'desc.ann', 'lsst.ann', 'lsst.cy']);
    expect(ranking.filter((r) => r.user === 'ann').map((r) => r.decayedUsage)).toEqual([90, 30]);
  });

  it('handles empty trees and groups without users', () => {
    expect(fairTreeRanking({ groups: {} }, () => 0)).toEqual([]);
    const ranking = fairTreeRanking({ groups: { empty: { share: 5, users: {} }, g: { share: 5, users: { u: { share: 1 } } } } }, () => 0);
    expect(order(ranking)).toEqual(['g.u']);
    expect(ranking[0]?.share.group).toBe(0.5); // the empty group still holds its share
  });

  it('rejects bad shares and bad usage with the path concerned', () => {
    expect(() => fairTreeRanking({ groups: { g: { share: -1, users: {} } } }, () => 0)).toThrow(InvalidShareTreeError);
    expect(() => fairTreeRanking({ groups: { g: { share: 1, users: { u: { share: Number.NaN } } } } }, () => 0)).toThrow(
      /groups\.g\.users\.u\.share/,
    );
    expect(() => fairTreeRanking({ groups: { 'a.b': { share: 1, users: {} } } }, () => 0)).toThrow(InvalidShareTreeError);
    expect(() => fairTreeRanking({ groups: { g: { share: 1, users: { u: { share: 1 } } } } }, () => -5)).toThrow(InvalidUsageRecordError);
  });
});

/**
 * Slurm's _calc_tree_fs (src/plugins/priority/multifactor/fair_tree.c), transcribed
 * for a root -> accounts -> users tree: rank counts down from N, ties keep the
 * previous rank, tied accounts have their children merged. Returns Slurm's rank
 * (N = best) per tenant.
 */
function slurmReference(tree: ShareTree, usage: UsageLookup): Map<string, number> {
  interface Assoc {
    user?: string;
    group: string;
    lf: number;
    children: Assoc[];
  }
  const levelFs = (share: number, shareSum: number, use: number, useSum: number): number => {
    const s = shareSum > 0 ? share / shareSum : 0;
    const u = useSum > 0 ? use / useSum : 0;
    return s === 0 ? 0 : s / u;
  };
  const groupNames = Object.keys(tree.groups);
  const gShareSum = groupNames.reduce((s, g) => s + (tree.groups[g]?.share ?? 0), 0);
  const gUseSum = groupNames.reduce((s, g) => s + usage(g), 0);
  const accounts: Assoc[] = groupNames.map((g) => {
    const spec = tree.groups[g] ?? { share: 0, users: {} };
    const users = Object.keys(spec.users);
    const uShareSum = users.reduce((s, u) => s + (spec.users[u]?.share ?? 0), 0);
    const uUseSum = users.reduce((s, u) => s + usage(g, u), 0);
    return {
      group: g,
      lf: levelFs(spec.share, gShareSum, usage(g), gUseSum),
      children: users.map((u) => ({ user: u, group: g, lf: levelFs(spec.users[u]?.share ?? 0, uShareSum, usage(g, u), uUseSum), children: [] })),
    };
  });
  const n = accounts.reduce((s, a) => s + a.children.length, 0);
  const out = new Map<string, number>();
  let rank = n;
  let rnt = n;
  const calc = (siblings: Assoc[], accountTied: boolean): void => {
    siblings.sort((a, b) => (a.lf !== b.lf ? (a.lf < b.lf ? 1 : -1) : (a.user === undefined) === (b.user === undefined) ? 0 : a.user !== undefined ? -1 : 1));
    let prev = Number.NaN;
    for (let i = 0; i < siblings.length; i++) {
      const a = siblings[i];
      if (a === undefined) continue;
      const tied = i === 0 && accountTied ? true : prev === a.lf;
      if (a.user !== undefined) {
        if (!tied) rank = rnt;
        out.set(`${a.group}.${a.user}`, rank);
        rnt--;
      } else {
        let merge = 0;
        while (siblings[i + merge + 1] !== undefined && siblings[i + merge + 1]?.user === undefined && siblings[i + merge + 1]?.lf === a.lf) merge++;
        const merged = siblings.slice(i, i + merge + 1).flatMap((s) => s.children);
        calc(merged, tied);
        i += merge;
      }
      prev = a.lf;
    }
  };
  calc(accounts, false);
  return out;
}

describe('fairTreeRanking: property checks on random trees', () => {
  it('agrees with a transcription of Slurm fair_tree.c and keeps groups contiguous', () => {
    const rand = mulberry32(7);
    for (let trial = 0; trial < 300; trial++) {
      const groups: ShareTree['groups'] = {};
      const tenantUsage: Record<string, number> = {};
      const nGroups = 1 + Math.floor(rand() * 6);
      for (let g = 0; g < nGroups; g++) {
        const users: Record<string, { share: number }> = {};
        const nUsers = Math.floor(rand() * 6);
        for (let u = 0; u < nUsers; u++) {
          const name = `u${Math.floor(rand() * 8)}`; // users recur across groups
          users[name] = { share: [0, 1, 1, 2, 3][Math.floor(rand() * 5)] ?? 1 };
          // small integer usages make exact ties common
          tenantUsage[`g${g}.${name}`] = [0, 0, 10, 10, 20, 30][Math.floor(rand() * 6)] ?? 0;
        }
        groups[`g${g}`] = { share: [0, 1, 1, 2, 5][Math.floor(rand() * 5)] ?? 1, users };
      }
      const tree: ShareTree = { groups };
      const usage = summedLookup(tenantUsage);
      const result = computeFairTree(tree, usage, { relativeTieTolerance: 0 });
      const ranking = result.tenants;
      const n = ranking.length;
      const reference = slurmReference(tree, usage);
      expect(reference.size).toBe(n);
      for (const r of ranking) {
        // Slurm's rank counts down from N; ours counts up from 1
        expect(n - r.rank + 1).toBe(reference.get(r.tenant));
        expect(r.fairShareFactor).toBeCloseTo((reference.get(r.tenant) ?? NaN) / n, 14);
        expect(r.fairShareFactor).toBeGreaterThan(0);
        expect(r.fairShareFactor).toBeLessThanOrEqual(1);
      }
      if (n > 0) expect(ranking[0]?.rank).toBe(1);
      // ranks are non-decreasing along the list, and a rank equals 1 + the number of tenants strictly better
      for (let i = 1; i < n; i++) {
        const prev = ranking[i - 1];
        const cur = ranking[i];
        if (prev === undefined || cur === undefined) continue;
        expect(cur.rank).toBeGreaterThanOrEqual(prev.rank);
        if (cur.rank !== prev.rank) expect(cur.rank).toBe(i + 1);
      }
      // every user of a strictly better group comes before every user of a worse group
      const groupRank = new Map(result.groups.map((g) => [g.group, g.rank]));
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          const gi = groupRank.get(ranking[i]?.group ?? '') ?? 0;
          const gj = groupRank.get(ranking[j]?.group ?? '') ?? 0;
          expect(gi).toBeLessThanOrEqual(gj);
        }
      }
      // deterministic: the same input gives the same list
      expect(order(computeFairTree(tree, usage, { relativeTieTolerance: 0 }).tenants)).toEqual(order(ranking));
      expect(ranks(ranking)).toEqual(Object.fromEntries([...reference].map(([t, r]) => [t, n - r + 1])));
    }
  });
});
