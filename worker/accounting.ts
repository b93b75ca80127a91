/**
 * CPU accounting for tasks that run inside the worker process (DuckDB, noop):
 * the process's CPU time is sliced between the tasks running at each moment.
 * Child-process executors report their own measured usage instead.
 * start/stop cost one getrusage() each; resident memory is sampled by tick().
 */
export class CpuSlicer {
  private last = process.cpuUsage();
  private readonly shares = new Map<string, number>();
  private peakRss = process.memoryUsage.rss();

  private slice(): void {
    const now = process.cpuUsage();
    const deltaS = (now.user - this.last.user + now.system - this.last.system) / 1e6;
    this.last = now;
    if (this.shares.size === 0 || deltaS <= 0) return;
    const each = deltaS / this.shares.size;
    for (const [k, v] of this.shares) this.shares.set(k, v + each);
  }
  /** periodic: attribute CPU used so far and sample resident memory */
  tick(): void {
    this.slice();
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
  }
  start(id: string): void {
    if (this.shares.size > 0) this.slice();
    else this.last = process.cpuUsage();
    this.shares.set(id, 0);
  }
  /** stop accounting a task; returns its CPU seconds */
  stop(id: string): { cpuSeconds: number; peakRssBytes: number } {
    this.slice();
    const cpu = this.shares.get(id) ?? 0;
    this.shares.delete(id);
    return { cpuSeconds: cpu, peakRssBytes: this.peakRss };
  }
}
