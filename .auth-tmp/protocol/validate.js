import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { UbatchApiError, ApiCode } from './errors.js';
const compiled = new WeakMap();
function checker(schema) {
    let c = compiled.get(schema);
    if (!c) {
        c = TypeCompiler.Compile(schema);
        compiled.set(schema, c);
    }
    return c;
}
export function validationIssues(schema, value, max = 10) {
    const c = checker(schema);
    if (c.Check(value))
        return [];
    const out = [];
    for (const e of c.Errors(value)) {
        out.push({ path: e.path || '/', message: e.message });
        if (out.length >= max)
            break;
    }
    return out;
}
export function isValid(schema, value) {
    return checker(schema).Check(value);
}
/**
 * Validate `value` against `schema`, or throw an UbatchApiError naming the
 * first offending field as a JSON pointer (prefixed by `where`).
 */
export function validateOrThrow(schema, value, what, where = '', code = ApiCode.InvalidSpec) {
    const issues = validationIssues(schema, value);
    if (issues.length === 0)
        return value;
    const first = issues[0];
    throw new UbatchApiError(code, `${what}: ${first.message} at ${where}${first.path}`, `${where}${first.path}`, { issues });
}
/** Fill schema defaults on a copy (used for resources). */
export function withDefaults(schema, value) {
    return Value.Default(schema, structuredClone(value));
}
