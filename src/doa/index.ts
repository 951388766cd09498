/**
 * DOA, decentralized onion apps: the parts that need no network. An app is a signed manifest
 * (releases = seq of one mutable OHT record), bundles chunked into content-addressed records
 * under an RFC 6962 Merkle root, and state = per-author signed op logs folded by the app's own
 * reducer in a QuickJS/wasm sandbox, in one deterministic order, with signed snapshots for
 * late joiners. Names are GNS-style (RFC 9498 EDKEY key blinding): records under keys derived
 * from zone and label, encrypted by label, resolved through each user's petnames.
 *
 * Seams for the networked half: `ChunkSource` (fetchBundle), `NameRecordSource`
 * (resolveName) take whatever can `get` from the OHT; release records, chunks, index records
 * and name records are ordinary `OhtRecord`s that `node.put()` stores unchanged; ops are
 * self-contained byte strings for multi-value keys; `Replica.versionVector()/opsAfter()` are
 * the anti-entropy exchange.
 *
 * @example
 * import { packFiles, chunkBundle, signManifest, buildReleaseRecord, verifyReleaseRecord, fetchBundle,
 *   createSandboxHost, createReplica, signOp } from './doa/index.ts'
 * const code = packFiles([{ path: 'reducer.js', data: utf8('export function reduce (s, op) { return { n: (s?.n ?? 0) + op.by } }') }])
 * const chunked = chunkBundle(code)                                   // put chunked.index and chunked.chunks as immutable records
 * const signed = signManifest({ doa: 1, name: 'counter', version: '1.0.0', author: toHex(app.publicKey), release: 1,
 *   entry: { ui: null, reducer: 'reducer.js', validator: null }, bundles: { code: chunked.ref, assets: null }, capabilities: [] }, app)
 * await node.put(buildReleaseRecord(signed, app, 7 * DAY))            // one put per release
 * // … elsewhere, with only the app key:
 * const { manifest } = verifyReleaseRecord(appKey, (await node.get(releaseRecordKey(appKey)))!.record)
 * const bytes = await fetchBundle(manifest.bundles.code!, { getImmutable: async k => (await node.get(k))?.value })
 * const sandbox = await (await createSandboxHost()).loadApp({ files: unpackBundle(bytes), reducer: 'reducer.js', validator: null, grants: [] })
 * const replica = createReplica({ appKey }, { logic: sandbox })
 * replica.add(signOp(me, { appKey, seq: 1, lamport: 1, time: clock.now(), body: { by: 2 } }))
 * replica.state                                                       // { n: 2 }, the same on every host
 */
