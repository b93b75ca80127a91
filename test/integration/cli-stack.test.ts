// The embedded stack (ops/stack.ts: real nats-server, coordinator and worker child processes running
// dist/ops/cli.js) driven by the `ubatch` CLI as a subprocess, the way a user drives it.
// The stack runs with authentication on (the default): the CLI acts as alice with alice's creds, and
// reads the ledger with the operator's.
// Needs the build: `npx tsc -p tsconfig.json` (make test builds first); skips with a message otherwise.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { survey } from '../../astro/index.js';
import { defaultCliPath, startLocalStack, type LocalStack } from '../../ops/stack.js';
import { CMD_MAP_SQL, CMD_REDUCE_SQL } from '../../ops/commands/demo.js';

const CLI = defaultCliPath();
const built = existsSync(CLI);
if (!built) console.warn(`skipping the CLI integration test: ${CLI} is missing; build first with npx tsc -p tsconfig.json`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(!built)('ubatch CLI against a local stack', () => {
  let dir: string;
  let stack: LocalStack;

  const ubatch = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        { cwd: dir, env: { ...process.env, UBATCH_SERVER: stack.url, UBATCH_USER: 'alice', UBATCH_CREDS: stack.credsFor('alice'), UBATCH_LOG_LEVEL: 'warn', ...env }, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  const json = <T>(r: Run): T => {
    expect(r.stderr, r.stderr).not.toMatch(/TypeError|ReferenceError/);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-cli-it-'));
    const [s] = await Promise.all([
      startLocalStack({ dir: join(dir, 'stack'), workers: 1, slots: 2, logLevel: 'warn', users: ['alice'] }),
      // a patch of sky: few partitions, so few tasks
      survey.generateObjectCatalog(join(dir, 'object'), { rows: 3000, seed: 5, region: { raMin: 10, raMax: 70, decMin: 5, decMax: 40 }, maxRowsPerPartition: 1000, highestOrder: 3 }),
    ]);
    stack = s;
    await writeFile(
      join(dir, 'hist.yaml'),
      ['kind: catalog.sql', 'name: it histogram', 'input:', '  catalog: object', 'params:', `  map: ${CMD_MAP_SQL}`, `  reduce: ${CMD_REDUCE_SQL}`, 'output:', '  path: out/hist.parquet', ''].join('\n'),
    );
    await writeFile(join(dir, 'bad.yaml'), 'kind: catalog.sql\ninput: { catalog: object }\nparams:\n  map: SELECT nosuch FROM partition\noutput: { path: out/bad }\n');
    await writeFile(join(dir, 'long.yaml'), 'kind: noop\nname: long\nparams: { tasks: 4, sleep_ms: 120000 }\n');
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('submit --wait, then status, results and provenance of the job', async () => {
    const sub = await ubatch(['submit', 'hist.yaml', '--wait', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    const s = json<{ jobId: string; tasks: number; final: { state: string; done: number; total: number; output: string } }>(sub);
    expect(s.final).toMatchObject({ state: 'succeeded', output: join(dir, 'out', 'hist.parquet') });
    expect(s.final.done).toBe(s.tasks);

    const [status, results, prov, provByPath, list] = await Promise.all([
      ubatch(['status', s.jobId, '--json']),
      ubatch(['results', s.jobId, '--json']),
      ubatch(['provenance', s.jobId, '--json']),
      ubatch(['provenance', 'out/hist.parquet', '--json']),
      ubatch(['status', '--json']),
    ]);
    expect(json<{ jobId: string; state: string; user: string }>(status)).toMatchObject({ jobId: s.jobId, state: 'succeeded', user: 'alice' });
    expect(json<{ jobId: string }[]>(list).map((j) => j.jobId)).toContain(s.jobId);

    const r = json<{ state: string; files: { path: string; rows?: number; sha256: string }[] }>(results);
    const final = r.files.find((f) => f.path === join(dir, 'out', 'hist.parquet'));
    expect(final?.rows).toBeGreaterThan(10);
    expect(r.files).toHaveLength(s.tasks); // the partials of the map tasks and the reduce output

    type Report = { job: { jobId: string; user: string; state: string }; outputs: { path: string; sha256: string; producedBy: { taskId: string; worker: { id: string }; code: { gitCommit: string } }; upstream: { producedBy: { inputs: { path: string }[] } }[] }[] };
    const p = json<Report>(prov);
    expect(p.job).toMatchObject({ jobId: s.jobId, user: 'alice', state: 'succeeded' });
    expect(p.outputs).toHaveLength(1);
    expect(p.outputs[0]).toMatchObject({ path: final!.path, sha256: final!.sha256, producedBy: { taskId: `${s.jobId}.r`, worker: { id: stack.workers[0]!.id } } });
    expect(p.outputs[0]!.producedBy.code.gitCommit).not.toBe('');
    expect(p.outputs[0]!.upstream).toHaveLength(s.tasks - 1);
    expect(p.outputs[0]!.upstream[0]!.producedBy.inputs[0]!.path).toMatch(/object\/dataset\/Norder=\d+\/Dir=\d+\/Npix=\d+\.parquet$/);
    expect(json<Report>(provByPath).job.jobId).toBe(s.jobId);
  }, 120_000);

  it('cancels a long job; watch then exits 1 with the final state', async () => {
    const sub = await ubatch(['submit', 'long.yaml', '--json']);
    expect(sub.code, sub.stderr).toBe(0);
    const { jobId } = json<{ jobId: string }>(sub);
    const cancel = await ubatch(['cancel', jobId, '--json']);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(json<{ state: string }>(cancel).state).toBe('cancelled');
    const watch = await ubatch(['watch', jobId, '--json']);
    expect(watch.code).toBe(1);
    expect(json<{ state: string; error: string }>(watch)).toMatchObject({ state: 'cancelled', error: 'cancelled by alice' });
  });

  it('exit codes: invalid spec 2 (with file:line:col), unknown job 4, unreachable server 3', async () => {
    const [bad, unknown, down, ledger] = await Promise.all([
      ubatch(['submit', 'bad.yaml']),
      ubatch(['status', 'jnosuchjob0000']),
      ubatch(['status'], { UBATCH_SERVER: 'nats://127.0.0.1:1' }),
      ubatch(['--creds', stack.credsFor('operator'), 'ledger', 'summary', '--json']),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${join(dir, 'bad.yaml')}:4:8: invalid_spec: SQL error`);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/not_found: no job jnosuchjob0000/);
    expect(down.code).toBe(3);
    const s = json<{ jobs: { accepted: number }; duplicateCharges: string[]; byTenant: Record<string, { attempts: number }> }>(ledger);
    expect(s.jobs.accepted).toBeGreaterThanOrEqual(1);
    expect(s.duplicateCharges).toEqual([]);
    expect(s.byTenant['default.alice']?.attempts).toBeGreaterThan(0);
  });
});
