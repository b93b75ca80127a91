/**
 * Output helpers for the CLI: human tables (cli-table3), sizes, ages,
 * exactly-one-document JSON, and progress that is a bar on a TTY and
 * throttled plain lines otherwise.
 */
import cliProgress from 'cli-progress';
import Table from 'cli-table3';

/** 1536 → "1.5 KiB" */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = u === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n < 0 ? '-' : ''}${s} ${units[u]}`;
}

/** seconds → "850 ms", "12.3 s", "4m05s", "2h03m", "3d04h" */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const pad = (x: number) => String(Math.floor(x)).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${pad((s % 86400) / 3600)}h`;
}

/** How long ago an ISO time was: "5s", "3m", "2h", "4d". */
export function formatAge(iso: string | undefined, now: number = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, (now - t) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** 1234567 → "1,234,567" */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n);
}

export type Cell = string | number | boolean | null | undefined;

/** A plain table (no colours, so it reads the same in a pipe and a terminal). */
export function renderTable(head: string[], rows: Cell[][], opts: { alignRight?: number[] } = {}): string {
  const right = new Set(opts.alignRight ?? []);
  const t = new Table({
    head,
    style: { head: [], border: [], compact: true },
    colAligns: head.map((_, i) => (right.has(i) ? 'right' : 'left')),
  });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  return t.toString();
}

/** "key: value" lines with the keys padded to one width. */
export function renderKeyValues(pairs: [string, Cell][]): string {
  const w = pairs.reduce((m, [k]) => Math.max(m, k.length), 0);
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 1)} ${v === null || v === undefined ? '-' : String(v)}`).join('\n');
}

/** Makes any value JSON-safe: Maps → objects, Sets → arrays, bigint → number (or string when unsafe), Uint8Array → byte count. */
export function toJsonSafe(v: unknown, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v === null || typeof v !== 'object') return typeof v === 'number' && !Number.isFinite(v) ? null : v;
  if (seen.has(v)) return '[circular]';
  seen.add(v);
  try {
    if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), toJsonSafe(x, seen)]));
    if (v instanceof Set) return [...v].map((x) => toJsonSafe(x, seen));
    if (v instanceof Date) return v.toISOString();
    if (v instanceof Uint8Array) return { bytes: v.byteLength };
    if (Array.isArray(v)) return v.map((x) => toJsonSafe(x, seen));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJsonSafe(x, seen);
    return out;
  } finally {
    seen.delete(v);
  }
}

/** Exactly one JSON document followed by a newline. */
export function jsonDocument(v: unknown): string {
  return `${JSON.stringify(toJsonSafe(v), null, 2)}\n`;
}

/** Where a command writes: stdout for data, stderr for progress and notes. Tests pass their own. */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
}
export const processIo = (): Io => ({ out: process.stdout, err: process.stderr });

export interface ProgressState {
  done: number;
  failed: number;
  total: number;
  state?: string;
}

export interface Progress {
  update(s: ProgressState): void;
  /** log a line without breaking the bar */
  note(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** bar on a TTY, plain lines otherwise @default stream.isTTY */
  tty?: boolean;
  /** plain mode: at most one line per this many ms unless the state changes @default 2000 */
  plainEveryMs?: number;
  /** no output at all (--json, --quiet) */
  silent?: boolean;
}

/** A progress display: cli-progress bar on a TTY, throttled "label: 3/10 done" lines elsewhere. */
export function createProgress(o: ProgressOptions): Progress {
  if (o.silent) return { update() {}, note() {}, stop() {} };
  const tty = o.tty ?? o.stream.isTTY === true;
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${o.label} [{bar}] {percentage}% | {value}/{total} | failed {failed} | {state} | {duration_formatted}`,
        stream: o.stream as NodeJS.WritableStream,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(s) {
        const payload = { failed: s.failed, state: s.state ?? '' };
        if (!started) {
          bar.start(Math.max(1, s.total), s.done + s.failed, payload);
          started = true;
        } else {
          bar.setTotal(Math.max(1, s.total));
          bar.update(s.done + s.failed, payload);
        }
      },
      note(line) {
        if (started) {
          // cli-progress has no log API: clear the line, write, and let the next redraw repaint the bar
          o.stream.write(`\r\x1b[2K${line}\n`);
          bar.render();
        } else o.stream.write(`${line}\n`);
      },
      stop() {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  const every = o.plainEveryMs ?? 2000;
  let last = 0;
  let lastKey = '';
  let lastState: string | undefined;
  let pending: ProgressState | undefined;
  const write = (s: ProgressState) => {
    o.stream.write(`${o.label}: ${s.done}/${s.total} done, ${s.failed} failed${s.state ? ` (${s.state})` : ''}\n`);
    last = Date.now();
    lastKey = `${s.done}/${s.failed}/${s.total}/${s.state ?? ''}`;
    lastState = s.state ?? '';
    pending = undefined;
  };
  return {
    update(s) {
      const key = `${s.done}/${s.failed}/${s.total}/${s.state ?? ''}`;
      if (key === lastKey) return;
      const stateChanged = (s.state ?? '') !== lastState;
      if (stateChanged || Date.now() - last >= every) write(s);
      else pending = s;
    },
    note(line) {
      o.stream.write(`${line}\n`);
    },
    stop() {
      if (pending) write(pending);
    },
  };
}
