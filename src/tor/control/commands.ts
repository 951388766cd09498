/**
 * Command lines, built and checked before they reach the socket. Every builder returns one
 * line without CRLF and throws TOR_BAD_ARGUMENT for values that could inject a second
 * command or that tor would misparse.
 */
import { TorError } from '../errors.ts'
import { assertSafeArgument, assertWord, quoteIfNeeded, quoteString } from './quoting.ts'

export type ConfValue = string | number | boolean | Array<string | number> | null

export type SignalName = 'RELOAD' | 'SHUTDOWN' | 'DUMP' | 'DEBUG' | 'HALT' | 'NEWNYM' | 'CLEARDNSCACHE' | 'HEARTBEAT' | 'ACTIVE' | 'DORMANT'

export interface AddOnionPort {
  /** The port clients connect to on the onion address. */
  virtualPort: number
  /**
   * Where tor forwards streams: `'host:port'`, a bare port, or `'unix:/path'`.
   * @default the same port on 127.0.0.1
   */
  target?: string
}

export interface PowDefenses {
  /** PoWDefensesEnabled=1. */
  enabled: boolean
  /** PoWQueueRate: introductions per second the queue drains at. */
  queueRate?: number
  /** PoWQueueBurst: burst size of the queue. */
  queueBurst?: number
}

export interface AddOnionOptions {
  /** A new key tor generates, or our own expanded Ed25519 key (base64, 64 bytes; an `ED25519-V3:` prefix is accepted). */
  key: { type: 'NEW' } | { type: 'ED25519-V3', blob: string }
  ports: AddOnionPort[]
  /** Keep the service after this control connection closes (Flags=Detach). */
  detach?: boolean
  /** Do not return a generated private key (Flags=DiscardPK). */
  discardPK?: boolean
  /** Single-onion service; needs a tor configured for it (Flags=NonAnonymous). */
  nonAnonymous?: boolean
  /** Close the circuit when MaxStreams is exceeded (Flags=MaxStreamsCloseCircuit). */
  maxStreamsCloseCircuit?: boolean
  /** MaxStreams=N per rendezvous circuit, 0..65535. */
  maxStreams?: number
  /** Authorized clients: base32 x25519 public keys (52 chars); enables v3 client auth. */
  clientAuthV3?: string[]
  /** Proof-of-work DoS defence (tor 0.4.9+). */
  powDefenses?: PowDefenses
}

const CONF_KEY = /^[A-Za-z0-9_]+$/
const INFO_KEY = /^[A-Za-z0-9_\-/.:@$=~,[\]]+$/
const EVENT_NAME = /^[A-Z0-9_]+$/
const SERVICE_ID = /^[a-z2-7]{56}$/
const X25519_B32 = /^[A-Za-z2-7]{52}$/
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

function bad (message: string): TorError {
  return new TorError('TOR_BAD_ARGUMENT', message)
}

function port (what: string, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad(`${what} ${n} is not a port number (1-65535)`)
  return n
}

export function getInfoCommand (keys: readonly string[]): string {
  if (keys.length === 0) throw bad('GETINFO needs at least one key')
  for (const k of keys) assertWord('GETINFO key', k, INFO_KEY)
  return `GETINFO ${keys.join(' ')}`
}

export function getConfCommand (keys: readonly string[]): string {
  if (keys.length === 0) throw bad('GETCONF needs at least one key')
  for (const k of keys) assertWord('config option', k, CONF_KEY)
  return `GETCONF ${keys.join(' ')}`
}

export function resetConfCommand (keys: readonly string[]): string {
  if (keys.length === 0) throw bad('RESETCONF needs at least one key')
  for (const k of keys) assertWord('config option', k, CONF_KEY)
  return `RESETCONF ${keys.join(' ')}`
}

function confValue (v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? '1' : '0'
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(`config value ${v} is not a finite number`)
    return String(v)
  }
  return quoteIfNeeded(v)
}

/**
 * `SETCONF Key=Value Key2="quoted value" Key3` — null (or []) resets a key to its default,
 * an array sets a repeatable option once per element.
 */
export function setConfCommand (entries: Readonly<Record<string, ConfValue>>): string {
  const parts: string[] = []
  for (const [key, value] of Object.entries(entries)) {
    assertWord('config option', key, CONF_KEY)
    if (value === null || (Array.isArray(value) && value.length === 0)) { parts.push(key); continue }
    const values = Array.isArray(value) ? value : [value]
    for (const v of values) parts.push(`${key}=${confValue(v)}`)
  }
  if (parts.length === 0) throw bad('SETCONF needs at least one entry')
  return `SETCONF ${parts.join(' ')}`
}

export function setEventsCommand (types: readonly string[]): string {
  for (const t of types) assertWord('event name', t, EVENT_NAME)
  return types.length === 0 ? 'SETEVENTS' : `SETEVENTS ${types.join(' ')}`
}

export function signalCommand (name: SignalName): string {
  assertWord('signal', name, /^[A-Z]+$/)
  return `SIGNAL ${name}`
}

export function delOnionCommand (serviceId: string): string {
  const id = serviceId.endsWith('.onion') ? serviceId.slice(0, -6) : serviceId
  assertSafeArgument('service id', id)
  if (!SERVICE_ID.test(id)) throw bad(`${JSON.stringify(serviceId.slice(0, 70))} is not a v3 onion service id (56 base32 characters)`)
  return `DEL_ONION ${id}`
}

export function authenticateCommand (secret: { hex: string } | { password: string } | null): string {
  if (secret === null) return 'AUTHENTICATE'
  if ('hex' in secret) return `AUTHENTICATE ${secret.hex}`
  return `AUTHENTICATE ${quoteString(secret.password)}`
}

