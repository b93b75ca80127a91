export { Coordinator, type CoordinatorDeps } from './daemon.js';
export { compileCoordinatorOptions, type CoordinatorOptions, type CompiledCoordinatorOptions, CoordinatorOptionsError } from './options.js';
export { planJob, catalogPartitions, type Plan } from './planner.js';
export { JobManager } from './manager.js';
export { noopCoordinatorMetrics, type CoordinatorMetrics } from './types.js';
export * as fairshare from './fairshare/index.js';
export { commitOutputs, discardAttempt } from './commit.js';
export { capacityCoreSeconds, capacityKey, liveSlots, CapacityRecorder } from './capacity.js';
