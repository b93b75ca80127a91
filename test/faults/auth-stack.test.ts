// The embedded stack the way `ubatch up` runs it: authentication ON by default (ops/stack.ts makes
// <dir>/auth/ with creds for the coordinator, the worker principal, the operator and the OS user;
// each daemon connects with its own creds), driven by the built CLI (dist/ops/cli.js) as a
// subprocess from the folder that holds .ubatch/stack.json, so the CLI finds the server and the
// user's creds the way a user's shell does. Then TLS: `ubatch auth tls-init` certificates on
// loopback, and `ubatch up --tls` (startLocalStack({ tls: true })) end to end.
// Needs the build: `npx tsc -p tsconfig.json`; skips with a message otherwise.
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCredentials, initTls } from '../../ops/auth.js';
import { defaultUserName } from '../../ops/config.js';
import { NatsServer } from '../../ops/nats-server.js';
import { startLocalStack, STACK_PRINCIPALS, type LocalStack } from '../../ops/stack.js';
import { haveCli, noCliReason, CLI } from '../helpers/procs.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** the environment of a user's shell: nothing that names a server, user, creds or CA */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, UBATCH_LOG_LEVEL: 'warn', ...extra };
  for (const k of ['UBATCH_SERVER', 'UBATCH_USER', 'UBATCH_CREDS', 'UBATCH_TLS_CA']) if (!(k in extra)) delete env[k];
  return env;
}

function runCli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env), timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const parse = <T>(r: Run): T => {
  expect(r.stderr, r.stderr).not.toMatch(/TypeError|ReferenceError/);
  return JSON.parse(r.stdout) as T;
};