function keyBlob (blob: string): string {
  const b = blob.startsWith('ED25519-V3:') ? blob.slice('ED25519-V3:'.length) : blob
  assertSafeArgument('ADD_ONION key', b)
  if (!BASE64.test(b) || Buffer.from(b, 'base64').byteLength !== 64) {
    throw bad('ADD_ONION key must be the base64 of a 64-byte expanded Ed25519 secret key (see torKeyBlob)')
  }
  return b
}

function portTarget (p: AddOnionPort): string {
  const virt = port('virtual port', p.virtualPort)
  if (p.target === undefined) return `Port=${virt}`
  const t = p.target
  assertSafeArgument('port target', t)
  if (t.startsWith('unix:')) {
    if (t.length <= 5 || /[\s",]/.test(t)) throw bad(`unix target ${JSON.stringify(t)} must be unix:/path without spaces, quotes or commas`)
  } else if (/^[0-9]+$/.test(t)) {
    port('target port', Number(t))
  } else {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):([0-9]+)$/.exec(t)
    if (m == null) throw bad(`port target ${JSON.stringify(t)} must be host:port, a port, or unix:/path`)
    port('target port', Number(m[2]))
  }
  return `Port=${virt},${t}`
}

/**
 * ```
 * ADD_ONION (NEW:ED25519-V3 | ED25519-V3:<base64>) [Flags=f1,f2] [MaxStreams=N]
 *           [PoWDefensesEnabled=1 [PoWQueueRate=N] [PoWQueueBurst=N]]
 *           1*(Port=virt[,target]) *(ClientAuthV3=<base32 x25519>)
 * ```
 */
export function addOnionCommand (opts: AddOnionOptions): string {
  const parts = ['ADD_ONION']
  if (opts.key.type === 'NEW') parts.push('NEW:ED25519-V3')
  else if (opts.key.type === 'ED25519-V3') parts.push(`ED25519-V3:${keyBlob(opts.key.blob)}`)
  else throw bad('ADD_ONION key.type must be NEW or ED25519-V3')
  const flags: string[] = []
  if (opts.detach === true) flags.push('Detach')
  if (opts.discardPK === true) flags.push('DiscardPK')
  if (opts.nonAnonymous === true) flags.push('NonAnonymous')
  if (opts.maxStreamsCloseCircuit === true) flags.push('MaxStreamsCloseCircuit')
  const clients = opts.clientAuthV3 ?? []
  if (clients.length > 0) flags.push('V3Auth')
  if (flags.length > 0) parts.push(`Flags=${flags.join(',')}`)
  if (opts.maxStreams !== undefined) {
    if (!Number.isInteger(opts.maxStreams) || opts.maxStreams < 0 || opts.maxStreams > 65535) throw bad('MaxStreams must be an integer in 0..65535')
    parts.push(`MaxStreams=${opts.maxStreams}`)
  }
  const pow = opts.powDefenses
  if (pow !== undefined) {
    parts.push(`PoWDefensesEnabled=${pow.enabled ? 1 : 0}`)
    for (const [name, v] of [['PoWQueueRate', pow.queueRate], ['PoWQueueBurst', pow.queueBurst]] as const) {
      if (v === undefined) continue
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw bad(`${name} must be a non-negative integer`)
      parts.push(`${name}=${v}`)
    }
  }
  if (opts.ports.length === 0) throw bad('ADD_ONION needs at least one port')
  for (const p of opts.ports) parts.push(portTarget(p))
  for (const c of clients) {
    assertSafeArgument('ClientAuthV3 key', c)
    if (!X25519_B32.test(c)) throw bad('ClientAuthV3 keys are base32 x25519 public keys of 52 characters')
    parts.push(`ClientAuthV3=${c}`)
  }
  return parts.join(' ')
}

export interface OnionClientAuthOptions {
  /** ClientName=: a label tor shows in ONION_CLIENT_AUTH_VIEW. */
  nickname?: string
  /** Keep the credential on disk (Flags=Permanent; needs ClientOnionAuthDir). */
  permanent?: boolean
}

function onionAddress (what: string, address: string): string {
  const id = address.endsWith('.onion') ? address.slice(0, -6) : address
  assertSafeArgument(what, id)
  if (!SERVICE_ID.test(id)) throw bad(`${JSON.stringify(address.slice(0, 70))} is not a v3 onion address (56 base32 characters)`)
  return id
}

/**
 * `ONION_CLIENT_AUTH_ADD <address> x25519:<base64 private key> [ClientName=..] [Flags=Permanent]`:
 * the client side of ClientAuthV3.
 */
export function onionClientAuthAddCommand (address: string, x25519PrivateKey: string, opts: OnionClientAuthOptions = {}): string {
  const id = onionAddress('onion address', address)
  assertSafeArgument('client auth key', x25519PrivateKey)
  if (!BASE64.test(x25519PrivateKey) || Buffer.from(x25519PrivateKey, 'base64').byteLength !== 32) {
    throw bad('the client auth key must be the base64 of a 32-byte x25519 private key')
  }
  const parts = ['ONION_CLIENT_AUTH_ADD', id, `x25519:${x25519PrivateKey}`]
  if (opts.nickname !== undefined) {
    assertWord('client nickname', opts.nickname, /^[A-Za-z0-9_-]{1,64}$/)
    parts.push(`ClientName=${opts.nickname}`)
  }
  if (opts.permanent === true) parts.push('Flags=Permanent')
  return parts.join(' ')
}

export function onionClientAuthRemoveCommand (address: string): string {
  return `ONION_CLIENT_AUTH_REMOVE ${onionAddress('onion address', address)}`
}
