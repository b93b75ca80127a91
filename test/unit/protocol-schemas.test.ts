import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isValid, JobSpec, LedgerEntry, renderSchemas, Task, validateOrThrow, UbatchApiError, validationIssues } from '../../protocol/index.js';

const dir = join(import.meta.dirname, '../../protocol/schemas');

describe('published JSON Schemas', () => {
  it('protocol/schemas/*.json match the TypeBox schemas (run `make schemas` when this fails)', () => {
    const want = renderSchemas();
    const have = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    expect(have).toEqual(Object.keys(want).sort());
    for (const [file, text] of Object.entries(want)) expect(readFileSync(join(dir, file), 'utf8'), file).toBe(text);
  });
});

describe('JobSpec validation', () => {
  const good = { kind: 'catalog.sql', input: { catalog: '/data/x' }, params: { map: 'SELECT 1' }, output: { path: '/tmp/o' }, select: { cone: { ra: 10, dec: -5, radius_deg: 1 } } };
  it('accepts the design example shape', () => {
    expect(isValid(JobSpec, good)).toBe(true);
  });
  it('names the offending field as a JSON pointer', () => {
    const bad = { ...good, select: { cone: { ra: 10, dec: -95, radius_deg: 1 } } };
    try {
      validateOrThrow(JobSpec, bad, 'invalid job spec', '/spec');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UbatchApiError);
      expect((e as UbatchApiError).where).toBe('/spec/select/cone/dec');
      expect((e as UbatchApiError).code).toBe('invalid_spec');
    }
  });
  it('rejects unknown top-level fields, wrong types and bad tokens', () => {
    expect(validationIssues(JobSpec, { ...good, colour: 'red' })[0]?.path).toBe('/colour');
    expect(validationIssues(JobSpec, { ...good, kind: 7 })[0]?.path).toBe('/kind');
    expect(validationIssues(JobSpec, { ...good, group: 'a.b' })[0]?.path).toBe('/group');
    expect(validationIssues(JobSpec, { ...good, resources: { cores: -1 } })[0]?.path).toBe('/resources/cores');
  });
  it('Task and LedgerEntry reject malformed values', () => {
    expect(isValid(Task, { taskId: 'x' })).toBe(false);
    expect(isValid(LedgerEntry, { kind: 'task.charged', ts: 'now', actor: 'w', group: 'g', user: 'u', charges: [] })).toBe(false);
  });
});
