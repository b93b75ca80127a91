/**
 * What tamper evidence costs (issue 6): the dispatch benchmark's no-op job on
 * the embedded stack with the coordinator's sealing and fsync'd ledger journal
 * off (`--seal-entries 0 --journal-dir none`) and on (the defaults: a seal every
 * 1,000 entries or 10 s, journal beside the output root), alternated in one run;
 * then `ledger verify` over the resulting ledger; then the per-entry cost of
 * the seal fold and of the journal (append + fdatasync per batch of 1,000).
 *
 *   make build && node dist/bench/ledger-seal.js [--tasks 20000] [--rounds 2] [--slots 64]
 *
 * Prints one JSON line per figure and a summary.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LedgerJournal } from '../coordinator/journal.js';
import { SealChain, verifyLedger, type RawLedgerMessage } from '../ledger/index.js';
import { startLocalStack } from '../ops/stack.js';
import { encode, ledgerSubject, type Charge, type LedgerEntry } from '../protocol/index.js';

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '2' }, slots: { type: 'string', default: '64' }, 'fold-entries': { type: 'string', default: '100000' } } });
const N = Number(values.tasks);
const load = () => loadavg()[0]!.toFixed(1);

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 10 ms) */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

const cpuUs = (t0: NodeJS.CpuUsage, n: number) => {
  const d = process.cpuUsage(t0);
  return +((d.user + d.system) / n).toFixed(2);
};

