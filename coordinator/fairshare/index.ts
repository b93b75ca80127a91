/**
 * Fair-share mathematics for the coordinator: decayed usage, Slurm-style Fair
 * Tree ranking, the workers' tenant picker, a policy simulator and quota
 * periods. Pure functions and data structures: no NATS, no I/O.
 */
export {
  compileFairShareOptions,
  DAY_MS,
  DEFAULT_GPU_WEIGHT,
  DEFAULT_HALF_LIFE_MS,
  type CompiledFairShareOptions,
  type FairShareOptions,
} from './options.js';
export { tenantKey, parseTenantKey } from './tenant.js';
export { DecayedUsage, type UsageRecord } from './decayed-usage.js';
export {
  computeFairTree,
  fairTreeGroups,
  fairTreeRanking,
  type FairTreeOptions,
  type FairTreeResult,
  type GroupRank,
  type ShareTree,
  type TenantRank,
  type UsageLookup,
} from './fair-tree.js';
export { TenantPicker } from './tenant-picker.js';
export { simulatePolicy, type PolicyWindow, type SimulatePolicyOptions } from './simulate-policy.js';
export { quotaPeriod, type QuotaPeriodSpec } from './quota-period.js';
export {
  FairShareError,
  InvalidBacklogError,
  InvalidFairShareOptionError,
  InvalidQuotaPeriodError,
  InvalidShareTreeError,
  InvalidTenantNameError,
  InvalidUsageRecordError,
} from './errors.js';
