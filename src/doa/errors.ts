/** Errors of the DOA layer (code prefix DOA_). */
import { OhtStackError } from '../core/errors.ts'

/**
 * Codes (callers branch on these, never on message text):
 * - DOA_BAD_ARGUMENT: an API argument is out of range or of the wrong shape.
 * - DOA_BAD_JSON: a JSON document is malformed, too large, too deep or not canonical data.
 * - DOA_BAD_MANIFEST: a manifest is malformed or fails a field rule (name, semver, paths …).
 * - DOA_BAD_SIGNATURE: a manifest, op, snapshot or name record signature does not verify.
 * - DOA_KEY_MISMATCH: a record or manifest belongs to another app, author, zone or label.
 * - DOA_BAD_RECORD: a fetched OHT record is not of the expected kind, salt or encoding.
 * - DOA_BAD_BUNDLE: a bundle or its index is malformed, or a file path is unsafe.
 * - DOA_CHUNK_MISMATCH: a chunk does not hash to its index entry, or an index to its root.
 * - DOA_TOO_LARGE: an input is over a size limit (bundle, file, op, state, record).
 * - DOA_NOT_FOUND: a record, chunk, version, app or petname is not there.
 * - DOA_CACHE: the local app cache on disk is inconsistent or unwritable.
 * - DOA_BAD_OP: an operation is malformed (version, lengths, lamport, parents).
 * - DOA_OP_REJECTED: an operation is well formed but refused (bad seq, equivocation, validator).
 * - DOA_BAD_SNAPSHOT: a snapshot is malformed or its state hash does not match its state.
 * - DOA_SNAPSHOT_MISMATCH: replaying the ops does not give the snapshot's heads or state.
 * - DOA_SANDBOX_CPU: untrusted code ran past its instruction budget.
 * - DOA_SANDBOX_MEMORY: untrusted code ran past its memory limit.
 * - DOA_SANDBOX_STACK: untrusted code recursed past its stack limit.
 * - DOA_SANDBOX_FORBIDDEN: untrusted code reached for time, randomness, host objects or eval.
 * - DOA_SANDBOX_BAD_OUTPUT: untrusted code returned something that is not bounded JSON data.
 * - DOA_SANDBOX_THREW: untrusted code threw an error of its own.
 * - DOA_SANDBOX_LOAD: an app's reducer or validator module failed to load.
 * - DOA_SANDBOX_CRASHED: the WebAssembly engine itself trapped; that sandbox is discarded.
 * - DOA_SANDBOX_CLOSED: the sandbox was used after dispose().
 * - DOA_BAD_NAME: a name, label or petname is malformed.
 * - DOA_NAME_EXPIRED: a name record is past its expiry.
 * - DOA_NAME_REVOKED: a name (or a whole zone) was revoked by its owner.
 * - DOA_NAME_LOOP: a name's delegations go deeper than allowed or loop.
 * - DOA_NETWORK: the OHT or every host was unreachable, or no holder stored a write.
 * - DOA_QUOTA: a host's per-app quota (bytes, ops, requests) refuses the request.
 * - DOA_CAPABILITY: the app did not request, or the user did not grant, the capability needed.
 * - DOA_NOT_HOSTED: the peer asked does not host that app.
 * - DOA_BAD_MESSAGE: a peer's DOA protocol message is malformed or over its limits.
 * - DOA_CLOSED: the DOA service, session or host was used after stop()/close().
 */
export type DoaErrorCode =
  | 'DOA_BAD_ARGUMENT' | 'DOA_BAD_JSON' | 'DOA_BAD_MANIFEST' | 'DOA_BAD_SIGNATURE' | 'DOA_KEY_MISMATCH'
  | 'DOA_BAD_RECORD' | 'DOA_BAD_BUNDLE' | 'DOA_CHUNK_MISMATCH' | 'DOA_TOO_LARGE' | 'DOA_NOT_FOUND'
  | 'DOA_CACHE' | 'DOA_BAD_OP' | 'DOA_OP_REJECTED' | 'DOA_BAD_SNAPSHOT' | 'DOA_SNAPSHOT_MISMATCH'
  | 'DOA_SANDBOX_CPU' | 'DOA_SANDBOX_MEMORY' | 'DOA_SANDBOX_STACK' | 'DOA_SANDBOX_FORBIDDEN'
  | 'DOA_SANDBOX_BAD_OUTPUT' | 'DOA_SANDBOX_THREW' | 'DOA_SANDBOX_LOAD' | 'DOA_SANDBOX_CRASHED'
  | 'DOA_SANDBOX_CLOSED' | 'DOA_BAD_NAME' | 'DOA_NAME_EXPIRED' | 'DOA_NAME_REVOKED' | 'DOA_NAME_LOOP'
  | 'DOA_NETWORK' | 'DOA_QUOTA' | 'DOA_CAPABILITY' | 'DOA_NOT_HOSTED' | 'DOA_BAD_MESSAGE' | 'DOA_CLOSED'

export class DoaError extends OhtStackError {
  override name = 'DoaError'
  declare readonly code: DoaErrorCode

  constructor (code: DoaErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
