const join = (...p) => p.join('/').replace(/\/+/g, '/');
/** Directory holding a job's private working state (attempt dirs, partials). */
export function workRoot(outputPath) {
    const p = outputPath.replace(/\/+$/, '');
    return p.endsWith('.parquet') ? `${p}.ubatch` : join(p, '.ubatch');
}
export function attemptDir(outputPath, taskId, attempt) {
    return join(workRoot(outputPath), 'tmp', `${taskId}.a${attempt}`);
}
export function hatsLeafRelPath(order, pixel) {
    return `dataset/Norder=${order}/Dir=${Math.floor(pixel / 10000) * 10000}/Npix=${pixel}.parquet`;
}
/**
 * Kinds whose map tasks (when the job has no reduce) each write one `part.parquet`
 * for their input partition: together they form a HATS catalog of the same
 * partitions, so the leaf goes to the HATS path and the coordinator writes the
 * catalog metadata when the job closes.
 */
export const HATS_OUTPUT_KINDS = new Set(['catalog.sql', 'periodogram', 'crossmatch']);
/** Whether a job of `kind` writes a HATS catalog (partition leaves plus metadata) at its output path. */
export function writesHatsCatalog(kind, hasReduce) {
    return !hasReduce && HATS_OUTPUT_KINDS.has(kind);
}
/** Final path of a file an attempt wrote at `rel` (relative to its attempt dir). */
export function committedPath(spec, hasReduce, task, rel) {
    const out = spec.output.path.replace(/\/+$/, '');
    if (task.stage === 'reduce') {
        if (rel === 'result.parquet')
            return out.endsWith('.parquet') ? out : join(out, 'result.parquet');
        return join(out.endsWith('.parquet') ? `${out}.files` : out, rel);
    }
    if (hasReduce)
        return join(workRoot(out), 'partials', `${task.index}`, rel);
    if (HATS_OUTPUT_KINDS.has(task.kind) && rel === 'part.parquet') {
        const p = task.partition;
        return p && p.order >= 0 ? join(out, hatsLeafRelPath(p.order, p.pixel)) : join(out, `part-${task.index}.parquet`);
    }
    return join(out, `task-${task.index}`, rel);
}
