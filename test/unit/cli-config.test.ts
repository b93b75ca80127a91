// CLI configuration (ops/config.ts), exit-code mapping (ops/errors.ts) and the command tree's
// usage errors (ops/commands/program.ts, run in-process with captured output).
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCode, UbatchApiError } from '../../protocol/index.js';
import { parseIntOption, readStackFile, resolveCliConfig, sanitizeUserName, type StackFile } from '../../ops/config.js';
import { CliUsageError, ExitCode, exitCodeFor, exitCodeForApiCode, exitCodeForState, JobNotSucceededError, NotFoundError, ServiceUnreachableError, SpecFileError } from '../../ops/errors.js';
import { runCli } from '../../ops/commands/program.js';

function capture() {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d: Buffer) => (o += d.toString()));
  err.on('data', (d: Buffer) => (e += d.toString()));
  return { io: { out, err }, stdout: () => o, stderr: () => e };
}

const stack = (url: string): StackFile => ({ url, pid: process.pid, dir: '/x', startedAt: '', outputRoot: '/x/o', server: { storeDir: '/x/n', log: '' }, coordinator: { log: '' }, workers: [] });

describe('resolveCliConfig', () => {
  const none = () => undefined;
  it('takes --server over UBATCH_SERVER over the stack file over the default', () => {
    const env = { UBATCH_SERVER: 'nats://env:1' };
    const withStack = () => stack('nats://stack:2');
    expect(resolveCliConfig({ server: 'nats://flag:3' }, { env, readStack: withStack })).toMatchObject({ server: 'nats://flag:3', serverSource: 'flag' });
    expect(resolveCliConfig({}, { env, readStack: withStack })).toMatchObject({ server: 'nats://env:1', serverSource: 'env' });
    expect(resolveCliConfig({}, { env: {}, readStack: withStack })).toMatchObject({ server: 'nats://stack:2', serverSource: 'stack' });
    expect(resolveCliConfig({}, { env: {}, readStack: none })).toMatchObject({ server: 'nats://127.0.0.1:4222', serverSource: 'default' });
  });

  it('accepts several servers and rejects malformed URLs', () => {
    expect(resolveCliConfig({ server: 'nats://a:1,nats://b:2' }, { env: {}, readStack: none }).server).toBe('nats://a:1,nats://b:2');
    expect(() => resolveCliConfig({ server: 'http://x/y' }, { env: {}, readStack: none })).toThrow(CliUsageError);
  });

  it('takes the user from --user, UBATCH_USER, then the sanitised OS name', () => {
    expect(resolveCliConfig({ user: 'alice' }, { env: { UBATCH_USER: 'bob' }, readStack: none })).toMatchObject({ user: 'alice', userSource: 'flag' });
    expect(resolveCliConfig({}, { env: { UBATCH_USER: 'bob' }, readStack: none })).toMatchObject({ user: 'bob', userSource: 'env' });
    expect(resolveCliConfig({}, { env: {}, osUser: 'Jean.Dupont@LAB', readStack: none })).toMatchObject({ user: 'Jean_Dupont_LAB', userSource: 'os' });
    expect(() => resolveCliConfig({ user: 'a.b' }, { env: {}, readStack: none })).toThrow(/invalid user name/);
    expect(() => resolveCliConfig({}, { env: { UBATCH_USER: 'x y' }, readStack: none })).toThrow(/UBATCH_USER/);
  });

  it('resolves the log level: flag, env, then the default for the command', () => {
    expect(resolveCliConfig({ logLevel: 'DEBUG' }, { env: {}, readStack: none }).logLevel).toBe('debug');
    expect(resolveCliConfig({}, { env: { UBATCH_LOG_LEVEL: 'error' }, readStack: none }).logLevel).toBe('error');
    expect(resolveCliConfig({}, { env: {}, readStack: none, defaultLogLevel: 'info' }).logLevel).toBe('info');
    expect(resolveCliConfig({}, { env: {}, readStack: none }).logLevel).toBe('warn');
    expect(() => resolveCliConfig({ logLevel: 'loud' }, { env: {}, readStack: none })).toThrow(CliUsageError);
  });

  it('sanitizeUserName keeps subject-safe tokens', () => {
    expect(sanitizeUserName('alice')).toBe('alice');
    expect(sanitizeUserName('..')).toBe('anonymous');
    expect(sanitizeUserName('a'.repeat(100))).toHaveLength(64);
  });

  it('parseIntOption checks range and form', () => {
    expect(parseIntOption('8', '--slots', 1, 10)).toBe(8);
    expect(() => parseIntOption('0', '--slots', 1)).toThrow(/--slots must be an integer from 1/);
    expect(() => parseIntOption('2.5', '--slots', 1)).toThrow(CliUsageError);
    expect(() => parseIntOption('x', '--slots', 1)).toThrow(CliUsageError);
  });
});

