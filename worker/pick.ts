/**
 * Fair-share pick, done by each worker for each free slot: the best-ranked
 * tenant (the coordinator publishes entries in Fair Tree order) with released
 * work in one of this worker's capabilities, skipping (capability, tenant)
 * pairs whose consumer was just found empty. Cost is linear in the ranked
 * tenants that are skipped; bench/fairshare-pick.ts measures it.
 */
import type { RankingEntry } from '../protocol/index.js';

/**
 * `cooldown` is keyed by the ranking entry itself: a new ranking brings new
 * entries and so clears every cooldown, and no key strings are built per pick.
 */
export function pickTenant(ranking: readonly RankingEntry[], capabilities: ReadonlySet<string>, cooldown: ReadonlyMap<RankingEntry, number>, now: number): RankingEntry | undefined {
  for (const e of ranking) {
    if (e.backlog <= 0 || !capabilities.has(e.capability)) continue;
    if (cooldown.size > 0) {
      const until = cooldown.get(e);
      if (until !== undefined && until > now) continue;
    }
    return e;
  }
  return undefined;
}
