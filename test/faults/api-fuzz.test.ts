/**
 * Fault matrix #14: fuzz the API with 10,000 random and malformed requests
 * (bad msgpack/JSON, huge fields, wrong types, deep nesting): the service
 * never crashes and answers each with a structured reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, Verb } from '../../protocol/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { NatsCluster } from '../../ops/nats-server.js';
import { mulberry32 as rng } from '../../astro/random.js';

// deterministic PRNG so a failure can be replayed

function randomValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 6 ? 6 : 9));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return Math.floor((r() - 0.5) * 2 ** (r() * 60));
    case 3: return r() * 1e300 * (r() < 0.5 ? -1 : 1);
    case 4: return 'x'.repeat(Math.floor(r() ** 4 * 50_000));
    case 5: return ['noop', 'catalog.sql', 'command', '../../etc', 'a.b', '*', '>', ''][Math.floor(r() * 8)];
    case 6: return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['spec', 'kind', 'params', 'input', 'output', 'jobId', 'tasks', 'select', 'cone', 'resources', '__proto__', 'constructor', 'limit', 'state', 'scope', 'name', 'limits', 'share', 'group', 'user'];
      for (let i = Math.floor(r() * 5); i > 0; i--) o[keys[Math.floor(r() * keys.length)]!] = randomValue(r, depth + 1);
      return o;
    }
  }
}

function randomPayload(r: () => number): Uint8Array {
  const mode = Math.floor(r() * 7);
  if (mode === 0) return Uint8Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256));
  if (mode === 1) return new TextEncoder().encode(JSON.stringify(randomValue(r, 0)).slice(0, Math.floor(r() * 200)));
  if (mode === 2) {
    let deep: unknown = 1;
    for (let i = 0, n = Math.floor(r() * 3000); i < n; i++) deep = r() < 0.5 ? [deep] : { a: deep };
    return new TextEncoder().encode(JSON.stringify(deep));
  }
  if (mode === 3) return encode({ spec: randomValue(r, 0) });
  if (mode === 4) return new TextEncoder().encode(JSON.stringify({ spec: { kind: 'noop', params: randomValue(r, 0), resources: randomValue(r, 0) } }));
  if (mode === 5) return new Uint8Array(0);
  return encode(randomValue(r, 0));
}

for (const mode of [{ name: 'one node', cluster: false }, { name: '3-node cluster, R3 streams', cluster: true }]) describe(`API fuzz (${mode.name})`, () => {
  let s: TestStack;
  let cluster: NatsCluster | undefined;
  beforeAll(async () => {
    if (mode.cluster) cluster = await NatsCluster.start(3);
    s = await startStack({ workers: 1, ...(cluster ? { servers: cluster.urls, replicas: 3 } : {}) });
  });
  afterAll(async () => {
    await s?.stop();
    await cluster?.cleanup();
  });

  it('answers 10,000 malformed requests with structured replies and keeps serving', async () => {
    const nc = await s.connect();
    const r = rng(20261125);
    const verbs = Object.values(Verb);
    const users = ['alice', 'bob', 'ops'];
    const codes = new Map<string, number>();
    let i = 0;
    const worker = async () => {
      while (i < 10_000) {
        const n = i++;
        const verb = verbs[n % verbs.length]!;
        const subject = `ubatch.v1.${verb}.${users[n % users.length]}`;
        let reply;
        try {
          reply = await nc.request(subject, randomPayload(r), { timeout: 20_000 });
        } catch (err) {
          throw new Error(`request ${n} on ${subject} got no reply: ${(err as Error).message}`);
        }
        const v = decode(reply.data) as { ok: boolean; error?: { code: string; message: string } };
        expect(typeof v.ok).toBe('boolean');
        if (!v.ok) {
          expect(typeof v.error!.code).toBe('string');
          expect(v.error!.message.length).toBeGreaterThan(0);
          codes.set(v.error!.code, (codes.get(v.error!.code) ?? 0) + 1);
        } else codes.set('ok', (codes.get('ok') ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    expect(codes.get('internal') ?? 0).toBe(0);
    expect((codes.get('bad_encoding') ?? 0) + (codes.get('bad_request') ?? 0) + (codes.get('invalid_spec') ?? 0)).toBeGreaterThan(3000);
    // still serving real work
    const c = await s.client('alice');
    const j = await c.submit({ kind: 'noop', params: { tasks: 10 } });
    expect((await c.wait(j.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
  }, 240_000);
});
