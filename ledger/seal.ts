/**
 * Tamper evidence for UB_LEDGER: a hash chain of sealed blocks.
 *
 * The coordinator leader (the single accountant) appends a `ledger.sealed`
 * entry on `ub.ledger.seal` every N entries or T seconds. A seal covers the
 * stream sequences [firstSeq, lastSeq]: every message in that range that is
 * not itself a seal, in sequence order. It commits to
 *
 *   entry digest  d(seq) = sha256("ubatch-ledger-entry/1\n" seq "\n" subject "\n" sha256hex(data))
 *                 over the raw stored bytes, valid entry or not;
 *   balances      cumulative charges (core-, GPU-, CPU-seconds, attempts) per tenant
 *                 `<group>.<user>` and in total, from the first entry up to lastSeq,
 *                 charged as the Accountant charges them (core = wall × allocated cores;
 *                 each entry's charges summed, then entries added in sequence order);
 *   hash          sha256("ubatch-ledger-seal/1\n" block prev firstSeq lastSeq count "\n"
 *                 d(first)…d(last) balancesDigest totals) where prev is the previous
 *                 seal's hash (64 zeros for the first seal).
 *
 * The seal also lists the first 8 bytes of every digest so a verifier can name
 * the exact sequence of an altered, inserted or removed entry.
 *
 * The chain is defined by the stream alone: a seal continues the chain when its
 * firstSeq is the previous seal's lastSeq + 1, its prev is the previous seal's
 * hash and everything it claims recomputes. The sealer (coordinator/sealer.ts)
 * and the verifier (ledger/verify.ts) share this fold, so both compute the same
 * bytes; a coordinator that restarts mid-block rebuilds the head by replaying.
 */
import { createHash } from 'node:crypto';
import { SEAL_SUBJECT, type LedgerEntry, type LedgerEntryOf, type SealBalance } from '../protocol/index.js';

export const GENESIS_HASH = '0'.repeat(64);
/** the group and user fields a seal carries (seals belong to no tenant) */
export const SEAL_GROUP = '_system';
export const SEAL_USER = '_ledger';
/** how many bytes of each entry digest a seal lists */
export const DIGEST_PREFIX_BYTES = 8;

export type LedgerSeal = LedgerEntryOf<'ledger.sealed'>;

/** One stored UB_LEDGER message as read from the stream. */
export interface RawLedgerMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** Nats-Msg-Id header, when the publisher set one */
  msgId?: string;
  /** server time of the append, ms */
  time: number;
  /** the decoded entry when it is valid, else undefined */
  entry?: LedgerEntry;
}

export function sha256hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The digest of one stored entry: binds its sequence, subject and exact bytes. */
export function entryDigest(seq: number, subject: string, dataSha256: string): Buffer {
  return createHash('sha256').update(`ubatch-ledger-entry/1\n${seq}\n${subject}\n${dataSha256}`).digest();
}

/** The seal a message carries: a valid `ledger.sealed` entry on the seal subject; anything else is an ordinary entry. */
export function sealOf(m: Pick<RawLedgerMessage, 'subject' | 'entry'>): LedgerSeal | undefined {
  return m.subject === SEAL_SUBJECT && m.entry?.kind === 'ledger.sealed' ? m.entry : undefined;
}

export const zeroBalance = (): SealBalance => ({ coreSeconds: 0, gpuSeconds: 0, cpuSeconds: 0, attempts: 0 });

/** what one task.charged entry adds to its tenant's balance (its charges summed in order) */
interface Delta extends SealBalance {
  tenant: string;
}

/** What a ledger entry adds to the balances: the charges of a task.charged entry, as the Accountant charges them. */
function deltaOf(e: LedgerEntry | undefined): Delta | undefined {
  if (e?.kind !== 'task.charged') return undefined;
  const d: Delta = { tenant: `${e.group}.${e.user}`, ...zeroBalance() };
  for (const c of e.charges) {
    d.coreSeconds += c.usage.wallSeconds * (c.usage.allocatedCores ?? 1);
    d.gpuSeconds += c.usage.gpuSeconds;
    d.cpuSeconds += c.usage.cpuSeconds;
    d.attempts += 1;
  }
  return d;
}

function addTo(b: SealBalance, d: SealBalance): void {
  b.coreSeconds += d.coreSeconds;
  b.gpuSeconds += d.gpuSeconds;
  b.cpuSeconds += d.cpuSeconds;
  b.attempts += d.attempts;
}

const balanceLine = (b: SealBalance): string => `${b.coreSeconds}\t${b.gpuSeconds}\t${b.cpuSeconds}\t${b.attempts}`;

