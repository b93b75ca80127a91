/**
 * Boundary schemas (TypeBox: each schema *is* a JSON Schema, exported to
 * protocol/schemas/*.json for non-TypeScript clients).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const Token = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'a name usable as a NATS subject token' });
const Id = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$' });

export const Cone = Type.Object(
  {
    ra: Type.Number({ minimum: -360, maximum: 720, description: 'degrees' }),
    dec: Type.Number({ minimum: -90, maximum: 90, description: 'degrees' }),
    radius_deg: Type.Number({ exclusiveMinimum: 0, maximum: 180 }),
  },
  { additionalProperties: false },
);

export const Selection = Type.Object(
  {
    cone: Type.Optional(Cone),
    pixels: Type.Optional(
      Type.Object(
        {
          order: Type.Integer({ minimum: 0, maximum: 29 }),
          pixels: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 100_000 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const Resources = Type.Object(
  {
    cores: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 256, default: 1 })),
    memory_mb: Type.Optional(Type.Integer({ minimum: 16, maximum: 1_048_576, default: 2048 })),
    gpus: Type.Optional(Type.Integer({ minimum: 0, maximum: 16, default: 0 })),
    walltime_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 7 * 86400, default: 3600 })),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 3 })),
    cpu_s: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 7 * 86400 * 256, description: 'cpu seconds of a command task\'s whole process tree; default walltime_s × cores' })),
    processes: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'processes and threads a command task may run at once; default 256' })),
    output_mb: Type.Optional(Type.Integer({ minimum: 1, maximum: 16_777_216, description: 'MiB a command task may write (outputs, scratch and logs together); default 10240' })),
  },
  { additionalProperties: false },
);

export const JobSpec = Type.Object(
  {
    kind: Type.String({ minLength: 1, maxLength: 64, description: 'job kind, e.g. catalog.sql, command, noop' }),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    group: Type.Optional(Token),
    input: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'kind-specific inputs (paths)' })),
    select: Type.Optional(Selection),
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'kind-specific parameters' })),
    output: Type.Optional(Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false })),
    resources: Type.Optional(Resources),
    idempotency_key: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' })),
    share_with_group: Type.Optional(Type.Boolean({ description: "let the members of the job's group read it (get, results, logs, provenance by job id); only the owner and operators may cancel or re-run it" })),
  },
  { additionalProperties: false, $id: 'JobSpec' },
);
export type JobSpec = Static<typeof JobSpec>;

export const PartitionRef = Type.Object({
  order: Type.Integer(),
  pixel: Type.Integer(),
  files: Type.Array(Type.String()),
  rows: Type.Optional(Type.Number()),
});
export type PartitionRef = Static<typeof PartitionRef>;

export const Task = Type.Object(
  {
    taskId: Id,
    jobId: Id,
    index: Type.Integer({ minimum: -1, description: '-1 for the reduce task' }),
    stage: Type.Union([Type.Literal('map'), Type.Literal('reduce')]),
    kind: Type.String(),
    user: Token,
    group: Token,
    capability: Token,
    partition: Type.Optional(PartitionRef),
    /** kind-specific per-task data (small); large data lives in the job spec */
    unit: Type.Optional(Type.Unknown()),
  },
  { $id: 'Task' },
);
export type Task = Static<typeof Task>;

export const Usage = Type.Object({
  cpuSeconds: Type.Number({ minimum: 0 }),
  wallSeconds: Type.Number({ minimum: 0 }),
  gpuSeconds: Type.Number({ minimum: 0 }),
  peakRssBytes: Type.Number({ minimum: 0 }),
  bytesRead: Type.Number({ minimum: 0 }),
  bytesWritten: Type.Number({ minimum: 0 }),
  /** cores the task held (its request); fair share and quotas charge wallSeconds × allocatedCores */
  allocatedCores: Type.Optional(Type.Number({ minimum: 0 })),
});
export type Usage = Static<typeof Usage>;

export const FileRecord = Type.Object({
  path: Type.String(),
  bytes: Type.Number(),
  sha256: Type.String(),
  rows: Type.Optional(Type.Number()),
});
export type FileRecord = Static<typeof FileRecord>;

export const TaskError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  retryable: Type.Boolean(),
  where: Type.Optional(Type.String()),
});
export type TaskError = Static<typeof TaskError>;

export const TaskOutcome = Type.Object({
  taskId: Id,
  index: Type.Integer(),
  stage: Type.Union([Type.Literal('map'), Type.Literal('reduce')]),
  attempt: Type.Integer({ minimum: 1 }),
  status: Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('cancelled')]),
  workerId: Type.String(),
  error: Type.Optional(TaskError),
  /** private temporary path the attempt wrote; the coordinator renames the first accepted one into place */
  outputTmp: Type.Optional(Type.String()),
  outputs: Type.Optional(Type.Array(FileRecord)),
  /** each output's path relative to outputTmp (parallel to outputs) */
  outputRel: Type.Optional(Type.Array(Type.String())),
  rows: Type.Optional(Type.Number()),
  /** small kind-specific summary (e.g. a command's exit code and artifact names) */
  summary: Type.Optional(Type.Unknown()),
  usage: Usage,
});
export type TaskOutcome = Static<typeof TaskOutcome>;

