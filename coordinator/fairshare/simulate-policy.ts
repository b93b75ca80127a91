import { DecayedUsage, type UsageRecord } from './decayed-usage.js';
import { InvalidFairShareOptionError } from './errors.js';
import { computeFairTree, type FairTreeOptions, type ShareTree, type TenantRank } from './fair-tree.js';
import type { FairShareOptions } from './options.js';

export interface SimulatePolicyOptions extends FairShareOptions, FairTreeOptions {
  /** Length of each report window, ms. */
  windowMs: number;
  /** Start of the first window, ms epoch. @default the earliest record */
  from?: number;
  /** End of the last window (exclusive), ms epoch. @default just after the latest record */
  to?: number;
  /** Refuse to produce more windows than this (a guard against a tiny windowMs). @default 100_000 */
  maxWindows?: number;
  /** Checked between windows. */
  signal?: AbortSignal;
  /** Called after each window with (windows done, windows in all). */
  onProgress?: (done: number, total: number) => void;
}

export interface PolicyWindow {
  /** Window start (inclusive), ms epoch. */
  from: number;
  /** Window end (exclusive), ms epoch; the ranking is evaluated at this instant. */
  to: number;
  /** Fair Tree ranking at `to`, from all usage charged before `to`, decayed. */
  ranking: TenantRank[];
  /** Each group's rank among groups at `to` (1 = best; tied groups share a rank). */
  groupRank: Record<string, number>;
  /** Each group's fraction of the (undecayed) usage charged inside this window; all 0 if nothing was charged. */
  groupUsageFraction: Record<string, number>;
}

/**
 * Replays a usage ledger under a chosen policy (half-life, GPU weight, share
 * tree) and reports, window by window, the ranking that policy would publish and
 * the share of usage each group actually got. Records before `from` still count
 * towards the decayed usage (warm-up); records at or after `to` are ignored.
 * The records themselves are replayed as given: this shows how a policy would
 * rank the observed history, not how the history would have changed under it.
 */
export function simulatePolicy(
  records: readonly UsageRecord[],
  tree: ShareTree,
  opts: SimulatePolicyOptions,
): { windows: PolicyWindow[] } {
  const { windowMs } = opts;
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) {
    throw new InvalidFairShareOptionError('windowMs', windowMs, 'must be a finite number of milliseconds > 0');
  }
  const usage = new DecayedUsage(opts);
  const sorted = [...records].sort((a, b) => a.at - b.at);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const from = opts.from ?? first?.at;
  const to = opts.to ?? (last === undefined ? undefined : last.at + 1);
  if (from === undefined || to === undefined) return { windows: [] };
  checkTime('from', from);
  checkTime('to', to);
  if (to <= from) throw new InvalidFairShareOptionError('to', to, `must be after from (${from})`);
  const maxWindows = opts.maxWindows ?? 100_000;
  const total = Math.ceil((to - from) / windowMs);
  if (total > maxWindows) {
    throw new InvalidFairShareOptionError('windowMs', windowMs, `gives ${total} windows over [${from}, ${to}), more than maxWindows = ${maxWindows}`);
  }

  const treeGroups = Object.keys(tree.groups);
  const windows: PolicyWindow[] = [];
  let next = 0;
  // warm-up: usage before the first window still decays into it
  while (next < sorted.length && (sorted[next]?.at ?? Infinity) < from) {
    const rec = sorted[next++];
    if (rec !== undefined) usage.add(rec);
  }
  for (let k = 0; k < total; k++) {
    opts.signal?.throwIfAborted();
    const start = from + k * windowMs;
    const end = Math.min(from + (k + 1) * windowMs, to);
    const charged = new Map<string, number>(treeGroups.map((g) => [g, 0]));
    let chargedTotal = 0;
    while (next < sorted.length && (sorted[next]?.at ?? Infinity) < end) {
      const rec = sorted[next++];
      if (rec === undefined) continue;
      usage.add(rec);
      const amount = usage.charge(rec);
      charged.set(rec.group, (charged.get(rec.group) ?? 0) + amount);
      chargedTotal += amount;
    }
    const result = computeFairTree(tree, usage.usageAt(end), opts);
    const groupUsageFraction: Record<string, number> = {};
    for (const [group, amount] of charged) groupUsageFraction[group] = chargedTotal > 0 ? amount / chargedTotal : 0;
    const groupRank: Record<string, number> = {};
    for (const g of result.groups) groupRank[g.group] = g.rank;
    windows.push({ from: start, to: end, ranking: result.tenants, groupRank, groupUsageFraction });
    opts.onProgress?.(k + 1, total);
  }
  return { windows };
}

function checkTime(option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidFairShareOptionError(option, value, 'must be a finite ms epoch');
  }
}
