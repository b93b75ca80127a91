/**
 * Failure modes of the FITS reader and writer. Every error names the file (or
 * `<buffer>`) and, where it applies, the HDU index, so a task log says exactly
 * which input was at fault.
 */

export interface FitsErrorContext {
  /** file the error concerns, `<buffer>` for in-memory data */
  path?: string;
  /** 0-based HDU index */
  hdu?: number;
  cause?: unknown;
}

function where(ctx: FitsErrorContext): string {
  const parts: string[] = [];
  if (ctx.path !== undefined) parts.push(ctx.path);
  if (ctx.hdu !== undefined) parts.push(`HDU ${ctx.hdu}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** Base class: anything that went wrong reading or writing FITS. */
export class FitsError extends Error {
  readonly path: string | undefined;
  readonly hdu: number | undefined;
  constructor(message: string, ctx: FitsErrorContext = {}) {
    super(`${message}${where(ctx)}`, ctx.cause !== undefined ? { cause: ctx.cause } : undefined);
    this.name = 'FitsError';
    this.path = ctx.path;
    this.hdu = ctx.hdu;
  }
}

/** The bytes are not valid FITS (bad header, missing END, truncated data). */
export class FitsFormatError extends FitsError {
  constructor(message: string, ctx: FitsErrorContext = {}) {
    super(message, ctx);
    this.name = 'FitsFormatError';
  }
}

/** Valid FITS that this reader deliberately does not handle (random groups, PLIO/HCOMPRESS tiles, ...). */
export class FitsUnsupportedError extends FitsError {
  /** short machine-friendly name of the unsupported feature, e.g. `HCOMPRESS_1` */
  readonly feature: string;
  constructor(feature: string, message: string, ctx: FitsErrorContext = {}) {
    super(message, ctx);
    this.name = 'FitsUnsupportedError';
    this.feature = feature;
  }
}

/** The HDU asked for (by index or EXTNAME) is not in the file. */
export class FitsHduNotFoundError extends FitsError {
  readonly requested: number | string;
  constructor(requested: number | string, ctx: FitsErrorContext = {}) {
    super(`HDU ${JSON.stringify(requested)} not found`, ctx);
    this.name = 'FitsHduNotFoundError';
    this.requested = requested;
  }
}

/** A pixel section reaches outside the image. */
export class FitsSectionError extends FitsError {
  constructor(message: string, ctx: FitsErrorContext = {}) {
    super(message, ctx);
    this.name = 'FitsSectionError';
  }
}

/** A header card or data array cannot be encoded (bad keyword, NaN value, shape mismatch ...). */
export class FitsWriteError extends FitsError {
  constructor(message: string, ctx: FitsErrorContext = {}) {
    super(message, ctx);
    this.name = 'FitsWriteError';
  }
}

/** A tile of a compressed image could not be decoded. */
export class FitsDecompressionError extends FitsError {
  readonly tile: number;
  constructor(tile: number, message: string, ctx: FitsErrorContext = {}) {
    super(`tile ${tile}: ${message}`, ctx);
    this.name = 'FitsDecompressionError';
    this.tile = tile;
  }
}

/** The caller's AbortSignal fired. */
export class FitsAbortError extends FitsError {
  constructor(ctx: FitsErrorContext = {}) {
    super('aborted', ctx);
    this.name = 'FitsAbortError';
  }
}
