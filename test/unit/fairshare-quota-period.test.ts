import { describe, expect, it } from 'vitest';
import { DAY_MS, InvalidQuotaPeriodError, quotaPeriod } from '../../coordinator/fairshare/index.js';

const iso = (ms: number): string => new Date(ms).toISOString();
const at = (s: string): number => Date.parse(s);
const span = (p: { start: number; end: number }): [string, string] => [iso(p.start), iso(p.end)];

describe('quotaPeriod', () => {
  it('defaults to the UTC calendar month, half-open [start, end)', () => {
    expect(span(quotaPeriod(at('2024-02-15T12:00:00Z')))).toEqual(['2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    // leap February ends on the 29th
    expect(span(quotaPeriod(at('2024-02-29T23:59:59.999Z')))).toEqual(['2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    // the first instant of a month belongs to that month, the last ms before it to the previous one
    expect(span(quotaPeriod(at('2024-03-01T00:00:00Z'), 'month'))).toEqual(['2024-03-01T00:00:00.000Z', '2024-04-01T00:00:00.000Z']);
    expect(span(quotaPeriod(at('2024-03-01T00:00:00Z') - 1, 'month'))).toEqual(['2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    // year rollover
    expect(span(quotaPeriod(at('2024-12-31T23:59:59.999Z')))).toEqual(['2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
    // before the epoch
    expect(span(quotaPeriod(at('1969-12-15T00:00:00Z')))).toEqual(['1969-12-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z']);
    // UTC, not local time: 23:30 on Jan 31 UTC is January whatever the host zone
    expect(span(quotaPeriod(at('2025-01-31T23:30:00Z')))).toEqual(['2025-01-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z']);
  });

  it('gives ISO weeks from Monday 00:00 UTC', () => {
    expect(span(quotaPeriod(at('2024-01-03T10:00:00Z'), 'week'))).toEqual(['2024-01-01T00:00:00.000Z', '2024-01-08T00:00:00.000Z']);
    expect(span(quotaPeriod(at('2024-01-07T23:59:59.999Z'), 'week'))).toEqual(['2024-01-01T00:00:00.000Z', '2024-01-08T00:00:00.000Z']);
    expect(span(quotaPeriod(at('2024-01-08T00:00:00Z'), 'week'))).toEqual(['2024-01-08T00:00:00.000Z', '2024-01-15T00:00:00.000Z']);
    expect(span(quotaPeriod(0, 'week'))).toEqual(['1969-12-29T00:00:00.000Z', '1970-01-05T00:00:00.000Z']);
    expect(new Date(quotaPeriod(at('2031-07-17T05:00:00Z'), 'week').start).getUTCDay()).toBe(1);
  });

  it('gives UTC days and epoch-aligned runs of days', () => {
    expect(span(quotaPeriod(at('2024-06-30T23:59:59.999Z'), 'day'))).toEqual(['2024-06-30T00:00:00.000Z', '2024-07-01T00:00:00.000Z']);
    const p = quotaPeriod(at('2024-06-30T12:00:00Z'), { days: 30 });
    expect(p.end - p.start).toBe(30 * DAY_MS);
    expect(p.start % (30 * DAY_MS)).toBe(0);
    expect(p.start).toBeLessThanOrEqual(at('2024-06-30T12:00:00Z'));
    expect(p.end).toBeGreaterThan(at('2024-06-30T12:00:00Z'));
    // consecutive periods tile time
    expect(quotaPeriod(p.end, { days: 30 }).start).toBe(p.end);
  });

  it('rejects unknown periods and bad times', () => {
    expect(() => quotaPeriod(0, { days: 0 })).toThrow(InvalidQuotaPeriodError);
    expect(() => quotaPeriod(0, 'year' as unknown as 'month')).toThrow(/expected 'month'/);
    expect(() => quotaPeriod(Number.NaN)).toThrow(InvalidQuotaPeriodError);
  });
});
