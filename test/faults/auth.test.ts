/**
 * Fault matrix (security): NATS authentication and per-role permissions from
 * ops/auth.ts on a real nats-server 2.9.10 started with the generated config,
 * a coordinator and a worker in this process, each on its own credentials.
 * Every denied operation is its own test; see test/faults/README-auth.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { connect, type NatsConnection, type NodeConnectionOptions, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { Coordinator } from '../../coordinator/index.js';
import { WorkerDaemon } from '../../worker/index.js';
import { ApiCode, Buckets, encode, ObjectStores, ensureTopology, Streams, UbatchApiError, UbatchClient, type JobInfo } from '../../protocol/index.js';
import { readLedger } from '../../ledger/index.js';
import { NatsCluster, NatsServer } from '../../ops/nats-server.js';
import { addUser, bcryptHash, bcryptVerify, connectOptionsFor, initAuth, permissionsFor, readCredentials, type AuthFiles, type Credentials } from '../../ops/auth.js';
import { includeLine, registerAuthCommands } from '../../ops/commands/auth.js';
import type { Runtime } from '../../ops/commands/runtime.js';

const FORGED = 'forged-by-alice';

/** The outcome of an operation that must be refused: the server's permissions violation, or no answer at all. */
type Denial = 'permission' | 'no-reply';

function isPermissionViolation(err: unknown): boolean {
  const e = err as { name?: string; message?: string; cause?: unknown } | undefined;
  if (e?.name === 'PermissionViolationError' || /permissions violation/i.test(e?.message ?? '')) return true;
  return e?.cause !== undefined && isPermissionViolation(e.cause);
}

/** A request on `subject` must be refused: nats.js rejects it with the server's violation (or it times out). */
async function requestDenied(nc: NatsConnection, subject: string, data: Uint8Array | string = ''): Promise<Denial> {
  try {
    await nc.request(subject, data, { timeout: 2000 });
  } catch (err) {
    if (isPermissionViolation(err)) return 'permission';
    if ((err as Error).name === 'TimeoutError') return 'no-reply';
    throw err;
  }
  throw new Error(`request on ${subject} was answered: it should have been refused`);
}

/** A subscription on `subject` must be refused: the server's violation closes it with an error. */
async function subscribeDenied(nc: NatsConnection, subject: string): Promise<Denial> {
  const sub: Subscription = nc.subscribe(subject);
  await nc.flush();
  const closed = await Promise.race([sub.closed, new Promise<'open'>((r) => setTimeout(() => r('open'), 3000))]);
  if (closed === 'open') {
    sub.unsubscribe();
    throw new Error(`subscription on ${subject} stayed open: it should have been refused`);
  }
  if (closed instanceof Error && isPermissionViolation(closed)) return 'permission';
  throw new Error(`subscription on ${subject} closed without a permissions violation: ${String(closed)}`);
}

/** A plain publish on `subject` must be refused: the server answers with a permissions violation status. */
async function publishDenied(nc: NatsConnection, subject: string, data: Uint8Array): Promise<Denial> {
  const seen = (async () => {
    // returning from the loop ends the status iterator; on a timeout the test fails anyway
    for await (const s of nc.status()) {
      if (s.type === 'error' && isPermissionViolation(s.error) && (s.error as { subject?: string }).subject === subject) return 'permission' as const;
    }
    return undefined;
  })();
  nc.publish(subject, data);
  await nc.flush();
  const r = await Promise.race([seen, new Promise<undefined>((res) => setTimeout(() => res(undefined), 3000))]);
  if (r === undefined) throw new Error(`publish on ${subject} raised no permissions violation`);
  return r;
}

