import { jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { Buckets, ObjectStores, Streams } from './subjects.js';
const NS_PER_MS = 1_000_000;
const DAY_MS = 86_400_000;
export function streamConfigs(o = {}) {
    const replicas = o.replicas ?? 1;
    const max_msg_size = o.maxMsgBytes ?? 4 * 1024 * 1024;
    return [
        {
            name: Streams.tasks,
            subjects: ['ub.tasks.>'],
            retention: RetentionPolicy.Workqueue,
            storage: StorageType.File,
            num_replicas: replicas,
            duplicate_window: (o.taskDuplicateWindowMs ?? 10 * 60_000) * NS_PER_MS,
            max_msg_size,
        },
        {
            name: Streams.results,
            subjects: ['ub.results.>'],
            retention: RetentionPolicy.Workqueue,
            storage: StorageType.File,
            num_replicas: replicas,
            duplicate_window: 10 * 60_000 * NS_PER_MS,
            max_msg_size,
        },
        {
            name: Streams.events,
            subjects: ['ub.events.>'],
            retention: RetentionPolicy.Limits,
            storage: StorageType.File,
            num_replicas: replicas,
            max_age: (o.eventsMaxAgeMs ?? 7 * DAY_MS) * NS_PER_MS,
            discard: DiscardPolicy.Old,
            max_msg_size: 64 * 1024,
        },
        {
            name: Streams.ledger,
            subjects: ['ub.ledger.>'],
            retention: RetentionPolicy.Limits,
            storage: StorageType.File,
            num_replicas: replicas,
            deny_delete: true,
            deny_purge: true,
            allow_rollup_hdrs: false,
            duplicate_window: (o.ledgerDuplicateWindowMs ?? DAY_MS) * NS_PER_MS,
            max_msg_size,
        },
    ];
}
/** Create or update every stream; safe to call from every daemon at start. */
export async function ensureStreams(jsm, o = {}) {
    for (const cfg of streamConfigs(o)) {
        const name = cfg.name;
        try {
            const info = await jsm.streams.info(name);
            const cur = info.config;
            const drift = Object.keys(cfg).some((k) => k !== 'num_replicas' && JSON.stringify(cur[k]) !== JSON.stringify(cfg[k]));
            if (drift)
                await jsm.streams.update(name, { ...cur, ...cfg });
        }
        catch (err) {
            if (!isNotFound(err))
                throw err;
            try {
                await jsm.streams.add({ ...cfg, name });
            }
            catch (addErr) {
                // another daemon created it in between: fine if it now exists
                await jsm.streams.info(name).catch(() => {
                    throw addErr;
                });
            }
        }
    }
}
function isNotFound(err) {
    const e = err;
    return e?.api_error?.err_code === 10059 || /stream not found/i.test(e?.message ?? '');
}
export async function ensureTopology(nc, o = {}) {
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, o);
    const replicas = o.replicas ?? 1;
    const kvm = new Kvm(nc);
    const [jobs, workers, shares, quotas] = await Promise.all([
        kvm.create(Buckets.jobs, { replicas, history: 1, storage: StorageType.File, maxValueSize: 2 * 1024 * 1024 }),
        kvm.create(Buckets.workers, { replicas, history: 1, ttl: o.workerTtlMs ?? 15_000, storage: StorageType.File }),
        kvm.create(Buckets.shares, { replicas, history: 1, storage: StorageType.File }),
        kvm.create(Buckets.quotas, { replicas, history: 1, storage: StorageType.File }),
    ]);
    const artifacts = await new Objm(nc).create(ObjectStores.artifacts, { replicas, storage: StorageType.File });
    return { jsm, jobs, workers, shares, quotas, artifacts };
}
