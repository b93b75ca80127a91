/**
 * The accounting report as one self-contained HTML file: inline CSS, inline
 * SVG charts (usage over time per group; share vs achieved usage per group)
 * and tables. No scripts, fonts, images or links to fetch, so it can be mailed
 * or archived as is. Every string that comes from the ledger is escaped.
 */
import type { GroupReport, Report } from './reports.js';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];
/** groups drawn as their own line; the rest are summed into "other" */
const MAX_SERIES = PALETTE.length - 1;

function num(x: number | undefined, digits = 2): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a !== 0 && a < 0.01) return x.toExponential(1);
  return a >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(digits);
}
function pct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`;
}
function day(ms: number, hourly: boolean): string {
  const s = new Date(ms).toISOString();
  return hourly ? `${s.slice(0, 10)} ${s.slice(11, 16)}` : s.slice(0, 10);
}

interface Series {
  name: string;
  color: string;
  values: number[];
}

function timelineSeries(r: Report): Series[] {
  const order = [...r.groups].sort((a, b) => b.chargedCoreHours - a.chargedCoreHours || (a.group < b.group ? -1 : 1)).filter((g) => g.chargedCoreHours > 0);
  const shown = order.length > MAX_SERIES + 1 ? order.slice(0, MAX_SERIES) : order;
  const shownNames = new Set(shown.map((g) => g.group));
  const series: Series[] = shown.map((g, i) => ({ name: g.group, color: PALETTE[i % PALETTE.length] ?? '#000', values: r.timeline.map((b) => b.byGroup[g.group] ?? 0) }));
  if (order.length > shown.length) {
    series.push({
      name: `other (${order.length - shown.length} groups)`,
      color: PALETTE[PALETTE.length - 1] ?? '#777',
      values: r.timeline.map((b) => Object.entries(b.byGroup).reduce((s, [g, v]) => (shownNames.has(g) ? s : s + v), 0)),
    });
  }
  return series;
}

/** Inline SVG line chart of charged core-hours per bucket, one line per group. */
export function usageChartSvg(r: Report, width = 900, height = 320): string {
  const m = { l: 70, r: 170, t: 20, b: 40 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const series = timelineSeries(r);
  const n = r.timeline.length;
  const max = Math.max(1e-12, ...series.flatMap((s) => s.values));
  const x = (i: number) => m.l + (n <= 1 ? w / 2 : (i / (n - 1)) * w);
  const y = (v: number) => m.t + h - (v / max) * h;
  const hourly = r.bucketMs < 86_400_000;
  const parts: string[] = [];
  parts.push(`<svg class="chart" role="img" aria-label="usage over time per group" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${w}" height="${h}" fill="#fafafa" stroke="#ccc"/>`);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const yy = y(max * f).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${m.l + w}" y1="${yy}" y2="${yy}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${m.l - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${escapeHtml(num(max * f))}</text>`);
  }
  parts.push(`<text x="14" y="${m.t + h / 2}" transform="rotate(-90 14 ${m.t + h / 2})" text-anchor="middle">charged core-hours per ${hourly ? 'hour' : 'day'}</text>`);
  if (n > 0) {
    const ticks = n === 1 ? [0] : [0, Math.floor((n - 1) / 2), n - 1];
    for (const i of ticks) {
      const b = r.timeline[i];
      if (b) parts.push(`<text x="${x(i).toFixed(1)}" y="${m.t + h + 18}" text-anchor="middle">${escapeHtml(day(b.bucketStart, hourly))}</text>`);
    }
  }
  series.forEach((s, si) => {
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    if (n === 1) parts.push(`<circle cx="${x(0).toFixed(1)}" cy="${y(s.values[0] ?? 0).toFixed(1)}" r="4" fill="${s.color}"/>`);
    else parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"><title>${escapeHtml(s.name)}</title></polyline>`);
    const ly = m.t + 12 + si * 18;
    parts.push(`<rect x="${m.l + w + 12}" y="${ly - 9}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${m.l + w + 30}" y="${ly}" dominant-baseline="middle">${escapeHtml(s.name)}</text>`);
  });
  if (series.length === 0) parts.push(`<text x="${m.l + w / 2}" y="${m.t + h / 2}" text-anchor="middle">no usage in this window</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** Inline SVG bar chart: each group's normalised share next to the fraction of the usage it achieved. */
export function shareChartSvg(r: Report, width = 900): string {
  const groups: GroupReport[] = [...r.groups].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  const rowH = 34;
  const m = { l: 140, r: 150, t: 30, b: 30 };
  const height = m.t + m.b + Math.max(1, groups.length) * rowH;
  const w = width - m.l - m.r;
  const max = Math.max(0.01, ...groups.flatMap((g) => [g.normalizedShare ?? 0, g.fractionOfUsage]));
  const xs = (v: number) => (v / max) * w;
  const parts: string[] = [];
  parts.push(`<svg class="chart" role="img" aria-label="share versus achieved usage per group" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`);
  parts.push(`<rect x="${m.l + w + 12}" y="6" width="12" height="12" fill="#1f77b4"/><text x="${m.l + w + 30}" y="12" dominant-baseline="middle">share</text>`);
  parts.push(`<rect x="${m.l + w + 12}" y="24" width="12" height="12" fill="#ff7f0e"/><text x="${m.l + w + 30}" y="30" dominant-baseline="middle">achieved usage</text>`);
  groups.forEach((g, i) => {
    const y0 = m.t + i * rowH;
    const share = g.normalizedShare ?? 0;
    parts.push(`<text x="${m.l - 8}" y="${y0 + rowH / 2 - 2}" text-anchor="end" dominant-baseline="middle">${escapeHtml(g.group)}</text>`);
    parts.push(`<rect x="${m.l}" y="${y0 + 2}" width="${xs(share).toFixed(1)}" height="12" fill="#1f77b4"><title>${escapeHtml(`${g.group} share ${pct(g.normalizedShare)}`)}</title></rect>`);
    parts.push(`<text x="${(m.l + xs(share) + 4).toFixed(1)}" y="${y0 + 8}" dominant-baseline="middle" class="small">${escapeHtml(pct(g.normalizedShare))}</text>`);
    parts.push(`<rect x="${m.l}" y="${y0 + 16}" width="${xs(g.fractionOfUsage).toFixed(1)}" height="12" fill="#ff7f0e"><title>${escapeHtml(`${g.group} usage ${pct(g.fractionOfUsage)}`)}</title></rect>`);
    parts.push(`<text x="${(m.l + xs(g.fractionOfUsage) + 4).toFixed(1)}" y="${y0 + 22}" dominant-baseline="middle" class="small">${escapeHtml(pct(g.fractionOfUsage))}</text>`);
  });
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t - 4}" y2="${height - m.b + 4}" stroke="#999"/>`);
  parts.push('</svg>');
  return parts.join('\n');
}

