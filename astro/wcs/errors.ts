/** Failure modes of WCS construction and coordinate transforms. */

export class WcsError extends Error {
  /** the header keyword concerned, when there is one */
  readonly keyword: string | undefined;
  constructor(message: string, opts: { keyword?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'WcsError';
    this.keyword = opts.keyword;
  }
}

/** A required keyword is missing or has an unusable value. */
export class WcsHeaderError extends WcsError {
  constructor(message: string, opts: { keyword?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'WcsHeaderError';
  }
}

/** A projection or convention this implementation does not handle (SIN, TPV, ...). */
export class WcsUnsupportedError extends WcsError {
  readonly feature: string;
  constructor(feature: string, message: string, opts: { keyword?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'WcsUnsupportedError';
    this.feature = feature;
  }
}

/** The iterative sky->pixel inversion of SIP distortion did not converge. */
export class WcsConvergenceError extends WcsError {
  readonly ra: number;
  readonly dec: number;
  constructor(ra: number, dec: number, message: string) {
    super(`sky->pixel did not converge at ra=${ra}, dec=${dec}: ${message}`);
    this.name = 'WcsConvergenceError';
    this.ra = ra;
    this.dec = dec;
  }
}
