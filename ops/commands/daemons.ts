/**
 * `ubatch coordinator` and `ubatch worker`: the daemons, with pino logs
 * (pretty on a TTY, JSON lines otherwise) and Prometheus /metrics. SIGTERM or
 * SIGINT → graceful close() (a worker drains: running tasks finish or are
 * handed back), then the process ends by itself with exit code 0.
 */
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { parseIntOption, parseListOption } from '../config.js';
import { coordinatorMetricsFrom, workerMetricsFrom } from '../daemon-metrics.js';
import { createLogger, type Logger } from '../log.js';
import { createMetrics, startMetricsServer, type MetricsServer } from '../metrics.js';
import { backoffMs } from '../../protocol/index.js';
import { configOf, connectNats, onShutdownSignals, watchParent, type Runtime } from './runtime.js';

interface DaemonFlags {
  replicas?: string;
  metricsPort?: string;
  metricsHost: string;
  parentPid?: string;
}

function daemonOptions(cmd: Command): Command {
  return cmd
    .option('--replicas <n>', 'replicas of the streams, KV buckets and object store this daemon creates when missing (3 on a 3-node cluster; see test/faults/README.md, durability)', '1')
    .option('--metrics-port <port>', 'Prometheus /metrics and /healthz port (0 = any free port)', '0')
    .option('--metrics-host <host>', 'address the metrics server listens on', '127.0.0.1')
    .addOption(new Option('--parent-pid <pid>', 'stop gracefully when this process exits (set by ubatch up)').hideHelp());
}

/** `--replicas` → the topology option the daemons pass to ensureTopology. */
function topologyOf(flags: DaemonFlags): { topology?: { replicas: number } } {
  const replicas = parseIntOption(flags.replicas ?? '1', '--replicas', 1, 5);
  return replicas > 1 ? { topology: { replicas } } : {};
}

/** Shared life cycle: metrics server, signals, parent watch; `start` returns the daemon's close(). */
async function runDaemon(
  log: Logger,
  flags: DaemonFlags,
  registry: Parameters<typeof startMetricsServer>[0],
  start: () => Promise<{ close: () => Promise<void>; done: Promise<void> }>,
): Promise<void> {
  const port = parseIntOption(flags.metricsPort ?? '0', '--metrics-port', 0, 65535);
  const metrics: MetricsServer = await startMetricsServer(registry, { port, host: flags.metricsHost });
  log.info({ metrics: `${metrics.url}/metrics` }, 'metrics server listening');
  let closeFn: (() => Promise<void>) | undefined;
  let stopRequested: string | undefined;
  const stop = (why: string) => {
    stopRequested ??= why;
    log.info({ why }, 'shutting down gracefully');
    void closeFn?.();
  };
  const removeSignals = onShutdownSignals((sig) => stop(sig), () => log.warn({}, 'second signal: exiting without waiting for the drain'));
  const stopParentWatch = flags.parentPid ? watchParent(parseIntOption(flags.parentPid, '--parent-pid', 1), () => stop('parent process exited')) : () => undefined;
  try {
    const d = await start();
    closeFn = d.close;
    if (stopRequested) void d.close();
    await d.done;
  } finally {
    removeSignals();
    stopParentWatch();
    await metrics.close().catch((err: unknown) => log.warn({ err }, 'closing the metrics server failed'));
  }
}

