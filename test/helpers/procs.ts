/** Daemons as real child processes (built CLI in dist/), for kill -9 / SIGSTOP tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '../../dist/ops/cli.js');
export const haveCli = existsSync(CLI);
export const noCliReason = 'dist/ops/cli.js is missing: run `make build` (make test does) before the process-level tests';

export interface Proc {
  child: ChildProcess;
  output(): string;
  kill(sig?: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export function startDaemon(kind: 'worker' | 'coordinator', server: string, args: string[] = []): Proc {
  const child = spawn(process.execPath, [CLI, '--server', server, '--log-level', 'warn', kind, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UBATCH_LOG_LEVEL: 'warn' } });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => (live.delete(child), r(code))));
  return { child, output: () => out, kill: (sig = 'SIGKILL') => child.kill(sig), exited };
}

export async function stopDaemon(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
  await p.exited;
  clearTimeout(t);
}
