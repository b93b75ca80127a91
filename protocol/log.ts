/** Minimal structured logger contract (pino-compatible). Rooms below ops/ take this, never pino itself. */
export interface Log {
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  child?(bindings: Record<string, unknown>): Log;
}
export const noopLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
