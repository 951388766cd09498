/**
 * The DOA scenario on the simulated world, shared by test/netsim/doa-week.test.ts (CI-sized)
 * and bench/doa-netsim.ts (1,000 nodes, a week): an author publishes an app and registers its
 * name, a few hosts install it by name and host it, the author goes offline for good, and for
 * the rest of the run random nodes install the app by name every few minutes, under churn,
 * among hostile nodes:
 *
 * - a fraction of the nodes are the world's OHT forgers: they answer GETs with forged records
 *   (a higher seq with a bad signature for mutable ones, bytes that do not hash to the key for
 *   immutable ones: forged name records and forged chunks);
 * - some of them also replay the name's first, stale record (validly signed, older seq);
 * - some squat the app's label in zones of their own, pointing at an impersonating app they
 *   published under the same app name;
 * - some announce themselves in the genuine app's host set (validly signed by their own key)
 *   and answer its app protocol with forged chunks and a forged manifest.
 *
 * An install succeeds when the name resolves, the release verifies against the app key, and
 * every chunk verifies (it stops at the first failure: what a user would see). A hijack is an
 * install or a resolution that yields anything but the genuine app key and bytes: there must be
 * none, whatever the rate of failures.
 *
 * Everything runs on the simulator's virtual clock with the real DOA code (publishRelease,
 * HostedApp, fetchBundleFrom, createNameService); nothing touches the disk during the run.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bytesEqual, toHex } from '../src/core/index.ts'
import {
  APP_PROTOCOL, APP_MESSAGE_MAX, buildReleaseRecord, createHostClient, createNameService, decodeAppRequest, encodeAppResponse, encodeHostAnnouncement,
  fetchBundleFrom, fetchCurrentRelease, hostChunkProvider, HostedApp, hostSetKey, HOST_VALUE_ID, nameRecordKey, ohtChunkProvider, openHostValue,
  prepareRelease, publishRelease, signManifest, unpackBundle, utf8, type AppSource, type ChunkProvider, type HostEntry, type SignedManifest, type Signer
} from '../src/doa/index.ts'
import { pickHosts } from '../src/doa/doa.ts'
import { decodeRequest, decodeResponse, encodeResponse, type MutableRecord, type PeerNet } from '../src/oht/index.ts'
import { createWorld, simIdentityFromSeed, type World, type WorldNode } from '../src/netsim/world/index.ts'
import { identityFromSeed } from '../src/crypto/index.ts'
import { summarize, type Summary } from '../src/netsim/index.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

export interface DoaWorldInit {
  seed: string
  size: number
  days: number
  /** Fraction of honest nodes replaced per hour. @default 0.1 */
  churnPerHour?: number
  /** Fraction of all nodes that are hostile. @default 0.2 */
  hostileFraction?: number
  /** Honest hosts of the app. @default 3 */
  hosts?: number
  /** Hostile nodes that also announce themselves as hosts and forge over PeerNet. @default 5 */
  hostileHosts?: number
  /** Hostile nodes that also squat the label in their own zones. @default 10 */
  squatters?: number
  /** Hostile nodes that also replay the stale name record. @default 10 */
  replayers?: number
  /** One install attempt per this interval. @default 5 minutes */
  installEveryMs?: number
  /** Extra asset bytes, so bundles have several chunks. @default 200 KiB */
  extraAssetBytes?: number
  /** Progress lines (bench). */
  onProgress?: (line: string) => void
}

export interface DoaWorldReport {
  seed: string
  size: number
  days: number
  churnPerHour: number
  hostile: number
  /** `installerLeft`: attempts cut short because the installing node itself left (not counted in `attempted`). */
  installs: { attempted: number, succeeded: number, successRate: number, failures: Record<string, number>, hijacked: number, installerLeft: number }
  names: { resolved: number, hijacked: number }
  /** Chunks and indexes refused because they did not hash right, from hostile hosts over PeerNet. */
  forgedChunksRefused: number
  forgedManifestsRefused: number
  /** Sources that delivered verified chunks. */
  servedBy: { hosts: number, oht: number }
  installLatencyMs: Summary
  churn: { left: number, joined: number }
  adversaries: { lies: number, forgeries: number, fakePuts: number }
  /** Worst gap between failures, and the last failures' codes (diagnostics). */
  lastFailures: string[]
  virtualDays: number
  wallMs: number
  peakRssMiB: number
}

const TEMPLATE = new URL('../examples/template-app/', import.meta.url).pathname