describe.skipIf(!haveCli)(`embedded stack with auth on by default${haveCli ? '' : ` (skipped: ${noCliReason})`}`, () => {
  const me = defaultUserName();
  let dir: string;
  let stack: LocalStack;
  let jobId: string;
  const ubatch = (args: string[], env: Record<string, string> = {}) => runCli(dir, args, env);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-auth-stack-'));
    // what `ubatch up` does: state in ./.ubatch, stack.json written, auth left at its default (on)
    stack = await startLocalStack({ dir: join(dir, '.ubatch'), workers: 1, slots: 2, logLevel: 'warn', writeStackFile: true });
    await writeFile(
      join(dir, 'cmd.yaml'),
      ['kind: command', 'name: auth-stack logs', 'params:', `  command: 'echo out-of-task-$UBATCH_TASK_INDEX; echo err-of-task-$UBATCH_TASK_INDEX >&2; head -c 3000 /dev/zero | tr "\\0" x; echo; echo size > "$UBATCH_OUTPUT_DIR/f.txt"'`, '  tasks: 2', 'output:', '  path: out/cmd', ''].join('\n'),
    );
    const sub = await ubatch(['submit', 'cmd.yaml', '--wait', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    const s = parse<{ jobId: string; final: { state: string; user: string } }>(sub);
    expect(s.final).toMatchObject({ state: 'succeeded', user: me });
    jobId = s.jobId;
  }, 150_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('first start wrote the auth folder, the server includes it, stack.json records it', async () => {
    const auth = join(dir, '.ubatch', 'auth');
    expect(stack.authDir).toBe(auth);
    for (const [name, role] of [[STACK_PRINCIPALS.coordinator, 'coordinator'], [STACK_PRINCIPALS.worker, 'worker'], [STACK_PRINCIPALS.operator, 'operator'], [me, 'user']] as const) {
      const file = join(auth, 'creds', `${name}.json`);
      expect((await readCredentials(file)).role).toBe(role);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    expect(readFileSync(stack.server.configPath, 'utf8')).toContain('include "../auth/auth.conf"');
    const doc = JSON.parse(await readFile(join(dir, '.ubatch', 'stack.json'), 'utf8')) as { auth?: { dir: string; operator: string } };
    expect(doc.auth).toEqual({ dir: auth, operator: STACK_PRINCIPALS.operator });
    // the daemons run with their own creds and never hit a permission they lack
    const log = readFileSync(join(dir, '.ubatch', 'logs', 'nats-server.log'), 'utf8');
    expect(log).not.toMatch(/Violation.*User "(coordinator|worker)"/);
    expect(readFileSync(stack.coordinator.log, 'utf8') + readFileSync(stack.workers[0]!.log, 'utf8')).not.toMatch(/permissions? violation|authorization violation/i);
  });

  it('refuses anonymous connections and wrong passwords (CVE-2023-47090 pattern not generated)', async () => {
    await expect(connect({ servers: stack.url, reconnect: false, timeout: 5000 })).rejects.toThrow(/authorization/i);
    await expect(connect({ servers: stack.url, user: me, pass: 'not-the-password', reconnect: false, timeout: 5000 })).rejects.toThrow(/authorization/i);
    // the CLI: a creds file the server does not know is exit 3 with the reason
    const bogus = join(dir, 'bogus.json');
    await writeFile(bogus, JSON.stringify({ user: me, password: 'nope', role: 'user' }));
    const r = await ubatch(['--creds', bogus, 'status']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/refused the credentials of/);
  }, 120_000);

  it('the owner reads logs and provenance through the API; another user gets not_found', async () => {
    const [logs, prov, provByPath] = await Promise.all([ubatch(['logs', jobId, '0', '--json']), ubatch(['provenance', jobId, '--json']), ubatch(['provenance', 'out/cmd', '--json'])]);
    expect(logs.code, logs.stderr).toBe(0);
    const l = parse<{ logs: { index: string; stream: string; text: string; truncated: boolean }[] }>(logs);
    expect(l.logs.map((e) => `${e.index}/${e.stream}`)).toEqual(['0/stdout', '0/stderr']);
    expect(l.logs[0]!.text).toContain('out-of-task-0');
    expect(l.logs[1]!.text).toContain('err-of-task-0');
    type Prov = { job: { jobId: string; user: string; state: string }; outputs: { path: string; producedBy: { worker: { id: string } } }[] };
    const p = parse<Prov>(prov);
    expect(p.job).toMatchObject({ jobId, user: me, state: 'succeeded' });
    expect(p.outputs.map((o) => o.path).sort()).toEqual([join(dir, 'out', 'cmd', 'task-0', 'f.txt'), join(dir, 'out', 'cmd', 'task-1', 'f.txt')]);
    expect(p.outputs[0]!.producedBy.worker.id).toBe(stack.workers[0]!.id);
    expect(parse<Prov>(provByPath).job.jobId).toBe(jobId);

    // bob: added the way an operator does it; the running stack's server reloads by itself
    const add = await ubatch(['auth', 'add-user', 'bob', '--dir', '.ubatch/auth']);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/reloaded the local stack's nats-server/);
    let bobStatus: Run | undefined;
    for (let i = 0; i < 50; i++) {
      bobStatus = await ubatch(['--user', 'bob', 'status', '--json']);
      if (bobStatus.code === 0) break;
      await new Promise((r) => setTimeout(r, 200)); // the reload takes a moment
    }
    expect(bobStatus!.code, bobStatus!.stderr).toBe(0);
    expect(parse<unknown[]>(bobStatus!)).toEqual([]);
    const asBob = await Promise.all([ubatch(['--user', 'bob', 'logs', jobId, '0']), ubatch(['--user', 'bob', 'provenance', jobId]), ubatch(['--user', 'bob', 'provenance', 'out/cmd'])]);
    for (const r of asBob) {
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/not_found: no job/);
    }
    // straight at the API with bob's own connection: same answer, nothing leaks
    const bob = await stack.client('bob');
    await expect(bob.logs(jobId, { task: '0' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(bob.logs(jobId)).rejects.toMatchObject({ code: 'not_found' });
    await expect(bob.results(jobId)).rejects.toMatchObject({ code: 'not_found' });
    await expect(bob.provenance({ jobId })).rejects.toMatchObject({ code: 'not_found' });
    await expect(bob.provenance({ path: join(dir, 'out', 'cmd') })).rejects.toMatchObject({ code: 'not_found' });
    // an operator sees everything
    const op = await ubatch(['--as-operator', 'provenance', jobId, '--json']);
    expect(parse<Prov>(op).job.user).toBe(me);
  }, 180_000);

  it('logs are size-capped with a note saying what was cut', async () => {
    const me_ = await stack.client(me);
    // every task's logs (the object-store scan), in task, attempt, stream order
    const all = await me_.logs(jobId);
    expect(all.logs.map((e) => `${e.index}/${e.attempt}/${e.stream}`)).toEqual(['0/1/stdout', '0/1/stderr', '1/1/stdout', '1/1/stderr']);
    expect(all.note).toBeUndefined();
    const r = await me_.logs(jobId, { task: '1', stream: 'stdout', maxBytes: 100 });
    expect(r.logs).toHaveLength(1);
    expect(r.logs[0]).toMatchObject({ index: '1', stream: 'stdout', truncated: true });
    expect(r.logs[0]!.bytes).toBeGreaterThan(3000);
    expect(Buffer.byteLength(r.logs[0]!.text)).toBeLessThanOrEqual(100);
    expect(r.note).toMatch(/truncated to fit the 100-byte reply/);
    await expect(me_.logs(jobId, { maxBytes: 10_000_000 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(me_.logs(jobId, { task: '99' })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('operators change quotas with --as-operator; a user is refused; the ledger is for operators', async () => {
    const [userSet, opSet, userLedger, opLedger, userReport] = await Promise.all([
      ubatch(['quota', 'set', '--for-user', me, '--cpu-hours', '50']),
      ubatch(['--as-operator', 'quota', 'set', '--for-user', me, '--cpu-hours', '50', '--json']),
      ubatch(['ledger', 'summary', '--json']),
      ubatch(['--as-operator', 'ledger', 'summary', '--json']),
      ubatch(['report', '--json']),
    ]);
    expect(userSet.code).toBe(5);
    expect(userSet.stderr).toMatch(/forbidden: only operators may change quotas/);
    expect(opSet.code, opSet.stderr).toBe(0);
    expect(parse<{ limits: { cpu_hours: number } }>(opSet).limits.cpu_hours).toBe(50);
    expect(userLedger.code).toBe(5);
    expect(userLedger.stderr).toMatch(/needs operator credentials.*--as-operator/);
    expect(opLedger.code, opLedger.stderr).toBe(0);
    const s = parse<{ duplicateCharges: string[]; byTenant: Record<string, { attempts: number }> }>(opLedger);
    expect(s.byTenant[`default.${me}`]?.attempts).toBeGreaterThanOrEqual(2);
    expect(s.duplicateCharges).toEqual([]);
    // a user's own report comes from the service
    expect(userReport.code, userReport.stderr).toBe(0);
    expect(JSON.stringify(parse<unknown>(userReport))).toContain(me);
  }, 180_000);

  it('the creds must be the user: a mismatch and a user without creds are clear usage errors', async () => {
    const [mismatch, missing] = await Promise.all([
      ubatch(['--creds', stack.credsFor(STACK_PRINCIPALS.operator), '--user', me, 'status']),
      ubatch(['--user', 'carol', 'status']),
    ]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/are for operator, but the user is/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no credentials for user carol .*ubatch auth add-user carol/);
  }, 120_000);
});

describe.skipIf(!haveCli)('TLS on loopback', () => {
  let dir: string;
  let server: NatsServer | undefined;
  let stack: LocalStack | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-tls-'));
  });
  afterAll(async () => {
    await stack?.stop();
    await server?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('tls-init certificates: a client with the CA connects; plain and wrong-CA clients are refused', async () => {
    const init = await runCli(dir, ['auth', 'tls-init', '--dir', 'tls', '--hosts', 'nats.example.internal,10.1.2.3', '--json']);
    expect(init.code, init.stderr).toBe(0);
    const tls = parse<{ ca: string; cert: string; key: string; conf: string }>(init);
    expect(statSync(tls.key).mode & 0o777).toBe(0o600);
    expect(await readFile(tls.conf, 'utf8')).toMatch(/tls \{\n {2}cert_file: ".*server-cert\.pem"\n {2}key_file: ".*server-key\.pem"\n {2}ca_file: ".*ca\.pem"/);
    const again = await runCli(dir, ['auth', 'tls-init', '--dir', 'tls']);
    expect(again.code, again.stderr).toBe(2); // never silently replaces a CA
    expect(again.stderr).toMatch(/already holds a CA/);
    const other = await initTls(join(dir, 'other-ca'));

    server = await NatsServer.start({ tls: { cert: tls.cert, key: tls.key, ca: tls.ca } });
    const good = await connect({ servers: server.url, tls: { caFile: tls.ca }, reconnect: false, timeout: 5000 });
    expect(good.info?.tls_required).toBe(true);
    await good.flush();
    await good.close();
    // by name too: the certificate's SANs hold localhost
    const byName = await connect({ servers: `nats://localhost:${server.port}`, tls: { caFile: tls.ca }, reconnect: false, timeout: 5000 });
    await byName.close();

    await expect(connect({ servers: server.url, tls: { caFile: other.ca }, reconnect: false, timeout: 5000 })).rejects.toThrow(/certificate|self[- ]signed|verify/i);
    // nats.js without TLS options upgrades with the system CAs, which do not know our CA
    await expect(connect({ servers: server.url, reconnect: false, timeout: 5000 })).rejects.toThrow(/certificate|self[- ]signed|verify|tls/i);
    // a plain-text client speaking the protocol without a handshake never gets a PONG
    const plain = await new Promise<string>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port: server!.port });
      let buf = '';
      sock.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        if (buf.startsWith('INFO ') && buf.includes('\r\n') && !buf.includes('CONNECT-SENT')) {
          buf += 'CONNECT-SENT';
          sock.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":false}\r\nPING\r\n');
        }
      });
      sock.on('close', () => resolve(buf));
      sock.on('error', () => undefined);
      setTimeout(() => {
        sock.destroy();
        resolve(buf);
      }, 5000);
    });
    expect(plain).toMatch(/"tls_required":true/);
    expect(plain).not.toMatch(/PONG/);
  }, 120_000);

  it('`ubatch up --tls` (auth on): daemons and the CLI verify the server with the stack CA', async () => {
    await server?.cleanup();
    server = undefined;
    stack = await startLocalStack({ dir: join(dir, 'up', '.ubatch'), workers: 1, slots: 1, logLevel: 'warn', writeStackFile: true, tls: true });
    expect(stack.tls?.ca).toBe(join(dir, 'up', '.ubatch', 'tls', 'ca.pem'));
    const cwd = join(dir, 'up');
    await writeFile(join(cwd, 'noop.yaml'), 'kind: noop\nparams: { tasks: 3 }\n');
    const sub = await runCli(cwd, ['submit', 'noop.yaml', '--wait', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    expect(parse<{ final: { state: string } }>(sub).final.state).toBe('succeeded');
    // pointed at the server by URL without the CA: a clear exit 3 naming --tls-ca
    const noCa = await runCli(dir, ['--creds', stack.credsFor(defaultUserName()), 'status'], { UBATCH_SERVER: stack.url });
    expect(noCa.code).toBe(3);
    expect(noCa.stderr).toMatch(/--tls-ca/);
    const withCa = await runCli(dir, ['--creds', stack.credsFor(defaultUserName()), '--tls-ca', stack.tls!.ca, 'status', '--json'], { UBATCH_SERVER: stack.url });
    expect(withCa.code, withCa.stderr).toBe(0);
    expect(parse<unknown[]>(withCa)).toHaveLength(1);
  }, 120_000);
});
