/** Failure modes of image indexing, index I/O and the skymap. */

export class ImagesError extends Error {
  /** file concerned, when there is one */
  readonly path: string | undefined;
  constructor(message: string, opts: { path?: string; cause?: unknown } = {}) {
    super(opts.path !== undefined ? `${message} (${opts.path})` : message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'ImagesError';
    this.path = opts.path;
  }
}

/** The image index Parquet file is missing columns or holds bad values. */
export class ImageIndexFormatError extends ImagesError {
  constructor(message: string, opts: { path?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'ImageIndexFormatError';
  }
}

/** Bad skymap configuration or a tract/patch id that does not exist. */
export class SkyMapError extends ImagesError {
  readonly value: unknown;
  constructor(message: string, value: unknown, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'SkyMapError';
    this.value = value;
  }
}

/** The caller's AbortSignal fired. */
export class ImagesAbortError extends ImagesError {
  constructor(opts: { path?: string } = {}) {
    super('aborted', opts);
    this.name = 'ImagesAbortError';
  }
}
