/**
 * Text that peers and files hand to the lower layers: the routing-table file
 * (src/net/table-file.ts), /onion3 multiaddrs from peers' address lists (src/net/onion-addr.ts),
 * onion addresses (src/crypto/onion.ts), and the daemon's config file (src/daemon/config.ts,
 * TOML and JSON). Inputs are bytes, decoded as UTF-8 (invalid sequences become U+FFFD) as the
 * callers do.
 */
import { CryptoError } from '../../src/crypto/errors.ts'
import { generateIdentity } from '../../src/crypto/index.ts'
import { parseOnionAddress } from '../../src/crypto/onion.ts'
import { parseConfigText } from '../../src/daemon/config.ts'
import { DaemonError } from '../../src/daemon/errors.ts'
import { NetError } from '../../src/net/errors.ts'
import { peerIdFromEd25519 } from '../../src/net/identity.ts'
import { parseOnion3Multiaddr } from '../../src/net/onion-addr.ts'
import { parseTable } from '../../src/net/table-file.ts'
import { toHex } from '../../src/core/index.ts'
import type { FuzzTarget } from '../harness.ts'

const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

/** One fixed identity for the seeds (generated once per process: seeds need not be stable). */
let sample: { onion: string, peerId: string, publicKeyHex: string } | undefined
function identity (): { onion: string, peerId: string, publicKeyHex: string } {
  if (sample === undefined) {
    const id = generateIdentity()
    sample = { onion: id.onion, peerId: peerIdFromEd25519(id.publicKey).toString(), publicKeyHex: toHex(id.publicKey) }
    id.destroy()
  }
  return sample
}

const CONFIG_TOML = `[identity]
key_file = "identity.key"

[tor]
mode = "attach"
control = "127.0.0.1:9051"
control_cookie_file = "/run/tor/control.authcookie"
socks_port = 9050

[tor.torrc]
Schedulers = "Vanilla"
ExitPolicy = ["accept 127.0.0.1:80", "reject *:*"]

[node]
transport = "tor"
onion_port = 4001
bootstrap = ["/onion3/pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd:4001"]

[api]
socket = "run/api.sock"

[oni]
enabled = true
socks_port = 9150
`

export const netTargets: FuzzTarget[] = [
  {
    name: 'net.table-file',
    seeds: () => {
      const { publicKeyHex } = identity()
      return [
        enc(JSON.stringify({ version: 1, savedAt: 1_700_000_000_000, contacts: [{ publicKey: publicKeyHex, addrs: ['/ip4/127.0.0.1/tcp/4001'] }, { publicKey: 'ab'.repeat(32), addrs: ['/onion3/x:1', 7] }] })),
        enc('{"version":1,"contacts":[]}')
      ]
    },
    decode: (input) => parseTable(utf8(input)),
    rejects: (err) => err instanceof NetError,
    maxInputBytes: 8192
  },
  {
    name: 'net.onion3-multiaddr',
    seeds: () => {
      const { onion, peerId } = identity()
      return [enc(`/onion3/${onion}:4001`), enc(`/onion3/${onion}:443/p2p/${peerId}`)]
    },
    decode: (input) => parseOnion3Multiaddr(utf8(input)),
    rejects: (err) => err instanceof NetError,
    maxInputBytes: 1024
  },
  {
    name: 'crypto.onion-address',
    seeds: () => [enc(identity().onion + '.onion'), enc(`www.${identity().onion}.ONION`), enc(identity().onion)],
    decode: (input) => parseOnionAddress(utf8(input)),
    rejects: (err) => err instanceof CryptoError,
    maxInputBytes: 256
  },
  {
    name: 'daemon.config-toml',
    seeds: () => [enc(CONFIG_TOML), enc('[node]\ntransport = "local"\n'), enc('[log]\nlevel = "debug"\n')],
    decode: (input) => parseConfigText(utf8(input), '/etc/oht/oht.toml', '/state'),
    rejects: (err) => err instanceof DaemonError,
    maxInputBytes: 4096
  },
  {
    name: 'daemon.config-json',
    seeds: () => [enc(JSON.stringify({ tor: { mode: 'attach', control: 'unix:/run/tor/control', allow_null_auth: false }, node: { transport: 'tor', onion_port: 4001 }, oni: { enabled: true } })), enc('{"node":{"transport":"tcp","listen":["/ip4/127.0.0.1/tcp/0"]}}')],
    decode: (input) => parseConfigText(utf8(input), '/etc/oht/oht.json', '/state'),
    rejects: (err) => err instanceof DaemonError,
    maxInputBytes: 4096
  }
]