describe('stack file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-cli-cfg-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is used while the ubatch up that wrote it lives, and ignored when stale', async () => {
    const d = join(dir, '.ubatch');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'stack.json'), JSON.stringify(stack('nats://127.0.0.1:5555')));
    expect(readStackFile(d)?.url).toBe('nats://127.0.0.1:5555');
    expect(resolveCliConfig({}, { env: {}, cwd: dir })).toMatchObject({ server: 'nats://127.0.0.1:5555', serverSource: 'stack', stackFile: join(d, 'stack.json') });
    // a pid that cannot exist: the stack crashed without removing its file
    await writeFile(join(d, 'stack.json'), JSON.stringify({ ...stack('nats://127.0.0.1:5555'), pid: 2 ** 22 + 12345 }));
    expect(readStackFile(d)).toBeUndefined();
    await writeFile(join(d, 'stack.json'), '{ not json');
    expect(readStackFile(d)).toBeUndefined();
  });
});

describe('exit codes', () => {
  it('maps API error codes', () => {
    for (const c of [ApiCode.InvalidSpec, ApiCode.UnknownKind, ApiCode.BadRequest, ApiCode.InputNotFound, ApiCode.InvalidInput]) expect(exitCodeForApiCode(c)).toBe(2);
    expect(exitCodeForApiCode(ApiCode.NotFound)).toBe(4);
    expect(exitCodeForApiCode(ApiCode.OverQuota)).toBe(5);
    expect(exitCodeForApiCode(ApiCode.Forbidden)).toBe(5);
    expect(exitCodeForApiCode(ApiCode.Unavailable)).toBe(3);
    expect(exitCodeForApiCode(ApiCode.Internal)).toBe(1);
  });

  it('maps error classes', () => {
    expect(exitCodeFor(new UbatchApiError('over_quota', 'no'))).toBe(ExitCode.forbidden);
    expect(exitCodeFor(new SpecFileError('bad', 'f.yaml', 1, 2))).toBe(ExitCode.usage);
    expect(exitCodeFor(new CliUsageError('bad'))).toBe(ExitCode.usage);
    expect(exitCodeFor(new ServiceUnreachableError('down', 'nats://x:1'))).toBe(ExitCode.unavailable);
    expect(exitCodeFor(new NotFoundError('gone', 'j1'))).toBe(ExitCode.notFound);
    expect(exitCodeFor(new JobNotSucceededError('j1', 'partial'))).toBe(ExitCode.failed);
    expect(exitCodeFor(new Error('boom'))).toBe(ExitCode.failed);
  });

  it('maps final job states', () => {
    expect(exitCodeForState('succeeded')).toBe(0);
    for (const s of ['partial', 'failed', 'cancelled']) expect(exitCodeForState(s)).toBe(1);
  });

  it('runCli: usage errors exit 2, help and version exit 0', async () => {
    const a = capture();
    expect(await runCli(['node', 'ubatch', 'frobnicate'], { io: a.io })).toBe(2);
    expect(a.stderr()).toMatch(/unknown command 'frobnicate'/);
    const b = capture();
    expect(await runCli(['node', 'ubatch', 'submit'], { io: b.io })).toBe(2);
    expect(b.stderr()).toMatch(/missing required argument 'spec'/);
    const c = capture();
    expect(await runCli(['node', 'ubatch', 'status', '--limit', 'x'], { io: c.io, env: {} })).toBe(2);
    expect(c.stderr()).toMatch(/--limit must be an integer/);
    const d = capture();
    expect(await runCli(['node', 'ubatch', 'submit', '--help'], { io: d.io })).toBe(0);
    expect(d.stdout()).toMatch(/--dry-run/);
    const v = capture();
    expect(await runCli(['node', 'ubatch', '--version'], { io: v.io })).toBe(0);
    expect(v.stdout()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('runCli: a missing spec file exits 2, an unreachable server exits 3 with one JSON error document', async () => {
    const a = capture();
    expect(await runCli(['node', 'ubatch', 'submit', '/nonexistent/spec.yaml'], { io: a.io, env: {} })).toBe(2);
    expect(a.stderr()).toMatch(/spec\.yaml: no such file/);
    const b = capture();
    const code = await runCli(['node', 'ubatch', '--server', 'nats://127.0.0.1:1', 'status', '--json'], { io: b.io, env: {} });
    expect(code).toBe(3);
    const doc = JSON.parse(b.stdout()) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('ServiceUnreachableError');
    expect(doc.error.message).toMatch(/cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
  });
});
