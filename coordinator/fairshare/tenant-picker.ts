import { InvalidBacklogError } from './errors.js';
import type { TenantRank } from './fair-tree.js';

/**
 * A set of positions (0, 1, 2, ...) kept as a two-level bitset: `words` holds one
 * bit per position, `summary` one bit per non-empty word. Finding the next
 * non-empty word reads the summary words in between: at most 10 for 10,000
 * positions.
 */
class PositionSet {
  private words = new Uint32Array(0);
  private summary = new Uint32Array(0);

  add(pos: number): void {
    this.ensure(pos);
    const w = pos >>> 5;
    this.words[w] = (this.words[w] ?? 0) | (1 << (pos & 31));
    const s = w >>> 5;
    this.summary[s] = (this.summary[s] ?? 0) | (1 << (w & 31));
  }

  delete(pos: number): void {
    const w = pos >>> 5;
    if (w >= this.words.length) return;
    const word = (this.words[w] ?? 0) & ~(1 << (pos & 31));
    this.words[w] = word;
    if (word === 0) {
      const s = w >>> 5;
      this.summary[s] = (this.summary[s] ?? 0) & ~(1 << (w & 31));
    }
  }

  clear(): void {
    this.words.fill(0);
    this.summary.fill(0);
  }

  /** Bits of positions 32w .. 32w+31 (0 beyond the end). */
  word(w: number): number {
    return this.words[w] ?? 0;
  }

  /** The smallest index >= from of a non-empty word, or -1. */
  nextWordAtOrAfter(from: number): number {
    let s = from >>> 5;
    if (s >= this.summary.length) return -1;
    let bits = (this.summary[s] ?? 0) & (-1 << (from & 31));
    while (bits === 0) {
      s++;
      if (s >= this.summary.length) return -1;
      bits = this.summary[s] ?? 0;
    }
    return (s << 5) | lowestBit(bits);
  }

  private ensure(pos: number): void {
    const needWords = (pos >>> 5) + 1;
    if (needWords <= this.words.length) return;
    const words = new Uint32Array(Math.max(needWords, this.words.length * 2, 32));
    words.set(this.words);
    this.words = words;
    const summary = new Uint32Array(Math.ceil(words.length / 32));
    summary.set(this.summary);
    this.summary = summary;
  }
}

/** Index (0..31) of the lowest set bit of a non-zero 32-bit value. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/**
 * Chooses which tenant a worker serves next: the best-ranked tenant that has
 * backlog for one of the worker's capabilities.
 *
 * The ranking's order is the priority order (ties in rank are broken by their
 * order in the array, which `fairTreeRanking` makes deterministic). Each
 * capability keeps a two-level bitset over rank positions of the tenants with
 * backlog; `pick` walks the non-empty 32-position words in order, ORs the
 * capabilities' words and masks held tenants (`setHeld`) with one AND, so its cost
 * is a few word operations per capability plus one Set lookup per tenant it skips
 * because of the ad-hoc `exclude` argument. `setBacklog` and `setHeld` are O(1),
 * `update` is O(tenants + backlog entries).
 *
 * Tenants with backlog but absent from the ranking (new since the last
 * recompute) come after every ranked tenant, in the order their backlog became
 * non-empty.
 */
export class TenantPicker {
  /** position -> tenant; unranked tenants whose backlog emptied leave a hole */
  private order: (string | undefined)[] = [];
  /** ranked tenants in priority order, kept to compact the holes */
  private ranked: string[] = [];
  private readonly positionOf = new Map<string, number>();
  private rankedCount = 0;
  /** number of undefined entries in `order` */
  private holes = 0;
  /** tenant -> capability -> count (> 0 only) */
  private readonly backlog = new Map<string, Map<string, number>>();
  private readonly byCapability = new Map<string, PositionSet>();
  private readonly heldTenants = new Set<string>();
  /** positions of held tenants */
  private readonly held = new PositionSet();

  constructor(ranking: readonly TenantRank[]) {
    this.update(ranking);
  }

  /** Replaces the ranking (e.g. after a recompute) and keeps every backlog count. O(tenants + backlog entries). */
  update(ranking: readonly TenantRank[]): void {
    let inOrder = true;
    for (let i = 1; i < ranking.length && inOrder; i++) inOrder = (ranking[i]?.rank ?? 0) >= (ranking[i - 1]?.rank ?? 0);
    // fairTreeRanking's output is already in order; otherwise sort stably, equal ranks keeping the array's order
    const sorted = inOrder ? ranking : [...ranking].sort((a, b) => a.rank - b.rank);
    this.ranked = [];
    this.positionOf.clear();
    for (const { tenant } of sorted) {
      if (this.positionOf.has(tenant)) continue; // first occurrence wins
      this.positionOf.set(tenant, this.ranked.length);
      this.ranked.push(tenant);
    }
    this.rebuild(true);
  }

