/**
 * Connects to a tor that is already running (by control port or unix socket) and
 * authenticates, picking the best method tor offers (SAFECOOKIE > COOKIE > HASHEDPASSWORD >
 * NULL, done by TorControl.authenticate).
 */
import type { AbortOptions } from '../core/index.ts'
import { connectTorControl } from './control/index.ts'
import type { ControlTarget, TorControl, TorControlInit } from './control/index.ts'

export interface AttachTorOptions extends TorControlInit, AbortOptions {
  /** For HASHEDPASSWORD authentication. @default undefined */
  password?: string
  /** Cookie file to use instead of the one PROTOCOLINFO names. @default undefined */
  cookiePath?: string
}

/**
 * @example
 * const control = await attachTor({ port: 9051 }, { signal })
 * console.log(await control.getInfoOne('version'))
 * await control.close()
 */
export async function attachTor (target: ControlTarget, opts: AttachTorOptions = {}): Promise<TorControl> {
  const { password, cookiePath, signal, ...init } = opts
  const control = await connectTorControl(target, { ...init, signal })
  try {
    await control.authenticate({
      ...(password !== undefined ? { password } : {}),
      ...(cookiePath !== undefined ? { cookiePath } : {}),
      signal
    })
    return control
  } catch (err) {
    await control.close().catch(() => {})
    throw err
  }
}
