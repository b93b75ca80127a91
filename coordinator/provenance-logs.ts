/**
 * The `provenance` and `logs` API verbs. Under authentication a user has no
 * JetStream access (ops/auth.ts), so the ledger and the artifact store are read
 * here, by the coordinator, on the user's behalf, and only the user's own jobs
 * are answered (`not_found` otherwise, the same answer as for an unknown job);
 * operators see every job.
 *
 * - provenance: `{ jobId }` or `{ path }` (absolute). A user's request replays only
 *   that user's ledger subjects (`ub.ledger.<kind>.<group>.<user>`), so another
 *   user's entries are never even read; operators replay the whole ledger.
 * - logs: `{ jobId, task?, attempt?, stream?, maxBytes? }`. With a task, the
 *   attempts' objects `logs/<jobId>/<taskId>/<attempt>/<stream>` are looked up by
 *   name; without one, the store's object list is scanned for the job's prefix.
 *   The reply holds at most `maxBytes` of log text (the end of each log), with a
 *   note naming what was cut.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { findProvenance, orderedLedgerConsumer, readLedger, type LedgerRecord } from '../ledger/index.js';
import { ApiCode, decode, isSafeToken, isValid, LedgerEntry, ObjectStores, Streams, UbatchApiError, type LogsReply, type ProvenanceReply, type TaskLog } from '../protocol/index.js';
import type { JobManager } from './manager.js';

/** default and largest amount of log text in one reply (the default NATS max_payload is 1 MiB) */
export const LOGS_DEFAULT_MAX_BYTES = 256 * 1024;
export const LOGS_LIMIT_MAX_BYTES = 768 * 1024;
/** attempts probed per task when the job's spec does not say (max_attempts 20 + lost-delivery slack) */
const MAX_PROBED_ATTEMPTS = 25;
const LOST_DELIVERY_SLACK = 5;
const REPLAY_TIMEOUT_MS = 30_000;

const bad = (message: string, where: string) => new UbatchApiError(ApiCode.BadRequest, message, where);

/** Replays the ledger entries of one user (subjects `ub.ledger.*.*.*.<user>`), oldest first. */
export async function readUserLedger(nc: NatsConnection, user: string): Promise<LedgerRecord[]> {
  if (!isSafeToken(user)) throw bad(`invalid user ${JSON.stringify(user)}`, '/user');
  const filter = `ub.ledger.*.*.*.${user}`;
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(Streams.ledger, { subjects_filter: filter });
  const matching = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  if (matching === 0) return [];
  // one filter subject (2.9.10 has no filter_subjects): a string, not an array
  const consumer = await orderedLedgerConsumer(jetstream(nc), { filter_subjects: filter }, 30_000);
  const messages = await consumer.consume({ max_messages: 1024 });
  const timer = setTimeout(() => void messages.close().catch(() => undefined), REPLAY_TIMEOUT_MS);
  const out: LedgerRecord[] = [];
  try {
    for await (const m of messages) {
      try {
        const v = decode(m.data, m.subject);
        if (isValid(LedgerEntry, v)) out.push({ seq: m.seq, time: Math.floor(m.info.timestampNanos / 1e6), subject: m.subject, entry: v });
      } catch {
        // an undecodable entry is reported by `ledger verify`, not here
      }
      if (m.info.pending === 0) break;
    }
  } finally {
    clearTimeout(timer);
    await messages.close().catch(() => undefined);
  }
  return out;
}

export async function provenanceRequest(nc: NatsConnection, user: string, body: unknown, operator: boolean, sharedOwner: (jobId: string) => string | undefined = () => undefined): Promise<ProvenanceReply> {
  const b = body as { jobId?: unknown; path?: unknown };
  let q: { jobId?: string; outputPath?: string };
  if (b.jobId !== undefined) {
    if (typeof b.jobId !== 'string' || !isSafeToken(b.jobId)) throw bad('jobId must be a job id', '/jobId');
    q = { jobId: b.jobId };
  } else if (b.path !== undefined) {
    if (typeof b.path !== 'string' || !b.path.startsWith('/') || b.path.length > 4096 || b.path.includes('\0')) throw bad('path must be an absolute path (at most 4096 characters)', '/path');
    q = { outputPath: b.path };
  } else throw bad('give jobId or path', '');
  // a job shared with the caller's group (by job id): replay its owner's entries instead of the caller's
  const owner = !operator && q.jobId !== undefined ? (sharedOwner(q.jobId) ?? user) : user;
  const records = operator ? await readLedger(nc) : await readUserLedger(nc, owner);
  const chain = findProvenance(records, q);
  const notFound = () => new UbatchApiError(ApiCode.NotFound, q.jobId !== undefined ? `no job ${q.jobId}` : `no job of yours wrote ${q.outputPath}`, q.jobId !== undefined ? '/jobId' : '/path');
  if (!chain) throw notFound();
  // the filtered replay holds only that user's entries; check the owner anyway
  if (!operator && chain.job && chain.job.user !== owner) throw notFound();
  const jobId = chain.job?.jobId ?? chain.closed?.jobId ?? chain.charges[0]?.jobId ?? q.jobId ?? '?';
  return { jobId, ...(chain.job ? { job: chain.job } : {}), ...(chain.closed ? { closed: chain.closed } : {}), charges: chain.charges };
}

const LOG_NAME_RE = /^logs\/([^/]+)\/([^/]+)\/(\d+)\/([^/]+)$/;

export class LogsReader {
  private store: Promise<ObjectStore> | undefined;
  constructor(
    private readonly nc: NatsConnection,
    private readonly mgr: JobManager,
  ) {}

