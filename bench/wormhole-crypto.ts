/**
 * Wormhole cryptography costs on this machine: double-ratchet encrypt/decrypt per message
 * (one direction: symmetric steps only; ping-pong: a DH ratchet step on every message), X3DH per
 * session, sealed-sender envelope seal/open, whole messages through createWormholeCrypto over a
 * memory store and over the file store (fsync per message), and the erasure code on 4 KiB
 * messages with k=4, n=8. Baselines measured in the same run: one ChaCha20-Poly1305 seal of the
 * same bytes, one X25519, SHA-256 of the same bytes.
 *
 * Usage: node --import tsx bench/wormhole-crypto.ts [iterations=2000]
 * Writes bench/results/wormhole-crypto.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cryptoRng, systemClock } from '../src/core/index.ts'
import { identityFromSeed, sha256 } from '../src/crypto/index.ts'
import {
  aeadSeal, createContactCard, createFileSessionStore, createMemorySessionStore, createWormholeCrypto, decodePrekeyBundle, erasureDecode,
  erasureEncode, openEnvelope, PrekeyStore, Ratchet, sealEnvelope, wormholeIdentityFromSeed, x3dhInitiate, x3dhRespond, X25519KeyPair,
  type SessionStore
} from '../src/wormhole/index.ts'

const N = Number(process.argv[2] ?? 2000)
const results: Record<string, unknown> = { iterations: N, node: process.version }
const now = (): number => performance.now()

function stats (us: number[]): { p50: number, p95: number, mean: number } {
  const s = us.slice().sort((a, b) => a - b)
  const at = (p: number): number => +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1)
  return { p50: at(0.5), p95: at(0.95), mean: +(us.reduce((a, b) => a + b, 0) / us.length).toFixed(1) }
}

function time (n: number, fn: (i: number) => void): ReturnType<typeof stats> {
  for (let i = 0; i < Math.min(50, n); i++) fn(i) // warm up
  const us: number[] = []
  for (let i = 0; i < n; i++) { const t = now(); fn(i); us.push((now() - t) * 1000) }
  return stats(us)
}

async function timeAsync (n: number, fn: (i: number) => Promise<void>): Promise<ReturnType<typeof stats>> {
  const us: number[] = []
  for (let i = 0; i < n; i++) { const t = now(); await fn(i); us.push((now() - t) * 1000) }
  return stats(us)
}

function line (name: string, s: { p50: number, p95: number }, extra = ''): void {
  console.log(`${name.padEnd(44)} p50 ${String(s.p50).padStart(8)} µs   p95 ${String(s.p95).padStart(8)} µs ${extra}`)
}

const rng = cryptoRng
const body = rng.bytes(100)
const AD = rng.bytes(128)

// ---------------------------------------------------------------- baselines
{
  const key = rng.bytes(32)
  const nonce = rng.bytes(12)
  const aead = time(N, () => { aeadSeal(key, nonce, body, AD) })
  const a = X25519KeyPair.generate(rng)
  const b = X25519KeyPair.generate(rng)
  const dh = time(N, () => { a.dh(b.publicKey) })
  const gen = time(Math.min(N, 500), () => { X25519KeyPair.generate(rng).publicKey })
  results.baseline = { chacha20poly1305_100B: aead, x25519: dh, x25519KeyGen: gen }
  line('baseline: ChaCha20-Poly1305 seal, 100 B', aead)
  line('baseline: X25519', dh)
  line('baseline: X25519 key pair from Rng bytes', gen)
}

// ---------------------------------------------------------------- ratchet
{
  const sk = rng.bytes(32)
  const spk = X25519KeyPair.generate(rng)
  const a = Ratchet.initAlice(sk, spk.publicKey, rng)
  const b = Ratchet.initBob(sk, spk, rng)
  b.decrypt(a.encrypt(body, AD), AD)
  const msgs: Uint8Array[] = []
  const enc = time(N, () => { msgs.push(a.encrypt(body, AD)) })
  let k = 0 // in order, warm-up messages first: every decrypt is one symmetric step
  const decOne = time(N, () => { b.decrypt(msgs[k++], AD) })
  // Ping-pong: every message answers the last, so every decrypt is a DH ratchet step.
  const pp: number[] = []
  const ppEnc: number[] = []
  let from = a; let to = b
  for (let i = 0; i < Math.min(N, 1000); i++) {
    let t = now()
    const m = from.encrypt(body, AD)
    ppEnc.push((now() - t) * 1000)
    t = now()
    to.decrypt(m, AD)
    pp.push((now() - t) * 1000)
    ;[from, to] = [to, from]
  }
  results.ratchet = { encrypt: enc, decryptSameChain: decOne, pingPongEncrypt: stats(ppEnc), pingPongDecrypt: stats(pp) }
  line('ratchet encrypt (100 B)', enc)
  line('ratchet decrypt, same chain', decOne)
  line('ratchet decrypt, DH step (ping-pong)', stats(pp))
}

// ---------------------------------------------------------------- X3DH
{
  const alice = wormholeIdentityFromSeed(rng.bytes(32))
  const bob = wormholeIdentityFromSeed(rng.bytes(32))
  const pk = PrekeyStore.create(bob, { oneTimePrekeys: 100 }, Date.now(), rng)
  const bundle = decodePrekeyBundle(pk.bundle().bytes, bob.publicKey)
  const n = Math.min(N, 500)
  const inits: ReturnType<typeof x3dhInitiate>[] = []
  const ini = time(n, () => { inits.push(x3dhInitiate(alice, bob, bundle, rng)) })
  let k = 0
  const resp = time(n, () => {
    const x = inits[k++]
    x3dhRespond(bob, { signedPrekey: pk.signedPrekey(x.signedPrekeyId)!, oneTimePrekey: pk.oneTimePrekey(x.oneTimePrekeyId!)! }, alice, x.ephemeralPublicKey)
  })
  const verify = time(n, () => { decodePrekeyBundle(bundle.bytes, bob.publicKey) })
  results.x3dh = { initiate: ini, respond: resp, bundleDecodeAndVerify: verify }
  line('X3DH initiate (4 DH + keygen)', ini)
  line('X3DH respond (4 DH)', resp)
  line('prekey bundle decode + verify (100 OPKs)', verify)
}

// ---------------------------------------------------------------- envelope
{
  const bob = wormholeIdentityFromSeed(rng.bytes(32))
  const content = { type: 'ratchet' as const, sender: rng.bytes(32), messageId: rng.bytes(16), payload: rng.bytes(200) }
  const envs: Uint8Array[] = []
  const seal = time(N, () => { envs.push(sealEnvelope(bob.dhPublicKey, content, rng)) })
  let k = 0
  const open = time(N, () => { openEnvelope(envs[k++], bob) })
  const big = { ...content, payload: rng.bytes(60000) }
  const bigEnv = sealEnvelope(bob.dhPublicKey, big, rng)
  const seal64 = time(Math.min(N, 500), () => { sealEnvelope(bob.dhPublicKey, big, rng) })
  const open64 = time(Math.min(N, 500), () => { openEnvelope(bigEnv, bob) })
  results.envelope = { seal1KiB: seal, open1KiB: open, seal64KiB: seal64, open64KiB: open64 }
  line('envelope seal, 1 KiB bucket', seal)
  line('envelope open, 1 KiB bucket', open)
  line('envelope seal, 64 KiB bucket', seal64)
  line('envelope open, 64 KiB bucket', open64)
}

// ---------------------------------------------------------------- whole messages
async function pairOver (storeA: SessionStore, storeB: SessionStore): Promise<{ a: Awaited<ReturnType<typeof createWormholeCrypto>>, b: Awaited<ReturnType<typeof createWormholeCrypto>>, bCard: ReturnType<typeof createContactCard>, aCard: ReturnType<typeof createContactCard> }> {
  const ia = wormholeIdentityFromSeed(rng.bytes(32))
  const ib = wormholeIdentityFromSeed(rng.bytes(32))
  const aCard = createContactCard(ia, { node: identityFromSeed(rng.bytes(32)).onion }, systemClock)
  const bCard = createContactCard(ib, { node: identityFromSeed(rng.bytes(32)).onion }, systemClock)
  const a = await createWormholeCrypto({}, { identity: ia, card: aCard, store: storeA, clock: systemClock, rng })
  const b = await createWormholeCrypto({}, { identity: ib, card: bCard, store: storeB, clock: systemClock, rng })
  const conv = rng.bytes(16)
  const first = await a.seal(bCard, { conversationId: conv, seq: 1, body }, { bundle: decodePrekeyBundle(b.prekeyBundle().bytes, bCard.publicKey) })
  await b.open(first.envelope)
  await a.open((await b.seal(aCard, { conversationId: conv, seq: 1, body })).envelope)
  return { a, b, aCard, bCard }
}

async function messages (label: string, storeA: SessionStore, storeB: SessionStore, n: number): Promise<Record<string, unknown>> {
  const { a, b, bCard } = await pairOver(storeA, storeB)
  const conv = rng.bytes(16)
  const envs: Uint8Array[] = []
  const seal = await timeAsync(n, async (i) => { envs.push((await a.seal(bCard, { conversationId: conv, seq: i + 2, body })).envelope) })
  let k = 0
  const open = await timeAsync(n, async () => { await b.open(envs[k++]) })
  line(`message seal (${label})`, seal)
  line(`message open (${label})`, open)
  await a.close(); await b.close()
  return { seal, open }
}

{
  const mem = await messages('memory store', createMemorySessionStore(), createMemorySessionStore(), Math.min(N, 1000))
  const dir = await mkdtemp(join(tmpdir(), 'bench-wormhole-'))
  try {
    const fa = await createFileSessionStore({ dir: join(dir, 'a'), passphrase: 'bench', scrypt: { N: 2 ** 14, r: 8, p: 1 } }, { rng })
    const fb = await createFileSessionStore({ dir: join(dir, 'b'), passphrase: 'bench', scrypt: { N: 2 ** 14, r: 8, p: 1 } }, { rng })
    const file = await messages('sealed file store, fsync', fa, fb, Math.min(N, 200))
    results.messages = { memoryStore: mem, sealedFileStore: file }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- erasure code
{
  const data = rng.bytes(4096)
  const reps = Math.max(200, N)
  const frags = erasureEncode(data, 4, 8)
  const mbps = (bytes: number, ms: number): number => +((bytes / 1e6) / (ms / 1000)).toFixed(1)
  let t = now()
  for (let i = 0; i < reps; i++) erasureEncode(data, 4, 8)
  const encMs = now() - t
  t = now()
  for (let i = 0; i < reps; i++) erasureDecode([frags[4], frags[5], frags[6], frags[7]])
  const decParityMs = now() - t
  t = now()
  for (let i = 0; i < reps; i++) erasureDecode([frags[0], frags[1], frags[2], frags[3]])
  const decDataMs = now() - t
  t = now()
  for (let i = 0; i < reps; i++) sha256(data)
  const shaMs = now() - t
  const r = {
    messageBytes: 4096, k: 4, n: 8,
    encodeMBps: mbps(4096 * reps, encMs),
    decodeFromParityMBps: mbps(4096 * reps, decParityMs),
    decodeFromDataMBps: mbps(4096 * reps, decDataMs),
    baselineSha256MBps: mbps(4096 * reps, shaMs),
    encodeUsPerMessage: +(encMs * 1000 / reps).toFixed(1),
    decodeFromParityUsPerMessage: +(decParityMs * 1000 / reps).toFixed(1)
  }
  results.erasure = r
  console.log(`erasure 4 KiB k=4 n=8: encode ${r.encodeMBps} MB/s (${r.encodeUsPerMessage} µs), decode from 4 parity ${r.decodeFromParityMBps} MB/s (${r.decodeFromParityUsPerMessage} µs), from 4 data ${r.decodeFromDataMBps} MB/s; SHA-256 baseline ${r.baselineSha256MBps} MB/s`)
}

mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/wormhole-crypto.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
console.log('wrote bench/results/wormhole-crypto.json')
