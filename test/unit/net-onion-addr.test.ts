import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { identityFromSeed } from '../../src/crypto/index.ts'
import {
  parseOnion3Multiaddr, isOnion3, createGater, libp2pKeyFromSeed, peerIdFromEd25519, onionOfPeerId, ed25519FromPeerId, NetError
} from '../../src/net/index.ts'

const seed = new Uint8Array(32).fill(7)
const id = identityFromSeed(seed)
const peerId = peerIdFromEd25519(id.publicKey)
const other = peerIdFromEd25519(identityFromSeed(new Uint8Array(32).fill(9)).publicKey)

function flipChar (s: string, i: number): string {
  const c = s[i] === 'a' ? 'b' : 'a'
  return s.slice(0, i) + c + s.slice(i + 1)
}

function code (fn: () => unknown): string | undefined {
  try { fn(); return undefined } catch (err) { assert.ok(err instanceof NetError, `NetError, got ${String(err)}`); return err.code }
}

describe('one key: identity seed, PeerId and onion address', () => {
  it('gives the libp2p node the same Ed25519 public key as the OHT identity', () => {
    const key = libp2pKeyFromSeed(seed)
    assert.deepEqual(key.publicKey.raw, id.publicKey)
    assert.equal(onionOfPeerId(peerId), id.onion)
    assert.deepEqual(ed25519FromPeerId(peerId), id.publicKey)
  })

  it('makes different keys for different seeds', () => {
    assert.notDeepEqual(libp2pKeyFromSeed(randomBytes(32)).publicKey.raw, libp2pKeyFromSeed(randomBytes(32)).publicKey.raw)
  })
})

describe('parseOnion3Multiaddr', () => {
  it('accepts a valid onion3 address with and without /p2p/', () => {
    const a = parseOnion3Multiaddr(`/onion3/${id.onion}:4001`)
    assert.equal(a.address, id.onion)
    assert.equal(a.port, 4001)
    assert.deepEqual(a.publicKey, id.publicKey)
    const b = parseOnion3Multiaddr(multiaddr(`/onion3/${id.onion}:1/p2p/${peerId.toString()}`))
    assert.equal(b.peerId, peerId.toString())
  })

  it('rejects a corrupted checksum that multiaddr itself accepts', () => {
    const bad = flipChar(id.onion, 40)
    assert.doesNotThrow(() => multiaddr(`/onion3/${bad}:4001`))
    assert.equal(code(() => parseOnion3Multiaddr(`/onion3/${bad}:4001`)), 'NET_BAD_MULTIADDR')
  })

  it('rejects ports 0 and 65536', () => {
    assert.equal(code(() => parseOnion3Multiaddr(`/onion3/${id.onion}:0`)), 'NET_BAD_MULTIADDR')
    // multiaddr may itself refuse 65536; either way it is a NET_BAD_MULTIADDR
    assert.equal(code(() => parseOnion3Multiaddr(`/onion3/${id.onion}:65536`)), 'NET_BAD_MULTIADDR')
  })

  it('rejects a /p2p/ id of another key as an onion mismatch', () => {
    assert.equal(code(() => parseOnion3Multiaddr(`/onion3/${id.onion}:4001/p2p/${other.toString()}`)), 'NET_ONION_MISMATCH')
  })

  it('rejects anything but /p2p/ after the onion and non-onion addresses', () => {
    assert.equal(code(() => parseOnion3Multiaddr(`/onion3/${id.onion}:4001/tcp/5`)), 'NET_BAD_MULTIADDR')
    assert.equal(code(() => parseOnion3Multiaddr('/ip4/127.0.0.1/tcp/4001')), 'NET_BAD_MULTIADDR')
    assert.equal(code(() => parseOnion3Multiaddr('not a multiaddr')), 'NET_BAD_MULTIADDR')
    assert.equal(isOnion3(multiaddr('/ip4/127.0.0.1/tcp/1')), false)
    assert.equal(isOnion3(multiaddr(`/onion3/${id.onion}:1`)), true)
  })
})

describe('connection gater', () => {
  const onionAddr = multiaddr(`/onion3/${id.onion}:4001`)
  const tcpAddr = multiaddr('/ip4/127.0.0.1/tcp/4001')

  it('in onion-only mode refuses to dial or store anything but onion3', () => {
    const g = createGater({ onionOnly: true })
    assert.equal(g.denyDialMultiaddr?.(tcpAddr), true)
    assert.equal(g.denyDialMultiaddr?.(multiaddr('/dns4/example.com/tcp/443')), true)
    assert.equal(g.denyDialMultiaddr?.(onionAddr), false)
    assert.equal(g.filterMultiaddrForPeer?.(peerId, tcpAddr), false)
  })

  it('in mixed mode allows TCP but still validates onion addresses', () => {
    const g = createGater({ onionOnly: false })
    assert.equal(g.denyDialMultiaddr?.(tcpAddr), false)
    assert.equal(g.denyDialMultiaddr?.(multiaddr(`/onion3/${flipChar(id.onion, 40)}:4001`)), true)
  })

  it('keeps an announced onion address only for the key it encodes, and reports liars', () => {
    const liars: string[] = []
    const g = createGater({ onMismatch: (p) => { liars.push(p.toString()) } })
    assert.equal(g.filterMultiaddrForPeer?.(peerId, onionAddr), true)
    assert.equal(g.filterMultiaddrForPeer?.(other, onionAddr), false)
    assert.deepEqual(liars, [other.toString()])
  })

  it('refuses an outbound onion connection whose handshake proved another key', () => {
    const g = createGater()
    const maConn = { remoteAddr: onionAddr, direction: 'outbound' } as unknown as import('@libp2p/interface').MultiaddrConnection
    assert.equal(g.denyOutboundEncryptedConnection?.(peerId, maConn), false)
    assert.equal(g.denyOutboundEncryptedConnection?.(other, maConn), true)
  })
})
