/**
 * The OHT SDK: what applications build on. `createNode()` gives a running node of the onion
 * hash table over tor (or TCP for development) with put/get/stop.
 *
 * @example
 * import { createNode } from 'oht'
 * const node = await createNode({ transport: 'tor', seed, bootstrap })
 * const { key } = await node.put(new TextEncoder().encode('hello'))
 * console.log(new TextDecoder().decode((await node.get(key))?.value))
 * await node.stop()
 */
export { createNode, type CreateNodeInit, type OhtSdkNode } from './create-node.ts'
