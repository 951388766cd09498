/**
 * What a command may touch of the outside world, passed in so tests can run commands in
 * process: output streams, stdin, the environment, a clock and the interrupt signal.
 * Results go to stdout; progress and errors go to stderr, so `oht get k > file` stays clean.
 */
import type { Clock } from '../core/index.ts'
import { CliError } from './errors.ts'

export interface OutStream {
  write(chunk: string | Uint8Array): unknown
  isTTY?: boolean
}

export interface CliIo {
  stdout: OutStream
  stderr: OutStream
  /** Reads stdin to the end; rejects with CLI_VALUE_TOO_LARGE beyond `maxBytes`. */
  readStdin(maxBytes: number): Promise<Uint8Array>
  /** stdin as a stream, for commands that read it line by line (oht name tor-plugin). @default process.stdin */
  stdin?: NodeJS.ReadableStream
  env: Record<string, string | undefined>
  clock: Clock
  /** Aborts on SIGINT/SIGTERM. */
  signal: AbortSignal
}

/** Reads a Node readable to the end, refusing more than `maxBytes` (never buffers past it). */
export async function readAll (stream: AsyncIterable<Buffer | string>, maxBytes: number, what = 'stdin'): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    total += buf.byteLength
    if (total > maxBytes) {
      for (const c of chunks) c.fill(0)
      throw new CliError('CLI_VALUE_TOO_LARGE', `${what} holds more than ${maxBytes} bytes, the largest value a record can hold`)
    }
    chunks.push(buf)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

/** Prints `value` as JSON or as the text `render` makes of it. */
export function emit (io: CliIo, json: boolean, value: unknown, render: () => string): void {
  if (json) io.stdout.write(JSON.stringify(value, null, 2) + '\n')
  else {
    const text = render()
    if (text !== '') io.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }
}

/**
 * Shows "<label> … 3.2 s" on stderr while `work` runs longer than `delayMs`, when stderr is a
 * terminal (never in pipes or under --json), and clears it afterwards.
 */
export async function withProgress<T> (io: CliIo, label: string, work: Promise<T>, delayMs = 400): Promise<T> {
  if (io.stderr.isTTY !== true) return await work
  const start = io.clock.monotonic()
  let shown = false
  const timer = io.clock.setInterval(() => {
    shown = true
    io.stderr.write(`\r${label} … ${((io.clock.monotonic() - start) / 1000).toFixed(1)} s `)
  }, delayMs)
  try {
    return await work
  } finally {
    timer.cancel()
    if (shown) io.stderr.write('\r\x1b[K')
  }
}