function templateSource (extra: number): AppSource {
  const read = (p: string): Uint8Array => new Uint8Array(readFileSync(join(TEMPLATE, p)))
  const spec = JSON.parse(readFileSync(join(TEMPLATE, 'doa.json'), 'utf8')) as AppSource['spec']
  const big = new Uint8Array(extra)
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff
  return {
    spec: { ...spec, capabilities: [...spec.capabilities].sort() },
    code: ['reducer.js', 'validator.js', 'limits.js'].map(f => ({ path: f, data: read(join('code', f)) })),
    assets: [...['index.html', 'app.js', 'style.css'].map(f => ({ path: f, data: read(join('ui', f)) })), ...(extra > 0 ? [{ path: 'media/background.bin', data: big }] : [])]
  }
}

/** A node's PeerNet as src/oht's interface (the simulator's has the same shape). */
const peersOf = (n: WorldNode): PeerNet => n.peers as unknown as PeerNet

/** A hostile node answering GETs of `key` with `stale` (a validly signed, older record). */
function replayStale (node: WorldNode, key: Uint8Array, stale: MutableRecord): void {
  const inner = node.host.interceptor
  node.host.interceptor = async (ctx) => {
    let req
    try { req = decodeRequest(ctx.frame) } catch { return inner !== undefined ? await inner(ctx) : await ctx.forward() }
    if (req.type !== 'get' || !bytesEqual(req.key, key)) return inner !== undefined ? await inner(ctx) : await ctx.forward()
    const real = await ctx.forward()
    let res
    try { res = decodeResponse(real) } catch { return real }
    if (res.type !== 'value') return real
    return encodeResponse({ type: 'value', token: res.token, contacts: res.contacts, seq: stale.seq, record: req.metadataOnly === true ? undefined : stale })
  }
}

