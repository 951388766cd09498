/**
 * The shared transport behaviour suite against TCP on loopback, @libp2p/memory, and onion3
 * through a SOCKS stand-in (real tor: test/integration/net-onion-transport.test.ts).
 */
import { randomBytes } from 'node:crypto'
import { createNetNode, torConnector, libp2pKeyFromSeed } from '../../src/net/index.ts'
import { onionAddressFromPublicKey } from '../../src/crypto/index.ts'
import { startFakeTor } from '../helpers/net-fake-tor.ts'
import { transportSuite } from '../helpers/net-transport-suite.ts'

transportSuite('tcp', async () => ({
  protocol: 'tcp',
  listener: async () => await createNetNode({ seed: randomBytes(32) }),
  dialer: async () => await createNetNode({ seed: randomBytes(32), tcp: { listen: [] } }),
  close: async () => {}
}))

let memoryIds = 0
transportSuite('memory', async () => ({
  protocol: 'memory',
  listener: async () => await createNetNode({ seed: randomBytes(32), tcp: false, memory: { listen: [`/memory/net-suite-${process.pid}-${memoryIds++}`] } }),
  dialer: async () => await createNetNode({ seed: randomBytes(32), tcp: false, memory: { listen: [] } }),
  close: async () => {}
}))

transportSuite('onion3 (SOCKS stand-in)', async () => {
  const tor = await startFakeTor()
  const connect = torConnector({ socksPort: tor.socksPort, retries: 0 })
  return {
    protocol: 'onion3',
    listener: async () => {
      const seed = randomBytes(32)
      const onion = onionAddressFromPublicKey(libp2pKeyFromSeed(seed).publicKey.raw)
      return await createNetNode({ seed, onionOnly: true, onion: { connect, publish: tor.publisher(onion) } })
    },
    dialer: async () => await createNetNode({ seed: randomBytes(32), onionOnly: true, onion: { connect } }),
    close: async () => { await tor.stop() }
  }
})

