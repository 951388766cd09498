/**
 * One parser per reply type, over framed replies (no sockets). Each throws
 * TOR_COMMAND_FAILED (with tor's `status`) for 4xx/5xx replies and TOR_CONTROL_PROTOCOL for
 * a 2xx reply whose content does not have the documented shape.
 */
import { fromHex } from '../../core/index.ts'
import { TorError } from '../errors.ts'
import type { ControlReply } from './framing.ts'
import { replyMessage } from './framing.ts'
import { splitArgs, unquote } from './quoting.ts'

function protocolError (what: string, cause?: unknown): TorError {
  return new TorError('TOR_CONTROL_PROTOCOL', `unexpected ${what} reply from tor`, { cause })
}

/** Throws TOR_COMMAND_FAILED unless the reply status is 2xx. */
export function expectOk (command: string, reply: ControlReply): ControlReply {
  if (reply.status >= 200 && reply.status < 300) return reply
  throw new TorError('TOR_COMMAND_FAILED', `tor refused ${command}: ${reply.status} ${replyMessage(reply)}`, { status: reply.status })
}

export interface ProtocolInfo {
  protocolVersion: number
  /** E.g. ['COOKIE', 'SAFECOOKIE']. */
  authMethods: string[]
  cookieFile?: string
  torVersion: string
}

/**
 * ```
 * 250-PROTOCOLINFO 1
 * 250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control_auth_cookie"
 * 250-VERSION Tor="0.4.9.11"
 * 250 OK
 * ```
 */
export function parseProtocolInfo (reply: ControlReply): ProtocolInfo {
  expectOk('PROTOCOLINFO', reply)
  const info: ProtocolInfo = { protocolVersion: 0, authMethods: [], torVersion: '' }
  let seenHeader = false
  try {
    for (const line of reply.lines) {
      const sp = line.text.indexOf(' ')
      const head = sp === -1 ? line.text : line.text.slice(0, sp)
      const rest = sp === -1 ? '' : line.text.slice(sp + 1)
      if (head === 'PROTOCOLINFO') {
        seenHeader = true
        info.protocolVersion = Number(rest.trim())
      } else if (head === 'AUTH') {
        const { keywords } = splitArgs(rest)
        info.authMethods = (keywords.METHODS ?? '').split(',').filter(m => m !== '')
        if (keywords.COOKIEFILE !== undefined) info.cookieFile = keywords.COOKIEFILE
      } else if (head === 'VERSION') {
        info.torVersion = splitArgs(rest).keywords.Tor ?? ''
      }
    }
  } catch (err) {
    throw protocolError('PROTOCOLINFO', err)
  }
  if (!seenHeader || !Number.isInteger(info.protocolVersion)) throw protocolError('PROTOCOLINFO')
  return info
}

export interface AuthChallenge {
  serverHash: Uint8Array
  serverNonce: Uint8Array
}

/** `250 AUTHCHALLENGE SERVERHASH=<64 hex> SERVERNONCE=<64 hex>` */
export function parseAuthChallenge (reply: ControlReply): AuthChallenge {
  expectOk('AUTHCHALLENGE', reply)
  const text = reply.lines[reply.lines.length - 1].text
  try {
    const { positional, keywords } = splitArgs(text)
    if (positional[0] !== 'AUTHCHALLENGE') throw new Error('no AUTHCHALLENGE keyword')
    const serverHash = fromHex(keywords.SERVERHASH ?? '')
    const serverNonce = fromHex(keywords.SERVERNONCE ?? '')
    if (serverHash.byteLength !== 32 || serverNonce.byteLength !== 32) throw new Error('SERVERHASH/SERVERNONCE must be 32 bytes')
    return { serverHash, serverNonce }
  } catch (err) {
    throw protocolError('AUTHCHALLENGE', err)
  }
}

/**
 * ```
 * 250-version=0.4.9.11
 * 250+config-text=
 * ControlPort 127.0.0.1:0
 * .
 * 250 OK
 * ```
 * Values are returned as tor sent them (single-line values unquoted if quoted).
 */
