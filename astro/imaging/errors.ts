/** Error classes of the imaging kernels: one class per failure mode, each with `name` and `cause`. */

export interface ImagingErrorOptions {
  cause?: unknown;
  /** File the failure concerns, when there is one. */
  path?: string;
}

/** Base class; catch this to handle any imaging failure. */
export class ImagingError extends Error {
  readonly path: string | undefined;
  constructor(message: string, options: ImagingErrorOptions = {}) {
    super(options.path !== undefined ? `${message} (${options.path})` : message, { cause: options.cause });
    this.name = 'ImagingError';
    this.path = options.path;
  }
}

/** The image arrays disagree with the stated shape, or the shape is unusable. */
export class ImageShapeError extends ImagingError {
  readonly width: number;
  readonly height: number;
  constructor(message: string, width: number, height: number, options: ImagingErrorOptions = {}) {
    super(`${message} [image ${width}x${height}]`, options);
    this.name = 'ImageShapeError';
    this.width = width;
    this.height = height;
  }
}

/** An option is out of range or conflicts with another. */
export class ImagingOptionError extends ImagingError {
  readonly option: string;
  readonly value: unknown;
  constructor(option: string, value: unknown, reason: string, options: ImagingErrorOptions = {}) {
    super(`invalid option ${option}=${JSON.stringify(value)}: ${reason}`, options);
    this.name = 'ImagingOptionError';
    this.option = option;
    this.value = value;
  }
}

/** The kernel saw its AbortSignal fire. */
export class ImagingAbortedError extends ImagingError {
  readonly stage: string;
  constructor(stage: string, options: ImagingErrorOptions = {}) {
    super(`imaging kernel aborted during ${stage}`, options);
    this.name = 'ImagingAbortedError';
    this.stage = stage;
  }
}

/** No photometric zero point could be found (header keys MAGZERO, FLUXMAG0, PHOTCALIB) nor was one given. */
export class ZeroPointError extends ImagingError {
  constructor(message: string, options: ImagingErrorOptions = {}) {
    super(message, options);
    this.name = 'ZeroPointError';
  }
}

/** Too few usable pixels to estimate a sky (everything masked or NaN). */
export class InsufficientDataError extends ImagingError {
  readonly usable: number;
  constructor(message: string, usable: number, options: ImagingErrorOptions = {}) {
    super(`${message} (usable pixels: ${usable})`, options);
    this.name = 'InsufficientDataError';
    this.usable = usable;
  }
}

/** Reading or writing an image, stamp or survey file failed. */
export class ImagingIoError extends ImagingError {
  readonly hdu: number | undefined;
  constructor(message: string, path: string, hdu?: number, options: Omit<ImagingErrorOptions, 'path'> = {}) {
    super(hdu !== undefined ? `${message} [HDU ${hdu}]` : message, { ...options, path });
    this.name = 'ImagingIoError';
    this.hdu = hdu;
  }
}

/** Throws {@link ImagingAbortedError} when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, stage: string): void {
  if (signal?.aborted === true) throw new ImagingAbortedError(stage, { cause: signal.reason });
}
