/** Shared assertions and queries for integration tests. */
import { DuckDBInstance } from '@duckdb/node-api';
import { expect } from 'vitest';
import { UbatchApiError } from '../../protocol/index.js';

/** Await `p`, which must reject with an UbatchApiError of this code (and `where`, and message pattern when given). */
export async function expectApiError(p: Promise<unknown>, code: string, where?: string | RegExp, message?: RegExp): Promise<UbatchApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UbatchApiError);
    const err = e as UbatchApiError;
    expect(err.code, err.message).toBe(code);
    if (typeof where === 'string') expect(err.where, err.message).toBe(where);
    else if (where) expect(err.where, err.message).toMatch(where);
    expect(err.message.length).toBeGreaterThan(10);
    if (message) expect(err.message).toMatch(message);
    return err;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

/** Run one query in a fresh in-memory DuckDB; rows as JSON-compatible objects. */
export async function queryJson(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}
