/**
 * Quotas and shares at run time (operators): every change is a ledger entry
 * naming who made it. `quota get` shows a user's own limits and use.
 *
 *   ubatch quota get [--user U]
 *   ubatch quota set --user alice --cpu-hours 500 [--gpu-hours N] [--max-concurrent N] [--stored-bytes N]
 *   ubatch quota set --group desc --cpu-hours 20000
 *   ubatch shares set --group desc --share 30
 *   ubatch shares set --group desc --user alice --share 1      (also makes alice a member of desc)
 */
import type { Command } from 'commander';
import { CliUsageError } from '../errors.js';
import { renderTable } from '../format.js';
import { configOf, out, outJson, withClient, type Runtime } from './runtime.js';

interface QuotaView {
  scope: string;
  name: string;
  limits: Record<string, number>;
  period: { start: string; end: string };
  used: { cpu_hours: number; gpu_hours: number };
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliUsageError(`${flag} must be a number (negative removes the limit), got ${JSON.stringify(v)}`);
  return n;
}

function quotaRows(views: QuotaView[]): string {
  return renderTable(
    ['scope', 'name', 'cpu-hours used', 'cpu-hours limit', 'gpu-hours used', 'gpu-hours limit', 'max concurrent', 'period'],
    views.map((v) => [v.scope, v.name, v.used.cpu_hours.toFixed(3), v.limits.cpu_hours ?? '-', v.used.gpu_hours.toFixed(3), v.limits.gpu_hours ?? '-', v.limits.max_concurrent ?? '-', `${v.period.start.slice(0, 10)}..${v.period.end.slice(0, 10)}`]),
  );
}

function sharesCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'shares') ?? program.command('shares').description('fair-share shares of groups and users');
}

export function registerQuotaCommands(program: Command, rt: Runtime): void {
  const quota = program.command('quota').description('quotas per user and group: cpu/gpu-hours per period, max concurrent tasks, stored bytes');
  quota
    .command('get')
    .description('show limits and use this period (yours, or --user U for operators)')
    .option('--user-name <name>', 'whose quota (operators only)')
    .option('--json', 'print JSON')
    .action(async (flags: { userName?: string; json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      await withClient(cfg, async (client) => {
        const v = (await client.quotaGet(flags.userName)) as { user: QuotaView; groups: QuotaView[]; memberships: string[] };
        if (flags.json) return outJson(rt, v);
        out(rt, quotaRows([v.user, ...v.groups]));
        out(rt, `groups: ${v.memberships.join(', ')}`);
      });
    });
  quota
    .command('set')
    .description('change a user or group quota at run time (operators only; audited in the ledger)')
    .option('--for-user <name>', 'the user whose quota changes')
    .option('--group <name>', 'the group whose quota changes')
    .option('--cpu-hours <n>', 'charged core-hours per period')
    .option('--gpu-hours <n>', 'GPU-hours per period')
    .option('--max-concurrent <n>', 'most tasks released or running at once')
    .option('--stored-bytes <n>', 'bytes of outputs kept')
    .option('--json', 'print JSON')
    .action(async (flags: { forUser?: string; group?: string; cpuHours?: string; gpuHours?: string; maxConcurrent?: string; storedBytes?: string; json?: boolean }, cmd: Command) => {
      if (!!flags.forUser === !!flags.group) throw new CliUsageError('give exactly one of --for-user or --group');
      const limits: Record<string, number> = {};
      for (const [k, v, f] of [
        ['cpu_hours', flags.cpuHours, '--cpu-hours'],
        ['gpu_hours', flags.gpuHours, '--gpu-hours'],
        ['max_concurrent', flags.maxConcurrent, '--max-concurrent'],
        ['stored_bytes', flags.storedBytes, '--stored-bytes'],
      ] as const) {
        const n = num(v, f);
        if (n !== undefined) limits[k] = n;
      }
      if (Object.keys(limits).length === 0) throw new CliUsageError('give at least one limit (--cpu-hours, --gpu-hours, --max-concurrent, --stored-bytes)');
      const cfg = configOf(rt, cmd);
      await withClient(cfg, async (client) => {
        const v = (await client.quotaSet(flags.forUser ? 'user' : 'group', (flags.forUser ?? flags.group)!, limits)) as QuotaView;
        if (flags.json) return outJson(rt, v);
        out(rt, quotaRows([v]));
      });
    });
  sharesCommand(program)
    .command('set')
    .description('set a group share, or a user share within a group (operators only; audited in the ledger)')
    .requiredOption('--group <name>', 'the group (collaboration)')
    .option('--for-user <name>', 'a user within the group (also grants membership)')
    .requiredOption('--share <n>', 'the share (relative to siblings)')
    .option('--json', 'print JSON')
    .action(async (flags: { group: string; forUser?: string; share: string; json?: boolean }, cmd: Command) => {
      const share = num(flags.share, '--share')!;
      const cfg = configOf(rt, cmd);
      await withClient(cfg, async (client) => {
        const r = await client.sharesSet(flags.group, share, flags.forUser);
        if (flags.json) return outJson(rt, r);
        out(rt, `share of ${flags.forUser ? `${flags.forUser} in ` : ''}group ${flags.group} set to ${share}`);
      });
    });
}
