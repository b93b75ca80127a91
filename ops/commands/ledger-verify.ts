/**
 * `ubatch ledger verify`: replays UB_LEDGER and checks the seal chain, the
 * balances the seals committed, and (with --journal) the accountant's local
 * journal against the stream (ledger/verify.ts). Exit 0 when intact,
 * LEDGER_VERIFY_FAILED (6) when any check fails.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { verifyLedger, VerifySetupError, type VerifyReport } from '../../ledger/index.js';
import { CliUsageError } from '../errors.js';
import { formatCount, renderKeyValues, renderTable } from '../format.js';
import { ledgerCommandOf } from './ledger-export.js';
import { configOf, connectNats, note, out, outJson, type Runtime } from './runtime.js';

/** exit code of `ubatch ledger verify` when a check fails (the ledger or the journal is not intact) */
export const LEDGER_VERIFY_FAILED = 6;

const n = (x: number): string => (Number.isInteger(x) ? formatCount(x) : x.toFixed(3));

export function renderVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  const s = r.stream;
  const pairs: [string, string][] = [
    ['stream', `${s.name} (created ${s.created}): ${formatCount(s.messages)} messages, seq ${s.firstSeq}..${s.lastSeq}`],
    ['read', `${formatCount(r.messages)} messages: ${formatCount(r.entries)} entries, ${formatCount(r.seals.found)} seals${r.invalidEntries ? `, ${formatCount(r.invalidEntries)} invalid entries` : ''}`],
    [
      'sealed',
      r.seals.accepted > 0
        ? `${formatCount(r.seals.accepted)} blocks through seq ${r.seals.sealedThrough} (${formatCount(r.seals.sealedEntries)} entries), head ${r.seals.head.slice(0, 16)}… (seal at seq ${r.seals.lastSealSeq})`
        : 'nothing',
    ],
    ['unsealed', r.unsealed.count > 0 ? `${formatCount(r.unsealed.count)} entries, seq ${r.unsealed.firstSeq}..${r.unsealed.lastSeq} (${n(r.unsealed.coreSeconds)} core-seconds in ${formatCount(r.unsealed.attempts)} attempts)` : 'none'],
    ['balances', `${n(r.balances.totals.coreSeconds)} core-seconds, ${n(r.balances.totals.gpuSeconds)} GPU-seconds, ${formatCount(r.balances.totals.attempts)} attempts over ${formatCount(Object.keys(r.balances.tenants).length)} tenants (recomputed from every entry)`],
  ];
  if (r.sealedTotals) pairs.push(['at last seal', `${n(r.sealedTotals.coreSeconds)} core-seconds, ${formatCount(r.sealedTotals.attempts)} attempts`]);
  if (r.journal) {
    const j = r.journal;
    pairs.push(['journal', `${j.file}: ${formatCount(j.lines)} lines${j.lastSeq !== undefined ? ` (seq ${j.firstSeq}..${j.lastSeq})` : ''}, ${formatCount(j.matched)} match the stream, ${formatCount(j.notYetJournaled)} stream entries not yet journaled`]);
  }
  pairs.push(['result', r.ok ? 'INTACT: every check passed' : `FAILED: ${formatCount(r.problemCount)} problem${r.problemCount === 1 ? '' : 's'}; first at seq ${r.problems[0]!.seq}: ${r.problems[0]!.message}`]);
  lines.push(renderKeyValues(pairs));
  if (r.problems.length > 0) {
    lines.push('');
    lines.push(renderTable(['seq', 'check', 'problem'], r.problems.map((p) => [p.seq, p.check, p.message])));
    if (r.problemCount > r.problems.length) lines.push(`... and ${formatCount(r.problemCount - r.problems.length)} more`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

export function registerLedgerVerifyCommand(program: Command, rt: Runtime): void {
  ledgerCommandOf(program)
    .command('verify')
    .description('check the ledger is intact: the seal chain, every sealed block and balance, and the accountant journal against the stream')
    .option('--journal <path>', "the coordinator's ledger journal: its folder (--journal-dir) or one UB_LEDGER-<created>.jsonl file")
    .option('--json', 'print the report as one JSON document')
    .addHelpText(
      'after',
      `
The coordinator leader appends a seal (ub.ledger.seal) every N entries or T seconds
(--seal-entries, --seal-interval-ms) and at a clean shutdown. Each seal commits to the
previous seal's hash, the stream sequences it covers, a digest of every entry's stored
bytes, and the cumulative charges per tenant. verify recomputes all of it from the stream
and names the first sequence that does not match; entries after the last seal are
reported as the unsealed tail. With --journal it also compares the stream with the
coordinator's fsync'd journal: an entry the journal has but the stream lacks (or holds
different bytes for) is an acknowledged write that was lost or altered.

Exit codes: 0 intact; ${LEDGER_VERIFY_FAILED} a check failed; 2 bad usage (no journal there); 3 NATS unreachable.`,
    )
    .action(async (flags: { journal?: string; json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const nc = await connectNats(cfg);
      try {
        let lastNote = 0;
        let report: VerifyReport;
        try {
          report = await verifyLedger(nc, {
            ...(flags.journal !== undefined ? { journal: resolve(rt.cwd, flags.journal) } : {}),
            onProgress: (msgs, seq) => {
              if (flags.json || Date.now() - lastNote < 2000) return;
              lastNote = Date.now();
              note(rt, `ledger verify: ${formatCount(msgs)} messages read (seq ${seq})`);
            },
          });
        } catch (err) {
          if (err instanceof VerifySetupError) throw new CliUsageError(err.message, '--journal', { cause: err });
          throw err;
        }
        if (!report.ok) rt.exitCode = LEDGER_VERIFY_FAILED;
        if (flags.json) return outJson(rt, report);
        out(rt, renderVerifyReport(report));
      } finally {
        await nc.close().catch(() => undefined);
      }
    });
}
