/**
 * The net layer: a libp2p node whose PeerId is the OHT identity key, over TCP (LAN/dev),
 * @libp2p/memory (tests) and onion3 (tor), plus the two seam adapters that ride its
 * connections: DhtNet (the OHT on `/oht/kad/1.0.0`) and PeerNet (direct protocols between
 * peers), and the overlay node that joins them with the engine.
 *
 * @example
 * // a node over TCP on loopback, joined to a network
 * const node = await createOverlayNode({ seed, tcp: { listen: ['/ip4/127.0.0.1/tcp/0'] }, bootstrap: [addr] })
 * const { key } = await node.oht.putImmutable(new TextEncoder().encode('hello'))
 * const got = await node.oht.get(key)
 * await node.stop()
 *
 * @example
 * // onion only: every connection goes through tor's SOCKS port
 * const node = await createOverlayNode({
 *   seed,
 *   onionOnly: true,
 *   onion: { connect: torConnector({ socksPort }), publish: torPublisher({ control, seed }) }
 * })
 *
 * ## PeerNet
 *
 * `overlay.peers` (createLibp2pPeerNet, peer-net.ts) implements src/oht's PeerNet: requests
 * and message streams to a peer's contact under a protocol id. Each id is two libp2p
 * protocols, `/oht/req/1<id>` and `/oht/stream/1<id>`, on the connection the node already
 * has to that peer: one connection per peer, shared with the DHT (peer-connections.ts: reuse,
 * identify-learned addresses, onion addresses checked against the key, idle pruning that
 * spares connections with an open stream). `from` is the key the peer proved in the noise
 * handshake. Frames (peer-frames.ts) are versioned and length-limited; a peer's malformed or
 * oversized input ends that request or stream with a coded ERROR frame. Streams carry their
 * own flow control: `send()` waits while 1 MiB of our messages are unread by the peer (WINDOW
 * credit comes back as it reads), so a stream holds at most that much whatever the muxer's
 * window, and a half-close is an in-band CLOSE, after which that side still grants window.
 *
 * @example
 * a.peers.handle('/echo/1', async (from, body) => body)
 * const answer = await b.peers.request(a.contact, '/echo/1', bytes, { timeoutMs: 30_000 })
 * a.peers.handleStream('/chat/1', async (stream) => { for await (const m of stream) await stream.send(m); await stream.close() })
 * const s = await b.peers.openStream(a.contact, '/chat/1')
 */
import './polyfill.ts'

export { NetError, type NetErrorCode } from './errors.ts'
export { createNetNode, listTransports, type NetNodeInit, type NetLibp2p, type NetServices } from './node.ts'
export { onion3, type OnionTransportInit, type OnionTransportComponents, type OnionConnector, type OnionConnectOptions, type OnionPublisher, type OnionPublishOptions, type PublishedOnion } from './onion-transport.ts'
export { parseOnion3Multiaddr, onion3Multiaddr, isOnion3, type Onion3Addr } from './onion-addr.ts'
export { createGater, onionMatchesPeer, type GaterInit } from './gater.ts'
export { libp2pKeyFromSeed, peerIdFromEd25519, ed25519FromPeerId, onionOfPeerId } from './identity.ts'
export { createLibp2pDhtNet, OHT_KAD_PROTOCOL, type Libp2pDhtNet, type Libp2pDhtNetInit, type Libp2pDhtNetComponents, type Libp2pDhtNetStats } from './dht-net.ts'
export { createPeerConnections, type PeerConnections, type PeerConnectionsInit, type PeerConnectionsComponents, type PeerConnectionsStats } from './peer-connections.ts'
export {
  createLibp2pPeerNet, PEER_REQUEST_PROTOCOL_PREFIX, PEER_STREAM_PROTOCOL_PREFIX,
  type Libp2pPeerNet, type Libp2pPeerNetInit, type Libp2pPeerNetComponents, type Libp2pPeerNetStats
} from './peer-net.ts'
export { torConnector, torPublisher, type TorConnectorInit, type TorPublisherInit } from './tor-adapters.ts'
export { createOverlayNode, contactFromMultiaddr, type OverlayNode, type OverlayNodeInit, type OverlayNodeComponents, type JoinResult } from './overlay-node.ts'
export { saveTableFile, loadTableFile, parseTable, TABLE_FILE_MAX_BYTES, TABLE_FILE_MAX_CONTACTS } from './table-file.ts'
