/**
 * `ubatch up`: the whole facility on one machine, in the foreground.
 * Ctrl-C / SIGTERM drains the workers, then stops the coordinator and the
 * server; the JetStream store in `<dir>/nats` survives for the next `up`.
 */
import net from 'node:net';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseIntOption, parseListOption, readStackFile, STACK_FILE_NAME } from '../config.js';
import { StackStartError } from '../errors.js';
import { renderTable } from '../format.js';
import { startLocalStack, type LocalStack } from '../stack.js';
import { configOf, note, onShutdownSignals, out, type Runtime } from './runtime.js';

const PREFERRED_PORT = 4222;

/** true when nothing listens on host:port right now */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((done) => {
    const srv = net.createServer();
    srv.once('error', () => done(false));
    srv.listen(port, host, () => srv.close(() => done(true)));
  });
}

export function registerUpCommand(program: Command, rt: Runtime): void {
  program
    .command('up')
    .description('start the embedded stack here: nats-server, the coordinator and workers, in the foreground (Ctrl-C stops it)')
    .option('-w, --workers <n>', 'worker processes', '2')
    .option('--slots <n>', 'task slots per worker (default: CPU cores / workers)')
    .option('--dir <dir>', 'state directory (JetStream store, outputs, logs, stack.json)', '.ubatch')
    .option('--port <port>', `NATS client port (default ${PREFERRED_PORT} when free, else any free port)`)
    .option('--metrics-port <port>', "coordinator's /metrics port; worker i gets port + i (default: free ports)")
    .option('--no-auth', 'run nats-server without authentication (anyone who reaches the port may act as anyone)')
    .option('--users <names>', 'users (besides you) to give credentials in <dir>/auth/creds/, comma-separated')
    .option('--tls', 'require TLS on the client port (a private CA and server certificate are made in <dir>/tls/ on first use)')
    .option('--tls-hosts <names>', 'extra host names / IPs for a newly made server certificate, comma-separated')
    .addHelpText(
      'after',
      `
Authentication is on by default: the first start writes <dir>/auth/ (auth.conf, principals.json,
creds/<name>.json for coordinator, worker, operator and you). Commands run in this directory find
your creds through <dir>/stack.json; operators' commands take --as-operator. Add a user with
  ubatch auth add-user <name> --dir <dir>/auth      (the running server reloads)`,
    )
    .action(async (flags: { workers: string; slots?: string; dir: string; port?: string; metricsPort?: string; auth: boolean; users?: string; tls?: boolean; tlsHosts?: string }, cmd: Command) => {
      const cfg = configOf(rt, cmd, 'info');
      const workers = parseIntOption(flags.workers, '--workers', 0, 256);
      const slots = flags.slots !== undefined ? parseIntOption(flags.slots, '--slots', 1, 4096) : undefined;
      const metricsPort = flags.metricsPort !== undefined ? parseIntOption(flags.metricsPort, '--metrics-port', 1, 65535 - workers) : undefined;
      const dir = resolve(rt.cwd, flags.dir);
      const running = readStackFile(dir);
      if (running) throw new StackStartError(`a stack is already running from ${dir} (ubatch up pid ${running.pid}, ${running.url}); stop it first`, 'stack');
      let port = flags.port !== undefined ? parseIntOption(flags.port, '--port', 1, 65535) : undefined;
      if (port === undefined && (await portIsFree(PREFERRED_PORT))) port = PREFERRED_PORT;

      let crashed: string | undefined;
      let stack: LocalStack | undefined;
      let stopRequested = false;
      const stop = (why: string) => {
        if (stopRequested) return;
        stopRequested = true;
        note(rt, `\nstopping (${why}): draining workers, then the coordinator, then nats-server ...`);
        void stack?.stop().catch((err: unknown) => note(rt, `error while stopping: ${(err as Error).message}`));
      };
      const removeSignals = onShutdownSignals((sig) => stop(sig), () => note(rt, 'second signal: exiting without waiting (children are stopped by their parent watch)'));
      try {
        stack = await startLocalStack({
          dir,
          workers,
          ...(slots !== undefined ? { slots } : {}),
          ...(port !== undefined ? { port } : {}),
          ...(metricsPort !== undefined ? { metricsPort } : {}),
          logLevel: cfg.logLevel,
          writeStackFile: true,
          auth: flags.auth,
          users: [cfg.user, ...parseListOption(flags.users ?? '')],
          ...(flags.tls ? { tls: true, tlsHosts: parseListOption(flags.tlsHosts ?? '') } : {}),
          onUnexpectedExit: (c, code, signal) => {
            note(rt, `${c.name} (pid ${c.pid}) exited unexpectedly (code ${code}, signal ${signal}); see ${c.log}`);
            if (c.name === 'coordinator') {
              crashed = c.name;
              stop('the coordinator died');
            }
          },
        });
        if (stopRequested) void stack.stop();
        const rel = (p: string) => relative(rt.cwd, p) || '.';
        out(rt, `ubatch local stack is up (${rel(dir)})`);
        out(rt, renderTable(
          ['component', 'pid', 'where', 'metrics', 'log'],
          [
            ['nats-server', stack.server.pid, stack.url, stack.server.monitorUrl ?? '-', rel(join(dir, 'logs', 'nats-server.log'))],
            ['coordinator', stack.coordinator.pid, `outputs ${rel(stack.outputRoot)}`, `${stack.coordinator.metricsUrl}/metrics`, rel(stack.coordinator.log)],
            ...stack.workers.map((w) => [w.name, w.pid, w.id ?? '', `${w.metricsUrl}/metrics`, rel(w.log)]),
          ],
        ));
        out(rt, `JetStream store: ${rel(stack.server.storeDir)} (kept across restarts)`);
        if (stack.authDir) {
          out(rt, `authentication on: creds in ${rel(join(stack.authDir, 'creds'))} (you: ${cfg.user}.json; operators: --as-operator); anonymous connections are refused`);
        } else out(rt, 'authentication OFF (--no-auth): anyone who reaches the port may act as any user');
        if (stack.tls) out(rt, `TLS on: clients verify the server with ${rel(stack.tls.ca)} (--tls-ca / UBATCH_TLS_CA elsewhere)`);
        out(rt, `commands run in ${rt.cwd} find this stack through ${rel(join(dir, STACK_FILE_NAME))}; elsewhere: export UBATCH_SERVER=${stack.url}${stack.authDir ? ` UBATCH_CREDS=${join(stack.authDir, 'creds', `${cfg.user}.json`)}` : ''}${stack.tls ? ` UBATCH_TLS_CA=${stack.tls.ca}` : ''}`);
        out(rt, 'press Ctrl-C to stop');
        await stack.stopped;
        await stack.stop();
        out(rt, 'stopped cleanly');
      } finally {
        removeSignals();
      }
      if (crashed) rt.exitCode = 1;
    });
}
