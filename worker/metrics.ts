/** What the worker reports; ops/ supplies a prom-client implementation, tests the no-op one. */
export interface WorkerMetrics {
  taskFinished(kind: string, outcome: 'ok' | 'failed' | 'retried' | 'dead' | 'cancelled', seconds: number): void;
  slots(busy: number, total: number): void;
  ledgerAppend(seconds: number): void;
  swallowed(where: string): void;
}
export const noopWorkerMetrics: WorkerMetrics = { taskFinished() {}, slots() {}, ledgerAppend() {}, swallowed() {} };
