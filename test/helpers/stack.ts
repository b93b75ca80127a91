/**
 * Test harness: a real nats-server on a free port with a temp store, plus a
 * coordinator and workers in this process, each on its own connection.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Coordinator, type CoordinatorOptions } from '../../coordinator/index.js';
import { WorkerDaemon, type WorkerOptions } from '../../worker/index.js';
import { UbatchClient, type Log } from '../../protocol/index.js';
import { NatsServer } from '../../ops/nats-server.js';

export interface TestStack {
  server: NatsServer | undefined;
  dir: string;
  coordinator: Coordinator;
  workers: WorkerDaemon[];
  connections: NatsConnection[];
  client(user?: string): Promise<UbatchClient>;
  connect(): Promise<NatsConnection>;
  addWorker(opts?: WorkerOptions): Promise<WorkerDaemon>;
  stop(): Promise<void>;
}

export async function startStack(o: { workers?: number; worker?: WorkerOptions; coordinator?: CoordinatorOptions; server?: NatsServer; servers?: string[]; replicas?: number; log?: Log } = {}): Promise<TestStack> {
  const server = o.server ?? (o.servers ? undefined : await NatsServer.start());
  const urls = o.servers ?? [server!.url];
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-test-'));
  const connections: NatsConnection[] = [];
  const conn = async () => {
    const nc = await connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    connections.push(nc);
    return nc;
  };
  const topology = o.replicas ? { replicas: o.replicas } : undefined;
  const coordinator = await Coordinator.create({ nc: await conn(), service: { operators: ['ops'] }, ...(topology ? { topology } : {}), ...(o.log ? { log: o.log } : {}) }, { outputRoot: join(dir, 'out'), flushMs: 20, ...o.coordinator });
  // serve before the test's first request (restoring state and catching up with the ledger takes a while under load)
  let runFailed: unknown;
  void coordinator.run().catch((err: unknown) => (runFailed = err));
  for (const end = Date.now() + 60_000; !coordinator.serving; ) {
    if (runFailed !== undefined) throw runFailed;
    if (Date.now() > end) throw new Error('the test coordinator did not start serving within 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  const workers: WorkerDaemon[] = [];
  const addWorker = async (wo: WorkerOptions = {}) => {
    const w = await WorkerDaemon.create({ nc: await conn(), ...(topology ? { topology } : {}), ...(o.log ? { log: o.log } : {}) }, { slots: 2, heartbeatMs: 500, scratchRoot: join(dir, `scratch-${workers.length}`), backoffMs: [50, 100, 200], ...o.worker, ...wo });
    void w.run();
    workers.push(w);
    return w;
  };
  for (let i = 0; i < (o.workers ?? 2); i++) await addWorker();
  return {
    server,
    dir,
    coordinator,
    workers,
    connections,
    connect: conn,
    addWorker,
    client: async (user = 'alice') => new UbatchClient(await conn(), { user, timeoutMs: 30_000 }),
    async stop() {
      await Promise.all(workers.map((w) => w.close().catch(() => undefined)));
      await coordinator.close().catch(() => undefined);
      await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
      if (!o.server && server) await server.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** a Log that keeps warnings and errors (with a time offset) for a test to print when something goes wrong */
export function recordingLog(prefix = ''): Log & { lines: string[] } {
  const t0 = Date.now();
  const lines: string[] = [];
  const put = (lvl: string) => (obj: unknown, msg?: string) => {
    const o = obj as { err?: { message?: string } } | undefined;
    lines.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${prefix}${lvl} ${msg ?? ''} ${o?.err?.message ?? (typeof obj === 'string' ? obj : '')}`.slice(0, 400));
    if (lines.length > 2000) lines.splice(0, 500);
  };
  const log: Log & { lines: string[] } = { lines, debug() {}, info() {}, warn: put('WARN'), error: put('ERROR'), child: () => log };
  return log;
}
