import { describe, expect, it } from 'vitest';
import { buildReport } from '../../ledger/reports.js';
import { escapeHtml, reportToHtml } from '../../ledger/report-html.js';
import type { LedgerRecord } from '../../ledger/replay.js';
import type { Charge, LedgerEntry } from '../../protocol/index.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 4, 5);

let seq = 0;
function rec(time: number, entry: LedgerEntry): LedgerRecord {
  return { seq: ++seq, time, subject: `ub.ledger.${entry.kind}`, entry };
}
const base = (group: string, user: string) => ({ ts: new Date(T0).toISOString(), actor: user, group, user });
function charge(jobId: string, i: number, wallSeconds: number): Charge {
  return {
    taskId: `${jobId}.${i}`,
    jobId,
    attempt: 1,
    execution: `w.${jobId}.${i}`,
    outcome: 'ok',
    usage: { cpuSeconds: wallSeconds, wallSeconds, gpuSeconds: 0, peakRssBytes: 0, bytesRead: 0, bytesWritten: 0 },
    provenance: { inputs: [], outputs: [], code: { ubatchVersion: '0', gitCommit: 'x', kind: 'noop' }, params: {}, worker: { id: 'w', host: 'h', pid: 1 }, startedAt: '', endedAt: '' },
  };
}

function ledger(): LedgerRecord[] {
  seq = 0;
  const out: LedgerRecord[] = [
    rec(T0, { kind: 'share.set', ...base('desc', 'ops'), scope: 'group', share: 3 }),
    rec(T0, { kind: 'share.set', ...base('tvs', 'ops'), scope: 'group', share: 1 }),
    rec(T0, { kind: 'job.accepted', ...base('desc', 'eve'), jobId: 'j1', jobKind: 'noop', name: '<script>alert("x")</script> & <img src=x onerror=1>', tasks: 1, spec: {} }),
  ];
  for (let d = 0; d < 10; d++) {
    out.push(rec(T0 + d * DAY + HOUR, { kind: 'task.charged', ...base('desc', 'eve'), charges: [charge('j1', d, 3600 * (d + 1))] }));
    out.push(rec(T0 + d * DAY + 2 * HOUR, { kind: 'task.charged', ...base('tvs', 'tom'), charges: [charge('j2', d, 1800)] }));
  }
  return out;
}

describe('reportToHtml', () => {
  it('is one self-contained document with a usage-over-time chart and a share-vs-usage chart', () => {
    const html = reportToHtml(buildReport(ledger(), { capacityCores: 2 }));
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html.match(/<svg\b/g)).toHaveLength(2);
    expect(html).toContain('aria-label="usage over time per group"');
    expect(html).toContain('aria-label="share versus achieved usage per group"');
    // one line per group with usage
    expect(html.match(/<polyline\b/g)).toHaveLength(2);
    // no external assets: no URLs, no scripts, no stylesheets or images to fetch
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<script\b/i);
    expect(html).not.toMatch(/<link\b|<img\b|<iframe\b|<object\b|url\(/i);
    expect(html).not.toMatch(/<[a-z][^>]*\s(src|href|xlink:href)\s*=/i);
    expect(html).toContain('<style>');
    // the survey's 10% line is shown when a capacity is given
    expect(html).toContain('survey requirement');
    // share chart: desc 75% of the shares, tvs 25%
    expect(html).toContain('75.0%');
    expect(html).toContain('25.0%');
  });

  it('escapes every string that comes from the ledger', () => {
    const html = reportToHtml(buildReport(ledger()));
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=1&gt;');
    expect(escapeHtml(`<a href='x'>&"`)).toBe('&lt;a href=&#39;x&#39;&gt;&amp;&quot;');
  });

  it('draws the timeline from the report buckets (daily here) and survives an empty report', () => {
    const r = buildReport(ledger());
    expect(r.timeline).toHaveLength(10);
    const html = reportToHtml(r);
    const pts = /<polyline[^>]*points="([^"]+)"/.exec(html)?.[1]?.split(' ') ?? [];
    expect(pts).toHaveLength(10);
    const empty = reportToHtml(buildReport([]));
    expect(empty).toContain('no usage in this window');
    expect(empty).not.toMatch(/NaN|Infinity/);
    expect(html).not.toMatch(/NaN|Infinity/);
  });
});