export function registerDaemonCommands(program: Command, rt: Runtime): void {
  daemonOptions(
    program
      .command('coordinator')
      .description('run the coordinator daemon (API service, planning, task release, results, reduce)')
      .option('--output-root <dir>', 'where jobs without output.path write (<root>/<user>/<jobId>)', '.ubatch/output')
      .option('--ack-wait-ms <ms>', 'a silent worker\'s task is redelivered after this long', '30000')
      .option('--id <id>', 'coordinator id (leader lease holder name)')
      .option('--operators <users>', 'comma-separated users who may see and act on every job')
      .option('--journal-dir <dir>', "the accountant's fsync'd ledger journal (ubatch ledger verify --journal); 'none' for no journal (default: ledger-journal beside the output root)")
      .option('--seal-entries <n>', 'seal the ledger (hash chain) every n entries; 0 turns sealing off', '1000')
      .option('--seal-interval-ms <ms>', 'and seal whatever waits at least this often', '10000'),
  ).action(async (flags: DaemonFlags & { outputRoot: string; ackWaitMs: string; id?: string; operators?: string; journalDir?: string; sealEntries: string; sealIntervalMs: string }, cmd: Command) => {
    const cfg = configOf(rt, cmd, 'info');
    const log = createLogger('ubatch-coordinator', { level: cfg.logLevel });
    const ackWaitMs = parseIntOption(flags.ackWaitMs, '--ack-wait-ms', 100);
    const journalDir = flags.journalDir === 'none' ? undefined : resolve(flags.journalDir ?? join(flags.outputRoot, '..', 'ledger-journal'));
    const seal = { sealEntries: parseIntOption(flags.sealEntries, '--seal-entries', 0, 100_000), sealIntervalMs: parseIntOption(flags.sealIntervalMs, '--seal-interval-ms', 50) };
    const m = createMetrics('coordinator');
    await runDaemon(log, flags, m.registry, async () => {
      const nc = await connectNats(cfg, { name: 'ubatch-coordinator', forever: true });
      log.info({ server: cfg.server }, 'connected to NATS');
      // loaded on demand: `ubatch status` should not pay for DuckDB and the executors
      const { Coordinator } = await import('../../coordinator/index.js');
      const create = () =>
        Coordinator.create(
          { nc, log, metrics: coordinatorMetricsFrom(m), ...topologyOf(flags), ...(flags.operators ? { service: { operators: parseListOption(flags.operators) } } : {}) },
          { outputRoot: flags.outputRoot, ackWaitMs, ...(flags.id ? { id: flags.id } : {}), ...(journalDir ? { journalDir } : {}), ...seal },
        );
      let coord = await create();
      let stopping = false;
      // A failure before the coordinator serves (a JetStream call timing out while a cluster elects its
      // stream leaders, a server restarting) is retried with a fresh coordinator, as a supervisor would;
      // a failure after it served stops the daemon (exit 1) for the operator's supervisor to see.
      const running = (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await coord.run();
          } catch (err) {
            if (coord.serving || stopping || nc.isClosed()) throw err;
            const delay = backoffMs(attempt, 500, 10_000);
            log.warn({ err, attempt, retryInMs: delay }, 'coordinator start-up failed; starting again');
            await coord.close().catch(() => undefined);
            await new Promise((r) => setTimeout(r, delay));
            if (stopping) return;
            coord = await create();
          }
        }
      })();
      const done = running
        .catch((err: unknown) => {
          log.error({ err }, 'coordinator failed');
          rt.exitCode = 1;
        })
        .then(() => coord.close())
        .finally(() => nc.close().catch(() => undefined));
      return {
        close: () => {
          stopping = true;
          return coord.close();
        },
        done,
      };
    });
  });

  daemonOptions(
    program
      .command('worker')
      .description('run a worker daemon (pulls tasks fairly across tenants and runs them)')
      .option('--slots <n>', 'concurrent task slots (default: CPU cores)')
      .option('--capabilities <list>', 'capabilities advertised, comma-separated', 'cpu,container,image')
      .option('--id <id>', 'worker id (default <host>-<pid>-<random>)')
      .option('--drain-timeout-ms <ms>', 'on SIGTERM, running tasks get this long before they are handed back', '30000')
      .option('--keep-alive-ms <ms>', 'in-progress ack period for running tasks; keep it below the coordinator\'s --ack-wait-ms', '10000'),
  ).action(async (flags: DaemonFlags & { slots?: string; capabilities: string; id?: string; drainTimeoutMs: string; keepAliveMs: string }, cmd: Command) => {
    const cfg = configOf(rt, cmd, 'info');
    const log = createLogger('ubatch-worker', { level: cfg.logLevel });
    const slots = flags.slots !== undefined ? parseIntOption(flags.slots, '--slots', 1, 4096) : undefined;
    const drainTimeoutMs = parseIntOption(flags.drainTimeoutMs, '--drain-timeout-ms', 0);
    const keepAliveMs = parseIntOption(flags.keepAliveMs, '--keep-alive-ms', 50);
    const m = createMetrics('worker');
    await runDaemon(log, flags, m.registry, async () => {
      const nc = await connectNats(cfg, { name: 'ubatch-worker', forever: true });
      log.info({ server: cfg.server }, 'connected to NATS');
      const { WorkerDaemon } = await import('../../worker/index.js');
      const w = await WorkerDaemon.create(
        { nc, log, metrics: workerMetricsFrom(m), ...topologyOf(flags) },
        { capabilities: parseListOption(flags.capabilities), drainTimeoutMs, keepAliveMs, ...(slots !== undefined ? { slots } : {}), ...(flags.id ? { id: flags.id } : {}) },
      );
      let closing: Promise<void> | undefined;
      const close = () => (closing ??= w.close());
      // run() resolves when pulling stops; close() resolves after the drain, so wait for close
      const done = w
        .run()
        .catch((err: unknown) => {
          log.error({ err }, 'worker failed');
          rt.exitCode = 1;
        })
        .then(() => close())
        .finally(() => nc.close().catch(() => undefined));
      return { close, done };
    });
  });
}
