/**
 * Job spec files (YAML or JSON) → a validated JobSpec, with errors that say
 * file:line:col. Relative input and output paths are resolved against the
 * spec file's directory, so a spec runs the same from any working directory
 * (and the same spec runs with `ubatch run` and `ubatch submit`).
 *
 * `--set key=value` edits the spec after it is read: the key is a dotted
 * path (`params.tasks`, `select.cone.ra`, `input.files.0`), the value is
 * read as YAML (`4` is a number, `true` a boolean, `{ra: 1}` an object, and
 * anything else a string).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parse as parseYaml, parseDocument, isMap, isSeq, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { JobSpec, UbatchApiError, validationIssues } from '../protocol/index.js';
import { SpecFileError } from './errors.js';

export type SpecFormat = 'yaml' | 'json';

export interface LineCol {
  line: number;
  col: number;
}

export interface ParsedSpecText {
  value: unknown;
  format: SpecFormat;
  /** line/col (1-based) of the field a JSON pointer names, or of its nearest existing parent */
  locate(pointer: string): LineCol | undefined;
}

export interface LoadedSpec {
  spec: JobSpec;
  /** absolute path of the spec file */
  file: string;
  /** directory relative paths were resolved against */
  dir: string;
  format: SpecFormat;
  locate(pointer: string): LineCol | undefined;
  /** An API error about this spec (where = /spec/...) as a SpecFileError with a line and column when the field came from the file. */
  explain(err: UbatchApiError): SpecFileError;
}

export interface LoadSpecOptions {
  /** `key=value` assignments applied after reading */
  set?: string[];
  /** overrides spec.group */
  group?: string;
  /** relative paths given with --set resolve against this @default process.cwd() */
  cwd?: string;
  /** check against the JobSpec schema @default true */
  validate?: boolean;
}

/** 1-based line and column of a character offset. */
export function offsetToLineCol(text: string, offset: number): LineCol {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(0, offset), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: end - lineStart + 1 };
}

/**
 * Where strict JSON first goes wrong (offset and reason), or undefined when
 * `text` is valid JSON. Node's JSON.parse no longer reports positions for
 * every error, so this small scanner finds them.
 */
export function locateJsonError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  const n = text.length;
  class Stop extends Error {
    constructor(readonly at: number, msg: string) {
      super(msg);
    }
  }
  const fail = (msg: string, at = i): never => {
    throw new Stop(at, msg);
  };
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const describe = () => (i >= n ? 'end of input' : `${JSON.stringify(text[i])}`);
  const str = () => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail('control character in string (line breaks must be written \\n)');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape in string');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail(`bad escape \\${e ?? ''} in string`);
      } else i++;
    }
    fail('unterminated string');
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describe()}`);
        str();
        ws();
        if (text[i] !== ':') fail(`expected ':' after the property name, found ${describe()}`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === '}') fail('trailing comma before }');
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected ',' or '}' after a property value, found ${describe()}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') fail('trailing comma before ]');
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected ',' or ']' after an array element, found ${describe()}`);
      }
    }
    if (c === '"') return str();
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m && m[0] !== '-' && m[0] !== '') {
      i += m[0].length;
      return;
    }
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return;
      }
    }
    fail(`unexpected ${describe()}: expected a value`);
  };
  try {
    value();
    ws();
    if (i < n) fail(`unexpected ${describe()} after the end of the JSON value`);
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return { offset: err.at, message: err.message };
    throw err;
  }
}

function decodePointer(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .replace(/^\//, '')
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function nodeLocator(doc: Document, lc: LineCounter): (pointer: string) => LineCol | undefined {
  return (pointer) => {
    let node: unknown = doc.contents;
    let best: number | undefined = (doc.contents as YamlNode | null)?.range?.[0];
    for (const seg of decodePointer(pointer)) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === seg);
        if (!pair) break;
        const keyStart = (pair.key as YamlNode | null)?.range?.[0];
        if (keyStart !== undefined) best = keyStart;
        node = pair.value;
        // a scalar value is the more precise place (the bad number, the bad SQL)
        if (isScalar(node) && node.range) best = node.range[0];
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)];
        if (item === undefined || !/^\d+$/.test(seg)) break;
        node = item;
        const start = (item as YamlNode | null)?.range?.[0];
        if (start !== undefined) best = start;
      } else break;
    }
    if (best === undefined) return undefined;
    const p = lc.linePos(best);
    return { line: p.line, col: p.col };
  };
}

/** Parses spec text as JSON (format 'json', or text starting with '{') or YAML; throws SpecFileError with line:col. */
export function parseSpecText(text: string, file: string, format?: SpecFormat): ParsedSpecText {
  const fmt: SpecFormat = format ?? (/^\s*\{/.test(text) ? 'json' : 'yaml');
  const lc = new LineCounter();
  if (fmt === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const loc = locateJsonError(text);
      const at = loc ? offsetToLineCol(text, loc.offset) : undefined;
      throw new SpecFileError(`invalid JSON: ${loc?.message ?? (err as Error).message}`, file, at?.line, at?.col, undefined, { cause: err });
    }
    // valid JSON is valid YAML flow: reuse the YAML node ranges to point at fields
    const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false });
    return { value, format: 'json', locate: nodeLocator(doc, lc) };
  }
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true });
  const first = doc.errors[0];
  if (first) {
    const p = first.linePos?.[0];
    // pretty errors add " at line L, column C:" and a source excerpt; we print file:line:col instead
    const msg = (first.message.split('\n')[0] ?? first.message).replace(/ at line \d+, column \d+:?$/, '');
    throw new SpecFileError(`invalid YAML: ${msg}`, file, p?.line, p?.col);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new SpecFileError(`invalid YAML: ${(err as Error).message}`, file, undefined, undefined, undefined, { cause: err });
  }
  return { value, format: 'yaml', locate: nodeLocator(doc, lc) };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A --set value: numbers, booleans and null as YAML reads them, flow
 * collections (`[1, 2]`, `{ra: 1}`) and quoted strings parsed, anything else
 * the plain string typed (so `name=my job: v2` and SQL stay strings).
 */