  /**
   * Lays out positions: the ranked tenants, then unranked tenants with backlog in
   * backlog-arrival order. `rankedPositionsSet` says positionOf already holds exactly the ranked tenants.
   */
  private rebuild(rankedPositionsSet: boolean): void {
    this.order = this.ranked.slice();
    if (!rankedPositionsSet) {
      this.positionOf.clear();
      for (let p = 0; p < this.ranked.length; p++) this.positionOf.set(this.ranked[p] as string, p);
    }
    this.rankedCount = this.order.length;
    this.holes = 0;
    for (const set of this.byCapability.values()) set.clear();
    this.held.clear();
    // Map iteration follows insertion order: the order each backlog became non-empty
    for (const [tenant, caps] of this.backlog) {
      const pos = this.positionFor(tenant);
      for (const cap of caps.keys()) this.setFor(cap).add(pos);
    }
    for (const tenant of this.heldTenants) {
      const pos = this.positionOf.get(tenant);
      if (pos !== undefined) this.held.add(pos);
    }
  }

  /** Sets the number of queued tasks of `tenant` runnable with `capability`; 0 removes it. O(1). */
  setBacklog(tenant: string, capability: string, count: number): void {
    if (typeof count !== 'number' || !Number.isFinite(count) || count < 0) {
      throw new InvalidBacklogError(tenant, capability, count);
    }
    let caps = this.backlog.get(tenant);
    if (count === 0) {
      if (caps === undefined || !caps.delete(capability)) return;
      const pos = this.positionOf.get(tenant);
      if (pos !== undefined) this.byCapability.get(capability)?.delete(pos);
      if (caps.size === 0) {
        this.backlog.delete(tenant);
        if (pos !== undefined && pos >= this.rankedCount) {
          // an unranked tenant gives its place up; if it returns it queues at the end again
          this.order[pos] = undefined;
          this.positionOf.delete(tenant);
          this.held.delete(pos);
          this.holes++;
          if (this.holes > 1024 && this.holes > this.order.length - this.holes) this.rebuild(false);
        }
      }
      return;
    }
    if (caps === undefined) {
      caps = new Map();
      this.backlog.set(tenant, caps);
    }
    caps.set(capability, count);
    this.setFor(capability).add(this.positionFor(tenant));
  }

  /** The backlog count last set for (tenant, capability); 0 if none. */
  backlogOf(tenant: string, capability: string): number {
    return this.backlog.get(tenant)?.get(capability) ?? 0;
  }

  /**
   * The best tenant with backlog for any of `capabilities`, skipping tenants in
   * `exclude` (e.g. those at their concurrency cap); undefined if none.
   */
  pick(capabilities: readonly string[], exclude?: ReadonlySet<string>): string | undefined {
    // scan word by word: OR the capabilities' words, mask the held tenants, then test the ad-hoc exclusions bit by bit
    let w = 0;
    for (;;) {
      let next = -1;
      for (const cap of capabilities) {
        const set = this.byCapability.get(cap);
        if (set === undefined) continue;
        const nw = set.nextWordAtOrAfter(w);
        if (nw >= 0 && (next < 0 || nw < next)) next = nw;
      }
      if (next < 0) return undefined;
      let bits = 0;
      for (const cap of capabilities) bits |= this.byCapability.get(cap)?.word(next) ?? 0;
      bits &= ~this.held.word(next);
      while (bits !== 0) {
        const tenant = this.order[(next << 5) | lowestBit(bits)];
        if (tenant !== undefined && (exclude === undefined || !exclude.has(tenant))) return tenant;
        bits &= bits - 1; // clear the lowest set bit
      }
      w = next + 1;
    }
  }

  /**
   * Holds a tenant out of every pick until released (e.g. while it is at its
   * concurrency cap), at O(1) per change and no cost per pick — cheaper than
   * passing a large `exclude` set to every `pick`. Survives `update`.
   */
  setHeld(tenant: string, held: boolean): void {
    if (held) {
      if (this.heldTenants.has(tenant)) return;
      this.heldTenants.add(tenant);
      // a tenant without a position gets its held bit when it gets one (positionFor)
      const pos = this.positionOf.get(tenant);
      if (pos !== undefined) this.held.add(pos);
    } else {
      if (!this.heldTenants.delete(tenant)) return;
      const pos = this.positionOf.get(tenant);
      if (pos !== undefined) this.held.delete(pos);
    }
  }

  isHeld(tenant: string): boolean {
    return this.heldTenants.has(tenant);
  }

  /** The priority position (0 = first) the picker uses for `tenant`, if it has one. */
  positionOfTenant(tenant: string): number | undefined {
    return this.positionOf.get(tenant);
  }

  private positionFor(tenant: string): number {
    let pos = this.positionOf.get(tenant);
    if (pos === undefined) {
      pos = this.order.length;
      this.positionOf.set(tenant, pos);
      this.order.push(tenant);
      if (this.heldTenants.has(tenant)) this.held.add(pos);
    }
    return pos;
  }

  private setFor(capability: string): PositionSet {
    let set = this.byCapability.get(capability);
    if (set === undefined) {
      set = new PositionSet();
      this.byCapability.set(capability, set);
    }
    return set;
  }
}
