import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { UbatchApiError, ApiCode } from './errors.js';

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();
function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

export interface ValidationIssue {
  path: string;
  message: string;
}

export function validationIssues(schema: TSchema, value: unknown, max = 10): ValidationIssue[] {
  const c = checker(schema);
  if (c.Check(value)) return [];
  const out: ValidationIssue[] = [];
  for (const e of c.Errors(value)) {
    out.push({ path: e.path || '/', message: e.message });
    if (out.length >= max) break;
  }
  return out;
}

export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}

/**
 * Validate `value` against `schema`, or throw an UbatchApiError naming the
 * first offending field as a JSON pointer (prefixed by `where`).
 */
export function validateOrThrow<T extends TSchema>(schema: T, value: unknown, what: string, where = '', code: string = ApiCode.InvalidSpec): Static<T> {
  const issues = validationIssues(schema, value);
  if (issues.length === 0) return value as Static<T>;
  const first = issues[0]!;
  throw new UbatchApiError(code, `${what}: ${first.message} at ${where}${first.path}`, `${where}${first.path}`, { issues });
}

/** Fill schema defaults on a copy (used for resources). */
export function withDefaults<T extends TSchema>(schema: T, value: unknown): Static<T> {
  return Value.Default(schema, structuredClone(value)) as Static<T>;
}
