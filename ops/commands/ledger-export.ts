/**
 * `ubatch ledger export`: the ledger (UB_LEDGER, replayed over NATS) as one
 * flat table for pandas / DuckDB / spreadsheets: a row per charge (task
 * attempt) and a row per other entry. Parquet (zstd), CSV or NDJSON.
 */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { exportLedger, replayLedger, type LedgerExportFormat } from '../../ledger/index.js';
import { formatBytes, formatCount } from '../format.js';
import { parseTimeOption } from './report.js';
import { configOf, connectLedgerReader, note, out, outJson, type Runtime } from './runtime.js';

/** The `ledger` command group: the one already registered (ledger summary), else a new one. */
export function ledgerCommandOf(program: Command): Command {
  return program.commands.find((c) => c.name() === 'ledger') ?? program.command('ledger').description('the accounting and provenance ledger (UB_LEDGER)');
}

export function registerLedgerExportCommand(program: Command, rt: Runtime): void {
  ledgerCommandOf(program)
    .command('export')
    .description('write the ledger as a table (a row per charge and per other entry) for pandas, DuckDB or a spreadsheet')
    .requiredOption('--out <file>', 'the file to write (replaced atomically when done)')
    .addOption(new Option('--format <format>', 'file format (default: from the extension of --out, else parquet)').choices(['parquet', 'csv', 'ndjson']))
    .option('--from <time>', 'only entries at or after: ISO date/time, or a duration before now (30d)')
    .option('--to <time>', 'only entries before: ISO date/time, "now", or a duration before now')
    .option('--json', 'print the result as one JSON document')
    .addHelpText(
      'after',
      `
Columns: seq, time_ms, time, subject, ts, kind, group, user, actor, job_id, charge_index,
task_id, attempt, execution, outcome, cpu_seconds, gpu_seconds, wall_seconds, allocated_cores,
core_seconds (= wall × allocated cores, what is charged), peak_rss_bytes, bytes_read,
bytes_written, worker, host, code_version, git_commit, executor_kind, started_at, ended_at,
inputs, outputs, job_kind, job_name, tasks, state, done, failed, scope, share,
quota_cpu_hours, quota_gpu_hours, quota_max_concurrent, quota_stored_bytes, detail_json.
Null where a column does not apply to the row's kind.

Example:
  ubatch ledger export --out ledger.parquet
  python -c "import pandas as pd; print(pd.read_parquet('ledger.parquet').groupby('group').core_seconds.sum())"`,
    )
    .action(async (flags: { out: string; format?: LedgerExportFormat; from?: string; to?: string; json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const now = Date.now();
      const from = flags.from !== undefined ? parseTimeOption(flags.from, '--from', now) : undefined;
      const to = flags.to !== undefined ? parseTimeOption(flags.to, '--to', now) : undefined;
      const file = resolve(rt.cwd, flags.out);
      const nc = await connectLedgerReader(cfg);
      try {
        let lastNote = 0;
        const result = await exportLedger(
          replayLedger(nc, { onInvalid: (seq, subject, reason) => note(rt, `ubatch: ledger entry ${seq} (${subject}) skipped: ${reason}`) }),
          file,
          {
            ...(flags.format ? { format: flags.format } : {}),
            ...(from !== undefined ? { from } : {}),
            ...(to !== undefined ? { to } : {}),
            onProgress: (rows, records) => {
              if (flags.json || Date.now() - lastNote < 2000) return;
              lastNote = Date.now();
              note(rt, `ledger export: ${formatCount(records)} entries read, ${formatCount(rows)} rows`);
            },
          },
        );
        if (flags.json) return outJson(rt, { path: file, ...result });
        out(rt, `wrote ${formatCount(result.rows)} rows (${formatCount(result.records)} ledger entries) as ${result.format} to ${file} (${formatBytes(result.bytes)})`);
      } finally {
        await nc.close().catch(() => undefined);
      }
    });
}
