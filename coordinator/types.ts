/** Logger and metrics interfaces the coordinator depends on (ops/ supplies pino and prom-client). */
export type { Log } from '../protocol/index.js';
export interface CoordinatorMetrics {
  job(kind: string, state: string): void;
  api(verb: string, code: string): void;
  queueDepth(tenant: string, capability: string, n: number): void;
  ledgerAppend(seconds: number): void;
  swallowed(where: string): void;
}
export const noopCoordinatorMetrics: CoordinatorMetrics = { job() {}, api() {}, queueDepth() {}, ledgerAppend() {}, swallowed() {} };
