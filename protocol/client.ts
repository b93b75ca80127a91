/**
 * Typed TypeScript client for the ubatch API. Any NATS client can speak the
 * same protocol: request `ubatch.v1.<verb>.<user>` with a msgpack or JSON
 * body, get `{ ok, data | error }` back.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { decode, encode } from './codec.js';
import { UbatchApiError, ApiCode } from './errors.js';
import {
  TERMINAL_STATES,
  type ApiReply,
  type Charge,
  type JobEvent,
  type LedgerEntryOf,
  type JobInfo,
  type JobSpec,
  type ListRequest,
  type ResultsReply,
  type SubmitReply,
} from './schemas.js';
import { apiSubject, eventSubject, isSafeToken, Verb } from './subjects.js';

export interface ClientOptions {
  /** who the requests are made as; with auth on, the server only lets a user publish on its own token */
  user: string;
  /** request timeout @default 10000 ms */
  timeoutMs?: number;
}

export interface DryRunReply {
  dryRun: true;
  tasks: number;
  partitions: { order: number; pixel: number; rows?: number }[];
  estimate: { coreHours: number; basis: string };
  credit?: unknown;
}

/** Everything the ledger knows about one job: its acceptance, its close, every charged attempt (with provenance). */
export interface ProvenanceReply {
  jobId: string;
  job?: LedgerEntryOf<'job.accepted'>;
  closed?: LedgerEntryOf<'job.closed'>;
  charges: Charge[];
}

/** One log artifact of one attempt of a task (command jobs keep stdout and stderr). */
export interface TaskLog {
  taskId: string;
  /** the task's index in the job ('r' for the reduce) */
  index: string;
  attempt: number;
  stream: string;
  /** object name in ub-artifacts */
  name: string;
  /** stored size */
  bytes: number;
  /** the text returned (the end of the log when truncated) */
  text: string;
  /** true when only the last `text.length` bytes were returned */
  truncated: boolean;
}

export interface LogsReply {
  jobId: string;
  state: string;
  kind: string;
  logs: TaskLog[];
  /** the job's failures (of the task asked for, when one was) */
  failures: JobInfo['failures'];
  /** the byte cap the reply was held to */
  maxBytes: number;
  /** why some logs were cut or left out, when any were */
  note?: string;
}

