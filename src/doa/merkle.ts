/**
 * Merkle tree hash over a list of leaves, as RFC 6962 §2.1 defines it (Certificate
 * Transparency): leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left ||
 * right), the split at the largest power of two below n, and SHA-256("") for no leaves. The
 * 0x00/0x01 prefixes are the domain separation that keeps a leaf from being passed off as an
 * inner node (the second-preimage attack on plain Merkle trees).
 *
 * In a bundle the leaves are the chunk keys (SHA-256 of each chunk), so the root commits to
 * every chunk and its position. Inclusion proofs follow RFC 6962 §2.1.1 (PATH) and are checked
 * with the algorithm of RFC 9162 §2.1.3.2.
 */
import { bytesEqual } from '../core/bytes.ts'
import { sha256 } from '../crypto/index.ts'
import { DoaError } from './errors.ts'

const LEAF = Uint8Array.of(0)
const NODE = Uint8Array.of(1)

export function leafHash (leaf: Uint8Array): Uint8Array { return sha256(LEAF, leaf) }
export function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array { return sha256(NODE, left, right) }

function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** The RFC 6962 Merkle tree hash of `leaves`. */
export function merkleRoot (leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0))
  let level = leaves.map(leafHash)
  // Bottom-up with the odd node carried up unpaired gives exactly the RFC's left-balanced
  // shape (largest power of two on the left), without recursion.
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]))
    if (level.length % 2 === 1) next.push(level[level.length - 1])
    level = next
  }
  return level[0]
}

/** The audit path for leaf `index` among `leaves` (RFC 6962 §2.1.1), nearest sibling first. */
export function merkleProof (leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isSafeInteger(index) || index < 0 || index >= leaves.length) {
    throw new DoaError('DOA_BAD_ARGUMENT', `leaf index ${index} is outside a tree of ${leaves.length} leaves`)
  }
  const path = (m: number, lo: number, hi: number): Uint8Array[] => {
    const n = hi - lo
    if (n === 1) return []
    const k = split(n)
    if (m < k) return [...path(m, lo, lo + k), subtreeHash(leaves, lo + k, hi)]
    return [...path(m - k, lo + k, hi), subtreeHash(leaves, lo, lo + k)]
  }
  return path(index, 0, leaves.length)
}

function subtreeHash (leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array {
  return merkleRoot(leaves.slice(lo, hi))
}

/** True if `leaf` sits at `index` of a tree of `size` leaves with root `root`. */
export function verifyMerkleProof (root: Uint8Array, size: number, index: number, leaf: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(index) || index < 0 || index >= size) return false
  if (proof.length > 64) return false
  let fn = index
  let sn = size - 1
  let r = leafHash(leaf)
  for (const p of proof) {
    if (p.byteLength !== 32 || sn === 0) return false
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r)
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2) }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2)
  }
  return sn === 0 && bytesEqual(r, root)
}
