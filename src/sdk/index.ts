/**
 * The OHT SDK: what applications (and the daemon) build on. `createNode()` gives a running
 * node of the onion hash table over tor, TCP for development, or `local` with no network:
 * put/get (mutable records with seq and compare-and-swap), join, routing peers, counters,
 * a tor reconnect that keeps its own records, and stop(). With a `dataDir` the node keeps what
 * it wrote in a 0600 journal, so after a restart it serves and republishes its own records and
 * never reuses a mutable seq.
 *
 * @example
 * import { createNode, describePut } from 'oht'
 * const node = await createNode({ transport: 'tor', seed, bootstrap, dataDir: '/var/lib/oht' })
 * const r = await node.put(new TextEncoder().encode('hello'))
 * console.log(describePut(r))    // "stored 20 of 20" | "stored 1 of 20: only this node holds it"
 * console.log(new TextDecoder().decode((await node.get(r.key))?.value))
 * const m = await node.putMutable({ salt: new TextEncoder().encode('motd'), value, cas: 3 })  // m.seq === 4
 * await node.stop()
 */
export { createNode, type CreateNodeInit, type OhtSdkNode, type SdkPutResult, type SdkPeer, type SdkNodeStats, type SdkJoinResult, type SdkTransport, type TorAttach } from './create-node.ts'
export { describePut, onlyHere, type PutOutcome } from './put-summary.ts'
export { createFileJournal, JOURNAL_FILE, type FileJournal, type FileJournalInit, type FileJournalComponents } from './file-journal.ts'
export { createLocalNet } from './local-net.ts'
