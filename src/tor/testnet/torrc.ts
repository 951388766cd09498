/**
 * torrc options for each role of the private network. Every setting here was learned on this
 * kind of machine (tiny loopback network, 2 cores); the comments say why each one is there.
 * The launcher adds DataDirectory, ControlPort, cookie auth, SocksPort and the owner pid.
 */
import type { Torrc } from '../launcher.ts'

export type NodeRole = 'authority' | 'relay' | 'client'

/** Voting cadence: 10 s is the floor (vote and dist delays below 2 s are refused). */
export const VOTING_INTERVAL_S = 10
/**
 * The first valid-after time is put this far after launch: authorities and relays are up and
 * have published their descriptors before the first vote (VA - 4 s), so the very first
 * consensus lists every relay (without it the first round often fails and bootstrap takes
 * 11-37 s). 9 s is the most that keeps VA1 in the authorities' first round.
 */
export const FIRST_CONSENSUS_LEAD_S = 9

export interface AuthorityLine {
  nickname: string
  orPort: number
  dirPort: number
  v3ident: string
  fingerprint: string
}

/** `DirAuthority` line every node of the network gets. */
export function dirAuthorityLine (a: AuthorityLine): string {
  return `${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} 127.0.0.1:${a.dirPort} ${a.fingerprint}`
}

/**
 * The voting offset that makes the first valid-after time fall `lead` seconds after `nowMs`,
 * and that time (ms since epoch).
 */
export function votingSchedule (nowMs: number, leadS = FIRST_CONSENSUS_LEAD_S): { offsetS: number, firstValidAfterMs: number } {
  const va1 = Math.floor(nowMs / 1000) + leadS
  return { offsetS: va1 % VOTING_INTERVAL_S, firstValidAfterMs: va1 * 1000 }
}

/** Settings every tor of the network shares, clients that join later included. */
export function networkTorrc (authorities: AuthorityLine[]): Torrc {
  return {
    TestingTorNetwork: 1,
    DirAuthority: authorities.map(dirAuthorityLine),
    // chutney's tiny-network settings: every relay gets the flags at once
    PathsNeededToBuildCircuits: '0.67',
    TestingDirAuthVoteGuard: '*',
    TestingDirAuthVoteExit: '*',
    TestingDirAuthVoteHSDir: '*',
    TestingMinExitFlagThreshold: 0,
    V3AuthNIntervalsValid: 2,
    ClientUseIPv6: 0,
    // On loopback circuits build in ms, tor learns a tiny timeout and then kills good
    // circuits: new onion connections take 0.5-3 s instead of ~0.2 s.
    LearnCircuitBuildTimeout: 0,
    CircuitBuildTimeout: 30,
    // No GeoIP: faster start, ~10 MB less per tor.
    GeoIPFile: '',
    GeoIPv6File: '',
    // Relays otherwise linger 30 s on shutdown.
    ShutdownWaitLength: 0,
    SafeLogging: 0,
    LogTimeGranularity: 1
  }
}

export interface NodeTorrcInput {
  role: NodeRole
  nickname: string
  dataDir: string
  orPort?: number
  dirPort?: number
  votingOffsetS?: number
  authorities: AuthorityLine[]
}

/** The full torrc options for one node (without the launcher-owned ones). */
export function nodeTorrc (input: NodeTorrcInput): Torrc {
  const torrc: Torrc = {
    ...networkTorrc(input.authorities),
    Nickname: input.nickname,
    Log: ['notice stdout', `notice file ${input.dataDir}/notice.log`]
  }
  if (input.role === 'authority' || input.role === 'relay') {
    if (input.orPort === undefined) throw new Error(`${input.nickname}: a relay needs an ORPort`)
    Object.assign(torrc, {
      Address: '127.0.0.1',
      ORPort: `127.0.0.1:${input.orPort}`,
      // publish at once, no reachability self-test
      AssumeReachable: 1,
      // Exits to loopback only: nothing in this network can leave the machine.
      ExitRelay: 1,
      ExitPolicyRejectPrivate: 0,
      ExitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'],
      // Diffs from every older consensus kept idle tors at ~16 % of a core; 2 min is plenty.
      MaxConsensusAgeForDiffs: '2 minutes',
      // no DNS at all
      ServerDNSDetectHijacking: 0,
      ServerDNSTestAddresses: '',
      ServerDNSResolvConfFile: '/dev/null',
      ContactInfo: 'oht-testnet@localhost'
    })
  }
  if (input.role === 'authority') {
    if (input.dirPort === undefined) throw new Error(`${input.nickname}: an authority needs a DirPort`)
    Object.assign(torrc, {
      DirPort: `127.0.0.1:${input.dirPort}`,
      AuthoritativeDirectory: 1,
      V3AuthoritativeDirectory: 1,
      TestingV3AuthInitialVotingInterval: VOTING_INTERVAL_S,
      TestingV3AuthInitialVoteDelay: 2,
      TestingV3AuthInitialDistDelay: 2,
      V3AuthVotingInterval: VOTING_INTERVAL_S,
      V3AuthVoteDelay: 2,
      V3AuthDistDelay: 2,
      TestingV3AuthVotingStartOffset: input.votingOffsetS ?? 0,
      // Every relay Stable at once: onion-service circuits need a Stable last hop, without
      // it bootstrap sits at 95 % and HS circuits fail.
      AuthDirVoteStableGuaranteeMinUptime: 0,
      AuthDirVoteStableGuaranteeMTBF: 0
    })
  }
  return torrc
}