export function parseGetInfo (reply: ControlReply, keys?: readonly string[]): Map<string, string> {
  expectOk('GETINFO', reply)
  const out = new Map<string, string>()
  try {
    for (const line of reply.lines) {
      if (line.divider === ' ' && line.data === undefined && (line.text === 'OK' || !line.text.includes('='))) continue
      const eq = line.text.indexOf('=')
      if (eq <= 0) throw new Error(`no key=value in ${JSON.stringify(line.text.slice(0, 40))}`)
      const key = line.text.slice(0, eq)
      const value = line.divider === '+' ? (line.data ?? '') : unquoteLoose(line.text.slice(eq + 1))
      out.set(key, value)
    }
  } catch (err) {
    throw protocolError('GETINFO', err)
  }
  if (keys !== undefined) {
    for (const k of keys) if (!out.has(k)) throw protocolError(`GETINFO (no value for ${k})`)
  }
  return out
}

function unquoteLoose (v: string): string {
  return v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? unquote(v) : v
}

/**
 * ```
 * 250-SocksPort=9050
 * 250-SocksPort=9150      (a key may repeat)
 * 250 ControlPort          (no "=": unset / default)
 * ```
 * A key without value maps to [].
 */
export function parseGetConf (reply: ControlReply): Map<string, string[]> {
  expectOk('GETCONF', reply)
  const out = new Map<string, string[]>()
  try {
    for (const line of reply.lines) {
      const eq = line.text.indexOf('=')
      const key = eq === -1 ? line.text : line.text.slice(0, eq)
      if (key === '' || key.includes(' ')) throw new Error(`bad GETCONF line ${JSON.stringify(line.text.slice(0, 40))}`)
      const values = out.get(key) ?? []
      if (eq !== -1) values.push(unquoteLoose(line.text.slice(eq + 1)))
      out.set(key, values)
    }
  } catch (err) {
    throw protocolError('GETCONF', err)
  }
  return out
}

export interface AddOnionResult {
  /** The 56-character onion address without ".onion". */
  serviceId: string
  /** `ED25519-V3:<base64>` when tor generated the key and DiscardPK was not set. */
  privateKey?: string
  /** `ClientAuth` lines (v2 only; kept for completeness), name → blob. */
  clientAuth?: Record<string, string>
  /** The v3 client keys tor accepted (echoed `ClientAuthV3` lines). */
  clientAuthV3?: string[]
}

/**
 * ```
 * 250-ServiceID=<56 chars>
 * 250-PrivateKey=ED25519-V3:<base64>
 * 250 OK
 * ```
 */
export function parseAddOnion (reply: ControlReply): AddOnionResult {
  expectOk('ADD_ONION', reply)
  let serviceId: string | undefined
  let privateKey: string | undefined
  let clientAuth: Record<string, string> | undefined
  let clientAuthV3: string[] | undefined
  for (const line of reply.lines) {
    const eq = line.text.indexOf('=')
    if (eq === -1) continue
    const key = line.text.slice(0, eq)
    const value = line.text.slice(eq + 1)
    if (key === 'ServiceID') serviceId = value
    else if (key === 'PrivateKey') privateKey = value
    else if (key === 'ClientAuthV3') (clientAuthV3 ??= []).push(value)
    else if (key === 'ClientAuth') {
      const c = value.indexOf(':')
      clientAuth ??= {}
      clientAuth[c === -1 ? value : value.slice(0, c)] = c === -1 ? '' : value.slice(c + 1)
    }
  }
  if (serviceId === undefined || !/^[a-z2-7]{56}$/.test(serviceId)) throw protocolError('ADD_ONION (no valid ServiceID)')
  const result: AddOnionResult = { serviceId }
  if (privateKey !== undefined) result.privateKey = privateKey
  if (clientAuth !== undefined) result.clientAuth = clientAuth
  if (clientAuthV3 !== undefined) result.clientAuthV3 = clientAuthV3
  return result
}

/**
 * GETINFO onions/current or onions/detached: one id per line (data reply), a single id
 * inline, or empty.
 */
export function parseOnionList (value: string): string[] {
  const ids = value.split(/\r?\n/).map(s => s.trim()).filter(s => s !== '')
  for (const id of ids) {
    if (!/^[a-z2-7]{56}$/.test(id)) throw protocolError(`onions list (bad id ${JSON.stringify(id.slice(0, 60))})`)
  }
  return ids
}
