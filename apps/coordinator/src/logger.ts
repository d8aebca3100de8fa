import pino from 'pino';
import type { EventLogger } from '@fedlora/federation';

/** Log levels accepted on the command line and in configs. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * pino JSON logs on stderr, one event per line with an `event` field (stdout stays free for
 * `--json` output).
 */
export function createEventLogger(level: LogLevel = 'info', bindings: Record<string, unknown> = {}): EventLogger & { pino: pino.Logger } {
  const log = pino({ level, base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
  return {
    pino: log,
    info: (f) => log.info(f),
    warn: (f) => log.warn(f),
    error: (f) => log.error(f),
  };
}
