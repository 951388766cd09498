/**
 * Connects to a tor that is already running (by control port or unix socket) and
 * authenticates with the best method that is safe with what the caller gave
 * (TorControl.authenticate): SAFECOOKIE, which makes tor prove it knows the cookie first;
 * COOKIE only with a cookie file the caller trusts (`cookiePath`); HASHEDPASSWORD with
 * `password`; NULL only with `allowNullAuth`.
 */
import type { AbortOptions } from '../core/index.ts'
import { connectTorControl } from './control/index.ts'
import type { ControlTarget, TorControl, TorControlInit } from './control/index.ts'

export interface AttachTorOptions extends TorControlInit, AbortOptions {
  /** For HASHEDPASSWORD authentication. @default undefined */
  password?: string
  /**
   * tor's cookie file, as configured (e.g. /run/tor/control.authcookie). Needed for plain
   * COOKIE auth; SAFECOOKIE can do without it. @default undefined
   */
  cookiePath?: string
  /** Accept a tor that requires no authentication (NULL). @default false */
  allowNullAuth?: boolean
}

/**
 * @example
 * const control = await attachTor({ port: 9051 }, { signal })
 * console.log(await control.getInfoOne('version'))
 * await control.close()
 */
export async function attachTor (target: ControlTarget, opts: AttachTorOptions = {}): Promise<TorControl> {
  const { password, cookiePath, allowNullAuth, signal, ...init } = opts
  const control = await connectTorControl(target, { ...init, signal })
  try {
    await control.authenticate({
      ...(password !== undefined ? { password } : {}),
      ...(cookiePath !== undefined ? { cookiePath } : {}),
      ...(allowNullAuth === true ? { allowNullAuth } : {}),
      signal
    })
    return control
  } catch (err) {
    await control.close().catch(() => {})
    throw err
  }
}
