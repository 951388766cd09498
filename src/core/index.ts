/**
 * The core layer: the only place where time and randomness enter (Clock, Rng), plus the
 * error base, logger, abort helpers and byte helpers every other layer uses.
 */
export * from './errors.ts'
export * from './clock.ts'
export * from './rng.ts'
export * from './abort.ts'
export * from './logger.ts'
export * from './bytes.ts'
export * from './atomic-file.ts'
