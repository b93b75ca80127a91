/**
 * The `ubatch` NATS service (@nats-io/services): versioned request subjects
 * `ubatch.v1.<verb>.<user>`. The user token comes from the subject, which NATS
 * permissions pin to the authenticated connection (see ops/auth). Every reply
 * is `{ ok: true, data }` or `{ ok: false, error: { code, message, where } }`.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import { API_PREFIX, ApiCode, decode, DecodeError, encode, isSafeToken, SERVICE_NAME, SERVICE_VERSION, UbatchApiError, Verb, type Log } from '../protocol/index.js';
import { readLedger } from '../ledger/index.js';
import type { JobManager } from './manager.js';
import { LogsReader, provenanceRequest } from './provenance-logs.js';
import type { CoordinatorMetrics } from './types.js';

export interface ServiceOptions {
  /** users allowed to see and act on every job and to change quotas and shares */
  operators?: string[];
  /** largest request accepted @default 1 MiB */
  maxRequestBytes?: number;
}

export async function startApiService(nc: NatsConnection, mgr: JobManager, log: Log, metrics: CoordinatorMetrics, o: ServiceOptions = {}): Promise<Service> {
  // @nats-io/services 3.0.0-25 pins an older nats-core; the connection object is the same at run time
  const svc = await new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({ name: SERVICE_NAME, version: SERVICE_VERSION, description: 'ubatch job API', queue: 'ubatch' });
  const operators = new Set(o.operators ?? []);
  const maxBytes = o.maxRequestBytes ?? 1024 * 1024;
  const logs = new LogsReader(nc, mgr);
  const handlers: Record<string, (user: string, body: unknown, op: boolean) => unknown> = {
    [Verb.jobsSubmit]: (u, b) => mgr.submit(u, b),
    [Verb.jobsGet]: (u, b, op) => mgr.get(u, b, op),
    [Verb.jobsList]: (u, b, op) => mgr.list(u, b, op),
    [Verb.jobsCancel]: (u, b, op) => mgr.cancel(u, b, op),
    [Verb.resultsGet]: (u, b, op) => mgr.results(u, b, op),
    [Verb.jobsRerun]: (u, b, op) => mgr.rerun(u, b, op),
    [Verb.report]: (u, b, op) => mgr.report(u, b, op, () => readLedger(nc)),
    [Verb.quotaGet]: (u, b, op) => mgr.quotaGet(u, b, op),
    [Verb.quotaSet]: (u, b, op) => mgr.quotaSet(u, b, op),
    [Verb.sharesSet]: (u, b, op) => mgr.sharesSet(u, b, op),
    // users have no JetStream access under auth: the coordinator reads the ledger and the artifact store for them
    [Verb.provenance]: (u, b, op) => provenanceRequest(nc, u, b, op, (jobId) => mgr.sharedOwner(u, jobId)),
    [Verb.logs]: (u, b, op) => logs.request(u, b, op),
  };
  for (const [verb, fn] of Object.entries(handlers)) {
    svc.addEndpoint(verb.replace('.', '_'), {
      subject: `${API_PREFIX}.${verb}.*`,
      handler: (err, msg) => {
        if (err) {
          log.error({ err, verb }, 'service endpoint error');
          return;
        }
        void handle(msg, verb, fn);
      },
    });
  }

  async function handle(msg: ServiceMsg, verb: string, fn: (user: string, body: unknown, op: boolean) => unknown): Promise<void> {
    const user = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    let reply: unknown;
    let code = 'ok';
    try {
      if (!isSafeToken(user)) throw new UbatchApiError(ApiCode.BadRequest, `invalid user token in subject ${msg.subject}`);
      if (msg.data.length > maxBytes) throw new UbatchApiError(ApiCode.TooLarge, `request is ${msg.data.length} bytes; the limit is ${maxBytes}`);
      let body: unknown;
      try {
        body = msg.data.length === 0 ? {} : decode(msg.data, msg.subject);
      } catch (e) {
        throw new UbatchApiError(ApiCode.BadEncoding, (e as DecodeError).message);
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new UbatchApiError(ApiCode.BadRequest, 'request body must be an object');
      reply = { ok: true, data: await fn(user, body, operators.has(user)) };
    } catch (e) {
      if (e instanceof UbatchApiError) {
        code = e.code;
        reply = { ok: false, error: e.toBody() };
      } else if (/jetstream is not enabled|timeout|no responders|connection (closed|draining)|disconnect/i.test((e as Error)?.message ?? '')) {
        // the bus is briefly unavailable (server restart, config reload): the client may retry
        code = ApiCode.Unavailable;
        log.warn({ err: e, verb, user }, 'request failed while the bus was unavailable');
        reply = { ok: false, error: { code: ApiCode.Unavailable, message: `the service could not reach JetStream; retry: ${(e as Error).message}` } };
      } else {
        code = ApiCode.Internal;
        log.error({ err: e, verb, user }, 'internal error handling a request');
        reply = { ok: false, error: { code: ApiCode.Internal, message: `internal error: ${(e as Error)?.message ?? String(e)}` } };
      }
    }
    metrics.api(verb, code);
    try {
      msg.respond(encode(reply));
    } catch (e) {
      metrics.swallowed('respond');
      log.warn({ err: e, verb }, 'could not send a reply');
    }
  }
  return svc;
}
