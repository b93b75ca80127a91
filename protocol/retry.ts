/** Pause before retry number `attempt` (1, 2, ...): `baseMs`, doubling each time, never more than `capMs`. */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 20));
}
