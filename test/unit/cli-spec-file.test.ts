// Spec files (ops/spec-file.ts): YAML/JSON parse errors with line:col, validation errors pointed at
// the field, path resolution against the spec's directory, --set and --group.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UbatchApiError } from '../../protocol/index.js';
import { SpecFileError } from '../../ops/errors.js';
import { applySet, loadSpecFile, locateJsonError, offsetToLineCol, parseSpecText, resolvePathAgainst } from '../../ops/spec-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ubatch-cli-spec-'));
  await mkdir(join(dir, 'jobs'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function specFile(name: string, text: string): Promise<string> {
  const p = join(dir, 'jobs', name);
  await writeFile(p, text);
  return p;
}

async function loadError(p: string, opts: Parameters<typeof loadSpecFile>[1] = {}): Promise<SpecFileError> {
  const err = await loadSpecFile(p, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SpecFileError);
  return err as SpecFileError;
}

describe('YAML specs', () => {
  it('reads a spec and resolves relative input and output paths against the spec directory', async () => {
    const p = await specFile(
      'ok.yaml',
      ['kind: catalog.sql', 'name: cmd', 'input:', '  catalog: ../data/object', '  files: [a.parquet, /abs/b.parquet, s3://bucket/c]', 'params:', '  map: SELECT 1 FROM partition', 'output:', '  path: out/cmd.parquet', ''].join('\n'),
    );
    const l = await loadSpecFile(p, { cwd: '/somewhere/else' });
    expect(l.format).toBe('yaml');
    expect(l.spec.input?.['catalog']).toBe(join(dir, 'data', 'object'));
    expect(l.spec.input?.['files']).toEqual([join(dir, 'jobs', 'a.parquet'), '/abs/b.parquet', 's3://bucket/c']);
    expect(l.spec.output?.path).toBe(join(dir, 'jobs', 'out', 'cmd.parquet'));
    expect(l.spec.params?.['map']).toBe('SELECT 1 FROM partition');
  });

  it('reports a syntax error with its line and column', async () => {
    // YAML reads "3\n   bad: indent" as one plain scalar and complains where the colon appears
    const p = await specFile('syntax.yaml', 'kind: noop\nparams:\n  tasks: 3\n   bad: indent\n');
    const e = await loadError(p);
    expect([e.line, e.col]).toEqual([3, 10]);
    expect(e.message).toContain(`${p}:3:10: invalid YAML: Nested mappings`);
    expect(e.message).toMatch(/invalid YAML/);
  });

  it('reports duplicate keys', async () => {
    const p = await specFile('dup.yaml', 'kind: noop\nname: a\nname: b\n');
    const e = await loadError(p);
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/unique|duplicate/i);
  });

  it('points schema violations at the offending field', async () => {
    const p = await specFile('schema.yaml', 'kind: noop\nresources:\n  cores: 1\n  memory_mb: lots\nparams: { tasks: 2 }\n');
    const e = await loadError(p);
    expect(e.where).toBe('/resources/memory_mb');
    expect([e.line, e.col]).toEqual([4, 14]);
    expect(e.message).toMatch(/resources\.memory_mb/);
  });

  it('points an unknown top-level property at its line', async () => {
    const p = await specFile('extra.yaml', 'kind: noop\nparams: { tasks: 2 }\nnmae: typo\n');
    const e = await loadError(p);
    expect(e.where).toBe('/nmae');
    expect(e.line).toBe(3);
  });

  it('rejects a document that is not a mapping', async () => {
    const e = await loadError(await specFile('list.yaml', '- kind: noop\n'));
    expect(e.message).toMatch(/must be a mapping/);
    const empty = await loadError(await specFile('empty.yaml', ''));
    expect(empty.message).toMatch(/empty document/);
  });

  it('says when the file is missing', async () => {
    const e = await loadError(join(dir, 'nope.yaml'));
    expect(e.message).toMatch(/no such file/);
  });

  it('explains an API error at the spec field it names', async () => {
    const p = await specFile('api.yaml', 'kind: catalog.sql\ninput:\n  catalog: cat\nparams:\n  map: SELECT nosuch FROM partition\noutput: { path: o }\n');
    const l = await loadSpecFile(p);
    const e = l.explain(new UbatchApiError('invalid_spec', 'SQL error: no column nosuch', '/spec/params/map'));
    expect([e.line, e.col]).toEqual([5, 8]);
    expect(e.message).toContain('invalid_spec: SQL error');
  });
});

describe('JSON specs', () => {
  it('reads JSON and finds fields in it', async () => {
    const p = await specFile('ok.json', '{\n  "kind": "noop",\n  "params": { "tasks": 2 },\n  "resources": { "cores": -1 }\n}\n');
    const e = await loadError(p);
    expect(e.where).toBe('/resources/cores');
    expect(e.line).toBe(4);
  });

  it.each([
    ['trailing comma', '{\n  "kind": "noop",\n  "params": { "tasks": 3, }\n}', 3, 27],
    ['missing colon', '{\n  "kind" "noop"\n}', 2, 10],
    ['unquoted key', '{ kind: "noop" }', 1, 3],
    ['unterminated string', '{\n "kind": "noop\n}', 2, 15],
    ['garbage after the value', '{"kind": "noop"} x', 1, 18],
  ])('reports %s with line and column', async (_name, text, line, col) => {
    const p = await specFile(`bad-${line}-${col}.json`, text);
    const e = await loadError(p);
    expect([e.line, e.col]).toEqual([line, col]);
    expect(e.message).toMatch(/invalid JSON/);
  });

  it('locateJsonError agrees with JSON.parse on what is valid', () => {
    const docs = ['{}', '[]', '{"a":[1,2.5e-3,-0,true,false,null,"x\\u00e9\\n"]}', ' 3 ', '"s"', '{"a":01}', '[1,]', '{"a":1,,}', '[', '{"a":"\t"}', 'nul', '-', '1.', '{"a":{}}'];
    for (const d of docs) {
      let ok = true;
      try {
        JSON.parse(d);
      } catch {
        ok = false;
      }
      expect(locateJsonError(d) === undefined, d).toBe(ok);
    }
  });

  it('offsetToLineCol counts from 1', () => {
    expect(offsetToLineCol('ab\ncd', 0)).toEqual({ line: 1, col: 1 });
    expect(offsetToLineCol('ab\ncd', 4)).toEqual({ line: 2, col: 2 });
  });

  it('parseSpecText guesses JSON from a leading brace', () => {
    expect(parseSpecText('  {"kind":"noop"}', 'x').format).toBe('json');
    expect(parseSpecText('kind: noop', 'x').format).toBe('yaml');
  });
});

describe('--set and --group', () => {
  it('sets nested keys with YAML-typed values', () => {
    const spec: Record<string, unknown> = { kind: 'noop', params: { tasks: 1 } };
    applySet(spec, ['params.tasks=4', 'params.fail=true', 'select.cone={ra: 1, dec: -2, radius_deg: 0.5}', 'name=my job: v2', 'params.list=[1, 2]', 'params.list.1=7', 'params.empty=']);
    expect(spec).toEqual({
      kind: 'noop',
      params: { tasks: 4, fail: true, list: [1, 7], empty: '' },
      select: { cone: { ra: 1, dec: -2, radius_deg: 0.5 } },
      name: 'my job: v2',
    });
  });

  it('rejects malformed assignments and prototype keys', () => {
    expect(() => applySet({}, ['novalue'])).toThrow(/key=value/);
    expect(() => applySet({}, ['__proto__.x=1'])).toThrow(/bad key/);
    expect(() => applySet({ a: 1 }, ['a.b.c=1'])).not.toThrow();
  });

  it('applies to a loaded spec; paths from --set resolve against the working directory', async () => {
    const p = await specFile('set.yaml', 'kind: command\nparams: { command: "true" }\ninput: { catalog: cat }\noutput: { path: out }\n');
    const l = await loadSpecFile(p, { set: ['output.path=elsewhere/o', 'params.tasks=2'], group: 'desc', cwd: '/work/here' });
    expect(l.spec.output?.path).toBe('/work/here/elsewhere/o');
    expect(l.spec.input?.['catalog']).toBe(join(dir, 'jobs', 'cat'));
    expect(l.spec.group).toBe('desc');
    expect(l.spec.params?.['tasks']).toBe(2);
  });

  it('says a bad value came from --set', async () => {
    const p = await specFile('set2.yaml', 'kind: noop\n');
    const e = await loadError(p, { set: ['resources.cores=many'] });
    expect(e.message).toMatch(/from --set/);
    expect(e.line).toBeUndefined();
  });

  it('resolvePathAgainst leaves absolute paths and URLs alone and expands ~', () => {
    expect(resolvePathAgainst('/a/b', '/base')).toBe('/a/b');
    expect(resolvePathAgainst('https://x/y', '/base')).toBe('https://x/y');
    expect(resolvePathAgainst('a/b', '/base')).toBe('/base/a/b');
    expect(resolvePathAgainst('~/x', '/base')).not.toContain('~');
  });
});
