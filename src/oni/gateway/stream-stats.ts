/**
 * Per-VM connections and bytes, from tor's own account of them: every TransPort stream appears
 * in STREAM events with the VM's address as SOURCE_ADDR (NEW), the circuit it left on
 * (SENTCONNECT, SUCCEEDED) and its end (FAILED, CLOSED); STREAM_BW events carry the bytes each
 * stream moved, about once a second:
 *
 *   650 STREAM 44 NEW 0 10.236.121.41:80 SOURCE_ADDR=10.152.152.11:41122 PURPOSE=USER CLIENT_PROTOCOL=TRANS …
 *   650 STREAM 44 SENTCONNECT 11 <onion>.onion:80 …
 *   650 STREAM_BW 44 517 1380 2026-12-02T17:20:01.12    (written by the VM, read by the VM, time)
 *
 * Bounded: at most `maxStreams` open streams and `maxVms` VMs are tracked (the least recently
 * seen VM is forgotten first); each VM keeps its last `circuitsPerVm` distinct circuit ids.
 */
import type { Clock } from '../../core/index.ts'
import type { TorEvent } from '../../tor/control/index.ts'

export interface VmStreamStats {
  address: string
  open: number
  total: number
  failed: number
  /** Bytes the VM sent into tor. */
  bytesUp: number
  /** Bytes tor delivered to the VM. */
  bytesDown: number
  /** Recent circuits this VM's streams used (tor's circuit ids, newest last). */
  circuits: string[]
  lastSeen: number
}

export interface StreamAccountingInit {
  /** True for addresses behind the gateway (a VM's). */
  isInside: (address: string) => boolean
  clock: Clock
  /** @default 65_536 */
  maxStreams?: number
  /** @default 1_024 */
  maxVms?: number
  /** @default 8 */
  circuitsPerVm?: number
}

interface Tracked { vm: VmStreamStats, failed: boolean }

const ID_RE = /^[A-Za-z0-9]{1,16}$/
const RECENTLY_CLOSED = 4_096

/** `host:port` (IPv6 hosts in brackets) → host. */
function hostOf (addrPort: string): string | undefined {
  const m = /^\[?([0-9A-Fa-f:.]+?)\]?:\d{1,5}$/.exec(addrPort)
  return m?.[1]
}

export class StreamAccounting {
  readonly totals = { open: 0, total: 0, failed: 0, bytesUp: 0, bytesDown: 0, untracked: 0 }
  private readonly streams = new Map<string, Tracked>()
  /** Streams that just closed: a last STREAM_BW may follow their CLOSED. */
  private readonly closed = new Map<string, Tracked>()
  private readonly byVm = new Map<string, VmStreamStats>()
  private readonly maxStreams: number
  private readonly maxVms: number
  private readonly circuitsPerVm: number

  constructor (private readonly init: StreamAccountingInit) {
    this.maxStreams = init.maxStreams ?? 65_536
    this.maxVms = init.maxVms ?? 1_024
    this.circuitsPerVm = init.circuitsPerVm ?? 8
  }

  vms (): VmStreamStats[] {
    return [...this.byVm.values()].map(v => ({ ...v, circuits: [...v.circuits] }))
  }

  vm (address: string): VmStreamStats | undefined {
    const v = this.byVm.get(address)
    return v === undefined ? undefined : { ...v, circuits: [...v.circuits] }
  }

  /** tor went away: its streams went with it. */
  torGone (): void {
    for (const t of this.streams.values()) { t.vm.open = Math.max(0, t.vm.open - 1) }
    this.totals.open = 0
    this.streams.clear()
    this.closed.clear()
  }

  onEvent (e: TorEvent): void {
    if (e.type === 'STREAM') this.onStream(e.streamId, e.status, e.circuitId, e.sourceAddr, e.args.CLIENT_PROTOCOL)
    else if (e.type === 'RAW' && e.name === 'STREAM_BW') this.onBandwidth(e.body)
  }

  private vmFor (address: string): VmStreamStats {
    let v = this.byVm.get(address)
    if (v !== undefined) {
      this.byVm.delete(address)
      this.byVm.set(address, v)
      return v
    }
    if (this.byVm.size >= this.maxVms) {
      const [oldest] = this.byVm.keys()
      this.byVm.delete(oldest)
    }
    v = { address, open: 0, total: 0, failed: 0, bytesUp: 0, bytesDown: 0, circuits: [], lastSeen: this.init.clock.now() }
    this.byVm.set(address, v)
    return v
  }

  private onStream (id: string, status: string, circuitId: string, sourceAddr: string | undefined, protocol: string | undefined): void {
    if (!ID_RE.test(id)) return
    if (status === 'NEW') {
      if (sourceAddr === undefined || (protocol !== undefined && protocol !== 'TRANS')) return
      const host = hostOf(sourceAddr)
      if (host === undefined || !this.init.isInside(host)) return
      if (this.streams.size >= this.maxStreams) { this.totals.untracked++; return }
      const vm = this.vmFor(host)
      vm.open++
      vm.total++
      vm.lastSeen = this.init.clock.now()
      this.totals.open++
      this.totals.total++
      this.streams.set(id, { vm, failed: false })
      return
    }
    const t = this.streams.get(id)
    if (t === undefined) return
    if ((status === 'SENTCONNECT' || status === 'SUCCEEDED') && circuitId !== '0' && ID_RE.test(circuitId)) {
      const c = t.vm.circuits
      const at = c.indexOf(circuitId)
      if (at !== -1) c.splice(at, 1)
      c.push(circuitId)
      if (c.length > this.circuitsPerVm) c.shift()
    } else if (status === 'FAILED' && !t.failed) {
      t.failed = true
      t.vm.failed++
      this.totals.failed++
    } else if (status === 'CLOSED') {
      t.vm.open = Math.max(0, t.vm.open - 1)
      this.totals.open = Math.max(0, this.totals.open - 1)
      this.streams.delete(id)
      this.closed.set(id, t)
      if (this.closed.size > RECENTLY_CLOSED) { const [first] = this.closed.keys(); this.closed.delete(first) }
    }
  }

  private onBandwidth (body: string): void {
    const [id, written, read] = body.split(' ')
    if (id === undefined || !ID_RE.test(id) || !/^\d{1,15}$/.test(written ?? '') || !/^\d{1,15}$/.test(read ?? '')) return
    const t = this.streams.get(id) ?? this.closed.get(id)
    if (t === undefined) return
    const up = Number(written)
    const down = Number(read)
    t.vm.bytesUp += up
    t.vm.bytesDown += down
    t.vm.lastSeen = this.init.clock.now()
    this.totals.bytesUp += up
    this.totals.bytesDown += down
  }
}
