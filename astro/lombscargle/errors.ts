/**
 * Failure modes of the Lomb-Scargle kernels. Each class names what went wrong
 * and carries the value or light curve it concerns, so an executor can map it
 * onto "retry cannot help" (all of these are deterministic input problems,
 * except {@link PeriodogramAbortedError}).
 */

/** Options shared by every error of this area. */
export interface LombScargleErrorOptions {
  cause?: unknown;
  /** Label of the light curve concerned (e.g. object id or batch index). */
  lightCurve?: string;
}

/** Base class: `instanceof LombScargleError` catches every failure of this area. */
export class LombScargleError extends Error {
  override name = 'LombScargleError';
  readonly lightCurve: string | undefined;
  /** Input errors are deterministic: retrying the same task cannot help. */
  readonly retryable: boolean = false;

  constructor(message: string, opts: LombScargleErrorOptions = {}) {
    super(opts.lightCurve === undefined ? message : `${message} (light curve ${opts.lightCurve})`, {
      cause: opts.cause,
    });
    this.lightCurve = opts.lightCurve;
  }
}

/** t, y and dy do not have the same length. */
export class LightCurveShapeError extends LombScargleError {
  override name = 'LightCurveShapeError';
  constructor(
    readonly lengths: { t: number; y: number; dy?: number },
    opts: LombScargleErrorOptions = {},
  ) {
    super(
      `light curve arrays differ in length: t=${lengths.t}, y=${lengths.y}` +
        (lengths.dy === undefined ? '' : `, dy=${lengths.dy}`),
      opts,
    );
  }
}

/** Fewer usable points than the model has parameters (after dropping NaN rows). */
export class InsufficientDataError extends LombScargleError {
  override name = 'InsufficientDataError';
  constructor(
    readonly nUsable: number,
    readonly nRequired: number,
    readonly nDropped: number,
    opts: LombScargleErrorOptions = {},
  ) {
    super(
      `light curve has ${nUsable} usable point(s) (${nDropped} dropped as non-finite), ` +
        `at least ${nRequired} are required`,
      opts,
    );
  }
}

/** An uncertainty is zero, negative or infinite: its weight 1/dy^2 is undefined. */
export class InvalidUncertaintyError extends LombScargleError {
  override name = 'InvalidUncertaintyError';
  constructor(
    readonly index: number,
    readonly value: number,
    opts: LombScargleErrorOptions = {},
  ) {
    super(`dy[${index}] = ${value}: uncertainties must be finite and > 0`, opts);
  }
}

/** Non-finite rows found while the NaN policy is 'raise'. */
export class NonFiniteInputError extends LombScargleError {
  override name = 'NonFiniteInputError';
  constructor(
    readonly index: number,
    readonly column: 't' | 'y' | 'dy',
    opts: LombScargleErrorOptions = {},
  ) {
    super(`${column}[${index}] is not finite and nanPolicy is 'raise'`, opts);
  }
}

/** All times are equal, so no baseline (and no frequency grid) can be defined. */
export class ZeroBaselineError extends LombScargleError {
  override name = 'ZeroBaselineError';
  constructor(
    readonly time: number,
    opts: LombScargleErrorOptions = {},
  ) {
    super(`all observation times equal ${time}: the baseline is zero`, opts);
  }
}

/** A frequency grid or option value is out of range. */
export class InvalidOptionError extends LombScargleError {
  override name = 'InvalidOptionError';
  constructor(
    readonly option: string,
    readonly value: unknown,
    reason: string,
    opts: LombScargleErrorOptions = {},
  ) {
    super(`invalid ${option} = ${String(value)}: ${reason}`, opts);
  }
}

/** The caller's AbortSignal fired; the partial result is discarded. */
export class PeriodogramAbortedError extends LombScargleError {
  override name = 'PeriodogramAbortedError';
  override readonly retryable = true;
  constructor(
    readonly done: number,
    readonly total: number,
    opts: LombScargleErrorOptions = {},
  ) {
    super(`periodogram aborted after ${done} of ${total} steps`, opts);
  }
}
