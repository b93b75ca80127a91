import { describe, expect, it } from 'vitest';
import type { RankingEntry } from '../../protocol/index.js';
import { pickTenant } from '../../worker/index.js';

const e = (tenant: string, capability: string, backlog: number, rank: number): RankingEntry => ({ tenant, group: tenant.split('.')[0]!, user: tenant.split('.')[1]!, capability, backlog, rank });

describe('pickTenant (the worker side of fair share)', () => {
  const ranking = [e('a.x', 'gpu', 5, 1), e('b.y', 'cpu', 0, 2), e('c.z', 'cpu', 3, 3), e('d.w', 'cpu', 9, 4)];
  it('takes the best-ranked tenant with released work in one of our capabilities', () => {
    expect(pickTenant(ranking, new Set(['cpu']), new Map(), 0)?.tenant).toBe('c.z');
    expect(pickTenant(ranking, new Set(['gpu', 'cpu']), new Map(), 0)?.tenant).toBe('a.x');
    expect(pickTenant(ranking, new Set(['image']), new Map(), 0)).toBeUndefined();
  });
  it('skips tenants whose queue was just found empty until their cooldown ends', () => {
    const cd = new Map([[ranking[2]!, 100]]);
    expect(pickTenant(ranking, new Set(['cpu']), cd, 50)?.tenant).toBe('d.w');
    expect(pickTenant(ranking, new Set(['cpu']), cd, 150)?.tenant).toBe('c.z');
  });
});
