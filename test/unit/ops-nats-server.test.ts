import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import {
  NatsCluster,
  NatsServer,
  NatsServerOptionsError,
  NatsServerStartError,
  assertSupportedServer,
  compareVersions,
  compileNatsServerOptions,
  findNatsServer,
  freePort,
  freePorts,
  isAtLeast,
  natsServerVersion,
  parseNatsServerVersion,
  renderNatsServerConfig,
  serverFeatures,
  spawnWatchdog,
  validateNatsServerOptions,
} from '../../ops/nats-server.js';

const BIN = findNatsServer();
const NO_SERVER = BIN === undefined;
if (NO_SERVER) {
  console.warn('ops-nats-server: nats-server not found (UBATCH_NATS_SERVER, PATH, /usr/sbin, /usr/bin): skipping server tests');
}

/** Polls `fn` until it returns a value without throwing (events we cannot subscribe to: elections). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw last;
    await delay(100);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const toClose: { cleanup(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.allSettled(toClose.map((s) => s.cleanup()));
});

describe('versions and features (pure)', () => {
  it('parses nats-server --version output', () => {
    expect(parseNatsServerVersion('nats-server: v2.9.10\n')).toBe('2.9.10');
    expect(parseNatsServerVersion('nats-server: v2.11.0-RC.2')).toBe('2.11.0-RC.2');
    expect(parseNatsServerVersion('2.10.4')).toBe('2.10.4');
    expect(parseNatsServerVersion('garbage')).toBeUndefined();
  });

  it('compares versions numerically, pre-releases before releases', () => {
    expect(compareVersions('2.9.10', '2.9.9')).toBe(1);
    expect(compareVersions('2.9.10', '2.10.0')).toBe(-1);
    expect(compareVersions('2.10.0-beta.1', '2.10.0')).toBe(-1);
    expect(compareVersions('v2.10.0', '2.10.0')).toBe(0);
    expect(isAtLeast('2.9.10', '2.10.0')).toBe(false);
    expect(isAtLeast('2.10.7', '2.10.0')).toBe(true);
    expect(() => compareVersions('x', '2.9.0')).toThrow(/not a version/);
  });

  it('reports 2.9.10 limits as feature flags', () => {
    const f = serverFeatures('2.9.10');
    expect(f).toMatchObject({
      atomicReplicatedCas: false,
      multiFilterConsumers: false,
      consumerCreateAction: false,
      termWithReason: false,
      perMessageTtl: false,
      priorityGroups: false,
    });
    expect(serverFeatures('2.9.21').atomicReplicatedCas).toBe(true);
    expect(serverFeatures('2.11.1')).toMatchObject({ perMessageTtl: true, priorityGroups: true, multiFilterConsumers: true, atomicBatchPublish: false });
  });
});

describe('options and config (pure)', () => {
  it('rejects bad ports, sizes and port clashes with a clear error', () => {
    expect(() => validateNatsServerOptions({ port: 70000 })).toThrow(NatsServerOptionsError);
    expect(() => validateNatsServerOptions({ port: 4222, monitorPort: 4222 })).toThrow(/same port as port/);
    expect(() => validateNatsServerOptions({ jetstreamMaxMemory: 'lots' })).toThrow(/jetstreamMaxMemory/);
    expect(() => validateNatsServerOptions({ serverName: 'a b' })).toThrow(/serverName/);
    expect(() => validateNatsServerOptions({ monitorPort: 0, jetstreamMaxFile: '1GB', maxPayload: 1 << 20 })).not.toThrow();
  });

  it.skipIf(NO_SERVER)('renders every requested block into the config file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-ns-cfg-'));
    try {
      const o = await compileNatsServerOptions({
        storeDir: dir,
        port: 14222,
        monitorPort: 18222,
        serverName: 'n1',
        jetstreamMaxMemory: '64MB',
        jetstreamMaxFile: '1GB',
        cluster: { name: 'c1', port: 16222, routes: ['127.0.0.1:16223', 'nats-route://127.0.0.1:16224'] },
        tls: { cert: '/c.pem', key: '/k.pem', ca: '/ca.pem' },
        debug: true,
        configText: 'authorization { token: "s3cret" }',
      });
      const text = renderNatsServerConfig(o);
      expect(text).toContain('server_name: "n1"');
      expect(text).toContain('listen: "127.0.0.1:14222"');
      expect(text).toContain('http: "127.0.0.1:18222"');
      expect(text).toContain('max_payload: 8MB');
      expect(text).toContain(`store_dir: ${JSON.stringify(dir)}`);
      expect(text).toContain('max_mem: 64MB');
      expect(text).toContain('max_file: 1GB');
      expect(text).toContain('routes: ["nats-route://127.0.0.1:16223", "nats-route://127.0.0.1:16224"]');
      expect(text).toContain('ca_file: "/ca.pem"');
      expect(text).toContain('debug: true');
      expect(text.trimEnd().endsWith('authorization { token: "s3cret" }')).toBe(true);
      expect(o.ownsStoreDir).toBe(false);
      const noMon = renderNatsServerConfig(await compileNatsServerOptions({ storeDir: dir, monitorPort: 0 }));
      expect(noMon).not.toContain('http:');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('freePorts returns distinct bindable ports', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    const p = await freePort();
    expect(p).toBeGreaterThan(0);
  });
});

describe.skipIf(NO_SERVER)('nats-server executable', () => {
  it('natsServerVersion parses the installed binary', async () => {
    const v = await natsServerVersion();
    expect(v).toMatch(/^\d+\.\d+\.\d+/);
    expect(isAtLeast(v, '2.9.0')).toBe(true);
  });

  it('the watchdog kills its target and removes its temp dir when the parent dies', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-ns-wd-'));
    const parent = spawn('sleep', ['60'], { stdio: 'ignore' });
    const target = spawn('sleep', ['60'], { stdio: 'ignore' });
    const targetExit = new Promise<NodeJS.Signals | null>((resolve) => target.once('exit', (_c, sig) => resolve(sig)));
    expect(parent.pid).toBeDefined();
    expect(target.pid).toBeDefined();
    spawnWatchdog(target.pid ?? 0, parent.pid ?? 0, dir);
    parent.kill('SIGKILL');
    expect(await targetExit).toBe('SIGKILL');
    await eventually(async () => {
      if (existsSync(dir)) throw new Error(`${dir} still there`);
    }, 5_000);
    expect(existsSync(dir)).toBe(false);
  });
});

describe.skipIf(NO_SERVER)('single NatsServer', () => {
  it('starts, serves JetStream, keeps messages over graceful and SIGKILL restarts, cleans up', async () => {
    const server = await NatsServer.start({ jetstreamMaxMemory: '64MB', jetstreamMaxFile: '256MB' });
    toClose.push(server);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.monitorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(readFileSync(path.join(server.storeDir, 'nats-server.conf'), 'utf8')).toContain('jetstream {');
    const port = server.port;
    const firstPid = server.pid;
    expect(firstPid).toBeDefined();

    let nc: NatsConnection = await connect({ servers: server.url });
    const features = await assertSupportedServer(nc);
    expect(features.version).toMatch(/^2\./);
    let jsm: JetStreamManager = await jetstreamManager(nc);
    expect((await jsm.getAccountInfo()).limits).toBeDefined();
    const stream = `OPS_NS_${process.pid}`;
    await jsm.streams.add({ name: stream, subjects: [`opsns.${process.pid}.>`] });
    const js = jetstream(nc);
    for (let i = 1; i <= 5; i++) await js.publish(`opsns.${process.pid}.a`, `m${i}`);
    await nc.close();

    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(firstPid);
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(5);
    expect((await jsm.streams.getMessage(stream, { seq: 3 }))?.string()).toBe('m3');
    await jetstream(nc).publish(`opsns.${process.pid}.a`, 'm6');
    await nc.close();

    const pidBeforeKill = server.pid ?? 0;
    server.kill('SIGKILL');
    expect(await server.exited()).toBeNull();
    expect(isAlive(pidBeforeKill)).toBe(false);
    await server.restart();
    expect(server.port).toBe(port);
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(6);
    expect((await jsm.streams.getMessage(stream, { seq: 6 }))?.string()).toBe('m6');
    await nc.close();

    const lastPid = server.pid ?? 0;
    await server.stop();
    await server.stop(); // idempotent
    expect(isAlive(lastPid)).toBe(false);
    expect(server.logTail(200)).toContain('Server is ready');
    await server.cleanup();
    expect(existsSync(server.storeDir)).toBe(false);
  });

  it('stop() ends a SIGSTOPped server promptly', async () => {
    const server = await NatsServer.start();
    toClose.push(server);
    const pid = server.pid ?? 0;
    server.kill('SIGSTOP');
    await server.stop();
    expect(isAlive(pid)).toBe(false);
    await server.cleanup();
  });

  it('readiness without a monitor port, log file, asyncDispose', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-ns-own-'));
    const logFile = path.join(dir, 'server.log');
    let pid = 0;
    const server = await NatsServer.start({ storeDir: path.join(dir, 'store'), monitorPort: 0, logFile });
    toClose.push(server);
    try {
      pid = server.pid ?? 0;
      expect(server.monitorUrl).toBeUndefined();
      const nc = await connect({ servers: server.url });
      const jsm = await jetstreamManager(nc);
      expect(await jsm.getAccountInfo()).toBeDefined();
      await nc.close();
      expect(server.logTail(100)).toContain('Listening for client connections');
    } finally {
      await server[Symbol.asyncDispose]();
    }
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(path.join(dir, 'store'))).toBe(true); // caller-owned store is kept
    expect(readFileSync(logFile, 'utf8')).toContain('Server is ready');
    rmSync(dir, { recursive: true, force: true });
  });

  it('configText auth blocks apply (readiness needs no credentials)', async () => {
    const server = await NatsServer.start({ configText: 'authorization { token: "s3cret" }' });
    toClose.push(server);
    await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
    const nc = await connect({ servers: server.url, token: 's3cret' });
    expect((await (await jetstreamManager(nc)).getAccountInfo()).limits).toBeDefined();
    await nc.close();
    await server.cleanup();
  });

  it.skipIf(!existsSync('/usr/bin/openssl'))('serves TLS clients when tls is given', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-ns-tls-'));
    try {
      const cert = path.join(dir, 'cert.pem');
      const key = path.join(dir, 'key.pem');
      const gen = spawn('/usr/bin/openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
      ], { stdio: 'ignore' });
      expect(await new Promise((resolve) => gen.once('exit', resolve))).toBe(0);
      const server = await NatsServer.start({ tls: { cert, key } });
      toClose.push(server);
      const nc = await connect({ servers: server.url, tls: { caFile: cert } });
      expect(nc.info?.tls_required).toBe(true);
      expect((await (await jetstreamManager(nc)).getAccountInfo()).limits).toBeDefined();
      await nc.close();
      await server.cleanup();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing executable is a clear error', async () => {
    await expect(NatsServer.start({ bin: '/nonexistent/nats-server' })).rejects.toThrow(/nats-server executable not found.*options\.bin=\/nonexistent/);
  });

  it('a bad config rejects with the server log tail and leaves no process', async () => {
    const err: unknown = await NatsServer.start({ configText: 'this is { not valid nats config' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsServerStartError);
    const e = err as NatsServerStartError;
    expect(e.message).toMatch(/exited before it was ready/);
    expect(e.message).toContain('last server log lines');
    expect(e.logTail.length).toBeGreaterThan(0);
    expect(existsSync(path.dirname(e.configPath))).toBe(false); // owned temp store removed
  });
});

describe.skipIf(NO_SERVER)('NatsCluster', () => {
  it('forms a 3-node cluster; an R3 stream survives killing its leader', async () => {
    const cluster = await NatsCluster.start(3, { jetstreamMaxMemory: '64MB', jetstreamMaxFile: '256MB' });
    toClose.push(cluster);
    expect(cluster.servers).toHaveLength(3);
    expect(new Set(cluster.urls).size).toBe(3);

    const stream = `OPS_R3_${process.pid}`;
    const subject = `opsr3.${process.pid}`;
    let nc = await connect({ servers: cluster.urls });
    let jsm = await jetstreamManager(nc);
    const si = await jsm.streams.add({ name: stream, subjects: [`${subject}.>`], num_replicas: 3 });
    expect(si.config.num_replicas).toBe(3);
    const js = jetstream(nc);
    for (let i = 1; i <= 10; i++) await js.publish(`${subject}.x`, `r${i}`);
    const leaderName = (await jsm.streams.info(stream)).cluster?.leader;
    expect(leaderName).toBeDefined();
    await nc.close();

    const victim = cluster.servers.find((s) => s.serverName === leaderName);
    expect(victim).toBeDefined();
    if (!victim) return;
    victim.kill('SIGKILL');
    await victim.exited();
    const others = cluster.servers.filter((s) => s !== victim);

    // the remaining two still form a quorum: a meta leader is (re-)elected among them
    await cluster.waitJetStreamReady();
    nc = await connect({ servers: others.map((s) => s.url) });
    jsm = await eventually(() => jetstreamManager(nc, { timeout: 2_000 }));
    const after = await eventually(async () => {
      const info = await jsm.streams.info(stream);
      if (!info.cluster?.leader || info.cluster.leader === leaderName) throw new Error('no new stream leader yet');
      return info;
    });
    expect(after.state.messages).toBe(10);
    expect((await jsm.streams.getMessage(stream, { seq: 10 }))?.string()).toBe('r10');
    await eventually(() => jetstream(nc, { timeout: 2_000 }).publish(`${subject}.x`, 'r11'));
    await nc.close();

    await victim.restart();
    await cluster.waitJetStreamReady();
    nc = await connect({ servers: victim.url });
    jsm = await eventually(() => jetstreamManager(nc, { timeout: 2_000 }));
    expect((await eventually(() => jsm.streams.info(stream))).state.messages).toBe(11);
    await nc.close();

    const pids = cluster.servers.map((s) => s.pid ?? 0);
    await cluster.cleanup();
    expect(pids.filter(isAlive)).toEqual([]);
  });
});
