/**
 * Decoders with bugs planted on purpose, for the harness's own tests: each fails in one way
 * the harness must catch (a crash, a failed invariant, a slow input, a hang, an unbounded
 * allocation) on inputs the mutator reaches within a few hundred tries.
 */
import type { FuzzTarget } from '../../fuzz/harness.ts'

export class PlantedError extends Error { readonly code = 'PLANTED_REJECTED' }

const rejectOdd = (input: Uint8Array): number => {
  if (input.byteLength === 0 || (input[0] & 1) === 1) throw new PlantedError('odd')
  return input[0]
}

function busyWait (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* burn */ }
}

const seeds = (): Uint8Array[] => [Uint8Array.of(0x10, 0x20), Uint8Array.of(0x30)]
const rejects = (err: unknown): boolean => err instanceof PlantedError

export const FUZZ_TARGETS: FuzzTarget[] = [
  { name: 'planted.clean', seeds, rejects, decode: rejectOdd },
  { name: 'planted.crash', seeds, rejects, decode: (input) => { if (input.includes(0x42)) throw new TypeError('planted crash'); return rejectOdd(input) } },
  { name: 'planted.check', seeds, rejects, decode: rejectOdd, check: (v) => { if (v === 0xfe) throw new Error('planted invariant') } },
  { name: 'planted.slow', seeds, rejects, decode: (input) => { if (input[0] === 0xfe) busyWait(300); return rejectOdd(input) } },
  { name: 'planted.hang', seeds, rejects, decode: (input) => { if (input[0] === 0xfe) for (;;) { /* hang */ } return rejectOdd(input) } },
  {
    name: 'planted.alloc',
    seeds,
    rejects,
    decode: (input) => {
      if (input[0] === 0xfe) { const keep: number[][] = []; for (;;) keep.push(new Array<number>(1 << 20).fill(input.byteLength)) }
      return rejectOdd(input)
    }
  }
]