async function dispatch(mode: 'off' | 'on'): Promise<{ seconds: number; coordinatorCpuSeconds: number; verifySeconds?: number; messages?: number; seals?: number; ok?: boolean }> {
  const dir = await mkdtemp(join(tmpdir(), `ubatch-bench-seal-${mode}-`));
  const args = mode === 'off' ? ['--seal-entries', '0', '--journal-dir', 'none'] : [];
  const stack = await startLocalStack({ dir, workers: 2, slots: Number(values.slots), logLevel: 'warn', writeStackFile: false, coordinatorArgs: args });
  try {
    const c = await stack.client('bench');
    await c.wait((await c.submit({ kind: 'noop', params: { tasks: 2000 } })).jobId, { timeoutMs: 120_000 });
    const c0 = cpuSeconds(stack.coordinator.pid);
    const t0 = performance.now();
    const sub = await c.submit({ kind: 'noop', name: `seal-bench-${mode}`, params: { tasks: N } });
    const info = await c.wait(sub.jobId, { timeoutMs: 900_000 });
    const seconds = (performance.now() - t0) / 1000;
    const coordinatorCpuSeconds = cpuSeconds(stack.coordinator.pid) - c0;
    if (info.state !== 'succeeded') throw new Error(`job ended ${info.state}`);
    if (mode === 'off') return { seconds, coordinatorCpuSeconds };
    const nc = await stack.connect();
    await new Promise((r) => setTimeout(r, 11_000)); // the 10 s timer seals the tail
    const v0 = performance.now();
    const r = await verifyLedger(nc, { journal: join(dir, 'ledger-journal') });
    return { seconds, coordinatorCpuSeconds, verifySeconds: (performance.now() - v0) / 1000, messages: r.messages, seals: r.seals.found, ok: r.ok };
  } finally {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function syntheticEntries(n: number, chargesPerEntry: number): RawLedgerMessage[] {
  const out: RawLedgerMessage[] = [];
  for (let i = 0; i < n; i++) {
    const charges: Charge[] = [];
    for (let k = 0; k < chargesPerEntry; k++) {
      charges.push({
        taskId: `job-${i}.${k}`,
        jobId: `job-${i}`,
        attempt: 1,
        execution: `host-1234-abcd.${i * chargesPerEntry + k}`,
        outcome: 'ok',
        usage: { cpuSeconds: 0.01, wallSeconds: 0.02, gpuSeconds: 0, peakRssBytes: 1e8, bytesRead: 0, bytesWritten: 0, allocatedCores: 1 },
        provenance: { inputs: [], outputs: [], code: { ubatchVersion: '0.1.0', gitCommit: 'cf47cd1', kind: 'noop' }, params: {}, worker: { id: 'host-1234-abcd', host: 'host', pid: 1234 }, startedAt: '2026-11-25T19:00:00.000Z', endedAt: '2026-11-25T19:00:00.020Z' },
      });
    }
    const entry: LedgerEntry = { kind: 'task.charged', ts: '2026-11-25T19:00:00.020Z', actor: 'host-1234-abcd', group: `g${i % 10}`, user: `u${i % 1000}`, charges };
    out.push({ seq: i + 1, subject: ledgerSubject('task.charged', entry.group, entry.user), data: encode(entry), time: 0, entry });
  }
  return out;
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const runs: { mode: string; seconds: number; cpu: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const mode of (r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) as ('off' | 'on')[]) {
      const l0 = load();
      const res = await dispatch(mode);
      runs.push({ mode, seconds: res.seconds, cpu: res.coordinatorCpuSeconds });
      console.log(JSON.stringify({ bench: 'dispatch-sealing', mode, tasks: N, seconds: +res.seconds.toFixed(3), tasksPerSecond: Math.round(N / res.seconds), coordinatorCpuSeconds: +res.coordinatorCpuSeconds.toFixed(2), ...(res.verifySeconds !== undefined ? { verifySeconds: +res.verifySeconds.toFixed(3), messages: res.messages, seals: res.seals, verifyOk: res.ok } : {}), load: `${l0}->${load()}` }));
    }
  }
  const mean = (m: string, k: 'seconds' | 'cpu' = 'seconds') => runs.filter((x) => x.mode === m).reduce((a, x) => a + x[k], 0) / runs.filter((x) => x.mode === m).length;
  const ratio = mean('on') / mean('off');
  const cpuRatio = mean('on', 'cpu') / mean('off', 'cpu');

  // the fold: SealChain.add per entry (sha256 of the stored bytes + digest + balance delta), one seal per 1,000
  const E = Number(values['fold-entries']);
  const fold: Record<string, unknown>[] = [];
  for (const per of [1, 32]) {
    const msgs = syntheticEntries(Math.max(1000, Math.round(E / per)), per);
    const chain = new SealChain();
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    for (const m of msgs) {
      chain.add(m);
      if (chain.pendingCount >= 1000) {
        const p = chain.propose(1000, { ts: 'x', actor: 'bench' })!;
        chain.adopt(m.seq + 0.5, p.seal);
      }
    }
    const ms = performance.now() - t0;
    const bytes = msgs.reduce((a, m) => a + m.data.length, 0);
    fold.push({ bench: 'seal-fold', chargesPerEntry: per, entries: msgs.length, bytesPerEntry: Math.round(bytes / msgs.length), usPerEntry: +((ms * 1000) / msgs.length).toFixed(2), cpuUsPerEntry: cpuUs(u0, msgs.length), seals: chain.block, load: load() });
  }
  for (const f of fold) console.log(JSON.stringify(f));

  // the journal: append + fdatasync per batch of 1,000 (the follower's group commit)
  const jdir = await mkdtemp(join(tmpdir(), 'ubatch-bench-journal-'));
  try {
    const msgs = syntheticEntries(20_000, 1);
    const j = await LedgerJournal.open(jdir, 'UB_LEDGER', new Date().toISOString());
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < msgs.length; i++) {
      j.append(msgs[i]!);
      if ((i + 1) % 1000 === 0) await j.flush();
    }
    await j.close();
    const ms = performance.now() - t0;
    const cpu = cpuUs(u0, msgs.length);
    const single = await LedgerJournal.open(join(jdir, 'single'), 'UB_LEDGER', new Date().toISOString());
    const t1 = performance.now();
    for (let i = 0; i < 200; i++) {
      single.append(msgs[i]!);
      await single.flush();
    }
    const ms1 = performance.now() - t1;
    await single.close();
    console.log(JSON.stringify({ bench: 'journal', entries: msgs.length, batch: 1000, usPerEntry: +((ms * 1000) / msgs.length).toFixed(2), cpuUsPerEntry: cpu, fdatasyncPerEntryMs: +(ms1 / 200).toFixed(3), load: load() }));
  } finally {
    await rm(jdir, { recursive: true, force: true });
  }
  console.error(`\nno-op dispatch of ${N} tasks, ${rounds} rounds: sealing + journal off ${mean('off').toFixed(2)} s, on ${mean('on').toFixed(2)} s: on/off = ${ratio.toFixed(3)}; coordinator CPU off ${mean('off', 'cpu').toFixed(2)} s, on ${mean('on', 'cpu').toFixed(2)} s: on/off = ${cpuRatio.toFixed(3)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