export function sameBalance(a: SealBalance | undefined, b: SealBalance | undefined): boolean {
  const x = a ?? zeroBalance();
  const y = b ?? zeroBalance();
  return x.coreSeconds === y.coreSeconds && x.gpuSeconds === y.gpuSeconds && x.cpuSeconds === y.cpuSeconds && x.attempts === y.attempts;
}

/** an entry of a block: where it is, its digest, and what the digest is made of (to recompute it at another seq) */
export interface BlockEntry {
  seq: number;
  digest: Buffer;
  subject: string;
  dataSha256: string;
}

/** One covered entry, waiting for its seal. */
interface Pending extends BlockEntry {
  delta: Delta | undefined;
}

/** A block as the stream's entries make it: what a seal over them must say. */
export interface ComputedBlock {
  block: number;
  firstSeq: number;
  lastSeq: number;
  count: number;
  prev: string;
  hash: string;
  /** full digests and sequences of the covered entries */
  entries: BlockEntry[];
  digests: string;
  /** cumulative balances of the tenants charged in the block */
  touched: Map<string, SealBalance>;
  totals: SealBalance;
  tenants: number;
  balancesDigest: string;
}

export interface SealProblem {
  /** the first stream sequence concerned: the bad entry when it can be named, else the seal */
  seq: number;
  /** the seal's own sequence */
  sealSeq: number;
  check: 'chain' | 'range' | 'entry' | 'count' | 'hash' | 'balances';
  message: string;
}

/**
 * The chain state folded from the stream: the head (last accepted seal), the
 * balances it committed, and the entries since. Feed every message in
 * sequence order: `add` for ordinary entries, `check` + `adopt` for seals.
 */
export class SealChain {
  /** hash of the last accepted seal */
  hash = GENESIS_HASH;
  /** block number of the last accepted seal (0: none) */
  block = 0;
  /** the next block starts here */
  nextFirst = 1;
  /** stream sequence of the last accepted seal message (0: none) */
  sealSeq = 0;
  /** entries covered by accepted seals */
  sealedEntries = 0;
  private committed = new Map<string, SealBalance>();
  private committedTotals = zeroBalance();
  private pending: Pending[] = [];

  get pendingCount(): number {
    return this.pending.length;
  }
  get pendingFirstSeq(): number | undefined {
    return this.pending[0]?.seq;
  }
  get pendingLastSeq(): number | undefined {
    return this.pending.at(-1)?.seq;
  }

  /** an ordinary (non-seal) message, in sequence order */
  add(m: Pick<RawLedgerMessage, 'seq' | 'subject' | 'data' | 'entry'>, dataSha256 = sha256hex(m.data)): void {
    this.pending.push({ seq: m.seq, digest: entryDigest(m.seq, m.subject, dataSha256), delta: deltaOf(m.entry), subject: m.subject, dataSha256 });
  }

  /** the block the pending entries up to `lastSeq` (or the first `max` of them) make */
  compute(o: { lastSeq?: number; max?: number } = {}): ComputedBlock | undefined {
    let n = this.pending.length;
    if (o.lastSeq !== undefined) {
      n = 0;
      while (n < this.pending.length && this.pending[n]!.seq <= o.lastSeq) n++;
    }
    if (o.max !== undefined) n = Math.min(n, o.max);
    if (n === 0) return undefined;
    const entries = this.pending.slice(0, n);
    const touched = new Map<string, SealBalance>();
    const totals = { ...this.committedTotals };
    for (const p of entries) {
      if (!p.delta) continue;
      let b = touched.get(p.delta.tenant);
      if (!b) touched.set(p.delta.tenant, (b = { ...(this.committed.get(p.delta.tenant) ?? zeroBalance()) }));
      addTo(b, p.delta);
      addTo(totals, p.delta);
    }
    const names = new Set([...this.committed.keys(), ...touched.keys()]);
    const bh = createHash('sha256').update('ubatch-ledger-balances/1\n');
    for (const t of [...names].sort()) bh.update(`${t}\t${balanceLine(touched.get(t) ?? this.committed.get(t)!)}\n`);
    const balancesDigest = bh.digest('hex');
    const block = this.block + 1;
    const firstSeq = this.nextFirst;
    const lastSeq = entries[n - 1]!.seq;
    const h = createHash('sha256').update(`ubatch-ledger-seal/1\n${block}\n${this.hash}\n${firstSeq}\n${lastSeq}\n${n}\n`);
    const prefixes = Buffer.alloc(n * DIGEST_PREFIX_BYTES);
    entries.forEach((p, i) => {
      h.update(p.digest);
      p.digest.copy(prefixes, i * DIGEST_PREFIX_BYTES, 0, DIGEST_PREFIX_BYTES);
    });
    h.update(`\n${balancesDigest}\n${balanceLine(totals)}\n`);
    return {
      block,
      firstSeq,
      lastSeq,
      count: n,
      prev: this.hash,
      hash: h.digest('hex'),
      entries,
      digests: prefixes.toString('base64'),
      touched,
      totals,
      tenants: names.size,
      balancesDigest,
    };
  }

