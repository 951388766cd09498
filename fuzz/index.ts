/**
 * Every decoder the stack has, as fuzz targets, and the runners. The harness lives here, at
 * the top level, rather than in src/ (it is no part of what the library ships, and its
 * targets import every layer, which no layer of src/ may) or in test/ (bench/ runs it too and
 * never imports from test/).
 *
 *   fuzz/harness.ts         generation, mutation, one target in this thread (runTarget)
 *   fuzz/worker-runner.ts   targets in a worker thread watched for hangs (fuzzInWorker)
 *   fuzz/targets/<layer>.ts the decoders of one layer
 *
 * Adding a decoder (e.g. a wormhole envelope) is a few lines in fuzz/targets/<layer>.ts:
 *
 * @example
 * export const wormholeTargets: FuzzTarget[] = [{
 *   name: 'wormhole.envelope',
 *   seeds: () => [encodeEnvelope(sample)],            // valid inputs, one per message type
 *   decode: (input) => decodeEnvelope(input),
 *   rejects: (err) => err instanceof WormholeError,   // the layer's typed error
 *   check: (env, input) => { ... }                    // optional invariant, e.g. a round trip
 * }]
 * // and here: export const FUZZ_TARGETS = [..., ...wormholeTargets]
 *
 * test/fuzz/ then runs it a few thousand inputs in CI, and bench/fuzz.ts a million or more.
 */
import type { FuzzTarget } from './harness.ts'
import { netTargets } from './targets/net.ts'
import { ohtTargets } from './targets/oht.ts'
import { oniTargets } from './targets/oni.ts'
import { torTargets } from './targets/tor.ts'

export * from './harness.ts'

export const FUZZ_TARGETS: readonly FuzzTarget[] = [...ohtTargets, ...torTargets, ...oniTargets, ...netTargets]
