/**
 * Authentication material: the control cookie file and the SAFECOOKIE handshake.
 *
 * SAFECOOKIE (control-spec 3.24), both hashes HMAC-SHA256 over
 * CookieString | ClientNonce | ServerNonce (32 + 32 + 32 bytes):
 * ```
 *   client -> AUTHCHALLENGE SAFECOOKIE <client nonce hex>
 *   tor    -> 250 AUTHCHALLENGE SERVERHASH=<hex> SERVERNONCE=<hex>
 *             ServerHash = HMAC(key "Tor safe cookie authentication server-to-controller hash")
 *   client    checks ServerHash (constant time): proves tor knows the cookie, so we never
 *             hand our proof to an impostor listening on the port
 *   client -> AUTHENTICATE <hex of HMAC(key "Tor safe cookie authentication controller-to-server hash")>
 * ```
 * Cookie bytes never reach a log.
 *
 * Whose cookie file to trust (see TorControl.authenticate): SAFECOOKIE may read the file tor
 * names in PROTOCOLINFO, because nothing derived from it leaves before the peer has proved it
 * knows the same bytes. COOKIE sends the file's bytes as they are, so it only uses a file we
 * were told to trust (configured, or the one a tor we launched writes in our data dir): else
 * anything listening on the port could name any 32-byte file and receive its contents.
 */
import { createHmac } from 'node:crypto'
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { secretEqual } from '../../core/index.ts'
import { TorError } from '../errors.ts'

export const COOKIE_BYTES = 32
export const SAFECOOKIE_NONCE_BYTES = 32
const SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash'
const CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash'

/**
 * Reads a control cookie, refusing anything that is not a regular file of exactly 32 bytes.
 * Opened non-blocking: a FIFO (or a device) named as the cookie would otherwise block the
 * open() until someone writes to it.
 */
export async function readCookieFile (path: string): Promise<Uint8Array> {
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    throw new TorError('TOR_AUTH_COOKIE', `cannot read the tor control cookie ${path}: check that tor runs with CookieAuthentication 1 and that this user may read the file`, { cause: err })
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw new TorError('TOR_AUTH_COOKIE', `tor control cookie ${path} is not a regular file: it is not a tor cookie file`)
    if (st.size !== COOKIE_BYTES) {
      throw new TorError('TOR_AUTH_COOKIE', `tor control cookie ${path} is ${st.size} bytes, expected ${COOKIE_BYTES}: it is not a tor cookie file`)
    }
    const buf = new Uint8Array(COOKIE_BYTES)
    const { bytesRead } = await handle.read(buf, 0, COOKIE_BYTES, 0)
    if (bytesRead !== COOKIE_BYTES) throw new TorError('TOR_AUTH_COOKIE', `tor control cookie ${path} was truncated while reading`)
    return buf
  } finally {
    await handle.close()
  }
}

function hmac (key: string, cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  const h = createHmac('sha256', key)
  h.update(cookie)
  h.update(clientNonce)
  h.update(serverNonce)
  return new Uint8Array(h.digest())
}

export function safeCookieServerHash (cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return hmac(SERVER_KEY, cookie, clientNonce, serverNonce)
}

export function safeCookieClientHash (cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return hmac(CLIENT_KEY, cookie, clientNonce, serverNonce)
}

/** Constant-time check of tor's SERVERHASH; throws TOR_AUTH_FAILED when it does not match. */
export function verifyServerHash (cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array, serverHash: Uint8Array): void {
  const expected = safeCookieServerHash(cookie, clientNonce, serverNonce)
  if (!secretEqual(expected, serverHash)) {
    throw new TorError('TOR_AUTH_FAILED', 'tor\'s SAFECOOKIE server hash does not match the cookie: the process on this control port does not know our cookie (wrong cookie file, or not the tor we started)')
  }
}