function setValue(raw: string): unknown {
  const t = raw.trim();
  if (t === '') return '';
  let v: unknown;
  try {
    v = parseYaml(t);
  } catch {
    return raw; // not YAML at all (SQL with `*`, stray colons): the string the user typed
  }
  if (/^[[{"']/.test(t)) return v;
  return typeof v === 'number' || typeof v === 'boolean' || v === null ? v : raw;
}

/**
 * Applies `key=value` assignments (dotted keys, YAML values) to `target`,
 * creating objects on the way. Throws SpecFileError-free CliUsage-style
 * errors as plain Error messages for the caller to wrap.
 */
export function applySet(target: Record<string, unknown>, assignments: readonly string[]): void {
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${JSON.stringify(a)}: expected key=value`);
    const key = a.slice(0, eq).trim();
    const raw = a.slice(eq + 1);
    const path = key.split('.');
    if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) throw new Error(`--set ${JSON.stringify(a)}: bad key ${JSON.stringify(key)}`);
    const value = setValue(raw);
    let cur: unknown = target;
    for (let i = 0; i < path.length - 1; i++) {
      const seg = path[i]!;
      if (Array.isArray(cur) && /^\d+$/.test(seg)) {
        cur[Number(seg)] ??= {};
        cur = cur[Number(seg)];
      } else if (isPlainObject(cur)) {
        if (cur[seg] === undefined || cur[seg] === null || typeof cur[seg] !== 'object') cur[seg] = {};
        cur = cur[seg];
      } else throw new Error(`--set ${JSON.stringify(a)}: ${path.slice(0, i).join('.')} is not an object`);
    }
    const last = path[path.length - 1]!;
    if (Array.isArray(cur) && /^\d+$/.test(last)) cur[Number(last)] = value;
    else if (isPlainObject(cur)) cur[last] = value;
    else throw new Error(`--set ${JSON.stringify(a)}: cannot set ${key}`);
  }
}

/** A relative path (not a URL), resolved against `base`; `~/` expands to the home directory. */
export function resolvePathAgainst(p: string, base: string): string {
  if (p === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return p;
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(base, p);
}

/**
 * Resolves the spec's input paths (string values of `input`, and lists of
 * strings) and `output.path` against `base`, in place.
 */
export function resolveSpecPaths(spec: Record<string, unknown>, base: string): void {
  const input = spec['input'];
  if (isPlainObject(input)) {
    for (const [k, v] of Object.entries(input)) {
      if (typeof v === 'string') input[k] = resolvePathAgainst(v, base);
      else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) input[k] = v.map((x: string) => resolvePathAgainst(x, base));
    }
  }
  const output = spec['output'];
  if (isPlainObject(output) && typeof output['path'] === 'string') output['path'] = resolvePathAgainst(output['path'], base);
}

function fieldName(pointer: string): string {
  const segs = decodePointer(pointer);
  return segs.length === 0 ? 'the spec' : segs.join('.');
}

/** Reads, parses, edits (--set, --group), resolves and validates a spec file. */
export async function loadSpecFile(file: string, opts: LoadSpecOptions = {}): Promise<LoadedSpec> {
  const cwd = opts.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SpecFileError(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a spec file' : `cannot read: ${(err as Error).message}`, abs, undefined, undefined, undefined, { cause: err });
  }
  const ext = extname(abs).toLowerCase();
  const parsed = parseSpecText(text, abs, ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined);
  if (!isPlainObject(parsed.value)) throw new SpecFileError(`a job spec must be a mapping (kind:, input:, params: ...), found ${parsed.value === null ? 'an empty document' : Array.isArray(parsed.value) ? 'a list' : typeof parsed.value}`, abs, 1, 1);
  const spec = parsed.value;
  const dir = dirname(abs);
  resolveSpecPaths(spec, dir);
  if (opts.set && opts.set.length > 0) {
    try {
      applySet(spec, opts.set);
    } catch (err) {
      throw new SpecFileError((err as Error).message, abs);
    }
    // values given on the command line are relative to where the command runs
    resolveSpecPaths(spec, cwd);
  }
  if (opts.group !== undefined) spec['group'] = opts.group;
  const locate = parsed.locate;
  const fromSet = (pointer: string) => (opts.set ?? []).some((a) => a.slice(0, a.indexOf('=')).trim() === decodePointer(pointer).join('.'));
  const explainAt = (message: string, pointer: string | undefined, cause?: unknown): SpecFileError => {
    if (pointer === undefined) return new SpecFileError(message, abs, undefined, undefined, undefined, { cause });
    const loc = fromSet(pointer) ? undefined : locate(pointer);
    const suffix = fromSet(pointer) ? ' (value from --set)' : '';
    return new SpecFileError(`${message}${suffix}`, abs, loc?.line, loc?.col, pointer, { cause });
  };
  if (opts.validate ?? true) {
    const issues = validationIssues(JobSpec, spec);
    const first = issues[0];
    if (first) throw explainAt(`${fieldName(first.path)}: ${first.message}`, first.path);
  }
  return {
    spec: spec as JobSpec,
    file: abs,
    dir,
    format: parsed.format,
    locate,
    explain(err: UbatchApiError): SpecFileError {
      const w = err.where?.replace(/^\/spec(?=\/|$)/, '');
      return explainAt(`${err.code}: ${err.message}`, w, err);
    },
  };
}
