/**
 * The accountant: a fold of the ledger into quotas, shares, group
 * memberships and usage (per quota period and decayed for fair share).
 * The coordinator is the single accountant; it decides credit (how many of a
 * tenant's planned tasks may be released) from this state, so caps and
 * quotas hold by construction — no compare-and-set between workers.
 *
 * Usage charged = wallSeconds × allocatedCores core-seconds (Slurm-style
 * allocation accounting; measured CPU seconds are reported separately), plus
 * gpuWeight × GPU-seconds for fair share.
 */
import { createHash } from 'node:crypto';
import { ApiCode, UbatchApiError, type LedgerEntry } from '../protocol/index.js';
import type { LedgerRecord } from '../ledger/index.js';
import { DecayedUsage, quotaPeriod, type QuotaPeriodSpec, type ShareTree } from './fairshare/index.js';

export interface QuotaLimits {
  cpu_hours?: number;
  gpu_hours?: number;
  max_concurrent?: number;
  stored_bytes?: number;
}
export const QUOTA_FIELDS = ['cpu_hours', 'gpu_hours', 'max_concurrent', 'stored_bytes'] as const;

interface PeriodUsage {
  start: number;
  coreSeconds: number;
  gpuSeconds: number;
}

export interface QuotaView {
  scope: 'user' | 'group';
  name: string;
  limits: QuotaLimits;
  period: { start: string; end: string };
  used: { cpu_hours: number; gpu_hours: number; stored_bytes: number };
}

export class Accountant {
  readonly groupShares = new Map<string, number>();
  readonly userShares = new Map<string, Map<string, number>>();
  /** user → groups in the order they were granted (the first is the default) */
  readonly memberships = new Map<string, string[]>();
  readonly quotas = new Map<string, QuotaLimits>();
  private readonly period = new Map<string, PeriodUsage>();
  readonly decayed: DecayedUsage;
  /** bytes written by accepted attempts, per 'u:<user>' and 'g:<group>' (the stored-bytes quota) */
  private readonly stored = new Map<string, number>();
  /** charged core-seconds of successful attempts of similar tasks (same kind and parameters): the cost model's history */
  private readonly history = new Map<string, { n: number; sum: number }>();
  applied = 0;