function table(head: string[], rows: string[][], numericFrom = 1): string {
  const th = head.map((c, i) => `<th${i >= numericFrom ? ' class="n"' : ''}>${escapeHtml(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.ok{color:#1a7f37}.bad{color:#b42318}
table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{max-width:100%;height:auto;font-size:12px}svg .small{font-size:11px}
ul.jobs{margin:0;padding-left:16px}
`;

/** The whole report as one HTML document (no external assets). */
export function reportToHtml(r: Report): string {
  const e = escapeHtml;
  const window = `${r.span ? `${r.span.from} to ${r.span.to}` : 'the whole ledger (no records)'}`;
  const filter = r.filter.group ? `group ${r.filter.group}` : r.filter.user ? `user ${r.filter.user}` : 'all groups and users';
  const t = r.totals;
  const out: string[] = [];
  out.push('<!DOCTYPE html>');
  out.push('<html lang="en"><head><meta charset="utf-8">');
  out.push(`<title>${e(`ubatch accounting report: ${filter}`)}</title>`);
  out.push(`<style>${CSS}</style></head><body>`);
  out.push(`<h1>ubatch accounting report</h1>`);
  out.push(`<p class="meta">${e(filter)}; window ${e(window)}; generated ${e(r.generatedAt)}. Half-life ${e(num(r.halfLifeMs / 86_400_000, 1))} days, GPU weight ${e(String(r.gpuWeight))}${r.decayedAt ? `, decayed usage as of ${e(r.decayedAt)}` : ''}${r.quotaWindow ? `, quota use over ${e(r.quotaWindow.from)} to ${e(r.quotaWindow.to)}` : ''}. ${e(String(r.records))} ledger entries replayed.</p>`);

  out.push('<h2>Totals</h2>');
  // [label, cell HTML (already escaped)]
  const kv: [string, string][] = [
    ['charged core-hours (cores × wall + GPU weight × GPU-hours)', e(num(t.chargedCoreHours))],
    ['allocated core-hours', e(num(t.coreHours))],
    ['CPU-hours (measured)', e(num(t.cpuHours))],
    ['GPU-hours', e(num(t.gpuHours))],
    ['tasks ok / attempts / not ok', e(`${t.tasks} / ${t.attempts} / ${t.failedAttempts}`)],
    ['jobs', e(String(t.jobs))],
    ['groups / tenants', e(`${t.groups} / ${t.tenants}`)],
  ];
  if (r.capacity) {
    const c = r.capacity;
    kv.push(['capacity (core-hours)', e(num(c.coreHours))]);
    kv.push([
      'user computing as a fraction of capacity',
      `<span class="${c.meetsTarget ? 'ok' : 'bad'}">${e(pct(c.fraction))}</span> (survey requirement ≥ ${e(pct(c.target))}: ${c.meetsTarget ? 'met' : 'not met'})`,
    ]);
  }
  const ch = r.checks;
  kv.push(['check: sum of charges = sum of task usage', `<span class="${ch.equal ? 'ok' : 'bad'}">${ch.equal ? 'equal' : 'NOT EQUAL'}</span> (${e(num(ch.sumOfCharges, 4))} vs ${e(num(ch.sumOfTaskUsage, 4))}; timeline ${e(num(ch.sumOfTimeline, 4))}${ch.duplicateCharges ? `; ${ch.duplicateCharges} duplicate charges ignored` : ''})`]);
  out.push(`<table><tbody>${kv.map(([k, v]) => `<tr><th>${e(k)}</th><td>${v}</td></tr>`).join('\n')}</tbody></table>`);

  out.push('<h2>Usage over time</h2>');
  out.push(usageChartSvg(r));
  out.push('<h2>Share vs achieved usage</h2>');
  out.push('<p class="meta">Share: the group\'s share normalised over all groups (a group with no share set counts 1). Achieved usage: the group\'s fraction of the charged core-hours in this report.</p>');
  out.push(shareChartSvg(r));

  out.push('<h2>Groups</h2>');
  out.push(
    table(
      ['group', 'share', 'share %', 'usage %', 'charged core-h', 'core-h', 'cpu-h', 'gpu-h', 'tasks', 'not ok', 'jobs', 'users', 'cpu-h quota', 'quota use', '% of capacity', 'decayed', 'rank'],
      r.groups.map((g) => [
        e(g.group),
        e(num(g.share)),
        e(pct(g.normalizedShare)),
        e(pct(g.fractionOfUsage)),
        e(num(g.chargedCoreHours)),
        e(num(g.coreHours)),
        e(num(g.cpuHours)),
        e(num(g.gpuHours)),
        e(String(g.tasks)),
        e(String(g.failedAttempts)),
        e(String(g.jobs)),
        e(String(g.users)),
        e(num(g.quota?.cpuHours)),
        e(pct(g.quotaUse)),
        e(pct(g.fractionOfCapacity)),
        e(num(g.decayedUsage)),
        e(g.rank === undefined ? '–' : String(g.rank)),
      ]),
    ),
  );

  out.push('<h2>Users</h2>');
  out.push(
    table(
      ['group', 'user', 'share', 'charged core-h', 'cpu-h', 'gpu-h', 'tasks', 'attempts', 'not ok', 'jobs', 'cpu-h quota', 'quota use', 'decayed', 'fair-share factor', 'top jobs (charged core-h)'],
      r.tenants.map((u) => [
        e(u.group),
        e(u.user),
        e(num(u.share)),
        e(num(u.chargedCoreHours)),
        e(num(u.cpuHours)),
        e(num(u.gpuHours)),
        e(String(u.tasks)),
        e(String(u.attempts)),
        e(String(u.failedAttempts)),
        e(String(u.jobs)),
        e(num(u.quota?.cpuHours)),
        e(pct(u.quotaUse)),
        e(num(u.decayedUsage)),
        e(num(u.fairShareFactor, 3)),
        u.topJobs.length === 0 ? '–' : `<ul class="jobs">${u.topJobs.map((j) => `<li>${e(j.jobId)}${j.name !== undefined ? ` “${e(j.name)}”` : ''}: ${e(num(j.coreHours))}</li>`).join('')}</ul>`,
      ]),
      2,
    ),
  );
  out.push('</body></html>');
  return `${out.join('\n')}\n`;
}
