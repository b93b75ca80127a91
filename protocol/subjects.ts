/**
 * Subject names and stream/KV/object-store names: the wire contract.
 * Every token that comes from a user (user, group, capability) is checked by
 * `isSafeToken` before it is put into a subject.
 */

export const SERVICE_NAME = 'ubatch';
export const SERVICE_VERSION = '1.0.0';
export const API_PREFIX = 'ubatch.v1';

/** API verbs; the request subject is `ubatch.v1.<verb>.<user>` so NATS permissions can pin a user to its own token. */
export const Verb = {
  jobsSubmit: 'jobs.submit',
  jobsGet: 'jobs.get',
  jobsList: 'jobs.list',
  jobsCancel: 'jobs.cancel',
  jobsRerun: 'jobs.rerun',
  resultsGet: 'results.get',
  quotaGet: 'quota.get',
  quotaSet: 'quota.set',
  sharesSet: 'shares.set',
  report: 'report',
  /** the provenance chain of one of the caller's jobs, or of the job that wrote an output path (operators: any) */
  provenance: 'provenance',
  /** a task's stdout/stderr artifacts (command jobs), size-capped (operators: any job) */
  logs: 'logs',
} as const;
export type Verb = (typeof Verb)[keyof typeof Verb];

export const Streams = {
  tasks: 'UB_TASKS',
  events: 'UB_EVENTS',
  results: 'UB_RESULTS',
  ledger: 'UB_LEDGER',
} as const;

export const Buckets = {
  jobs: 'ub-jobs',
  workers: 'ub-workers',
  shares: 'ub-shares',
  quotas: 'ub-quotas',
} as const;

export const ObjectStores = { artifacts: 'ub-artifacts' } as const;

export const LedgerKind = {
  jobAccepted: 'job.accepted',
  taskCharged: 'task.charged',
  quotaSet: 'quota.set',
  shareSet: 'share.set',
  jobClosed: 'job.closed',
  /** a seal: commits to the hash of every entry since the previous seal (tamper evidence, ledger/seal.ts) */
  ledgerSealed: 'ledger.sealed',
} as const;
export type LedgerKind = (typeof LedgerKind)[keyof typeof LedgerKind];

/** Where seals are appended (coordinator only: workers may append task.charged entries alone). */
export const SEAL_SUBJECT = 'ub.ledger.seal';

const TOKEN_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A subject token we accept from users: no dots, wildcards or spaces. */
export function isSafeToken(s: string): boolean {
  return TOKEN_RE.test(s);
}

export function apiSubject(verb: Verb, user: string): string {
  return `${API_PREFIX}.${verb}.${user}`;
}
export function taskSubject(capability: string, group: string, user: string): string {
  return `ub.tasks.${capability}.${group}.${user}`;
}
export function eventSubject(user: string, jobId: string): string {
  return `ub.events.${user}.${jobId}`;
}
export function resultSubject(jobId: string): string {
  return `ub.results.${jobId}`;
}
export function ledgerSubject(kind: LedgerKind, group: string, user: string): string {
  if (kind === LedgerKind.ledgerSealed) return SEAL_SUBJECT;
  return `ub.ledger.${kind}.${group}.${user}`;
}
/** Broadcast (core NATS, not persisted): "tenant T has new tasks for capability C" wakes idle workers. */
export const WAKE_SUBJECT = 'ub.wake';

/** Durable consumer name for one (capability, tenant): names may not contain dots. */
export function taskConsumerName(capability: string, group: string, user: string): string {
  return `t_${capability}_${group}_${user}`;
}

export const KvKey = {
  job: (jobId: string) => `job.${jobId}`,
  spec: (jobId: string) => `spec.${jobId}`,
  /** a job's task plan when small enough for one KV value (larger ones are in the object store, `plans/<jobId>`) */
  plan: (jobId: string) => `plan.${jobId}`,
  cancel: (jobId: string) => `cancel.${jobId}`,
  idem: (user: string, key: string) => `idem.${user}.${key}`,
  ranking: 'ranking',
  leader: 'leader',
} as const;

export const Header = {
  /** set by the coordinator on every task: attempts are counted by JetStream's delivery count */
  jobId: 'Ubatch-Job',
  taskId: 'Ubatch-Task',
} as const;
