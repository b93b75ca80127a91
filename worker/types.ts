import type { FileRecord, JobSpec, Task, Usage } from '../protocol/index.js';

export { noopLog, type Log } from '../protocol/index.js';
import type { Log } from '../protocol/index.js';

export interface ExecContext {
  task: Task;
  spec: JobSpec;
  attempt: number;
  /** private directory for this attempt's outputs: the coordinator renames it into place when accepted */
  outDir: string;
  /** private scratch directory, removed after the attempt */
  scratchDir: string;
  signal: AbortSignal;
  /** call from long loops: keeps the JetStream message alive */
  progress(done?: number, total?: number): void;
  log: Log;
  workerId: string;
  /** store a small artifact (logs, previews) in the object store; returns its name */
  putArtifact(name: string, data: Uint8Array): Promise<string>;
}

export interface ExecResult {
  inputs: FileRecord[];
  outputs: FileRecord[];
  rows?: number;
  summary?: unknown;
  /** usage measured by the executor itself (child processes); otherwise the runner's accounting is used */
  usage?: Partial<Usage>;
  sandbox?: { network: string; filesystem?: string; limits?: string; notes?: string };
}

export interface Executor {
  kind: string;
  /** runs in the worker's event-loop process (DuckDB, I/O) vs a child process */
  inProcess: boolean;
  /** the attempt's output and scratch directories are created before it runs @default true */
  needsDirs?: boolean;
  map(ctx: ExecContext): Promise<ExecResult>;
  reduce?(ctx: ExecContext, partials: string[]): Promise<ExecResult>;
}