/** Polls `cond` every 50 ms until it holds (a condition, not a fixed sleep); throws after `timeoutMs`. */
async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// on one nats-server and on a 3-node loopback cluster (every node includes the same auth.conf) with R3 streams
for (const mode of [{ name: 'one node', cluster: false }, { name: '3-node cluster, R3 streams', cluster: true }]) describe(`NATS authentication and permissions (ops/auth.ts), ${mode.name}`, () => {
  let dir: string;
  let files: AuthFiles;
  let conf: string;
  let nodes: NatsServer[] = [];
  let cluster: NatsCluster | undefined;
  const topology = mode.cluster ? { topology: { replicas: 3 } } : {};
  /** what every node logged last (violations are logged by the node the client is connected to) */
  const logTail = (n: number) => nodes.map((x) => x.logTail(n)).join('\n');
  const urls = () => nodes.map((x) => x.url);
  let coordinator: Coordinator;
  let coordNc: NatsConnection;
  let worker: WorkerDaemon;
  const conns: NatsConnection[] = [];
  const creds: Record<string, Credentials> = {};

  const connectAs = async (name: string, extra: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> => {
    const c = creds[name];
    if (!c) throw new Error(`no creds for ${name}`);
    const nc = await connect({ servers: urls(), ...connectOptionsFor(c), maxReconnectAttempts: -1, reconnectTimeWait: 100, ...extra });
    conns.push(nc);
    return nc;
  };
  const clientAs = async (name: string) => new UbatchClient(await connectAs(name), { user: name, timeoutMs: 15_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-auth-'));
    files = await initAuth(join(dir, 'auth'), { users: ['alice', 'bob'], operators: ['ops'], workers: 1 });
    conf = await readFile(files.confPath, 'utf8');
    for (const w of files.written) creds[w.name] = await readCredentials(w.credsPath);
    // started through `include`, as `ubatch auth init` tells operators to (a reload re-reads it). nats-server
    // 2.9.10 joins an include path to the including file's folder even when it is absolute: use a relative one
    if (mode.cluster) {
      // node i's config is <dir>/nats/n<i>/nats-server.conf: the same relative include for all three
      cluster = await NatsCluster.start(3, { storeDir: join(dir, 'nats'), configText: `${includeLine(files.confPath, join(dir, 'nats', 'n0', 'nats-server.conf'))}\n` });
      nodes = cluster.servers;
    } else nodes = [await NatsServer.start({ storeDir: join(dir, 'nats'), configText: `${includeLine(files.confPath, join(dir, 'nats', 'nats-server.conf'))}\n` })];
    coordNc = await connectAs('coordinator');
    coordinator = await Coordinator.create({ nc: coordNc, service: { operators: ['ops'] }, ...topology }, { outputRoot: join(dir, 'out'), flushMs: 20 });
    void coordinator.run();
    worker = await WorkerDaemon.create({ nc: await connectAs('worker-1'), ...topology }, { slots: 2, heartbeatMs: 500, scratchRoot: join(dir, 'scratch'), backoffMs: [50, 100, 200] });
    void worker.run();
  });

  afterAll(async () => {
    await worker?.close().catch(() => undefined);
    await coordinator?.close().catch(() => undefined);
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    if (cluster) await cluster.cleanup();
    else await Promise.all(nodes.map((x) => x.cleanup()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('the generated files', () => {
    it('has one authorization block and no accounts / system_account / no_auth_user (CVE-2023-47090 pattern)', () => {
      const code = conf.replace(/#.*$/gm, '');
      expect(code.match(/^\s*authorization\s*\{/gm)).toHaveLength(1);
      expect(code).not.toMatch(/\baccounts\b/);
      expect(code).not.toMatch(/\bsystem_account\b/);
      expect(code).not.toMatch(/\bno_auth_user\b/);
      expect(code).not.toContain(creds['alice']!.password);
    });

    it('stores bcrypt hashes that verify against each principal password, creds files mode 0600', async () => {
      const doc = JSON.parse(await readFile(files.principalsPath, 'utf8')) as { principals: { name: string; hash: string }[] };
      expect(doc.principals.map((p) => p.name).sort()).toEqual(['alice', 'bob', 'coordinator', 'ops', 'worker-1']);
      for (const p of doc.principals) {
        expect(p.hash).toMatch(/^\$2a\$11\$[./A-Za-z0-9]{53}$/);
        expect(conf).toContain(p.hash);
        expect(bcryptVerify(creds[p.name]!.password, p.hash)).toBe(true);
        expect(bcryptVerify(`${creds[p.name]!.password}x`, p.hash)).toBe(false);
      }
      for (const w of files.written) expect((await stat(w.credsPath)).mode & 0o777).toBe(0o600);
      expect((await stat(files.confPath)).mode & 0o777).toBe(0o600);
    });
  });

  describe('authentication', () => {
    it('refuses an anonymous connection', async () => {
      await expect(connect({ servers: urls(), maxReconnectAttempts: 0, reconnect: false })).rejects.toThrow(/authoriz/i);
    });

    it('refuses a wrong password', async () => {
      await expect(connect({ servers: urls(), user: 'alice', pass: creds['bob']!.password, reconnect: false })).rejects.toThrow(/authoriz/i);
    });

    it('refuses an unknown user', async () => {
      await expect(connect({ servers: urls(), user: 'mallory', pass: 'x', reconnect: false })).rejects.toThrow(/authoriz/i);
    });
  });

  describe('alice, a user', () => {
    let alice: UbatchClient;
    let aliceNc: NatsConnection;
    let aliceJob: JobInfo;
    beforeAll(async () => {
      alice = await clientAs('alice');
      aliceNc = alice.nc;
    });

    it('submits a noop job and waits for it through UbatchClient (own inbox prefix, own events)', async () => {
      const sub = await alice.submit({ kind: 'noop', params: { tasks: 3 } });
      aliceJob = await alice.wait(sub.jobId, { timeoutMs: 30_000 });
      expect(aliceJob.state).toBe('succeeded');
      expect(aliceJob.done).toBe(3);
      // the coordinator and the worker did it all within their own permissions
      expect(logTail(400)).not.toMatch(/Violation - User "(coordinator|worker-1)"/);
    });

    it("runs a command job whose logs the worker stores in ub-artifacts within its permissions", async () => {
      const sub = await alice.submit({ kind: 'command', params: { command: 'echo hello-from-alice' }, output: { path: join(dir, 'cmd') } });
      const done = await alice.wait(sub.jobId, { timeoutMs: 30_000 });
      expect(done.state).toBe('succeeded');
      const store = await new Objm(coordNc).open(ObjectStores.artifacts);
      const logs = (await store.list()).filter((o) => o.name.startsWith(`logs/${sub.jobId}/`) && o.name.endsWith('/stdout'));
      expect(logs).toHaveLength(1);
      expect(new TextDecoder().decode((await store.getBlob(logs[0]!.name))!)).toContain('hello-from-alice');
      expect(logTail(400)).not.toMatch(/Violation - User "(coordinator|worker-1)"/);
    });

    it('without her inbox prefix gets a permissions error from the client at once, not a hang', async () => {
      const nc = await connect({ servers: urls(), user: 'alice', pass: creds['alice']!.password, reconnect: false });
      conns.push(nc);
      const bare = new UbatchClient(nc, { user: 'alice', timeoutMs: 15_000 });
      const err = await bare.get(aliceJob.jobId).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(UbatchApiError);
      // the cause is the server's violation on the reply subscription, not the request timeout
      expect(isPermissionViolation(err)).toBe(true);
    });

    it('cannot request the API as bob (ubatch.v1.jobs.get.bob)', async () => {
      expect(await requestDenied(aliceNc, 'ubatch.v1.jobs.get.bob', encode({ jobId: aliceJob.jobId }))).toBe('permission');
    });

    it('cannot call report as bob (a 4-token API subject)', async () => {
      expect(await requestDenied(aliceNc, 'ubatch.v1.report.bob', encode({}))).toBe('permission');
    });

    it.each(['_INBOX.>', '_INBOX.bob.>', 'ub.events.bob.>', 'ub.events.>', '>'])('cannot subscribe %s', async (subject) => {
      expect(await subscribeDenied(aliceNc, subject)).toBe('permission');
    });

    it.each(['$JS.API.INFO', `$JS.API.STREAM.INFO.${Streams.ledger}`, `$JS.API.DIRECT.GET.${Streams.results}`, `$JS.API.STREAM.PURGE.${Streams.ledger}`])(
      'cannot call the JetStream API: %s',
      async (subject) => {
        expect(await requestDenied(aliceNc, subject, JSON.stringify({ seq: 1 }))).toBe('permission');
      },
    );

    it('cannot forge a ledger entry with a JetStream publish (ub.ledger.task.charged.default.alice)', async () => {
      const forged = encode({ kind: 'task.charged', group: 'default', user: 'alice', jobId: FORGED, usage: { cpuSeconds: -1e9 } });
      expect(await requestDenied(aliceNc, 'ub.ledger.task.charged.default.alice', forged)).toBe('permission');
    });

    it('cannot forge a ledger entry with a plain publish', async () => {
      const forged = encode({ kind: 'quota.set', group: 'default', user: 'alice', jobId: FORGED });
      expect(await publishDenied(aliceNc, 'ub.ledger.quota.set.default.alice', forged)).toBe('permission');
    });

    it('cannot read KV ub-jobs', async () => {
      await expect((async () => (await new Kvm(aliceNc).open(Buckets.jobs)).get(`job.${aliceJob.jobId}`))()).rejects.toSatisfy(isPermissionViolation);
      expect(await requestDenied(aliceNc, `$JS.API.DIRECT.GET.KV_${Buckets.jobs}.$KV.${Buckets.jobs}.job.${aliceJob.jobId}`)).toBe('permission');
    });

    it('left no entry in the ledger, and the server logged her violations', async () => {
      const jsm = await jetstreamManager(coordNc);
      const info = await jsm.streams.info(Streams.ledger);
      expect(info.state.messages).toBeGreaterThan(0);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(Streams.ledger, { seq });
        expect(m).not.toBeNull();
        expect(new TextDecoder('latin1').decode(m!.data)).not.toContain(FORGED);
      }
      expect(logTail(400)).toMatch(/Publish Violation - User "alice", Subject "ub\.ledger\.task\.charged\.default\.alice"/);
    });

    it("cannot see bob's job through the API (not_found), nor list or cancel it", async () => {
      const bob = await clientAs('bob');
      const bobJob = await bob.submit({ kind: 'noop', params: { tasks: 2, sleep_ms: 300 } });
      await expect(alice.get(bobJob.jobId)).rejects.toMatchObject({ code: ApiCode.NotFound });
      await expect(alice.cancel(bobJob.jobId)).rejects.toMatchObject({ code: ApiCode.NotFound });
      await expect(alice.results(bobJob.jobId)).rejects.toBeInstanceOf(UbatchApiError);
      expect((await alice.list()).map((j) => j.jobId)).not.toContain(bobJob.jobId);
      const final = await bob.wait(bobJob.jobId, { timeoutMs: 30_000 });
      expect(final.state).toBe('succeeded');
    });
  });

  describe('the worker principal', () => {
    let nc: NatsConnection;
    beforeAll(async () => {
      nc = await connectAs('worker-1');
    });

    it('cannot publish a quota.set ledger entry', async () => {
      expect(await requestDenied(nc, 'ub.ledger.quota.set.default.alice', encode({ kind: 'quota.set', jobId: FORGED }))).toBe('permission');
    });

    it.each(['share.set.default.alice', 'job.accepted.default.alice', 'job.closed.default.alice'])('cannot publish ub.ledger.%s', async (tail) => {
      expect(await requestDenied(nc, `ub.ledger.${tail}`, encode({ jobId: FORGED }))).toBe('permission');
    });

    it.each(['PURGE', 'DELETE', 'UPDATE', 'MSG.DELETE'])('cannot %s UB_LEDGER', async (op) => {
      expect(await requestDenied(nc, `$JS.API.STREAM.${op}.${Streams.ledger}`, JSON.stringify({ seq: 1 }))).toBe('permission');
    });

    it('cannot read other tenants\' results or the ledger directly, nor call the API', async () => {
      expect(await requestDenied(nc, `$JS.API.DIRECT.GET.${Streams.results}`, JSON.stringify({ seq: 1 }))).toBe('permission');
      expect(await requestDenied(nc, `$JS.API.DIRECT.GET.${Streams.ledger}`, JSON.stringify({ seq: 1 }))).toBe('permission');
      expect(await requestDenied(nc, 'ubatch.v1.jobs.list.alice', encode({}))).toBe('permission');
    });

    it('can still read the fair-share ranking (what it needs)', async () => {
      const kv = await new Kvm(nc).open(Buckets.shares);
      await expect(kv.get('ranking')).resolves.not.toBeUndefined();
    });
  });

  describe('the coordinator principal and the ledger stream (two layers)', () => {
    it('layer 1: the coordinator may not purge or delete UB_LEDGER (permissions)', async () => {
      const jsm = await jetstreamManager(coordNc);
      const before = (await jsm.streams.info(Streams.ledger)).state.messages;
      await expect(jsm.streams.purge(Streams.ledger)).rejects.toSatisfy(isPermissionViolation);
      await expect(jsm.streams.delete(Streams.ledger)).rejects.toSatisfy(isPermissionViolation);
      await expect(jsm.streams.deleteMessage(Streams.ledger, 1)).rejects.toSatisfy(isPermissionViolation);
      expect((await jsm.streams.info(Streams.ledger)).state.messages).toBe(before);
    });

    it('layer 2: UB_LEDGER itself refuses purge and delete (deny_purge, deny_delete) even with full rights', async () => {
      const jsm = await jetstreamManager(coordNc);
      const cfg = (await jsm.streams.info(Streams.ledger)).config;
      expect(cfg.deny_purge).toBe(true);
      expect(cfg.deny_delete).toBe(true);
      // an unauthenticated throwaway server, where nothing but the stream config stands in the way
      const open = await NatsServer.start();
      const nc = await connect({ servers: open.url });
      try {
        const topo = await ensureTopology(nc);
        await jetstream(nc).publish('ub.ledger.job.accepted.g.u', encode({ x: 1 }));
        await expect(topo.jsm.streams.purge(Streams.ledger)).rejects.toThrow(/purge/i);
        await expect(topo.jsm.streams.deleteMessage(Streams.ledger, 1)).rejects.toThrow(/delete/i);
        expect((await topo.jsm.streams.info(Streams.ledger)).state.messages).toBe(1);
      } finally {
        await nc.close();
        await open.cleanup();
      }
    });
  });

  describe('the operator principal', () => {
    it('replays the ledger (reports) but may not purge it nor touch KV', async () => {
      const nc = await connectAs('ops');
      const records = await readLedger(nc);
      expect(records.length).toBeGreaterThan(0);
      expect(records.some((r) => r.entry.user === 'alice')).toBe(true);
      expect(await requestDenied(nc, `$JS.API.STREAM.PURGE.${Streams.ledger}`, '{}')).toBe('permission');
      expect(await requestDenied(nc, `$JS.API.DIRECT.GET.KV_${Buckets.jobs}`, JSON.stringify({ seq: 1 }))).toBe('permission');
      expect(await requestDenied(nc, 'ubatch.v1.jobs.list.alice', encode({}))).toBe('permission');
      const client = new UbatchClient(nc, { user: 'ops', timeoutMs: 15_000 });
      expect((await client.list({ all: true })).map((j) => j.user)).toContain('alice');
    });
  });

  describe('add-user and reload', () => {
    it('adds carol; after a reload she can submit, and the earlier principals still work', async () => {
      const added = await addUser(files.dir, 'carol', 'user');
      expect(added.written.map((w) => w.name)).toEqual(['carol']);
      creds['carol'] = await readCredentials(added.written[0]!.credsPath);
      for (const x of nodes) x.kill('SIGHUP');
      // 2.9.10 re-registers the global account on an auth reload: JetStream answers "jetstream is not
      // enabled" until the reload completes (~0.3 s here), so wait for every node to say it is done
      await waitFor(() => nodes.every((x) => x.logTail(50).includes('Reloaded server configuration')), 10_000);
      const carol = await clientAs('carol');
      // the coordinator's and the worker's connections from before the reload run her job
      const done = await carol.wait((await carol.submit({ kind: 'noop', params: { tasks: 1 } })).jobId, { timeoutMs: 30_000 });
      expect(done.state).toBe('succeeded');
      expect(await subscribeDenied(carol.nc, '_INBOX.alice.>')).toBe('permission');
      const bob = await clientAs('bob');
      expect((await bob.list()).length).toBeGreaterThan(0);
      await expect(connect({ servers: urls(), user: 'carol', pass: creds['alice']!.password, reconnect: false })).rejects.toThrow(/authoriz/i);
    });
  });
});

describe('bcrypt (ops/auth.ts)', () => {
  // OpenBSD / Openwall crypt_blowfish / jBCrypt test vectors
  const vectors: [string, string][] = [
    ['U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
    ['U*U*', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK'],
    ['U*U*U', '$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a'],
    ['0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored', '$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui'],
    ['', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy'],
    ['', '$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.'],
    ['a', '$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe'],
    ['abc', '$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i'],
    ['abcdefghijklmnopqrstuvwxyz', '$2a$06$.rCVZVOThsIa97pEDOxvGuRRgzG64bvtJ0938xuqzv18d3ZpQhstC'],
    ['~!@#$%^&*()      ~!@#$%^&*()PNBFRD', '$2a$06$fPIsBO8qRqkjj273rfaOI.HtSV9jLDpTbZn782DC6/t7qT67P6FfO'],
  ];

  it.each(vectors)('verifies %j against its published hash', (password, hash) => {
    expect(bcryptVerify(password, hash)).toBe(true);
    expect(bcryptVerify(`!${password}`, hash)).toBe(false);
  });

  it('reproduces a published hash from its salt', () => {
    const salt = Buffer.from('10410410410410410410410410410410', 'hex'); // "CCCCCCCCCCCCCCCCCCCCC." decoded
    expect(bcryptHash('U*U', { cost: 5, salt })).toBe(vectors[0]![1]);
    expect(bcryptHash('U*U', { cost: 5, salt, minor: 'b' })).toBe(vectors[0]![1].replace('$2a$', '$2b$'));
  });

  const py = '/usr/bin/python3';
  const hasPyBcrypt = existsSync(py) && spawnSync(py, ['-c', 'import bcrypt'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasPyBcrypt)('agrees with python bcrypt (/usr/bin/python3) both ways on random passwords', () => {
    const passwords = ['nats', 'ü-ñîçødé', 'x'.repeat(71), 'y'.repeat(80)];
    for (const pw of passwords) {
      const ours = bcryptHash(pw, { cost: 5 });
      const r = spawnSync(py, ['-c', 'import bcrypt,sys; pw=sys.argv[1].encode(); print(bcrypt.checkpw(pw, sys.argv[2].encode())); print(bcrypt.hashpw(pw, bcrypt.gensalt(5, b"2a")).decode())', pw, ours], { encoding: 'utf8' });
      const [ok, theirs] = r.stdout.trim().split('\n');
      expect(ok, r.stderr).toBe('True');
      expect(bcryptVerify(pw, theirs!)).toBe(true);
    }
  });

  it('rejects malformed hashes and costs', () => {
    expect(() => bcryptVerify('a', '$2a$05$short')).toThrow(/bcrypt/);
    expect(() => bcryptHash('a', { cost: 3 })).toThrow(/cost/);
  });
});

describe('permissionsFor', () => {
  it('pins users to their own API token, inbox and events; no JetStream', () => {
    const p = permissionsFor('user', 'alice');
    expect(p.publish.allow).toEqual(['ubatch.v1.*.*.alice', 'ubatch.v1.*.alice']);
    expect(p.subscribe.allow).toEqual(['_INBOX.alice.>', 'ub.events.alice.>']);
    expect(p.publish.deny).toContain('$JS.>');
    expect([...p.publish.allow, ...p.subscribe.allow].some((s) => s.startsWith('$JS'))).toBe(false);
  });

  it('denies ledger destruction to the coordinator and admin calls to workers and operators', () => {
    expect(permissionsFor('coordinator', 'coordinator').publish.deny).toEqual(expect.arrayContaining(['$JS.API.STREAM.PURGE.UB_LEDGER', '$JS.API.STREAM.DELETE.UB_LEDGER']));
    for (const role of ['worker', 'operator'] as const) {
      const deny = permissionsFor(role, 'x').publish.deny;
      expect(deny).toEqual(expect.arrayContaining(['$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.MSG.DELETE.>']));
    }
    expect(permissionsFor('worker', 'w').publish.deny).toEqual(expect.arrayContaining(['ub.ledger.quota.>', 'ub.ledger.share.>', 'ub.ledger.job.>']));
  });

  it('rejects names that are not subject tokens', () => {
    expect(() => permissionsFor('user', 'a.b')).toThrow(/invalid principal name/);
    expect(() => permissionsFor('user', '*')).toThrow(/invalid principal name/);
  });
});

describe('ubatch auth (CLI)', () => {
  const runAuth = async (cwd: string, args: string[]): Promise<string> => {
    let text = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    const rt: Runtime = { io: { out: sink, err: sink } as unknown as Runtime['io'], exitCode: 0, env: {}, cwd };
    const program = new Command('ubatch').exitOverride();
    registerAuthCommands(program, rt);
    await program.parseAsync(['node', 'ubatch', ...args]);
    return text;
  };

  it('init writes conf and creds; add-user appends a principal; a second init is refused', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'ubatch-auth-cli-'));
    try {
      const text = await runAuth(cwd, ['auth', 'init', '--users', 'alice,bob', '--operators', 'ops', '--workers', '2', '--cost', '4']);
      expect(text).toContain('include');
      expect(text).toContain(join(cwd, '.ubatch/auth/auth.conf'));
      for (const n of ['alice', 'bob', 'ops', 'worker-1', 'worker-2', 'coordinator']) {
        const c = await readCredentials(join(cwd, '.ubatch/auth/creds', `${n}.json`));
        expect(c.user).toBe(n);
      }
      await runAuth(cwd, ['auth', 'add-user', 'carol', '--role', 'operator']);
      const conf = await readFile(join(cwd, '.ubatch/auth/auth.conf'), 'utf8');
      expect(conf).toContain('user: "carol"');
      expect((await readCredentials(join(cwd, '.ubatch/auth/creds/carol.json'))).role).toBe('operator');
      await expect(runAuth(cwd, ['auth', 'init', '--users', 'x'])).rejects.toThrow(/already holds/);
      await expect(runAuth(cwd, ['auth', 'add-user', 'carol'])).rejects.toThrow(/already exists/);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
