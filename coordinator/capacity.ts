/**
 * The facility's capacity = the registered worker slots over time. The
 * accountant samples the live heartbeats (KV ub-workers) every interval and
 * adds slots × elapsed seconds to an hourly bucket in KV ub-shares
 * (`capacity.<YYYYMMDDHH>`, core-seconds); reports read the buckets of their
 * window. Only the leader writes, so a plain read-modify-write is safe.
 */
import type { KV } from '@nats-io/kv';
import { decode, encode, type Log } from '../protocol/index.js';

const HOUR = 3_600_000;

export function capacityKey(atMs: number): string {
  const d = new Date(atMs);
  const p = (n: number) => String(n).padStart(2, '0');
  return `capacity.${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}`;
}

/** task slots of the live workers (heartbeats in KV ub-workers), optionally only those advertising `capability` */
export async function liveSlots(workers: KV, capability?: string): Promise<number> {
  let slots = 0;
  // keys() walks the bucket's stream: a worker that heartbeats during a slow walk can be listed twice
  const seen = new Set<string>();
  for await (const k of await workers.keys()) {
    if (seen.has(k)) continue;
    seen.add(k);
    const e = await workers.get(k).catch(() => null);
    if (!e || e.operation !== 'PUT') continue;
    const w = decode(e.value) as { slots?: unknown; capabilities?: unknown };
    if (capability !== undefined && !(Array.isArray(w.capabilities) && w.capabilities.includes(capability))) continue;
    if (typeof w.slots === 'number' && Number.isFinite(w.slots)) slots += w.slots;
  }
  return slots;
}

export class CapacityRecorder {
  private last = Date.now();
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly workers: KV,
    private readonly shares: KV,
    private readonly log: Log,
    private readonly everyMs = 30_000,
  ) {}

  start(): void {
    this.last = Date.now();
    this.timer = setInterval(() => void this.sample(), this.everyMs);
  }

  async sample(now = Date.now()): Promise<void> {
    const elapsed = (now - this.last) / 1000;
    this.last = now;
    try {
      const slots = await liveSlots(this.workers);
      if (slots <= 0 || elapsed <= 0) return;
      const key = capacityKey(now);
      const cur = await this.shares.get(key);
      const prev = cur && cur.operation === 'PUT' ? (decode(cur.value) as Bucket) : undefined;
      const bucket: Bucket = { coreSeconds: (prev?.coreSeconds ?? 0) + slots * elapsed, from: prev?.from ?? now - elapsed * 1000, to: now, slots };
      await this.shares.put(key, encode(bucket));
    } catch (err) {
      this.log.warn({ err }, 'capacity sample failed');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

interface Bucket {
  coreSeconds: number;
  /** the time span the samples in this bucket cover */
  from: number;
  to: number;
  slots: number;
}

/** capacity in core-seconds over [from, to): buckets inside count whole, the edges prorated over the span their samples cover */
export async function capacityCoreSeconds(shares: KV, from: number, to: number): Promise<number> {
  let total = 0;
  for (let h = Math.floor(from / HOUR) * HOUR; h < to; h += HOUR) {
    const e = await shares.get(capacityKey(h)).catch(() => null);
    if (!e || e.operation !== 'PUT') continue;
    const b = decode(e.value) as Partial<Bucket>;
    const cs = b.coreSeconds ?? 0;
    const bFrom = b.from ?? h;
    const bTo = b.to ?? h + HOUR;
    const span = bTo - bFrom;
    const overlap = span > 0 ? (Math.min(to, bTo) - Math.max(from, bFrom)) / span : 1;
    total += cs * Math.max(0, Math.min(1, overlap));
  }
  return total;
}
