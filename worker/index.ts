export { WorkerDaemon, type WorkerDeps } from './daemon.js';
export { compileWorkerOptions, backoffFor, type WorkerOptions, type CompiledWorkerOptions, WorkerOptionsError } from './options.js';
export { executors } from './executors/index.js';
export { noopWorkerMetrics, type WorkerMetrics } from './metrics.js';
export { noopLog, type Log, type Executor, type ExecContext, type ExecResult } from './types.js';
export { TaskFailedError, InputError, TaskTimeoutError, TaskCancelledError, asTaskError } from './errors.js';
export { canUnshareNetwork, runSandboxed } from './sandbox.js';
export { buildInfo } from './build-info.js';
export { fileRecord, sha256File, listFilesRecursive } from './files.js';
