/**
 * Structured JSON logs, one object per line on stderr: `{"time","level","msg",...fields}`.
 * Fields are plain data the caller chooses; never pass keys, tokens, cookies or record values.
 */
import type { Clock } from '../core/index.ts'
import type { LogLevel } from './config.ts'

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface JsonLog {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

export function createJsonLog (write: (line: string) => void, clock: Clock, level: LogLevel = 'info'): JsonLog {
  const at = (lvl: LogLevel) => (msg: string, fields: Record<string, unknown> = {}): void => {
    if (RANK[lvl] < RANK[level]) return
    const entry: Record<string, unknown> = { time: new Date(clock.now()).toISOString(), level: lvl, msg }
    for (const [k, v] of Object.entries(fields)) {
      entry[k] = v instanceof Error ? { name: v.name, code: (v as { code?: unknown }).code, message: v.message } : v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v
    }
    let line: string
    try { line = JSON.stringify(entry) } catch { line = JSON.stringify({ time: entry.time, level: lvl, msg }) }
    write(line)
  }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}
