import { decode, encode } from './codec.js';
import { UbatchApiError, ApiCode } from './errors.js';
import { TERMINAL_STATES, } from './schemas.js';
import { apiSubject, eventSubject, isSafeToken, Verb } from './subjects.js';
export class UbatchClient {
    nc;
    user;
    timeoutMs;
    constructor(nc, opts) {
        this.nc = nc;
        if (!isSafeToken(opts.user))
            throw new UbatchApiError(ApiCode.BadRequest, `invalid user name ${JSON.stringify(opts.user)}`);
        this.user = opts.user;
        this.timeoutMs = opts.timeoutMs ?? 10_000;
    }
    async call(verb, body) {
        let reply;
        try {
            reply = await this.nc.request(apiSubject(verb, this.user), encode(body), { timeout: this.timeoutMs });
        }
        catch (err) {
            throw new UbatchApiError(ApiCode.Unavailable, `no answer from the ubatch service for ${verb}: ${err.message}`, undefined, undefined, { cause: err });
        }
        const r = decode(reply.data, reply.subject);
        if (r && typeof r === 'object' && 'ok' in r) {
            if (r.ok)
                return r.data;
            throw new UbatchApiError(r.error.code, r.error.message, r.error.where, r.error.details);
        }
        throw new UbatchApiError(ApiCode.Internal, `malformed reply to ${verb}`);
    }
    submit(spec) {
        return this.call(Verb.jobsSubmit, { spec });
    }
    dryRun(spec) {
        return this.call(Verb.jobsSubmit, { spec, dryRun: true });
    }
    get(jobId) {
        return this.call(Verb.jobsGet, { jobId });
    }
    list(req = {}) {
        return this.call(Verb.jobsList, req);
    }
    cancel(jobId) {
        return this.call(Verb.jobsCancel, { jobId });
    }
    rerun(jobId) {
        return this.call(Verb.jobsRerun, { jobId });
    }
    /** accounting report (a replay of the ledger): your own use, or any group/user for operators */
    report(req = {}) {
        return this.call(Verb.report, req);
    }
    results(jobId) {
        return this.call(Verb.resultsGet, { jobId });
    }
    quotaGet(user) {
        return this.call(Verb.quotaGet, user ? { user } : {});
    }
    /** operators only; a negative limit removes it */
    quotaSet(scope, name, limits) {
        return this.call(Verb.quotaSet, { scope, name, limits });
    }
    /** operators only: a group's share, or a user's share within a group (which also makes the user a member) */
    sharesSet(group, share, user) {
        return this.call(Verb.sharesSet, { group, share, ...(user ? { user } : {}) });
    }
    /**
     * Follow a job's events until it reaches a terminal state. Subscribes before
     * reading the current state, so no transition is missed.
     */
    async *watch(jobId, opts = {}) {
        const sub = this.nc.subscribe(eventSubject(this.user, jobId));
        const onAbort = () => sub.unsubscribe();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        try {
            const info = await this.get(jobId);
            yield info;
            if (TERMINAL_STATES.has(info.state))
                return;
            for await (const m of sub) {
                const ev = decode(m.data, m.subject);
                yield ev;
                if (TERMINAL_STATES.has(ev.state))
                    return;
            }
        }
        finally {
            opts.signal?.removeEventListener('abort', onAbort);
            sub.unsubscribe();
        }
    }
    /**
     * Resolve with the final JobInfo. Events wake the loop early; a `get` every
     * second backs them up; while the service is briefly unreachable (a
     * coordinator restart, a server restart) it keeps trying until the deadline.
     */
    async wait(jobId, opts = {}) {
        const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
        const sub = this.nc.subscribe(eventSubject(this.user, jobId));
        let wake;
        void (async () => {
            for await (const m of sub) {
                try {
                    const ev = decode(m.data, m.subject);
                    opts.onEvent?.(ev);
                }
                catch {
                    /* a malformed event only costs us an early wake-up */
                }
                wake?.();
            }
        })();
        let last;
        try {
            while (Date.now() < deadline) {
                try {
                    last = await this.get(jobId);
                    opts.onEvent?.(last);
                    if (TERMINAL_STATES.has(last.state))
                        return last;
                }
                catch (err) {
                    if (!(err instanceof UbatchApiError) || err.code !== ApiCode.Unavailable)
                        throw err;
                }
                await new Promise((resolve) => {
                    const t = setTimeout(resolve, 1000);
                    wake = () => {
                        clearTimeout(t);
                        resolve();
                    };
                });
                wake = undefined;
            }
        }
        finally {
            sub.unsubscribe();
        }
        throw new UbatchApiError(ApiCode.Unavailable, `timed out waiting for job ${jobId} (last state ${last?.state ?? 'unknown'})`);
    }
}
