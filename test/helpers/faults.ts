/**
 * Small helpers shared by the fault-matrix tests: polling, ledger charge
 * tallies, process memory, and reading a nats-server's own on-disk copy of a
 * stream (to compare replicas node by node).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { expect } from 'vitest';
import { readLedger, summarizeLedger, type LedgerRecord } from '../../ledger/index.js';
import type { Charge } from '../../protocol/index.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await Promise.resolve().then(pred).catch(() => false)) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** every charge in the ledger (optionally of one job), with the entry's user and the record time */
export function chargesOf(records: LedgerRecord[], jobId?: string): (Charge & { user: string; group: string; time: number; seq: number })[] {
  const out: (Charge & { user: string; group: string; time: number; seq: number })[] = [];
  for (const r of records) {
    if (r.entry.kind !== 'task.charged') continue;
    for (const c of r.entry.charges) if (jobId === undefined || c.jobId === jobId) out.push({ ...c, user: r.entry.user, group: r.entry.group, time: r.time, seq: r.seq });
  }
  return out;
}

/** taskId → number of successful (ok) charges */
export function okChargesPerTask(records: LedgerRecord[], jobId: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of chargesOf(records, jobId)) if (c.outcome === 'ok') m.set(c.taskId, (m.get(c.taskId) ?? 0) + 1);
  return m;
}

/** core-seconds a charge counts for in quotas (Accountant: wallSeconds × allocatedCores) */
export const coreSeconds = (c: Charge) => c.usage.wallSeconds * (c.usage.allocatedCores ?? 1);

/** resident set size of a live process, in kB (from /proc/<pid>/status VmRSS) */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export interface StoredMsg {
  seq: number;
  ts: bigint;
  subject: string;
  hdr: string;
  dataHash: string;
}

/**
 * The messages of a stream as one nats-server (2.9 file store) holds them on
 * disk: `<storeDir>/jetstream/<account>/streams/<stream>/msgs/*.blk`. Read it
 * after the server stopped (gracefully), so that its buffers are flushed.
 * Record layout: u32 length (bit 31: has headers), u64 seq (bit 63: erased),
 * i64 timestamp, u16 subject length, subject, [u32 header length, headers],
 * payload, 8-byte checksum.
 */
export function readStoredStream(storeDir: string, stream: string, account = '$G'): StoredMsg[] {
  const dir = join(storeDir, 'jetstream', account, 'streams', stream, 'msgs');
  if (!existsSync(dir)) throw new Error(`no stream store at ${dir}`);
  const blocks = readdirSync(dir)
    .filter((f) => f.endsWith('.blk'))
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
  const out: StoredMsg[] = [];
  const HBIT = 0x80000000;
  const EBIT = 1n << 63n;
  for (const f of blocks) {
    const buf = readFileSync(join(dir, f));
    let off = 0;
    while (off + 22 <= buf.length) {
      const rl0 = buf.readUInt32LE(off);
      const hasHdr = (rl0 & HBIT) !== 0;
      const rl = rl0 & ~HBIT & 0xffffffff;
      if (rl < 22 + 8 || off + rl > buf.length) break; // torn tail
      const seqRaw = buf.readBigUInt64LE(off + 4);
      const ts = buf.readBigInt64LE(off + 12);
      const slen = buf.readUInt16LE(off + 20);
      let p = off + 22;
      const subject = buf.subarray(p, p + slen).toString('utf8');
      p += slen;
      let hdr = '';
      if (hasHdr) {
        const hlen = buf.readUInt32LE(p);
        p += 4;
        hdr = buf.subarray(p, p + hlen).toString('utf8');
        p += hlen;
      }
      const data = buf.subarray(p, off + rl - 8);
      if ((seqRaw & EBIT) === 0n && seqRaw > 0n) out.push({ seq: Number(seqRaw), ts, subject, hdr, dataHash: createHash('sha256').update(data).digest('hex') });
      off += rl;
    }
  }
  return out;
}

/** one digest over a list of stored messages (seq, subject, headers, payload hash) */
export function digestStored(msgs: StoredMsg[], withTimestamps = true): string {
  const h = createHash('sha256');
  for (const m of msgs) h.update(`${m.seq}|${withTimestamps ? m.ts : ''}|${m.subject}|${m.hdr}|${m.dataHash}\n`);
  return h.digest('hex');
}

/** per-server stream state from the monitoring endpoint: this node's own replica */
export async function jszStreamState(monitorUrl: string, stream: string): Promise<{ messages: number; bytes: number; first_seq: number; last_seq: number } | undefined> {
  const res = await fetch(`${monitorUrl}/jsz?accounts=true&streams=true`);
  const j = (await res.json()) as { account_details?: { stream_detail?: { name: string; state: { messages: number; bytes: number; first_seq: number; last_seq: number } }[] }[] };
  for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) if (s.name === stream) return { messages: s.state.messages, bytes: s.state.bytes, first_seq: s.state.first_seq, last_seq: s.state.last_seq };
  return undefined;
}

/** readLedger, retried while a cluster is still settling (JetStream "temporarily unavailable", timeouts) */
export async function readLedgerSettled(nc: NatsConnection, timeoutMs = 30_000): Promise<LedgerRecord[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await readLedger(nc);
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(500);
    }
  }
}

/**
 * The fault matrix's ledger guarantees after a fault, for a job of `tasks` tasks: every entry read
 * before the fault is still there, no execution is charged twice, every task has an accepted (ok)
 * charge, and each charge is its own execution. Returns the tallies for further checks.
 */
export function expectLedgerKept(before: LedgerRecord[], after: LedgerRecord[], jobId: string, tasks: number): { ok: Map<string, number>; charges: ReturnType<typeof chargesOf> } {
  const seqs = new Set(after.map((r) => r.seq));
  for (const r of before) expect(seqs.has(r.seq)).toBe(true);
  expect(summarizeLedger(after).duplicateCharges).toEqual([]);
  const ok = okChargesPerTask(after, jobId);
  expect(ok.size).toBe(tasks);
  const charges = chargesOf(after, jobId);
  expect(new Set(charges.map((x) => x.execution)).size).toBe(charges.length);
  return { ok, charges };
}
