export class LedgerAppendError extends Error {
  override name = 'LedgerAppendError';
  constructor(message: string, readonly msgId: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