  /** a seal over the first `max` pending entries (undefined when nothing is pending), with its deterministic msgID */
  propose(max: number, meta: { ts: string; actor: string }): { seal: LedgerSeal; msgId: string } | undefined {
    const b = this.compute({ max });
    if (!b) return undefined;
    const seal: LedgerSeal = {
      kind: 'ledger.sealed',
      ts: meta.ts,
      actor: meta.actor,
      group: SEAL_GROUP,
      user: SEAL_USER,
      block: b.block,
      firstSeq: b.firstSeq,
      lastSeq: b.lastSeq,
      count: b.count,
      prev: b.prev,
      hash: b.hash,
      digests: b.digests,
      balances: Object.fromEntries(b.touched),
      totals: b.totals,
      tenants: b.tenants,
      balancesDigest: b.balancesDigest,
    };
    return { seal, msgId: sealMsgId(b.firstSeq, b.prev) };
  }

  /** what is wrong with a seal found at stream sequence `sealSeq` (empty: it continues the chain) */
  check(sealSeq: number, s: LedgerSeal): SealProblem[] {
    const problems: SealProblem[] = [];
    const p = (check: SealProblem['check'], message: string, seq = sealSeq) => problems.push({ seq, sealSeq, check, message });
    if (s.firstSeq !== this.nextFirst || s.prev !== this.hash || s.block !== this.block + 1) {
      const what =
        s.firstSeq !== this.nextFirst
          ? `covers from seq ${s.firstSeq} but the chain continues at seq ${this.nextFirst} (${s.firstSeq < this.nextFirst ? 'overlaps an earlier block' : 'leaves a gap'})`
          : s.prev !== this.hash
            ? `names previous hash ${s.prev.slice(0, 16)}… but the last seal's hash is ${this.hash.slice(0, 16)}…`
            : `is numbered block ${s.block}, expected ${this.block + 1}`;
      p('chain', `seal at seq ${sealSeq} ${what}`);
      return problems;
    }
    // a seal inside its own range: still compare the entries it can cover, since an entry removed before it shifts the
    // seal's own seq; that removal (the cause) is reported before the range (its consequence)
    const badRange = s.lastSeq < s.firstSeq || s.lastSeq >= sealSeq;
    const rangeProblem = () => p('range', `seal at seq ${sealSeq} covers [${s.firstSeq}, ${s.lastSeq}], which is not a range of earlier entries`);
    const b = this.compute({ lastSeq: Math.min(s.lastSeq, sealSeq - 1) });
    if (b && b.hash === s.hash && !badRange) {
      // the entries and balances recompute to the sealed hash: they are intact; the seal's other fields must agree
      if (b.digests !== s.digests || b.count !== s.count) p('hash', `seal at seq ${sealSeq}: its digest list or count does not match the entries its hash covers (the seal itself was altered)`);
    } else {
      const got = b?.entries ?? [];
      const sealed = Buffer.from(s.digests, 'base64');
      const sealedN = Math.floor(sealed.length / DIGEST_PREFIX_BYTES);
      const sealedAt = (k: number) => sealed.subarray(k * DIGEST_PREFIX_BYTES, (k + 1) * DIGEST_PREFIX_BYTES);
      for (let i = 0; i < Math.max(got.length, sealedN); i++) {
        const e = got[i];
        if (!e) {
          p('entry', `seal at seq ${sealSeq}: the stream holds ${got.length} entries in [${s.firstSeq}, ${s.lastSeq}] but ${s.count} were sealed: entries after seq ${got.at(-1)?.seq ?? s.firstSeq - 1} were removed`, got.at(-1) ? got.at(-1)!.seq + 1 : s.firstSeq);
          break;
        }
        const mine = e.digest.subarray(0, DIGEST_PREFIX_BYTES);
        if (i >= sealedN || !mine.equals(sealedAt(i))) {
          // digests cover the entry's seq: an entry that moved up by one (one removed before it) matches the next
          // sealed digest when computed at its old seq
          const movedUp = () => entryDigest(e.seq + 1, e.subject, e.dataSha256).subarray(0, DIGEST_PREFIX_BYTES);
          if (i + 1 < sealedN && movedUp().equals(sealedAt(i + 1))) {
            // this entry is the one sealed next: the sealed entry before it is gone. It stood right after the last
            // intact entry (or at the block's start), even where a seal has since moved into its place (a seal
            // appended late sits between the entries of the next block)
            const at = i > 0 ? got[i - 1]!.seq + 1 : s.firstSeq;
            p('entry', `the entry sealed at seq ${sealSeq} (block ${s.block}, [${s.firstSeq}, ${s.lastSeq}]) after ${i > 0 ? `seq ${got[i - 1]!.seq}` : 'the block start'} is missing: it was removed (seq ${at} in the sealed numbering; later entries moved up)`, at);
          } else {
            p('entry', `entry at seq ${e.seq} is not the entry sealed at seq ${sealSeq} (block ${s.block}, [${s.firstSeq}, ${s.lastSeq}]): it was altered, inserted, or an earlier entry was removed`, e.seq);
          }
          break;
        }
      }
      if (badRange) rangeProblem();
      if (problems.length > 0) return problems;
      if (got.length !== s.count) {
        p('count', `seal at seq ${sealSeq} counts ${s.count} entries in [${s.firstSeq}, ${s.lastSeq}]; the stream holds ${got.length}`);
      }
      if (b && b.hash !== s.hash && problems.length === 0) {
        p('hash', `seal at seq ${sealSeq}: the block hash recomputes to ${b.hash.slice(0, 16)}…, the seal says ${s.hash.slice(0, 16)}… (the seal itself was altered)`);
      }
    }
    if (b) {
      const names = new Set([...Object.keys(s.balances), ...b.touched.keys()]);
      for (const t of [...names].sort()) {
        if (!sameBalance(s.balances[t], b.touched.get(t) ?? this.committed.get(t))) {
          const w = b.touched.get(t) ?? this.committed.get(t) ?? zeroBalance();
          const v = s.balances[t] ?? zeroBalance();
          p('balances', `seal at seq ${sealSeq}: tenant ${t} has ${w.coreSeconds} core-seconds over ${w.attempts} attempts up to seq ${s.lastSeq} by recomputation; the seal says ${v.coreSeconds} over ${v.attempts}`);
          break;
        }
      }
      if (!sameBalance(s.totals, b.totals)) p('balances', `seal at seq ${sealSeq}: total charges recompute to ${b.totals.coreSeconds} core-seconds over ${b.totals.attempts} attempts; the seal says ${s.totals.coreSeconds} over ${s.totals.attempts}`);
      else if (s.balancesDigest !== b.balancesDigest || s.tenants !== b.tenants) p('balances', `seal at seq ${sealSeq}: the balance table of ${b.tenants} tenants does not match the seal's digest (${s.tenants} tenants)`);
    }
    return problems;
  }