  private open(): Promise<ObjectStore> {
    this.store ??= new Objm(this.nc).open(ObjectStores.artifacts).catch((err: unknown) => {
      this.store = undefined;
      throw err;
    });
    return this.store;
  }

  async request(user: string, body: unknown, operator: boolean): Promise<LogsReply> {
    const b = body as { jobId?: unknown; task?: unknown; attempt?: unknown; stream?: unknown; maxBytes?: unknown };
    // not_found for someone else's or an unknown job, before anything else is looked at
    const info = this.mgr.get(user, { jobId: b.jobId }, operator);
    const jobId = info.jobId;
    let task: string | undefined;
    if (b.task !== undefined) {
      const t = typeof b.task === 'number' ? String(b.task) : b.task;
      if (typeof t !== 'string' || !/^(\d{1,9}|r)$/.test(t)) throw bad("task must be a task index or 'r' (the reduce)", '/task');
      task = t;
    }
    if (b.attempt !== undefined && (typeof b.attempt !== 'number' || !Number.isInteger(b.attempt) || b.attempt < 1 || b.attempt > 1000)) throw bad('attempt must be an integer from 1', '/attempt');
    const attempt = b.attempt as number | undefined;
    if (b.stream !== undefined && b.stream !== 'stdout' && b.stream !== 'stderr') throw bad('stream must be stdout or stderr', '/stream');
    const stream = b.stream as 'stdout' | 'stderr' | undefined;
    if (b.maxBytes !== undefined && (typeof b.maxBytes !== 'number' || !Number.isInteger(b.maxBytes) || b.maxBytes < 0 || b.maxBytes > LOGS_LIMIT_MAX_BYTES)) throw bad(`maxBytes must be an integer from 0 to ${LOGS_LIMIT_MAX_BYTES}`, '/maxBytes');
    const maxBytes = (b.maxBytes as number | undefined) ?? LOGS_DEFAULT_MAX_BYTES;

    const store = await this.open();
    const found: Omit<TaskLog, 'text' | 'truncated'>[] = [];
    const streams = stream ? [stream] : ['stdout', 'stderr'];
    if (task !== undefined) {
      const taskId = `${jobId}.${task}`;
      const maxAttempts = (this.mgr.jobs.get(jobId)?.spec.resources?.max_attempts ?? MAX_PROBED_ATTEMPTS - LOST_DELIVERY_SLACK) + LOST_DELIVERY_SLACK;
      const attempts = attempt !== undefined ? [attempt] : Array.from({ length: Math.min(maxAttempts, MAX_PROBED_ATTEMPTS) }, (_, i) => i + 1);
      const probes = attempts.flatMap((a) => streams.map((s) => ({ a, s, name: `logs/${jobId}/${taskId}/${a}/${s}` })));
      const infos = await Promise.all(probes.map((p) => store.info(p.name)));
      probes.forEach((p, i) => {
        const oi = infos[i];
        if (oi && !oi.deleted) found.push({ taskId, index: task, attempt: p.a, stream: p.s, name: p.name, bytes: oi.size });
      });
    } else {
      for (const oi of await store.list()) {
        if (oi.deleted) continue;
        const m = LOG_NAME_RE.exec(oi.name);
        if (!m || m[1] !== jobId) continue;
        const taskId = m[2]!;
        const s = m[4]!;
        if (attempt !== undefined && Number(m[3]) !== attempt) continue;
        if (!streams.includes(s)) continue;
        found.push({ taskId, index: taskId.startsWith(`${jobId}.`) ? taskId.slice(jobId.length + 1) : taskId, attempt: Number(m[3]), stream: s, name: oi.name, bytes: oi.size });
      }
    }
    const order: Record<string, number> = { stdout: 0, stderr: 1 };
    const idx = (i: string) => (i === 'r' ? Infinity : Number(i));
    found.sort((x, y) => idx(x.index) - idx(y.index) || x.attempt - y.attempt || (order[x.stream] ?? 9) - (order[y.stream] ?? 9));

    let budget = maxBytes;
    let cut = 0;
    let cutBytes = 0;
    const logs: TaskLog[] = [];
    for (const f of found) {
      if (budget <= 0 || f.bytes === 0) {
        if (f.bytes > 0) {
          cut++;
          cutBytes += f.bytes;
        }
        logs.push({ ...f, text: '', truncated: f.bytes > 0 });
        continue;
      }
      const data = (await store.getBlob(f.name)) ?? new Uint8Array();
      const keep = Math.min(data.length, budget);
      // the end of a log says how it ended: keep the tail
      let text = Buffer.from(data.subarray(data.length - keep)).toString('utf8');
      if (keep < data.length) {
        text = text.replace(/^[\s\S]*?\n/, ''); // start at a line boundary
        cut++;
        cutBytes += data.length - keep;
      }
      budget -= keep;
      logs.push({ ...f, text, truncated: keep < data.length });
    }
    const failures = info.failures.filter((f) => task === undefined || String(f.index === -1 ? 'r' : f.index) === task);
    if (task !== undefined && found.length === 0 && failures.length === 0 && !(Number(task) < info.total || (task === 'r' && info.hasReduce))) {
      throw new UbatchApiError(ApiCode.NotFound, `job ${jobId} has no task ${task}`, '/task');
    }
    return {
      jobId,
      state: info.state,
      kind: info.kind,
      logs,
      failures,
      maxBytes,
      ...(cut > 0
        ? { note: `${cut} log(s) truncated to fit the ${maxBytes}-byte reply (${cutBytes} bytes left out, the start of each cut log); ask for one task, attempt or stream, or a larger maxBytes (up to ${LOGS_LIMIT_MAX_BYTES})` }
        : {}),
    };
  }
}