/** One message on ub.results.<jobId>: a batch of final task outcomes (batched for throughput). */
export const TaskResult = Type.Object(
  { jobId: Id, outcomes: Type.Array(TaskOutcome, { minItems: 1 }) },
  { $id: 'TaskResult' },
);
export type TaskResult = Static<typeof TaskResult>;

export const Provenance = Type.Object({
  inputs: Type.Array(FileRecord),
  outputs: Type.Array(FileRecord),
  code: Type.Object({ ubatchVersion: Type.String(), gitCommit: Type.String(), kind: Type.String(), executorDigest: Type.Optional(Type.String()), container: Type.Optional(Type.String()) }),
  params: Type.Unknown(),
  worker: Type.Object({ id: Type.String(), host: Type.String(), pid: Type.Integer() }),
  startedAt: Type.String(),
  endedAt: Type.String(),
  sandbox: Type.Optional(Type.Object({ network: Type.String(), filesystem: Type.Optional(Type.String()), limits: Type.Optional(Type.String()), notes: Type.Optional(Type.String()) })),
});
export type Provenance = Static<typeof Provenance>;

export const Charge = Type.Object({
  taskId: Id,
  jobId: Id,
  attempt: Type.Integer({ minimum: 1 }),
  /** unique id of this execution (<workerId>.<n>): JetStream's delivery count can repeat after a server crash, this cannot */
  execution: Type.String({ minLength: 1, maxLength: 160 }),
  outcome: Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('retried'), Type.Literal('cancelled')]),
  usage: Usage,
  provenance: Provenance,
});
export type Charge = Static<typeof Charge>;

const LedgerBase = {
  ts: Type.String({ description: 'ISO time of the append' }),
  actor: Type.String({ description: 'who caused the entry: a user, a worker id or an operator' }),
  group: Token,
  user: Token,
};

/** Cumulative charges of one tenant (or all of them) up to a seal: what `ubatch ledger verify` recomputes. */
export const SealBalance = Type.Object({
  /** wallSeconds × allocatedCores summed over every charge (what quotas and fair share charge) */
  coreSeconds: Type.Number({ minimum: 0 }),
  gpuSeconds: Type.Number({ minimum: 0 }),
  cpuSeconds: Type.Number({ minimum: 0 }),
  /** charges (attempts) counted */
  attempts: Type.Integer({ minimum: 0 }),
});
export type SealBalance = Static<typeof SealBalance>;

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });

/** A seal (on `ub.ledger.seal`, appended by the coordinator leader): see ledger/seal.ts for the hash construction. */
const LedgerSealed = Type.Object({
  kind: Type.Literal('ledger.sealed'),
  ...LedgerBase,
  /** 1 for the first seal of the stream, then +1 */
  block: Type.Integer({ minimum: 1 }),
  /** the stream sequences covered, inclusive; seal entries inside the range are not part of it */
  firstSeq: Type.Integer({ minimum: 1 }),
  lastSeq: Type.Integer({ minimum: 1 }),
  /** entries covered (every non-seal message with firstSeq <= seq <= lastSeq) */
  count: Type.Integer({ minimum: 1 }),
  /** hash of the previous seal; 64 zeros for the first */
  prev: Hex64,
  /** sha256 over prev, the range, every covered entry's digest and the balances digest */
  hash: Hex64,
  /** base64 of the first 8 bytes of each covered entry's digest, in sequence order (locates an altered entry) */
  digests: Type.String(),
  /** cumulative balances, up to lastSeq, of the tenants (`<group>.<user>`) charged in this block */
  balances: Type.Record(Type.String(), SealBalance),
  /** cumulative balances of all tenants together, up to lastSeq */
  totals: SealBalance,
  /** tenants charged so far */
  tenants: Type.Integer({ minimum: 0 }),
  /** sha256 of the full cumulative balance table up to lastSeq */
  balancesDigest: Hex64,
});

export const LedgerEntry = Type.Union(
  [
    Type.Object({ kind: Type.Literal('job.accepted'), ...LedgerBase, jobId: Id, jobKind: Type.String(), name: Type.Optional(Type.String()), tasks: Type.Integer(), spec: Type.Unknown() }),
    Type.Object({ kind: Type.Literal('task.charged'), ...LedgerBase, charges: Type.Array(Charge, { minItems: 1 }) }),
    Type.Object({ kind: Type.Literal('quota.set'), ...LedgerBase, scope: Type.Union([Type.Literal('user'), Type.Literal('group')]), limits: Type.Record(Type.String(), Type.Number()) }),
    Type.Object({ kind: Type.Literal('share.set'), ...LedgerBase, scope: Type.Union([Type.Literal('user'), Type.Literal('group')]), share: Type.Number({ minimum: 0 }) }),
    Type.Object({ kind: Type.Literal('job.closed'), ...LedgerBase, jobId: Id, state: Type.String(), done: Type.Integer(), failed: Type.Integer(), outputs: Type.Array(FileRecord) }),
    LedgerSealed,
  ],
  { $id: 'LedgerEntry' },
);
export type LedgerEntry = Static<typeof LedgerEntry>;
export type LedgerEntryOf<K extends LedgerEntry['kind']> = Extract<LedgerEntry, { kind: K }>;