  constructor(
    readonly opts: { halfLifeMs: number; gpuWeight?: number; period?: QuotaPeriodSpec; now?: () => number } = { halfLifeMs: 7 * 86_400_000 },
  ) {
    this.decayed = new DecayedUsage({ halfLifeMs: opts.halfLifeMs, gpuWeight: opts.gpuWeight ?? 10, ...(opts.now ? { now: opts.now } : {}) });
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  apply(r: LedgerRecord): void {
    this.applyEntry(r.entry, r.time);
  }

  applyEntry(e: LedgerEntry, at: number): void {
    this.applied++;
    switch (e.kind) {
      case 'share.set':
        if (e.scope === 'group') this.groupShares.set(e.group, e.share);
        else {
          let m = this.userShares.get(e.group);
          if (!m) this.userShares.set(e.group, (m = new Map()));
          m.set(e.user, e.share);
          const groups = this.memberships.get(e.user) ?? [];
          if (!groups.includes(e.group)) groups.push(e.group);
          this.memberships.set(e.user, groups);
          if (!this.groupShares.has(e.group)) this.groupShares.set(e.group, 1);
        }
        break;
      case 'quota.set': {
        const key = e.scope === 'group' ? `g:${e.group}` : `u:${e.user}`;
        const cur = { ...(this.quotas.get(key) ?? {}) } as Record<string, number>;
        for (const [k, v] of Object.entries(e.limits)) {
          if (v < 0) delete cur[k];
          else cur[k] = v;
        }
        this.quotas.set(key, cur as QuotaLimits);
        break;
      }
      case 'task.charged':
        for (const c of e.charges) {
          const core = c.usage.wallSeconds * (c.usage.allocatedCores ?? 1);
          const gpu = c.usage.gpuSeconds;
          this.decayed.add({ group: e.group, user: e.user, coreSeconds: core, gpuSeconds: gpu, at });
          this.addPeriod(`u:${e.user}`, core, gpu, at);
          this.addPeriod(`g:${e.group}`, core, gpu, at);
          if (c.outcome === 'ok') {
            for (const k of [`u:${e.user}`, `g:${e.group}`]) this.stored.set(k, (this.stored.get(k) ?? 0) + c.usage.bytesWritten);
            const hk = similarityKey(c.provenance.code.kind, c.provenance.params);
            const h = this.history.get(hk) ?? { n: 0, sum: 0 };
            h.n += 1;
            h.sum += core;
            this.history.set(hk, h);
          }
        }
        break;
      default:
        break;
    }
  }

  private addPeriod(key: string, core: number, gpu: number, at: number): void {
    const { start } = quotaPeriod(at, this.opts.period ?? 'month');
    let p = this.period.get(key);
    if (!p || p.start < start) this.period.set(key, (p = { start, coreSeconds: 0, gpuSeconds: 0 }));
    if (p.start > start) return; // a late entry of an earlier period
    p.coreSeconds += core;
    p.gpuSeconds += gpu;
  }

  /**
   * Cost of a job: the per-kind model, refined by the ledger's history of
   * similar tasks (same kind and parameters) once there are enough of them.
   */
  estimate(kind: string, params: unknown, tasks: number, modelCoreSeconds: number): { coreSeconds: number; basis: string } {
    const h = this.history.get(similarityKey(kind, params));
    if (h && h.n >= MIN_HISTORY) {
      return { coreSeconds: (h.sum / h.n) * tasks, basis: `ledger history: mean of ${h.n} successful attempts of tasks with the same kind and parameters` };
    }
    return { coreSeconds: modelCoreSeconds, basis: `per-kind cost model${h ? ` (only ${h.n} similar attempts in the ledger so far)` : ''}` };
  }

  storedBytes(scope: 'user' | 'group', name: string): number {
    return this.stored.get(scope === 'group' ? `g:${name}` : `u:${name}`) ?? 0;
  }

  usedThisPeriod(key: string): { cpu_hours: number; gpu_hours: number } {
    const { start } = quotaPeriod(this.now(), this.opts.period ?? 'month');
    const p = this.period.get(key);
    if (!p || p.start < start) return { cpu_hours: 0, gpu_hours: 0 };
    return { cpu_hours: p.coreSeconds / 3600, gpu_hours: p.gpuSeconds / 3600 };
  }

  quotaView(scope: 'user' | 'group', name: string): QuotaView {
    const key = scope === 'group' ? `g:${name}` : `u:${name}`;
    const { start, end } = quotaPeriod(this.now(), this.opts.period ?? 'month');
    return { scope, name, limits: this.quotas.get(key) ?? {}, period: { start: new Date(start).toISOString(), end: new Date(end).toISOString() }, used: { ...this.usedThisPeriod(key), stored_bytes: this.stored.get(key) ?? 0 } };
  }

  /** the group a job is charged to; membership comes from operators' share entries, never from the spec alone */
  resolveGroup(user: string, requested: string | undefined): string {
    const groups = this.memberships.get(user) ?? [];
    if (requested === undefined) return groups[0] ?? 'default';
    if (requested === 'default' && groups.length === 0) return 'default';
    if (!groups.includes(requested)) {
      throw new UbatchApiError(ApiCode.Forbidden, `user ${user} is not a member of group ${requested}${groups.length ? ` (member of: ${groups.join(', ')})` : ' (no group memberships: use the default group or ask an operator)'}`, '/spec/group');
    }
    return requested;
  }

  /** reject a submission whose estimate exceeds what is left of a quota */
  checkSubmit(user: string, group: string, estimateCoreSeconds: number, estimateGpuSeconds = 0): void {
    for (const [scope, name] of [['user', user], ['group', group]] as const) {
      const v = this.quotaView(scope, name);
      const est = estimateCoreSeconds / 3600;
      if (v.limits.cpu_hours !== undefined && v.used.cpu_hours + est > v.limits.cpu_hours) {
        throw new UbatchApiError(
          ApiCode.OverQuota,
          `over quota: ${scope} ${name} has used ${fmt(v.used.cpu_hours)} of ${fmt(v.limits.cpu_hours)} cpu-hours this period (${v.period.start.slice(0, 10)} to ${v.period.end.slice(0, 10)}); this job is estimated at ${fmt(est)} cpu-hours`,
          '/spec',
          { scope, name, used_cpu_hours: v.used.cpu_hours, limit_cpu_hours: v.limits.cpu_hours, estimate_cpu_hours: est },
        );
      }
      if (v.limits.stored_bytes !== undefined && v.used.stored_bytes >= v.limits.stored_bytes) {
        throw new UbatchApiError(ApiCode.OverQuota, `over quota: ${scope} ${name} stores ${v.used.stored_bytes} bytes of outputs; the limit is ${v.limits.stored_bytes}`, '/spec', { scope, name, stored_bytes: v.used.stored_bytes, limit_stored_bytes: v.limits.stored_bytes });
      }
      const estG = estimateGpuSeconds / 3600;
      if (v.limits.gpu_hours !== undefined && estG > 0 && v.used.gpu_hours + estG > v.limits.gpu_hours) {
        throw new UbatchApiError(ApiCode.OverQuota, `over quota: ${scope} ${name} has used ${fmt(v.used.gpu_hours)} of ${fmt(v.limits.gpu_hours)} gpu-hours this period; this job is estimated at ${fmt(estG)} gpu-hours`, '/spec', { scope, name });
      }
    }
  }

  /** quota exhausted for this period: hold (do not release) the tenant's tasks */
  exhausted(user: string, group: string): boolean {
    for (const key of [`u:${user}`, `g:${group}`]) {
      const lim = this.quotas.get(key);
      if (!lim) continue;
      const used = this.usedThisPeriod(key);
      if (lim.cpu_hours !== undefined && used.cpu_hours >= lim.cpu_hours) return true;
      if (lim.gpu_hours !== undefined && used.gpu_hours >= lim.gpu_hours) return true;
      if (lim.stored_bytes !== undefined && (this.stored.get(key) ?? 0) >= lim.stored_bytes) return true;
    }
    return false;
  }

  maxConcurrent(scope: 'user' | 'group', name: string): number {
    return this.quotas.get(scope === 'group' ? `g:${name}` : `u:${name}`)?.max_concurrent ?? Number.POSITIVE_INFINITY;
  }

  shareTreeFor(tenants: Iterable<{ group: string; user: string }>): ShareTree {
    const tree: ShareTree = { groups: {} };
    for (const t of tenants) {
      const g = (tree.groups[t.group] ??= { share: this.groupShares.get(t.group) ?? 1, users: {} });
      g.users[t.user] = { share: this.userShares.get(t.group)?.get(t.user) ?? 1 };
    }
    return tree;
  }

  usageLookup(at = this.now()): (group: string, user?: string) => number {
    return (g, u) => (u === undefined ? this.decayed.groupValue(g, at) : this.decayed.value(g, u, at));
  }
}

const MIN_HISTORY = 10;

/** tasks are similar when they have the same kind and the same parameters */
function similarityKey(kind: string, params: unknown): string {
  return `${kind}|${createHash('sha1').update(JSON.stringify(params ?? {})).digest('hex')}`;
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(3);
}