  /**
   * Accept a seal as the new head. The balances committed are always the
   * ones recomputed from the stream; a verifier adopts even a bad seal, to go
   * on checking the blocks after it.
   */
  adopt(sealSeq: number, s: LedgerSeal): void {
    const b = this.compute({ lastSeq: s.lastSeq });
    if (b) {
      for (const [t, v] of b.touched) this.committed.set(t, v);
      this.committedTotals = b.totals;
      this.pending.splice(0, b.count);
      this.sealedEntries += b.count;
    }
    this.hash = s.hash;
    this.block = s.block;
    this.nextFirst = s.lastSeq + 1;
    this.sealSeq = sealSeq;
  }

  /** cumulative balances of everything folded so far, sealed or not */
  balancesNow(): { tenants: Map<string, SealBalance>; totals: SealBalance } {
    const tenants = new Map([...this.committed].map(([k, v]) => [k, { ...v }]));
    const totals = { ...this.committedTotals };
    for (const p of this.pending) {
      if (!p.delta) continue;
      let b = tenants.get(p.delta.tenant);
      if (!b) tenants.set(p.delta.tenant, (b = zeroBalance()));
      addTo(b, p.delta);
      addTo(totals, p.delta);
    }
    return { tenants, totals };
  }
}

/**
 * The msgID of a seal: one seal per (start of block, previous hash). Two
 * leaders that race (the lease is not atomic on R3 streams) or a retried
 * append cannot store two different seals for the same block: the stream's
 * duplicate window keeps the first, and both adopt it when they read it back.
 */
export function sealMsgId(firstSeq: number, prev: string): string {
  return `seal.${firstSeq}.${prev.slice(0, 16)}`;
}
