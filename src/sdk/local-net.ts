/**
 * The DhtNet of the `local` transport: no network at all. The engine above it is the real one
 * (same keys, first seq, TTL policy, signed mutable records, journal); with no peer ever in
 * its routing table it stores every record here and answers every get from here.
 */
import { OhtError, type DhtNet } from '../oht/index.ts'

export function createLocalNet (): DhtNet {
  return {
    async request () {
      throw new OhtError('OHT_PEER_UNREACHABLE', 'the local transport has no network: use transport "tor" or "tcp" to reach peers')
    },
    handle () {}
  }
}
