/** API error codes (stable strings other clients can switch on) and the error class carrying them. */
export const ApiCode = {
  BadRequest: 'bad_request',
  BadEncoding: 'bad_encoding',
  TooLarge: 'too_large',
  InvalidSpec: 'invalid_spec',
  UnknownKind: 'unknown_kind',
  InputNotFound: 'input_not_found',
  InvalidInput: 'invalid_input',
  NotFound: 'not_found',
  Forbidden: 'forbidden',
  OverQuota: 'over_quota',
  Conflict: 'conflict',
  Unavailable: 'unavailable',
  Internal: 'internal',
} as const;
export type ApiCode = (typeof ApiCode)[keyof typeof ApiCode];

export class UbatchApiError extends Error {
  override name = 'UbatchApiError';
  constructor(
    readonly code: ApiCode | string,
    message: string,
    readonly where?: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  toBody(): { code: string; message: string; where?: string; details?: unknown } {
    return {
      code: this.code,
      message: this.message,
      ...(this.where !== undefined ? { where: this.where } : {}),
      ...(this.details !== undefined ? { details: this.details } : {}),
    };
  }
}

export class DecodeError extends Error {
  override name = 'DecodeError';
  constructor(message: string, readonly subject?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
