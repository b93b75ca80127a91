/** Job kinds and the worker capability each needs. */
export const KIND_CAPABILITY = {
    noop: 'cpu',
    'catalog.sql': 'cpu',
    command: 'container',
    periodogram: 'cpu',
    crossmatch: 'cpu',
    'image.background': 'image',
    'image.stamps': 'image',
    'image.inject': 'image',
    onnx: 'gpu',
};
export const DEFAULT_CAPABILITIES = ['cpu', 'container', 'image'];
/** Whether a job has a reduce stage (released when every map task is accepted). */
export function jobHasReduce(spec) {
    return spec.kind === 'catalog.sql' && typeof spec.params?.reduce === 'string' && spec.params.reduce.trim() !== '';
}
