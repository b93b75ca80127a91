import { InvalidUsageRecordError } from './errors.js';
import { compileFairShareOptions, type CompiledFairShareOptions, type FairShareOptions } from './options.js';
import { checkGroupName, checkUserName } from './tenant.js';

/** One charge from the ledger: what one tenant used, and when. */
export interface UsageRecord {
  group: string;
  user: string;
  /** Charged core-seconds (>= 0). */
  coreSeconds: number;
  /** Charged GPU-seconds (>= 0); weighted by `gpuWeight`. */
  gpuSeconds: number;
  /** When the usage is charged, ms since the Unix epoch. */
  at: number;
}

/** A decayed value folded up to `at` (ms): its value at time t is `value * 2^(-(t - at)/halfLife)`. */
interface Folded {
  value: number;
  at: number;
}

interface GroupEntry extends Folded {
  readonly users: Map<string, Folded>;
}

/**
 * Exponentially decayed usage per tenant and per group:
 *
 *     decayed(t) = sum_i usage_i * 2^(-(t - t_i) / halfLife)
 *
 * where usage_i = coreSeconds + gpuWeight * gpuSeconds.
 *
 * Each tenant (and each group) keeps one running value folded to the time of its
 * newest record, so `add` is O(1) and a query costs one `exp`. Decay is only ever
 * applied over a time *difference*, never as 2^(t/h) of an absolute time: the
 * running value is rebased on every add, so a ledger of any length or time span
 * neither overflows nor loses precision (a naive "sum of usage_i * 2^(t_i/h)"
 * overflows a double after about 1024 half-lives).
 *
 * Records may arrive out of order; an older record is decayed to the running
 * value's time before it is added. A query at a time before a tenant's newest
 * record evaluates the same formula (future records then weigh more than 1):
 * ask at or after the newest record for a meaningful figure.
 */
export class DecayedUsage {
  readonly options: CompiledFairShareOptions;
  /** ln 2 / halfLife, so that 2^(-dt/h) = exp(-dt * decayPerMs). */
  private readonly decayPerMs: number;
  /** group -> its aggregate and its users' values (nested maps: no key string built per add) */
  private readonly groups = new Map<string, GroupEntry>();
  private readonly total: Folded = { value: 0, at: 0 };
  private records = 0;
  private tenants = 0;

  constructor(opts: FairShareOptions = {}) {
    this.options = compileFairShareOptions(opts);
    this.decayPerMs = Math.LN2 / this.options.halfLifeMs;
  }

  /** Usage = coreSeconds + gpuWeight * gpuSeconds of one record, after validation. */
  charge(rec: UsageRecord): number {
    const { coreSeconds, gpuSeconds, at } = rec;
    // one cheap test on the hot path; the precise complaint is worked out only on failure
    if (
      !(
        typeof coreSeconds === 'number' &&
        typeof gpuSeconds === 'number' &&
        coreSeconds >= 0 &&
        gpuSeconds >= 0 &&
        coreSeconds < Infinity &&
        gpuSeconds < Infinity &&
        Number.isFinite(at)
      )
    ) {
      const tenant = `${String(rec.group)}.${String(rec.user)}`;
      checkNonNegative('coreSeconds', coreSeconds, tenant);
      checkNonNegative('gpuSeconds', gpuSeconds, tenant);
      throw new InvalidUsageRecordError('at', at, tenant, 'must be a finite ms epoch');
    }
    return coreSeconds + this.options.gpuWeight * gpuSeconds;
  }

  /** Charges one record. O(1). */
  add(rec: UsageRecord): void {
    const amount = this.charge(rec);
    let group = this.groups.get(rec.group);
    if (group === undefined) {
      checkGroupName(rec.group);
      group = { value: 0, at: rec.at, users: new Map() };
      this.groups.set(rec.group, group);
    }
    let tenant = group.users.get(rec.user);
    if (tenant === undefined) {
      checkUserName(rec.user);
      tenant = { value: 0, at: rec.at };
      group.users.set(rec.user, tenant);
      this.tenants++;
    }
    this.fold(tenant, amount, rec.at);
    this.fold(group, amount, rec.at);
    if (this.records === 0) this.total.at = rec.at;
    this.fold(this.total, amount, rec.at);
    this.records++;
  }

  /** Decayed usage of tenant (group, user) at `atMs` (default: the injected clock). 0 if never charged. */
  value(group: string, user: string, atMs: number = this.options.now()): number {
    const tenant = this.groups.get(group)?.users.get(user);
    return tenant === undefined ? 0 : this.valueAt(tenant, atMs);
  }

  /** Decayed usage of all tenants of `group` at `atMs` (default: now), including users absent from any share tree. */
  groupValue(group: string, atMs: number = this.options.now()): number {
    const folded = this.groups.get(group);
    return folded === undefined ? 0 : this.valueAt(folded, atMs);
  }

  /** Decayed usage of everybody at `atMs` (default: now). */
  totalValue(atMs: number = this.options.now()): number {
    return this.records === 0 ? 0 : this.valueAt(this.total, atMs);
  }

  /** Decayed usage of every tenant ever charged, keyed by `tenantKey(group, user)`. */
  snapshot(atMs: number = this.options.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const [groupName, group] of this.groups) {
      for (const [userName, tenant] of group.users) out.set(`${groupName}.${userName}`, this.valueAt(tenant, atMs));
    }
    return out;
  }

  /**
   * A usage callback for `fairTreeRanking`, frozen at `atMs`:
   * `usage(group)` is the group's decayed usage, `usage(group, user)` the tenant's.
   */
  usageAt(atMs: number = this.options.now()): (group: string, user?: string) => number {
    return (group, user) => (user === undefined ? this.groupValue(group, atMs) : this.value(group, user, atMs));
  }

  /** Number of distinct tenants charged so far. */
  get tenantCount(): number {
    return this.tenants;
  }

  /** Number of records added so far. */
  get recordCount(): number {
    return this.records;
  }

  private valueAt(folded: Folded, atMs: number): number {
    if (typeof atMs !== 'number' || Number.isNaN(atMs)) {
      throw new InvalidUsageRecordError('atMs', atMs, '*', 'query time must be a number');
    }
    if (folded.value === 0) return 0;
    return atMs === folded.at ? folded.value : folded.value * Math.exp((folded.at - atMs) * this.decayPerMs);
  }

  private fold(folded: Folded, amount: number, at: number): void {
    if (at >= folded.at) {
      // rebase the running value to the newest record's time
      if (at !== folded.at) folded.value *= Math.exp((folded.at - at) * this.decayPerMs);
      folded.value += amount;
      folded.at = at;
    } else {
      // an out-of-order (older) record decays to the running value's time
      folded.value += amount * Math.exp((at - folded.at) * this.decayPerMs);
    }
  }
}

function checkNonNegative(field: string, value: unknown, tenant: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidUsageRecordError(field, value, tenant, 'must be a finite number >= 0');
  }
}