export class UbatchClient {
  readonly user: string;
  readonly timeoutMs: number;
  constructor(
    readonly nc: NatsConnection,
    opts: ClientOptions,
  ) {
    if (!isSafeToken(opts.user)) throw new UbatchApiError(ApiCode.BadRequest, `invalid user name ${JSON.stringify(opts.user)}`);
    this.user = opts.user;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async call<T>(verb: Verb, body: unknown): Promise<T> {
    let reply;
    try {
      reply = await this.nc.request(apiSubject(verb, this.user), encode(body), { timeout: this.timeoutMs });
    } catch (err) {
      throw new UbatchApiError(ApiCode.Unavailable, `no answer from the ubatch service for ${verb}: ${(err as Error).message}`, undefined, undefined, { cause: err });
    }
    const r = decode(reply.data, reply.subject) as ApiReply<T>;
    if (r && typeof r === 'object' && 'ok' in r) {
      if (r.ok) return r.data;
      throw new UbatchApiError(r.error.code, r.error.message, r.error.where, r.error.details);
    }
    throw new UbatchApiError(ApiCode.Internal, `malformed reply to ${verb}`);
  }

  submit(spec: JobSpec): Promise<SubmitReply> {
    return this.call(Verb.jobsSubmit, { spec });
  }
  dryRun(spec: JobSpec): Promise<DryRunReply> {
    return this.call(Verb.jobsSubmit, { spec, dryRun: true });
  }
  get(jobId: string): Promise<JobInfo> {
    return this.call(Verb.jobsGet, { jobId });
  }
  list(req: ListRequest = {}): Promise<JobInfo[]> {
    return this.call(Verb.jobsList, req);
  }
  cancel(jobId: string): Promise<JobInfo> {
    return this.call(Verb.jobsCancel, { jobId });
  }
  rerun(jobId: string): Promise<SubmitReply> {
    return this.call(Verb.jobsRerun, { jobId });
  }
  /** accounting report (a replay of the ledger): your own use, or any group/user for operators */
  report(req: { group?: string; user?: string; from?: string | number; to?: string | number } = {}): Promise<unknown> {
    return this.call(Verb.report, req);
  }
  results(jobId: string): Promise<ResultsReply> {
    return this.call(Verb.resultsGet, { jobId });
  }

  /** provenance of your own job (by id) or of the job of yours that wrote `path` (absolute); operators: any job */
  provenance(ref: { jobId: string } | { path: string }): Promise<ProvenanceReply> {
    return this.call(Verb.provenance, ref);
  }
  /** stdout/stderr of a job's tasks (all, or one task by index or 'r'), at most `maxBytes` of text in all */
  logs(jobId: string, o: { task?: string; attempt?: number; stream?: 'stdout' | 'stderr'; maxBytes?: number } = {}): Promise<LogsReply> {
    return this.call(Verb.logs, { jobId, ...o });
  }

  quotaGet(user?: string): Promise<unknown> {
    return this.call(Verb.quotaGet, user ? { user } : {});
  }
  /** operators only; a negative limit removes it */
  quotaSet(scope: 'user' | 'group', name: string, limits: { cpu_hours?: number; gpu_hours?: number; max_concurrent?: number; stored_bytes?: number }): Promise<unknown> {
    return this.call(Verb.quotaSet, { scope, name, limits });
  }
  /** operators only: a group's share, or a user's share within a group (which also makes the user a member) */
  sharesSet(group: string, share: number, user?: string): Promise<unknown> {
    return this.call(Verb.sharesSet, { group, share, ...(user ? { user } : {}) });
  }

  /**
   * Follow a job's events until it reaches a terminal state. Subscribes before
   * reading the current state, so no transition is missed.
   */
  async *watch(jobId: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent | JobInfo> {
    const sub = this.nc.subscribe(eventSubject(this.user, jobId));
    const onAbort = () => sub.unsubscribe();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const info = await this.get(jobId);
      yield info;
      if (TERMINAL_STATES.has(info.state)) return;
      for await (const m of sub) {
        const ev = decode(m.data, m.subject) as JobEvent;
        yield ev;
        if (TERMINAL_STATES.has(ev.state)) return;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      sub.unsubscribe();
    }
  }

  /**
   * Resolve with the final JobInfo. Events wake the loop early; a `get` every
   * second backs them up; while the service is briefly unreachable (a
   * coordinator restart, a server restart) it keeps trying until the deadline.
   */
  async wait(jobId: string, opts: { timeoutMs?: number; onEvent?: (e: JobEvent | JobInfo) => void } = {}): Promise<JobInfo> {
    const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
    const sub = this.nc.subscribe(eventSubject(this.user, jobId));
    let wake: (() => void) | undefined;
    void (async () => {
      for await (const m of sub) {
        try {
          const ev = decode(m.data, m.subject) as JobEvent;
          opts.onEvent?.(ev);
        } catch {
          /* a malformed event only costs us an early wake-up */
        }
        wake?.();
      }
    })();
    let last: JobInfo | undefined;
    try {
      while (Date.now() < deadline) {
        try {
          last = await this.get(jobId);
          opts.onEvent?.(last);
          if (TERMINAL_STATES.has(last.state)) return last;
        } catch (err) {
          if (!(err instanceof UbatchApiError) || err.code !== ApiCode.Unavailable) throw err;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      sub.unsubscribe();
    }
    throw new UbatchApiError(ApiCode.Unavailable, `timed out waiting for job ${jobId} (last state ${last?.state ?? 'unknown'})`);
  }
}
