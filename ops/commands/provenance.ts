/**
 * `ubatch provenance` and `ubatch ledger summary`: replays of the ledger
 * (UB_LEDGER). Provenance asks the API (verb `provenance`: the coordinator
 * replays the caller's own ledger entries, since users have no JetStream access
 * under auth; operators may ask about any job); `ledger summary` reads UB_LEDGER
 * directly and needs operator credentials (--as-operator). Provenance prints the chain job → output file ← task attempt
 * (worker, code version, params, times) ← its inputs, following inputs that
 * were themselves outputs of the job (a reduce's partials) back to the map
 * attempts that wrote them.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readLedger, summarizeLedger, type LedgerSummary, type ProvenanceChain, type UsageTotals } from '../../ledger/index.js';
import type { Charge, FileRecord } from '../../protocol/index.js';
import { formatBytes, formatCount, formatDuration, renderKeyValues, renderTable } from '../format.js';
import { configOf, connectLedgerReader, out, outJson, withClient, type Runtime } from './runtime.js';

export interface AttemptView {
  taskId: string;
  attempt: number;
  /** unique id of the execution (<workerId>.<n>) */
  execution: string;
  outcome: Charge['outcome'];
  worker: Charge['provenance']['worker'];
  code: Charge['provenance']['code'];
  params: unknown;
  startedAt: string;
  endedAt: string;
  usage: Charge['usage'];
  sandbox?: Charge['provenance']['sandbox'];
  inputs: FileRecord[];
  outputs: FileRecord[];
}

export interface OutputView extends FileRecord {
  producedBy: AttemptView;
  /** inputs of the producing attempt that were outputs of another attempt of this job (a reduce's partials) */
  upstream: OutputView[];
}

export interface ProvenanceReport {
  job: {
    jobId: string;
    kind?: string;
    name?: string;
    user?: string;
    group?: string;
    acceptedAt?: string;
    tasks?: number;
    spec?: unknown;
    state?: string;
    closedAt?: string;
    done?: number;
    failed?: number;
  };
  /** the path asked about, when the query was a path */
  query?: string;
  outputs: OutputView[];
  /** every attempt the ledger charged, including failed, retried and cancelled ones */
  attempts: AttemptView[];
}

function attemptView(c: Charge): AttemptView {
  const p = c.provenance;
  return {
    taskId: c.taskId,
    attempt: c.attempt,
    execution: c.execution,
    outcome: c.outcome,
    worker: p.worker,
    code: p.code,
    params: p.params,
    startedAt: p.startedAt,
    endedAt: p.endedAt,
    usage: c.usage,
    ...(p.sandbox ? { sandbox: p.sandbox } : {}),
    inputs: p.inputs,
    outputs: p.outputs,
  };
}

/** Chain → report; with `outputPath`, only the outputs at or under that path. Pure. */
export function buildProvenanceReport(chain: ProvenanceChain, outputPath?: string): ProvenanceReport {
  const attempts = chain.charges.map(attemptView).sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.taskId.localeCompare(b.taskId) || a.attempt - b.attempt);
  const producer = new Map<string, AttemptView>();
  for (const a of attempts) if (a.outcome === 'ok') for (const o of a.outputs) producer.set(o.path, a);
  const view = (f: FileRecord, a: AttemptView, depth: number): OutputView => ({
    ...f,
    producedBy: a,
    upstream:
      depth >= 3
        ? []
        : a.inputs.flatMap((i) => {
            const up = producer.get(i.path);
            if (!up || up === a) return [];
            const rec = up.outputs.find((o) => o.path === i.path) ?? i;
            return [view(rec, up, depth + 1)];
          }),
  });
  const upstreamPaths = new Set<string>();
  for (const a of attempts) if (a.outcome === 'ok') for (const i of a.inputs) if (producer.has(i.path)) upstreamPaths.add(i.path);
  const want = outputPath?.replace(/\/+$/, '');
  const jobRoot = (chain.job?.spec as { output?: { path?: string } } | undefined)?.output?.path?.replace(/\/+$/, '');
  const outputs: OutputView[] = [];
  for (const a of attempts) {
    if (a.outcome !== 'ok') continue;
    for (const o of a.outputs) {
      const named = want !== undefined && (o.path === want || o.path.startsWith(`${want}/`));
      if (want !== undefined && !named && want !== jobRoot) continue;
      // intermediate files (a reduce's partials) are shown under the output that consumed them
      if (upstreamPaths.has(o.path) && !named) continue;
      outputs.push(view(o, a, 0));
    }
  }
  const j = chain.job;
  const c = chain.closed;
  return {
    job: {
      jobId: j?.jobId ?? c?.jobId ?? attempts[0]?.taskId.replace(/\.[^.]+$/, '') ?? '?',
      ...(j ? { kind: j.jobKind, ...(j.name ? { name: j.name } : {}), user: j.user, group: j.group, acceptedAt: j.ts, tasks: j.tasks, spec: j.spec } : {}),
      ...(c ? { state: c.state, closedAt: c.ts, done: c.done, failed: c.failed } : {}),
    },
    ...(outputPath !== undefined ? { query: outputPath } : {}),
    outputs,
    attempts,
  };
}

