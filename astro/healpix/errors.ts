/**
 * Failure modes of the HEALPix kernel. Every class extends RangeError, so callers
 * may catch the whole family with `instanceof RangeError`, and carries the value
 * it concerns.
 */

/** The HEALPix order (log2 nside) is not an integer in the allowed interval. */
export class HealpixOrderError extends RangeError {
  override readonly name = 'HealpixOrderError';
  constructor(
    readonly order: number,
    readonly maxOrder: number,
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${operation}: HEALPix order ${String(order)} is invalid (expected an integer in 0..${String(maxOrder)})`,
      options,
    );
  }
}

/** A pixel index is not an integer in [0, npix(order)). */
export class HealpixPixelError extends RangeError {
  override readonly name = 'HealpixPixelError';
  constructor(
    readonly order: number,
    readonly pix: number | bigint,
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${operation}: pixel ${String(pix)} is not a valid NESTED pixel index at order ${String(order)} ` +
        `(expected an integer in [0, 12*4^${String(order)}))`,
      options,
    );
  }
}

/** A sky position is not finite or its declination lies outside [-90, 90] degrees. */
export class HealpixCoordinateError extends RangeError {
  override readonly name = 'HealpixCoordinateError';
  constructor(
    readonly ra: number,
    readonly dec: number,
    readonly operation: string,
    /** Position in the input arrays for batch calls; undefined for scalar calls. */
    readonly index?: number,
    options?: { cause?: unknown },
  ) {
    super(
      `${operation}: invalid position ra=${String(ra)} dec=${String(dec)} deg` +
        (index === undefined ? '' : ` at index ${String(index)}`) +
        ' (ra must be finite, dec finite and within [-90, 90])',
      options,
    );
  }
}

/** Some other argument (radius, oversampling factor, step, array lengths) is out of range. */
export class HealpixArgumentError extends RangeError {
  override readonly name = 'HealpixArgumentError';
  constructor(
    readonly argument: string,
    readonly value: unknown,
    readonly operation: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation}: invalid ${argument}=${String(value)}: ${reason}`, options);
  }
}