export async function runDoaWorld (init: DoaWorldInit): Promise<DoaWorldReport> {
  const wallStart = performance.now()
  let peakRss = 0
  const sampleRss = (): void => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }
  const churnPerHour = init.churnPerHour ?? 0.1
  const hostileFraction = init.hostileFraction ?? 0.2
  const world: World = await createWorld({ seed: init.seed, size: init.size, churnPerHour, adversaries: { fraction: hostileFraction, kinds: ['forger'] } })
  const t0 = world.sim.now
  const hoursIn = (): string => ((world.sim.now - t0) / HOUR).toFixed(1)
  const say = (l: string): void => { init.onProgress?.(`[${hoursIn()} h] ${l}`) }
  const rng = world.sim.fork('doa')
  const honest = world.honestOnline
  const hostile = world.nodes.filter(n => n.adversary !== undefined)
  const names = (n: WorldNode): ReturnType<typeof createNameService> => createNameService({ dht: n.oht, clock: n.host.clock, rng: n.host.rng })

  // Roles: author and hosts are honest nodes that churn does not take (hosts opted in to stay).
  const author = honest[0]
  const hostNodes = honest.slice(1, 1 + (init.hosts ?? 3))
  for (const n of [author, ...hostNodes]) world.churn?.untrack(n.index)
  const appId = simIdentityFromSeed(rng.bytes(32))
  // Zone keys need the seed (label keys derive from it): a full identity.
  const zoneIdentity = identityFromSeed(rng.bytes(32))
  const appKey = appId.publicKey
  const source = templateSource(init.extraAssetBytes ?? 200 * 1024)
  const prepared = prepareRelease(source, appId, 1)
  const petnames = (p: string): Uint8Array | undefined => p === 'author' ? zoneIdentity.publicKey : undefined
  const hostedApps: HostedApp[] = []

  await world.sim.settle((async () => {
    // The author: an impersonator's target first (the record hostile replayers will serve), then the genuine app.
    const decoy = simIdentityFromSeed(rng.bytes(32))
    await names(author).register(zoneIdentity, 'guestbook', { type: 'app', key: toHex(decoy.publicKey) })
    const stale = (await author.oht.get(nameRecordKey(zoneIdentity.publicKey, 'guestbook')))?.record as MutableRecord
    await author.host.clock.sleep(MINUTE)
    const pub = await publishRelease(author.oht, source, appId)
    if (pub.minStored === 0) throw new Error('the author could not publish')
    await names(author).register(zoneIdentity, 'guestbook', { type: 'app', key: toHex(appKey) })
    // Hostile replayers serve the first record; squatters register the label in their own zones.
    const replayers = hostile.slice(0, init.replayers ?? 10)
    for (const r of replayers) replayStale(r, nameRecordKey(zoneIdentity.publicKey, 'guestbook'), stale)
    const squatters = hostile.slice(10, 10 + (init.squatters ?? 10))
    for (const s of squatters) {
      // Squatting goes through honest-looking writes: the squatter's own node puts its records.
      const z = identityFromSeed(rng.bytes(32))
      const fake = simIdentityFromSeed(rng.bytes(32))
      const fakeRelease = prepareRelease({ ...source, assets: [{ path: 'index.html', data: utf8('<p>phish</p>') }] }, fake, 1)
      await s.oht.put(buildReleaseRecord(fakeRelease.signed, fake, 7 * DAY)).catch(() => undefined)
      await names(s).register(z, 'guestbook', { type: 'app', key: toHex(fake.publicKey) }).catch(() => undefined)
    }
    // Hosts: install by name like anyone, then host (re-putting what they installed by).
    for (const h of hostNodes) {
      const r = await names(h).resolve('guestbook.author', { zoneOf: petnames })
      if (r.target.type !== 'app' || r.target.key !== toHex(appKey)) throw new Error('a host resolved the wrong app')
      const found = await fetchCurrentRelease(h.oht, appKey)
      if (found === undefined) throw new Error('a host found no release')
      const m = found.signed.manifest
      const code = await fetchBundleFrom(m.bundles.code!, [ohtChunkProvider(h.oht)])
      const assets = await fetchBundleFrom(m.bundles.assets!, [ohtChunkProvider(h.oht)])
      const nameRecords: MutableRecord[] = []
      for (const l of ['guestbook', '@']) {
        const got = await h.oht.get(nameRecordKey(zoneIdentity.publicKey, l))
        if (got?.record.kind === 'mutable') nameRecords.push(got.record)
      }
      const hosted = new HostedApp({ signed: found.signed, code: code.bytes, assets: assets.bytes }, found.record, { republishEveryMs: 12 * HOUR }, {
        dht: h.oht, clock: h.host.clock, hostKey: h.identity as Signer, addrs: () => h.contact.addrs, extraRecords: nameRecords
      })
      peersOf(h).handle(APP_PROTOCOL, async (_from, body, o) => {
        let req
        try { req = decodeAppRequest(body) } catch (err) { return encodeAppResponse({ status: 'bad-request', message: String(err) }) }
        if (!bytesEqual(req.app, appKey)) return encodeAppResponse({ status: 'not-hosted', message: 'not hosted here' })
        return await hosted.server.handle(req, o)
      }, { maxMessageBytes: APP_MESSAGE_MAX + 64 })
      await hosted.start()
      hostedApps.push(hosted)
    }
    // Hostile hosts: announced in the genuine app's host set, forging everything they serve.
    const forgers = hostile.slice(20, 20 + (init.hostileHosts ?? 5))
    for (const f of forgers) {
      const liar = simIdentityFromSeed(rng.bytes(32))
      const forged: SignedManifest = signManifest({ ...prepared.signed.manifest, author: toHex(liar.publicKey), release: 2 }, liar)
      peersOf(f).handle(APP_PROTOCOL, async (_from, body) => {
        const req = decodeAppRequest(body)
        if (req.type === 'manifest') return encodeAppResponse({ status: 'ok', type: 'manifest', bytes: forged.bytes })
        if (req.type === 'chunk') return encodeAppResponse({ status: 'ok', type: 'chunk', bytes: f.host.rng.bytes(64) })
        return encodeAppResponse({ status: 'not-found', message: 'no' })
      }, { maxMessageBytes: APP_MESSAGE_MAX + 64 })
      // Announcing the genuine release number, so installers do pick them.
      await f.oht.putValue(hostSetKey(appKey), {
        id: HOST_VALUE_ID, ttlMs: 3 * HOUR,
        value: encodeHostAnnouncement({ v: 1, app: toHex(appKey), release: 1, addrs: f.contact.addrs, serves: ['chunks'], quota: { bytes: 1, ops: 1 }, snapshot: null, since: 0 })
      })
    }
  })())
  say(`published; ${hostNodes.length} hosts, ${hostile.length} hostile nodes`)

  // The author leaves for good.
  world.leave(author)
  const report: DoaWorldReport = {
    seed: init.seed, size: init.size, days: init.days, churnPerHour, hostile: hostile.length,
    installs: { attempted: 0, succeeded: 0, successRate: 0, failures: {}, hijacked: 0, installerLeft: 0 },
    names: { resolved: 0, hijacked: 0 },
    forgedChunksRefused: 0, forgedManifestsRefused: 0,
    servedBy: { hosts: 0, oht: 0 },
    installLatencyMs: summarize([]),
    churn: { left: 0, joined: 0 },
    adversaries: { lies: 0, forgeries: 0, fakePuts: 0 },
    lastFailures: [], virtualDays: 0, wallMs: 0, peakRssMiB: 0
  }
  const latencies: number[] = []
  const fail = (code: string): void => {
    report.installs.failures[code] = (report.installs.failures[code] ?? 0) + 1
    report.lastFailures = [...report.lastFailures.slice(-9), `${hoursIn()} h ${code}`]
  }
  const genuineCode = prepared.bundles.code as Uint8Array
  const genuineAssets = prepared.bundles.assets as Uint8Array

  const installOnce = async (n: WorldNode): Promise<void> => {
    report.installs.attempted++
    const t0 = world.sim.now
    try {
      const r = await names(n).resolve('guestbook.author', { zoneOf: petnames })
      report.names.resolved++
      if (r.target.type !== 'app' || r.target.key !== toHex(appKey)) { report.names.hijacked++; report.installs.hijacked++; fail('NAME_HIJACKED'); return }
      // As the DOA service does: the host set and the release record at once.
      const [hostVals, current] = await Promise.all([n.oht.getValues(hostSetKey(appKey)), fetchCurrentRelease(n.oht, appKey).catch(() => undefined)])
      const hosts: HostEntry[] = hostVals.values.map(v => openHostValue(appKey, v)).filter((e): e is HostEntry => e !== undefined)
      let signed = current?.signed
      if (signed === undefined) {
        for (const h of pickHosts(hosts, 1, 3, n.host.rng)) {
          try { signed = await createHostClient(peersOf(n), { publicKey: h.publicKey, addrs: h.addrs }, { timeoutMs: 30_000 }).manifest(appKey, undefined); if (signed !== undefined) break } catch { report.forgedManifestsRefused++ }
        }
      }
      if (signed === undefined) { fail('NO_RELEASE'); return }
      const m = signed.manifest
      const providers: ChunkProvider[] = [
        ...pickHosts(hosts, m.release, 3, n.host.rng).map(h => hostChunkProvider(createHostClient(peersOf(n), { publicKey: h.publicKey, addrs: h.addrs }, { timeoutMs: 30_000 }), appKey)),
        ohtChunkProvider(n.oht)
      ]
      const code = await fetchBundleFrom(m.bundles.code!, providers)
      const assets = await fetchBundleFrom(m.bundles.assets!, providers)
      for (const s of [...code.sources, ...assets.sources]) {
        report.forgedChunksRefused += s.forged
        if (s.name === 'oht') report.servedBy.oht += s.served
        else report.servedBy.hosts += s.served
      }
      // Verified by construction; checked against the genuine bytes all the same.
      if (!bytesEqual(code.bytes, genuineCode) || !bytesEqual(assets.bytes, genuineAssets) || !bytesEqual(signed.bytes, prepared.signed.bytes)) { report.installs.hijacked++; fail('CONTENT_HIJACKED'); return }
      unpackBundle(assets.bytes)
      report.installs.succeeded++
      latencies.push(world.sim.now - t0)
    } catch (err) {
      // A node that churn takes away in the middle of its own install aborts it: that says
      // nothing about the app's availability, so it is counted apart, not as an attempt.
      if (!n.online) { report.installs.attempted--; report.installs.installerLeft++; return }
      fail((err as { code?: string }).code ?? 'ERROR')
    }
  }

  const every = init.installEveryMs ?? 5 * MINUTE
  const start = world.sim.now
  const end = start + init.days * DAY
  const inflight = new Set<Promise<void>>()
  let nextReport = start + 6 * HOUR
  while (world.sim.now < end) {
    const pool = world.honestOnline.filter(n => n !== author && !hostNodes.includes(n))
    const n = pool[rng.int(pool.length)]
    const p = installOnce(n).finally(() => { inflight.delete(p) })
    inflight.add(p)
    await world.sim.run({ forMs: every })
    sampleRss()
    if (world.sim.now >= nextReport) {
      nextReport += 6 * HOUR
      const i = report.installs
      say(`${i.succeeded}/${i.attempted} installs (${(100 * i.succeeded / Math.max(1, i.attempted)).toFixed(2)} %), ${i.hijacked} hijacked, failures ${JSON.stringify(i.failures)}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`)
    }
  }
  await world.sim.settle(Promise.all(inflight))
  const m = world.metrics()
  report.installs.successRate = report.installs.succeeded / Math.max(1, report.installs.attempted)
  report.installLatencyMs = summarize(latencies)
  report.churn = { left: m.deterministic.churn.left, joined: m.deterministic.churn.joined }
  report.adversaries = m.deterministic.adversaries
  report.virtualDays = (world.sim.now - start) / DAY
  report.wallMs = Math.round(performance.now() - wallStart)
  sampleRss()
  report.peakRssMiB = Math.round(peakRss / 2 ** 20)
  for (const h of hostedApps) await h.stop({ keepAnnouncement: true }).catch(() => {})
  world.stop()
  return report
}
