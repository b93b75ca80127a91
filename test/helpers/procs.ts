/** Daemons as real child processes (built CLI in dist/), for kill -9 / SIGSTOP tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
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

/**
 * Submit once the coordinator answers (it may still be creating streams or
 * taking its lease). Fails at once, with the daemons' last output, when one of
 * them exited, and after `timeoutMs` instead of retrying for ever.
 */
export async function submitWhenReady<T>(submit: () => Promise<T>, daemons: Proc[], timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const dead = daemons.find((d) => d.child.exitCode !== null || d.child.signalCode !== null);
    if (dead) throw new Error(`a daemon exited (${dead.child.exitCode ?? dead.child.signalCode}) before the submission was answered; it said:\n${dead.output().slice(-3000)}`);
    try {
      return await submit();
    } catch (err) {
      last = err;
    }
    if (Date.now() >= end) throw new Error(`no answer to the submission within ${timeoutMs} ms (last error: ${(last as Error).message}); the daemons said:\n${daemonTails(daemons)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** the last lines of each daemon's output, for a failure message */
export function daemonTails(daemons: Proc[], chars = 1500): string {
  return daemons.map((d, i) => `--- daemon ${i} (pid ${d.child.pid}):\n${d.output().slice(-chars)}`).join('\n');
}

/**
 * After a process-level test: stop the daemons (SIGTERM, SIGKILL after 15 s), close the test's
 * connections, stop the servers, then remove the temp dir — in that order, nothing left running.
 */
export async function tearDown(t: { procs: Proc[]; conns?: ({ close(): Promise<void> } | undefined)[]; servers?: ({ cleanup(): Promise<void> } | undefined)[]; dir?: string }): Promise<void> {
  await Promise.all(t.procs.splice(0).map((p) => stopDaemon(p)));
  await Promise.all((t.conns ?? []).map((c) => c?.close().catch(() => undefined)));
  for (const s of t.servers ?? []) await s?.cleanup();
  if (t.dir) await rm(t.dir, { recursive: true, force: true });
}
