/**
 * The worker's own fair-share pick (worker/pick.ts) over a published ranking:
 * cost per pick with 1,000 and 10,000 active tenants, where the first K
 * ranked tenants have no work for this worker's capabilities or are cooling down.
 *
 *   make build && node dist/bench/fairshare-pick.js
 */
import type { RankingEntry } from '../protocol/index.js';
import { pickTenant } from '../worker/pick.js';

function ranking(n: number): RankingEntry[] {
  return Array.from({ length: n }, (_, i) => ({ tenant: `g${i % 37}.u${i}`, group: `g${i % 37}`, user: `u${i}`, capability: i % 5 === 0 ? 'gpu' : 'cpu', backlog: 1 + (i % 7), rank: i + 1 }));
}

for (const n of [1000, 10_000]) {
  const r = ranking(n);
  for (const skipped of [0, Math.floor(n / 10), n - 1]) {
    const cooldown = new Map<RankingEntry, number>();
    const now = Date.now();
    for (let i = 0; i < skipped; i++) cooldown.set(r[i]!, now + 60_000);
    const caps = new Set(['cpu', 'image']);
    const iters = Math.max(200, Math.floor(2_000_000 / Math.max(1, skipped)));
    let sink = 0;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < iters; k++) sink += pickTenant(r, caps, cooldown, now)?.rank ?? 0;
    const us = Number(process.hrtime.bigint() - t0) / 1000 / iters;
    console.log(JSON.stringify({ bench: 'worker-pick', tenants: n, skippedBeforeHit: skipped, microsPerPick: +us.toFixed(3), check: sink > 0 }));
  }
}
