/**
 * Reusable typed-array memory for repeated index builds and queries (the
 * partition-aware cross-match builds one index per aligned unit). Every
 * ArrayBuffer a build allocates is external memory to V8, and external
 * memory growth triggers full (mark-compact) collections: reusing the
 * temporary arrays of one build in the next keeps the collector out of the
 * way. A view handed out under a name is valid until the next request for
 * that name; synchronous code only (no await between taking and using it).
 */
export class Scratch {
  private readonly buffers = new Map<string, ArrayBuffer>();

  private buffer(name: string, bytes: number): ArrayBuffer {
    let b = this.buffers.get(name);
    if (b === undefined || b.byteLength < bytes) {
      // grow geometrically so that units of slowly rising size do not reallocate each time
      b = new ArrayBuffer(Math.max(bytes, Math.ceil((b?.byteLength ?? 0) * 1.5)));
      this.buffers.set(name, b);
    }
    return b;
  }

  f64(name: string, n: number): Float64Array {
    return new Float64Array(this.buffer(name, 8 * n), 0, n);
  }

  u32(name: string, n: number): Uint32Array {
    return new Uint32Array(this.buffer(name, 4 * n), 0, n);
  }

  i32(name: string, n: number): Int32Array {
    return new Int32Array(this.buffer(name, 4 * n), 0, n);
  }

  i64(name: string, n: number): BigInt64Array {
    return new BigInt64Array(this.buffer(name, 8 * n), 0, n);
  }

  /** Schemas (DESCRIBE results) of files already looked at, by path: a task's partitions share them. */
  readonly schemas = new Map<string, { names: string[]; types: Map<string, string> }>();

  /** Bytes held (for tests and diagnostics). */
  get bytes(): number {
    let s = 0;
    for (const b of this.buffers.values()) s += b.byteLength;
    return s;
  }
}
