/** Pause before retry number `attempt` (1, 2, ...): `baseMs`, doubling each time, never more than `capMs`. */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 20));
}

export interface RetryOptions {
  /** pause before the first retry, doubling each time up to `capMs` */
  baseMs: number;
  capMs: number;
  /** whether to try again after this failure (false: the error is thrown); `delayMs` is the pause that would follow */
  retryable(err: unknown, attempt: number, delayMs: number): boolean;
  /** called before each pause (logging) */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
}

/** `fn` until it succeeds or `retryable` says no, with exponential backoff between tries. */
export async function retrying<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const delayMs = backoffMs(attempt, o.baseMs, o.capMs);
      if (!o.retryable(err, attempt, delayMs)) throw err;
      o.onRetry?.(err, attempt, delayMs);
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
