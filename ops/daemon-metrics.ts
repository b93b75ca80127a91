/**
 * Adapters from the prom-client metrics (ops/metrics.ts) to the small
 * metrics interfaces the coordinator and worker depend on, so those rooms
 * never import prom-client.
 */
import type { CoordinatorMetrics } from '../coordinator/index.js';
import type { WorkerMetrics } from '../worker/index.js';
import type { DaemonMetrics } from './metrics.js';

export function workerMetricsFrom(m: DaemonMetrics): WorkerMetrics {
  return {
    taskFinished(kind, outcome, seconds) {
      m.countTask(kind, outcome);
      // dead and cancelled-before-start attempts never ran: no duration to record
      if (seconds > 0 || outcome === 'ok' || outcome === 'failed' || outcome === 'retried') m.taskDuration.observe({ kind }, Math.max(0, seconds));
    },
    slots(busy, total) {
      m.slotsBusy.set(busy);
      m.slotsTotal.set(total);
    },
    ledgerAppend(seconds) {
      m.ledgerAppendLatency.observe(seconds);
    },
    swallowed(where) {
      m.swallowedErrors.inc({ where });
    },
  };
}

export function coordinatorMetricsFrom(m: DaemonMetrics): CoordinatorMetrics {
  return {
    job(kind, state) {
      m.jobsTotal.inc({ kind, state });
    },
    api(verb, code) {
      m.apiRequests.inc({ verb, code });
    },
    queueDepth(tenant, capability, n) {
      m.queueDepth.set({ tenant, capability }, n);
    },
    ledgerAppend(seconds) {
      m.ledgerAppendLatency.observe(seconds);
    },
    swallowed(where) {
      m.swallowedErrors.inc({ where });
    },
  };
}
