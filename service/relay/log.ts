import { hostname } from 'node:os';

/** pino's levels and line shape (what the service writes), so one log pipeline reads both. */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LevelName = keyof typeof LEVELS;

export interface JsonLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  fatal(obj: object, msg: string): void;
}

/** JSON lines on `write` (stdout by default) at or above `level`. */
export function jsonLogger(level: LevelName, base: Record<string, unknown> = {}, write: (line: string) => void = (l) => process.stdout.write(l)): JsonLogger {
  const min = LEVELS[level];
  const host = hostname();
  const at = (n: number) => (obj: object, msg: string): void => {
    if (n < min) return;
    write(`${JSON.stringify({ level: n, time: Date.now(), pid: process.pid, hostname: host, ...base, ...obj, msg })}\n`);
  };
  return { info: at(30), warn: at(40), error: at(50), fatal: at(60) };
}