export const JobStateName = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('reducing'),
  Type.Literal('succeeded'),
  Type.Literal('partial'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
export type JobStateName = Static<typeof JobStateName>;
export const TERMINAL_STATES: ReadonlySet<JobStateName> = new Set(['succeeded', 'partial', 'failed', 'cancelled']);

export const TaskFailure = Type.Object({ taskId: Id, index: Type.Integer(), attempt: Type.Integer(), error: TaskError });

/** The public view of a job (what jobs.get answers). */
export const JobInfo = Type.Object(
  {
    jobId: Id,
    kind: Type.String(),
    name: Type.Optional(Type.String()),
    user: Token,
    group: Token,
    state: JobStateName,
    total: Type.Integer(),
    released: Type.Integer(),
    done: Type.Integer(),
    failed: Type.Integer(),
    hasReduce: Type.Boolean(),
    createdAt: Type.String(),
    updatedAt: Type.String(),
    closedAt: Type.Optional(Type.String()),
    output: Type.Optional(Type.String()),
    error: Type.Optional(Type.String()),
    failures: Type.Array(TaskFailure),
    usage: Type.Object({ cpuSeconds: Type.Number(), wallSeconds: Type.Number(), gpuSeconds: Type.Number() }),
  },
  { $id: 'JobInfo' },
);
export type JobInfo = Static<typeof JobInfo>;

export const JobEvent = Type.Object(
  {
    jobId: Id,
    type: Type.Union([Type.Literal('state'), Type.Literal('progress')]),
    state: JobStateName,
    total: Type.Integer(),
    done: Type.Integer(),
    failed: Type.Integer(),
    ts: Type.String(),
    message: Type.Optional(Type.String()),
  },
  { $id: 'JobEvent' },
);
export type JobEvent = Static<typeof JobEvent>;

export const ApiError = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    where: Type.Optional(Type.String({ description: 'JSON pointer into the request, or a path' })),
    details: Type.Optional(Type.Unknown()),
  },
  { $id: 'ApiError' },
);
export type ApiErrorBody = Static<typeof ApiError>;

/** Every API reply: `{ ok: true, data }` or `{ ok: false, error }`. */
export const ApiReply = Type.Union(
  [Type.Object({ ok: Type.Literal(true), data: Type.Unknown() }), Type.Object({ ok: Type.Literal(false), error: ApiError })],
  { $id: 'ApiReply' },
);
export type ApiReply<T = unknown> = { ok: true; data: T } | { ok: false; error: ApiErrorBody };

export const SubmitRequest = Type.Object({ spec: JobSpec, dryRun: Type.Optional(Type.Boolean()) }, { additionalProperties: false, $id: 'SubmitRequest' });
export type SubmitRequest = Static<typeof SubmitRequest>;
export const JobRef = Type.Object({ jobId: Id }, { additionalProperties: false, $id: 'JobRef' });
export const ListRequest = Type.Object(
  {
    state: Type.Optional(Type.String()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    all: Type.Optional(Type.Boolean({ description: 'operators: every user\'s jobs' })),
    shared: Type.Optional(Type.Boolean({ description: 'also the jobs that members of your groups shared with the group (share_with_group)' })),
  },
  { additionalProperties: false, $id: 'ListRequest' },
);
export type ListRequest = Static<typeof ListRequest>;

export const SubmitReply = Type.Object({ jobId: Id, tasks: Type.Integer(), duplicate: Type.Boolean(), state: JobStateName });
export type SubmitReply = Static<typeof SubmitReply>;

export const ResultsReply = Type.Object({
  jobId: Id,
  state: JobStateName,
  output: Type.Optional(Type.String()),
  files: Type.Array(FileRecord),
  failures: Type.Array(TaskFailure),
  summaries: Type.Array(Type.Object({ taskId: Id, summary: Type.Unknown() })),
});
export type ResultsReply = Static<typeof ResultsReply>;

/** Schemas exported to protocol/schemas/<name>.json */
export const PUBLISHED_SCHEMAS: Record<string, TSchema> = {
  JobSpec,
  Task,
  TaskResult,
  LedgerEntry,
  JobInfo,
  JobEvent,
  ApiError,
  ApiReply,
  SubmitRequest,
  ListRequest,
  JobRef,
};