export { DoaError, type DoaErrorCode } from './errors.ts'
export { canonicalJson, parseJson, utf8, fromUtf8, type Json, type JsonLimits } from './json.ts'
export { merkleRoot, merkleProof, verifyMerkleProof, leafHash, nodeHash } from './merkle.ts'
export {
  packFiles, unpackBundle, readDirectoryFiles, writeFilesToDirectory, chunkBundle, decodeIndex, verifyChunk,
  assembleBundle, fetchBundle, checkBundlePath, checkBundleRef, DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES,
  type BundleFile, type BundleRef, type BundleLimits, type ChunkedBundle, type ChunkSource, type FetchBundleOptions
} from './bundle.ts'
export {
  CAPABILITIES, APP_SALT, checkManifest, signManifest, openManifest, releaseRecordKey, buildReleaseRecord,
  verifyReleaseRecord, parseAppKey, formatAppKey, type AppManifest, type Capability, type SignedManifest, type Signer
} from './manifest.ts'
export { createAppCache, type AppCache, type InstalledApp, type OpenedRelease } from './cache.ts'
export { plainLogic, type AppLogic, type ApplyResult, type OpContext, type OpInput, type OpOutcome, type PlainLogicInit } from './logic.ts'
export { createSandboxHost, type SandboxHost, type SandboxHostInit, type SandboxHostComponents, type SandboxLimits, type AppSandbox, type LoadAppOptions } from './sandbox.ts'
export { signOp, decodeOp, compareOps, MAX_OP_BYTES, MAX_OP_BODY, MAX_PARENTS, type Op, type OpFields, type OpParent } from './ops.ts'
export { createReplica, Replica, stateHash, type ReplicaInit, type ReplicaComponents, type ReplicaBase, type AddResult, type AddStatus, type SnapshotHead } from './replica.ts'
export { makeSnapshot, openSnapshot, replicaFromSnapshot, verifySnapshotByReplay, type Snapshot, type SignedSnapshot } from './snapshot.ts'
export { normalizeLabel, blindingHash, deriveLabelPublicKey, deriveLabelSigner, APEX_LABEL, type LabelSigner } from './zone-keys.ts'
export {
  createNameRecord, createRevocation, createRotation, openNameRecord, nameRecordKey, resolveName, NAME_SALT,
  REVOKE_SEQ, ROTATE_SEQ, MAX_UPDATE_SEQ, type NameData, type NameTarget, type NameRecordFields, type NameRecordSource,
  type ResolveOptions, type Resolution
} from './name-records.ts'
export { openPetnames, type PetnameStore } from './petnames.ts'
// The networked half: publish, install, hosting, state over the OHT, names, visits.
export { createDoa, parseTarget, type Doa, type DoaInit, type DoaComponents, type AppTarget, type InstallOptions, type InstallResult, type AppInfo, type OwnedName } from './doa.ts'
export { readAppDirectory, APP_FILE, type AppSpec, type AppSource } from './app-dir.ts'
export { prepareRelease, publishRelease, fetchCurrentRelease, RELEASE_TTL_MS, type PreparedRelease, type PublishOptions, type PublishResult } from './publish.ts'
export { fetchBundleFrom, type ChunkProvider, type ProviderReport, type ChunkFetchOptions, type FetchedBundle } from './chunk-fetch.ts'
export { createHostClient, ohtChunkProvider, hostChunkProvider, type HostClient, type HostClientOptions } from './host-client.ts'
export {
  APP_PROTOCOL, APP_MESSAGE_MAX, encodeAppRequest, decodeAppRequest, encodeAppResponse, decodeAppResponse,
  type AppRequest, type AppResponse, type AppStatus, type HttpResponse
} from './app-wire.ts'
export { createAppServer, contentTypeOf, UI_CSP, type AppServer, type AppServerInit, type AppServerComponents, type AppStateApi, type HttpRequest, type ServedRelease } from './app-server.ts'
export { encodeHostAnnouncement, openHostValue, MAX_HOST_VALUE, type HostAnnouncement, type HostEntry, type HostService, type HostSnapshotRef } from './host-set.ts'
export { HostedApp, type HostingBackend, type HostQuota, type HostStatus, type HostedAppInit, type HostedAppComponents } from './hosting.ts'
export { hostSetKey, opHeadsKey, opPageKey, opValueId, pageOf, OPS_PER_PAGE, HEAD_VALUE_ID, HOST_VALUE_ID } from './net-keys.ts'
export { publishOp, fetchHeads, fetchAuthorOps, watchHeads, missingRanges, MAX_NET_OP_BYTES, OP_TTL_MS, type DoaDht, type PublishedOp, type FetchedOp } from './op-log.ts'
export { createOpStore, createMemoryOpStore, type OpStore, type OpStoreInit } from './op-store.ts'
export { openSession, type AppSession, type SessionInit, type SessionComponents, type SessionEvent, type SubmitResult, type SyncResult } from './session.ts'
export { createNameService, renewDue, NAME_VALIDITY_MS, NAME_TTL_MS, type NameService, type NameServiceComponents, type Registration, type RegisterOptions, type NameResolveOptions } from './name-service.ts'
export { visitApp, type VisitedApp, type HostFetch } from './visit.ts'
export {
  createNamingPlugin, parsePluginOptions, supportsVersion, NS_API_VERSION, NS_OK, NS_FAILED, NS_TLD_UNKNOWN, NS_NOT_REGISTERED, NS_TIMEOUT,
  type NamingPlugin, type NamingPluginInit, type NamingPluginComponents, type NameToOnion
} from './tor-naming.ts'
