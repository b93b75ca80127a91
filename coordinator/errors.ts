export { UbatchApiError, ApiCode } from '../protocol/index.js';

export class CommitError extends Error {
  override name = 'CommitError';
  constructor(message: string, readonly taskId: string, readonly path: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
