/**
 * Package entry: the public SDK of the OHT stack.
 *
 * @example
 * import { createNode, generateIdentity } from 'oht'
 * const node = await createNode({ transport: 'tcp' })
 */
export { createNode, describePut, type CreateNodeInit, type OhtSdkNode, type SdkPutResult } from './sdk/index.ts'
export type { GetResult, PutResult, PutMutableOptions, PeerContact, OhtRecord } from './oht/index.ts'
export { immutableKey, mutableKey } from './oht/index.ts'
export { generateIdentity, identityFromSeed, deriveChildSeed, parseOnionAddress, onionAddressFromPublicKey, type Identity } from './crypto/index.ts'
export { NetError, type NetErrorCode } from './net/index.ts'
export { OhtStackError, isCodedError } from './core/index.ts'
