import { describe, expect, it } from 'vitest';
import { InvalidBacklogError, TenantPicker, type TenantRank } from '../../coordinator/fairshare/index.js';
import { mulberry32 } from '../../astro/random.js';


function ranked(tenants: string[], ranks?: number[]): TenantRank[] {
  return tenants.map((tenant, i) => {
    const dot = tenant.indexOf('.');
    const rank = ranks?.[i] ?? i + 1;
    return {
      tenant,
      group: tenant.slice(0, dot),
      user: tenant.slice(dot + 1),
      rank,
      fairShareFactor: (tenants.length - rank + 1) / tenants.length,
      levelFs: { group: 1, user: 1 },
      decayedUsage: 0,
      share: { group: 1, user: 1 },
    };
  });
}

describe('TenantPicker', () => {
  it('picks the best-ranked tenant with backlog for one of my capabilities', () => {
    const picker = new TenantPicker(ranked(['g.a', 'g.b', 'g.c', 'h.d']));
    expect(picker.pick(['cpu'])).toBeUndefined();
    picker.setBacklog('g.c', 'cpu', 3);
    picker.setBacklog('g.b', 'gpu', 1);
    picker.setBacklog('h.d', 'cpu', 9);
    expect(picker.pick(['cpu'])).toBe('g.c');
    expect(picker.pick(['gpu'])).toBe('g.b');
    expect(picker.pick(['cpu', 'gpu'])).toBe('g.b');
    expect(picker.pick(['cpu', 'gpu'], new Set(['g.b']))).toBe('g.c');
    expect(picker.pick(['cpu', 'gpu'], new Set(['g.b', 'g.c']))).toBe('h.d');
    expect(picker.pick(['cpu', 'gpu'], new Set(['g.b', 'g.c', 'h.d']))).toBeUndefined();
    expect(picker.pick(['fpga'])).toBeUndefined();
    picker.setBacklog('g.c', 'cpu', 0);
    expect(picker.pick(['cpu'])).toBe('h.d');
    expect(picker.backlogOf('h.d', 'cpu')).toBe(9);
    expect(picker.backlogOf('g.c', 'cpu')).toBe(0);
  });

  it('follows a new ranking and keeps the backlog', () => {
    const picker = new TenantPicker(ranked(['g.a', 'g.b']));
    picker.setBacklog('g.a', 'cpu', 1);
    picker.setBacklog('g.b', 'cpu', 1);
    expect(picker.pick(['cpu'])).toBe('g.a');
    picker.update(ranked(['g.b', 'g.a']));
    expect(picker.pick(['cpu'])).toBe('g.b');
  });

  it('sorts the ranking by rank, keeping array order inside ties', () => {
    const picker = new TenantPicker(ranked(['g.z', 'g.y', 'g.x'], [3, 1, 1]));
    for (const t of ['g.x', 'g.y', 'g.z']) picker.setBacklog(t, 'cpu', 1);
    expect(picker.pick(['cpu'])).toBe('g.y');
    expect(picker.positionOfTenant('g.x')).toBe(1);
    expect(picker.positionOfTenant('g.z')).toBe(2);
  });

  it('serves tenants missing from the ranking last, in backlog-arrival order', () => {
    const picker = new TenantPicker(ranked(['g.a']));
    picker.setBacklog('new.two', 'cpu', 1);
    picker.setBacklog('new.one', 'cpu', 1);
    expect(picker.pick(['cpu'])).toBe('new.two');
    picker.setBacklog('g.a', 'cpu', 1);
    expect(picker.pick(['cpu'])).toBe('g.a');
    // new.two drains and comes back: it queues behind new.one now
    picker.setBacklog('new.two', 'cpu', 0);
    picker.setBacklog('new.two', 'gpu', 2);
    expect(picker.pick(['cpu', 'gpu'], new Set(['g.a']))).toBe('new.one');
    picker.update(ranked(['g.a', 'new.two']));
    expect(picker.pick(['cpu', 'gpu'], new Set(['g.a']))).toBe('new.two');
    // a tenant dropped from the ranking keeps being served, after the ranked ones
    picker.update(ranked(['new.one']));
    expect(picker.pick(['cpu'])).toBe('new.one');
    expect(picker.pick(['cpu', 'gpu'], new Set(['new.one']))).toBe('g.a');
  });

  it('holds tenants out of every pick until released, across ranking updates', () => {
    const picker = new TenantPicker(ranked(['g.a', 'g.b', 'g.c']));
    for (const t of ['g.a', 'g.b', 'g.c', 'new.x']) picker.setBacklog(t, 'cpu', 1);
    picker.setHeld('g.a', true);
    picker.setHeld('g.b', true);
    expect(picker.pick(['cpu'])).toBe('g.c');
    expect(picker.pick(['cpu'], new Set(['g.c']))).toBe('new.x');
    picker.update(ranked(['g.c', 'g.b', 'g.a']));
    expect(picker.pick(['cpu'], new Set(['g.c']))).toBe('new.x');
    picker.setHeld('g.b', false);
    expect(picker.pick(['cpu'], new Set(['g.c']))).toBe('g.b');
    // held before it has any position, then gets backlog: still held
    picker.setHeld('late.y', true);
    picker.setBacklog('late.y', 'gpu', 1);
    expect(picker.pick(['gpu'])).toBeUndefined();
    picker.setHeld('late.y', false);
    expect(picker.pick(['gpu'])).toBe('late.y');
  });

  it('rejects bad backlog counts', () => {
    const picker = new TenantPicker([]);
    expect(() => picker.setBacklog('g.a', 'cpu', -1)).toThrow(InvalidBacklogError);
    expect(() => picker.setBacklog('g.a', 'cpu', Number.NaN)).toThrow(/g\.a.*cpu/);
  });

  it('equals a brute-force pick over random rankings, backlogs and exclusions', () => {
    const rand = mulberry32(20240601);
    const capabilities = ['cpu', 'gpu', 'bigmem', 'fpga', 'arm'];
    const pickFrom = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    // coverage of the interesting outcomes, checked at the end
    const outcomes = { ranked: 0, unranked: 0, none: 0, excludedBest: 0, heldBest: 0 };
    for (let trial = 0; trial < 40; trial++) {
      const nTenants = 1 + Math.floor(rand() * (trial < 20 ? 80 : 1500));
      const universe = Array.from({ length: nTenants + 20 }, (_, i) => `g${i % 7}.u${i}`);
      const membership = trial % 2 === 0 ? 0.9 : 0.3;
      const makeRanking = (): TenantRank[] => {
        // some trials rank only part of the tenants with backlog, so the unranked tail matters
        const members = universe.filter(() => rand() < membership).slice(0, nTenants);
        for (let i = members.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          const tmp = members[i] as string;
          members[i] = members[j] as string;
          members[j] = tmp;
        }
        // random ties: rank increases by 0 or 1 step at a time (competition ranks need not be exact here)
        let rank = 1;
        return ranked(members, members.map(() => (rand() < 0.3 ? rank : ++rank)));
      };
      let ranking = makeRanking();
      const picker = new TenantPicker(ranking);
      // reference state
      // tenant -> capability -> count; a tenant is (re)inserted when its backlog becomes non-empty
      const backlog = new Map<string, Map<string, number>>();
      const sortRanking = (): string[] =>
        ranking.map((r, i) => ({ r, i })).sort((a, b) => a.r.rank - b.r.rank || a.i - b.i).map((x) => x.r.tenant);
      let sortedRanking = sortRanking();
      let inRanking = new Set(sortedRanking);
      const bruteOrder = (): string[] =>
        // unranked tenants come last, in the order their backlog became non-empty
        [...sortedRanking, ...[...backlog.keys()].filter((t) => !inRanking.has(t))];
      const held = new Set<string>();
      const brutePick = (caps: string[], exclude: Set<string>, orderNow = bruteOrder()): string | undefined =>
        orderNow.find((t) => !exclude.has(t) && !held.has(t) && caps.some((c) => (backlog.get(t)?.get(c) ?? 0) > 0));

      for (let step = 0; step < 400; step++) {
        const action = rand();
        if (action < 0.1) {
          const tenant = pickFrom(universe);
          const h = rand() < 0.6;
          picker.setHeld(tenant, h);
          if (h) held.add(tenant);
          else held.delete(tenant);
          expect(picker.isHeld(tenant)).toBe(h);
        } else if (action < 0.6) {
          const tenant = pickFrom(universe);
          const cap = pickFrom(capabilities);
          const count = rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 5);
          picker.setBacklog(tenant, cap, count);
          if (count === 0) {
            backlog.get(tenant)?.delete(cap);
            if (backlog.get(tenant)?.size === 0) backlog.delete(tenant);
          } else {
            if (!backlog.has(tenant)) backlog.set(tenant, new Map());
            backlog.get(tenant)?.set(cap, count);
          }
        } else if (action < 0.97) {
          const caps = capabilities.filter(() => rand() < 0.4);
          const exclude = new Set(universe.filter(() => rand() < 0.1));
          const orderNow = bruteOrder();
          const expected = brutePick(caps, exclude, orderNow);
          expect(picker.pick(caps, exclude)).toBe(expected);
          const unexcluded = brutePick(caps, new Set(), orderNow);
          expect(picker.pick(caps)).toBe(unexcluded);
          if (expected === undefined) outcomes.none++;
          else if (inRanking.has(expected)) outcomes.ranked++;
          else outcomes.unranked++;
          if (expected !== unexcluded) outcomes.excludedBest++;
          const ignoringHeld = orderNow.find((t) => caps.some((c) => (backlog.get(t)?.get(c) ?? 0) > 0));
          if (ignoringHeld !== undefined && held.has(ignoringHeld)) outcomes.heldBest++;
        } else {
          ranking = makeRanking();
          sortedRanking = sortRanking();
          inRanking = new Set(sortedRanking);
          picker.update(ranking);
        }
      }
    }
    expect(outcomes.ranked).toBeGreaterThan(100);
    expect(outcomes.unranked).toBeGreaterThan(100);
    expect(outcomes.none).toBeGreaterThan(10);
    expect(outcomes.excludedBest).toBeGreaterThan(100);
    expect(outcomes.heldBest).toBeGreaterThan(50);
  });

  it('compacts the places left by many short-lived unranked tenants', () => {
    const picker = new TenantPicker(ranked(['g.a', 'g.b']));
    for (let i = 0; i < 5000; i++) {
      picker.setBacklog(`x.t${i}`, 'cpu', 1);
      if (i % 10 !== 0) picker.setBacklog(`x.t${i}`, 'cpu', 0);
    }
    // survivors: t0, t10, t20, ... in arrival order, all after the ranked tenants
    expect(picker.pick(['cpu'])).toBe('x.t0');
    picker.setBacklog('g.b', 'cpu', 1);
    expect(picker.pick(['cpu'])).toBe('g.b');
    expect(picker.pick(['cpu'], new Set(['g.b', 'x.t0']))).toBe('x.t10');
    const survivors = Array.from({ length: 500 }, (_, k) => `x.t${k * 10}`);
    const exclude = new Set(['g.b', ...survivors.slice(0, 499)]);
    expect(picker.pick(['cpu'], exclude)).toBe('x.t4990');
    // positions stay dense after compaction: ranked 2 + at most 2 * survivors
    expect(picker.positionOfTenant('x.t4990')).toBeLessThan(2 + 2 * 500 + 1100);
  });
});
