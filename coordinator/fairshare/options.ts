import { InvalidFairShareOptionError } from './errors.js';

/** Milliseconds in one day. */
export const DAY_MS = 86_400_000;

/** Public fair-share options; every field is optional. */
export interface FairShareOptions {
  /**
   * Half-life of the usage decay, in milliseconds: usage charged `halfLifeMs`
   * ago weighs half as much as usage charged now.
   * @default 604_800_000 (7 days)
   */
  halfLifeMs?: number;
  /**
   * Core-seconds charged per GPU-second: usage = coreSeconds + gpuWeight * gpuSeconds.
   * @default 10
   */
  gpuWeight?: number;
  /**
   * Clock in ms since the Unix epoch, injected so tests and replays control time.
   * @default Date.now
   */
  now?: () => number;
}

/** {@link FairShareOptions} with every default filled and every value checked. */
export interface CompiledFairShareOptions {
  readonly halfLifeMs: number;
  readonly gpuWeight: number;
  readonly now: () => number;
}

export const DEFAULT_HALF_LIFE_MS = 7 * DAY_MS;
export const DEFAULT_GPU_WEIGHT = 10;

/**
 * Fills defaults and rejects values that would make the decay meaningless
 * (a non-positive or non-finite half-life, a negative GPU weight).
 */
export function compileFairShareOptions(opts: FairShareOptions = {}): CompiledFairShareOptions {
  const halfLifeMs = opts.halfLifeMs ?? DEFAULT_HALF_LIFE_MS;
  if (typeof halfLifeMs !== 'number' || !Number.isFinite(halfLifeMs) || halfLifeMs <= 0) {
    throw new InvalidFairShareOptionError('halfLifeMs', halfLifeMs, 'must be a finite number of milliseconds > 0');
  }
  const gpuWeight = opts.gpuWeight ?? DEFAULT_GPU_WEIGHT;
  if (typeof gpuWeight !== 'number' || !Number.isFinite(gpuWeight) || gpuWeight < 0) {
    throw new InvalidFairShareOptionError('gpuWeight', gpuWeight, 'must be a finite number >= 0');
  }
  const now = opts.now ?? Date.now;
  if (typeof now !== 'function') {
    throw new InvalidFairShareOptionError('now', now, 'must be a function returning ms since the epoch');
  }
  return { halfLifeMs, gpuWeight, now };
}
