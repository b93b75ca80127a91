/**
 * Failure modes of the fair-share mathematics. Every error here is a caller
 * mistake (bad configuration or bad input): retrying the same call cannot help,
 * so none of them carries retry meaning.
 */

/** Common base so callers can `instanceof FairShareError` for the whole room. */
export class FairShareError extends Error {
  override name = 'FairShareError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An option of {@link FairShareOptions} (or of a kernel) is out of range. */
export class InvalidFairShareOptionError extends FairShareError {
  override name = 'InvalidFairShareOptionError';
  constructor(
    readonly option: string,
    readonly value: unknown,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`fair-share option '${option}' = ${describe(value)}: ${reason}`, options);
  }
}

/** The share tree has a bad share value or a bad name; `path` says where, e.g. `groups.desc.users.ann.share`. */
export class InvalidShareTreeError extends FairShareError {
  override name = 'InvalidShareTreeError';
  constructor(
    readonly path: string,
    readonly value: unknown,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`share tree at '${path}' = ${describe(value)}: ${reason}`, options);
  }
}

/** A usage record has a field that cannot be charged (negative, NaN, missing name...). */
export class InvalidUsageRecordError extends FairShareError {
  override name = 'InvalidUsageRecordError';
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly tenant: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`usage record for tenant '${tenant}': field '${field}' = ${describe(value)}: ${reason}`, options);
  }
}

/** A group or user name cannot form an unambiguous tenant key. */
export class InvalidTenantNameError extends FairShareError {
  override name = 'InvalidTenantNameError';
  constructor(
    readonly kind: 'group' | 'user' | 'tenant',
    readonly value: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${kind} name ${JSON.stringify(value)}: ${reason}`, options);
  }
}

/** A backlog count given to the tenant picker is not a non-negative finite number. */
export class InvalidBacklogError extends FairShareError {
  override name = 'InvalidBacklogError';
  constructor(
    readonly tenant: string,
    readonly capability: string,
    readonly count: unknown,
    options?: { cause?: unknown },
  ) {
    super(
      `backlog for tenant '${tenant}' capability '${capability}' = ${describe(count)}: must be a finite number >= 0`,
      options,
    );
  }
}

/** A quota period specification is not understood. */
export class InvalidQuotaPeriodError extends FairShareError {
  override name = 'InvalidQuotaPeriodError';
  constructor(
    readonly period: unknown,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`quota period ${describe(period)}: ${reason}`, options);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // unserialisable values (cycles, BigInt) only lose detail in the message
    return String(value);
  }
}
