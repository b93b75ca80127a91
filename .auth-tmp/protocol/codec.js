/**
 * Wire codec: msgpack (msgpackr, plain maps so any msgpack library reads it);
 * JSON is accepted from clients (a payload whose first byte is `{` or `[`).
 * Decoding always yields `unknown`: validate before use.
 */
import { Packr } from 'msgpackr';
import { DecodeError } from './errors.js';
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });
/** Hard cap on nesting depth of decoded payloads (hostile clients). */
export const MAX_DEPTH = 64;
export function encode(value) {
    return packr.pack(value);
}
export function decode(data, subject) {
    if (data.length === 0)
        throw new DecodeError('empty payload', subject);
    const first = data[0];
    let value;
    try {
        if (first === 0x7b || first === 0x5b || first === 0x20 || first === 0x0a) {
            value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
        }
        else {
            value = packr.unpack(data);
        }
    }
    catch (err) {
        throw new DecodeError(`payload is neither valid msgpack nor JSON: ${err.message}`, subject, { cause: err });
    }
    if (value === undefined)
        throw new DecodeError('payload decodes to nothing', subject);
    const shape = checkShape(value, MAX_DEPTH);
    if (shape)
        throw new DecodeError(shape, subject);
    return value;
}
/** Only plain data may come off the wire (objects, arrays, scalars, bytes, dates), nested at most `max` deep. */
function checkShape(v, max) {
    // iterative to stay safe on adversarial input
    const stack = [[v, 0]];
    while (stack.length > 0) {
        const [cur, d] = stack.pop();
        if (cur === null || typeof cur !== 'object')
            continue;
        if (cur instanceof Uint8Array || cur instanceof Date)
            continue;
        const proto = Object.getPrototypeOf(cur);
        if (!Array.isArray(cur) && proto !== Object.prototype && proto !== null)
            return `payload holds a non-data value (${cur.constructor?.name ?? 'unknown'})`;
        if (d >= max)
            return `payload nests deeper than ${max} levels`;
        const values = Array.isArray(cur) ? cur : Object.values(cur);
        for (const x of values)
            if (x !== null && typeof x === 'object')
                stack.push([x, d + 1]);
    }
    return undefined;
}