/** A job id (j…/l…) unless a file or directory of that name exists here. */
export function looksLikeJobId(ref: string, cwd: string): boolean {
  return /^[a-z][0-9a-z]{6,40}$/.test(ref) && !existsSync(resolve(cwd, ref));
}

const secondsBetween = (a: string, b: string) => (Date.parse(b) - Date.parse(a)) / 1000;

function printOutput(rt: Runtime, o: OutputView, indent: string, maxInputs: number): void {
  const a = o.producedBy;
  out(rt, `${indent}${o.path}`);
  out(rt, `${indent}    sha256 ${o.sha256}  ${formatBytes(o.bytes)}${o.rows !== undefined ? `  ${formatCount(o.rows)} rows` : ''}`);
  out(rt, `${indent}  <- task ${a.taskId} attempt ${a.attempt} on worker ${a.worker.id} (host ${a.worker.host}, pid ${a.worker.pid})`);
  out(rt, `${indent}     code: ubatch ${a.code.ubatchVersion} @ ${a.code.gitCommit}, kind ${a.code.kind}${a.code.container ? `, container ${a.code.container}` : ''}${a.sandbox ? `, network ${a.sandbox.network}` : ''}`);
  out(rt, `${indent}     ran ${a.startedAt} -> ${a.endedAt} (${formatDuration(secondsBetween(a.startedAt, a.endedAt))}, ${a.usage.cpuSeconds.toFixed(2)} cpu-s)`);
  const params = JSON.stringify(a.params);
  out(rt, `${indent}     params: ${params.length > 300 ? `${params.slice(0, 300)}…` : params}`);
  const upstream = new Map(o.upstream.map((u) => [u.path, u]));
  out(rt, `${indent}  <- inputs (${a.inputs.length}):`);
  for (const i of a.inputs.slice(0, maxInputs)) {
    const u = upstream.get(i.path);
    if (u) printOutput(rt, u, `${indent}       `, Math.min(maxInputs, 3));
    else out(rt, `${indent}       ${i.path}  ${formatBytes(i.bytes)}  sha256 ${i.sha256}`);
  }
  if (a.inputs.length > maxInputs) out(rt, `${indent}       ... and ${a.inputs.length - maxInputs} more inputs (--json for all)`);
}

function totalsRow(name: string, t: UsageTotals): (string | number)[] {
  return [name, t.attempts, t.failedAttempts, t.cpuSeconds.toFixed(2), t.wallSeconds.toFixed(2), t.gpuSeconds.toFixed(2), formatBytes(t.bytesRead), formatBytes(t.bytesWritten)];
}
const TOTALS_HEAD = ['tenant', 'attempts', 'not ok', 'cpu-s', 'wall-s', 'gpu-s', 'read', 'written'];

