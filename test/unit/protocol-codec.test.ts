import { describe, expect, it } from 'vitest';
import { decode, DecodeError, encode, MAX_DEPTH } from '../../protocol/index.js';

describe('codec', () => {
  it('round-trips msgpack as plain objects', () => {
    const v = { a: 1, b: 'x', c: [1, 2, { d: true }], e: null, f: 1.5, big: 2 ** 40 };
    expect(decode(encode(v))).toEqual(v);
  });
  it('accepts JSON from clients', () => {
    expect(decode(new TextEncoder().encode('{"spec":{"kind":"noop"}}'))).toEqual({ spec: { kind: 'noop' } });
    expect(decode(new TextEncoder().encode(' [1,2]'))).toEqual([1, 2]);
  });
  it('rejects garbage, empty payloads and deep nesting with a DecodeError', () => {
    expect(() => decode(new Uint8Array([]))).toThrow(DecodeError);
    expect(() => decode(new TextEncoder().encode('{"a":'))).toThrow(/neither valid msgpack nor JSON/);
    expect(() => decode(new Uint8Array([0xc1]))).toThrow(DecodeError);
    expect(() => decode(new Uint8Array([0x82, 0xa1]))).toThrow(DecodeError);
    let deep: unknown = 1;
    for (let i = 0; i < MAX_DEPTH + 5; i++) deep = [deep];
    expect(() => decode(new TextEncoder().encode(JSON.stringify(deep)))).toThrow(/deeper/);
  });
});
