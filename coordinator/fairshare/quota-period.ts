import { InvalidQuotaPeriodError } from './errors.js';
import { DAY_MS } from './options.js';

/**
 * A quota period: a calendar month, an ISO week (Monday 00:00 UTC to the next
 * Monday), a UTC day, or a run of `days` days counted from the Unix epoch
 * (1970-01-01T00:00Z), so consecutive periods tile time without gaps.
 */
export type QuotaPeriodSpec = 'month' | 'week' | 'day' | { days: number };

/**
 * The period containing `atMs`, as the half-open interval [start, end) in ms
 * since the epoch, all in UTC. Defaults to the calendar month.
 */
export function quotaPeriod(atMs: number, period: QuotaPeriodSpec = 'month'): { start: number; end: number } {
  if (typeof atMs !== 'number' || !Number.isFinite(atMs)) {
    throw new InvalidQuotaPeriodError(period, `time ${String(atMs)} is not a finite ms epoch`);
  }
  if (period === 'month') {
    const d = new Date(atMs);
    const year = d.getUTCFullYear();
    const month = d.getUTCMonth();
    return { start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
  }
  if (period === 'day') return epochAligned(atMs, DAY_MS, 0);
  if (period === 'week') {
    // 1970-01-01 was a Thursday: Mondays are epoch days 4 (mod 7)
    return epochAligned(atMs, 7 * DAY_MS, 4 * DAY_MS);
  }
  if (typeof period === 'object' && period !== null && 'days' in period) {
    const days = period.days;
    if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0) {
      throw new InvalidQuotaPeriodError(period, 'days must be a finite number > 0');
    }
    return epochAligned(atMs, days * DAY_MS, 0);
  }
  throw new InvalidQuotaPeriodError(period, "expected 'month', 'week', 'day' or { days: n }");
}

function epochAligned(atMs: number, lengthMs: number, offsetMs: number): { start: number; end: number } {
  const index = Math.floor((atMs - offsetMs) / lengthMs);
  const start = offsetMs + index * lengthMs;
  return { start, end: start + lengthMs };
}