/** The human rendering of a ledger summary (used by `ledger summary` and `demo`). */
export function renderLedgerSummary(s: LedgerSummary): string {
  const lines: string[] = [];
  lines.push(renderKeyValues([
    ['entries', `${formatCount(s.entries)} (${Object.entries(s.byKind).map(([k, n]) => `${k} ${n}`).join(', ')})`],
    ['jobs', `${s.jobs.accepted} accepted, ${s.jobs.closed} closed`],
    ['charges', `${formatCount(s.charges)} attempts charged${s.duplicateCharges.length > 0 ? `, ${s.duplicateCharges.length} DUPLICATE charges` : ', no duplicates'}`],
  ]));
  const rows = [...s.byTenant.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, t]) => totalsRow(k, t));
  rows.push(totalsRow('total', s.total));
  lines.push(renderTable(TOTALS_HEAD, rows, { alignRight: [1, 2, 3, 4, 5, 6, 7] }));
  return lines.join('\n');
}

export function registerLedgerCommands(program: Command, rt: Runtime): void {
  program
    .command('provenance')
    .description('where a result came from: the job, each output file <- task attempt (worker, code, params, times) <- its inputs')
    .argument('<ref>', 'a job id, or an output path (file or directory)')
    .option('--max-inputs <n>', 'inputs listed per attempt in the text view', '10')
    .option('--json', 'print one JSON document')
    .action(async (ref: string, flags: { json?: boolean; maxInputs: string }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const maxInputs = Math.max(1, Number.parseInt(flags.maxInputs, 10) || 10);
      await withClient(cfg, async (client) => {
        const asJob = looksLikeJobId(ref, rt.cwd);
        const outputPath = asJob ? undefined : resolve(rt.cwd, ref);
        // not_found (exit 4) for an unknown job, someone else's job, or a path no job of yours wrote
        const reply = await client.provenance(asJob ? { jobId: ref } : { path: outputPath! });
        const chain: ProvenanceChain = { ...(reply.job ? { job: reply.job } : {}), ...(reply.closed ? { closed: reply.closed } : {}), charges: reply.charges };
        const report = buildProvenanceReport(chain, outputPath);
        if (flags.json) return outJson(rt, report);
        const j = report.job;
        out(rt, `job ${j.jobId}${j.kind ? ` (${j.kind}${j.name ? `, "${j.name}"` : ''})` : ''}${j.user ? ` submitted by ${j.user} (group ${j.group}) at ${j.acceptedAt}` : ''}`);
        if (j.state) out(rt, `  closed ${j.state} at ${j.closedAt}: ${j.done} done, ${j.failed} failed`);
        if (j.spec !== undefined) {
          const spec = JSON.stringify(j.spec);
          out(rt, `  spec: ${spec.length > 600 ? `${spec.slice(0, 600)}…` : spec}`);
        }
        out(rt, `outputs (${report.outputs.length}):`);
        for (const o of report.outputs) printOutput(rt, o, '  ', maxInputs);
        const notOk = report.attempts.filter((a) => a.outcome !== 'ok');
        if (notOk.length > 0) {
          out(rt, `attempts not accepted (${notOk.length}):`);
          out(rt, renderTable(['task', 'attempt', 'outcome', 'worker', 'started', 'wall-s'], notOk.map((a) => [a.taskId, a.attempt, a.outcome, a.worker.id, a.startedAt, a.usage.wallSeconds.toFixed(2)])));
        }
      }, 120_000);
    });

  const ledger = program.command('ledger').description('the accounting and provenance ledger (UB_LEDGER)');
  ledger
    .command('summary')
    .description('entries by kind, jobs, charges, and usage totals by tenant (a replay of the whole ledger; operators: --as-operator)')
    .option('--json', 'print one JSON document')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const nc = await connectLedgerReader(cfg);
      try {
        const s = summarizeLedger(await readLedger(nc));
        if (flags.json) return outJson(rt, s);
        out(rt, renderLedgerSummary(s));
      } finally {
        await nc.close().catch(() => undefined);
      }
    });
}
