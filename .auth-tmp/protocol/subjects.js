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
};
export const Streams = {
    tasks: 'UB_TASKS',
    events: 'UB_EVENTS',
    results: 'UB_RESULTS',
    ledger: 'UB_LEDGER',
};
export const Buckets = {
    jobs: 'ub-jobs',
    workers: 'ub-workers',
    shares: 'ub-shares',
    quotas: 'ub-quotas',
};
export const ObjectStores = { artifacts: 'ub-artifacts' };
export const LedgerKind = {
    jobAccepted: 'job.accepted',
    taskCharged: 'task.charged',
    quotaSet: 'quota.set',
    shareSet: 'share.set',
    jobClosed: 'job.closed',
};
const TOKEN_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A subject token we accept from users: no dots, wildcards or spaces. */
export function isSafeToken(s) {
    return TOKEN_RE.test(s);
}
export function apiSubject(verb, user) {
    return `${API_PREFIX}.${verb}.${user}`;
}
export function taskSubject(capability, group, user) {
    return `ub.tasks.${capability}.${group}.${user}`;
}
export function eventSubject(user, jobId) {
    return `ub.events.${user}.${jobId}`;
}
export function resultSubject(jobId) {
    return `ub.results.${jobId}`;
}
export function ledgerSubject(kind, group, user) {
    return `ub.ledger.${kind}.${group}.${user}`;
}
/** Broadcast (core NATS, not persisted): "tenant T has new tasks for capability C" wakes idle workers. */
export const WAKE_SUBJECT = 'ub.wake';
/** Durable consumer name for one (capability, tenant): names may not contain dots. */
export function taskConsumerName(capability, group, user) {
    return `t_${capability}_${group}_${user}`;
}
export const KvKey = {
    job: (jobId) => `job.${jobId}`,
    spec: (jobId) => `spec.${jobId}`,
    cancel: (jobId) => `cancel.${jobId}`,
    idem: (user, key) => `idem.${user}.${key}`,
    ranking: 'ranking',
    leader: 'leader',
};
export const Header = {
    /** set by the coordinator on every task: attempts are counted by JetStream's delivery count */
    jobId: 'Ubatch-Job',
    taskId: 'Ubatch-Task',
};
