/**
 * Leader lease for the single accountant: one KV key `leader` in ub-jobs
 * holding { id, until }. Taken with create() when absent, or with an update
 * at the observed revision once expired; renewed at a third of its length.
 *
 * Known limit (see DESIGN.md): on nats-server 2.9.10 revision checks are not
 * atomic on R3 streams, so on a cluster two coordinators could briefly both
 * believe they lead; every coordinator write that matters is idempotent
 * (msgID-deduplicated tasks and ledger entries) so this cannot duplicate work.
 */
import type { KV } from '@nats-io/kv';
import { decode, encode, KvKey, type Log } from '../protocol/index.js';

export class LeaderLease {
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private held = false;

  constructor(
    private readonly kv: KV,
    readonly id: string,
    private readonly leaseMs: number,
    private readonly log: Log,
    private readonly onLost: () => void,
  ) {}

  get isLeader(): boolean {
    return this.held;
  }

  private async tryTake(): Promise<boolean> {
    const now = Date.now();
    const value = encode({ id: this.id, until: now + this.leaseMs });
    const cur = await this.kv.get(KvKey.leader);
    try {
      if (!cur || cur.operation !== 'PUT') {
        this.revision = cur ? await this.kv.update(KvKey.leader, value, cur.revision) : await this.kv.create(KvKey.leader, value);
        return true;
      }
      const holder = decode(cur.value) as { id?: string; until?: number };
      if (holder.id === this.id || (holder.until ?? 0) < now) {
        this.revision = await this.kv.update(KvKey.leader, value, cur.revision);
        return true;
      }
    } catch {
      // somebody else renewed or took it between our read and write
    }
    return false;
  }

  /** wait until this coordinator holds the lease */
  async acquire(signal?: AbortSignal): Promise<void> {
    let waitingLogged = false;
    while (!signal?.aborted) {
      if (await this.tryTake()) break;
      if (!waitingLogged) {
        this.log.info({ id: this.id }, 'another coordinator holds the lease; standing by');
        waitingLogged = true;
      }
      await new Promise((r) => setTimeout(r, Math.max(100, this.leaseMs / 4)));
    }
    if (signal?.aborted) return;
    this.held = true;
    this.log.info({ id: this.id }, 'leader lease acquired');
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
  }

  private renewing = false;

  private async renew(): Promise<void> {
    if (!this.held || this.renewing) return;
    this.renewing = true;
    try {
      this.revision = await this.kv.update(KvKey.leader, encode({ id: this.id, until: Date.now() + this.leaseMs }), this.revision);
    } catch (err) {
      let cur;
      try {
        cur = await this.kv.get(KvKey.leader);
      } catch (readErr) {
        // the bucket cannot be reached (stalled or re-electing stream leader, lost quorum): do not stop a
        // sole coordinator for that; keep the lease and retry. A standby that could write the key after
        // our lease expired is seen on the next successful read, and we stop then (writes are idempotent)
        this.log.warn({ err: readErr, id: this.id }, 'leader lease renewal failed (KV unreachable); retrying');
        return;
      }
      const holder = cur && cur.operation === 'PUT' ? (decode(cur.value) as { id?: string }) : undefined;
      if (holder?.id === this.id && cur) {
        this.revision = cur.revision; // our own write landed but the reply was lost
        return;
      }
      this.held = false;
      if (this.timer) clearInterval(this.timer);
      this.log.error({ err, id: this.id, holder: holder?.id }, 'leader lease lost');
      this.onLost();
    } finally {
      this.renewing = false;
    }
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (!this.held) return;
    this.held = false;
    await this.kv.update(KvKey.leader, encode({ id: this.id, until: 0 }), this.revision).catch(() => undefined);
  }
}
