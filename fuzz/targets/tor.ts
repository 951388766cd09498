/**
 * Tor layer decoders: control-port framing with every reply and event parser on what comes
 * out (src/tor/control), and the SOCKS client's reply to CONNECT (src/tor/socks.ts). The
 * framer is fed in chunks whose sizes follow from the input's length, so the incremental
 * paths (lines and data blocks split across chunks) are covered and each input replays alone.
 */
import { parseEvent, ReplyFramer, type ControlReply } from '../../src/tor/control/index.ts'
import { parseAddOnion, parseAuthChallenge, parseGetConf, parseGetInfo, parseOnionList, parseProtocolInfo } from '../../src/tor/control/replies.ts'
import { TorError } from '../../src/tor/errors.ts'
import { decodeSocksReply } from '../../src/tor/socks.ts'
import type { FuzzTarget } from '../harness.ts'

const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))
const isTorError = (err: unknown): boolean => err instanceof TorError

/** Replies as tor 0.4.9 sent them (from the project's recorded transcripts). */
const REPLIES = [
  '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control_auth_cookie"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n',
  '250 AUTHCHALLENGE SERVERHASH=851F98E68537458B1697485DE810AB4196013942793D6DA946475DCCA5DE07B7 SERVERNONCE=F9460F95E7CC699EE8173D3EB019D538FC3001887B82F6B46202E5831A88781E\r\n',
  '250-version=0.4.9.11\r\n250 OK\r\n',
  '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n250-status/circuit-established=1\r\n250+ns/all=\r\nr tnrelay1 B89LivQynjSwOgMhGRT+5yKaeAY Q1g3JQKDiD3rj0s0nlMI8u4/o7I 2038-01-01 00:00:00 127.0.0.1 23284 0\r\ns Exit Guard HSDir Running Stable V2Dir Valid\r\n..dot-stuffed\r\n.\r\n250 OK\r\n',
  '250-ServiceID=chkpdijsaiv3lopeqzveekeefychelb5sliovqiv4kikpg2547ez5had\r\n250-PrivateKey=ED25519-V3:0KH95lC+CzlGkRp5uesqvhr0TLgVT+5tohEsodqMlm/rfvsNOgK2+g0DeE9kPPWM7swoNtPnkuF3dmHlyRPsWg==\r\n250 OK\r\n',
  '250-ServiceID=d6ir2a4bmysspr3v2tgdlh4jakrlihzd4eqfx4r3hcthy4ligld6xeid\r\n250-ClientAuthV3=zdd4nroeypbmdqf7x263zo52xg4lpnvvwsz3fmnqv6xk3lflvkuq\r\n250 OK\r\n',
  '250+onions/current=\r\nchkpdijsaiv3lopeqzveekeefychelb5sliovqiv4kikpg2547ez5had\r\npg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd\r\n.\r\n250 OK\r\n',
  '250-onions/detached=lmzyoljdizbmieayoczgq5xazpuv2x3mgolihiw4tptyysbdtkox3qqd\r\n250 OK\r\n',
  '250-SocksPort=0\r\n250-ControlPort=127.0.0.1:auto\r\n250-ContactInfo\r\n250 CookieAuthentication=1\r\n',
  '250-ContactInfo=oht "test" \\ node\r\n250-ExitPolicy=accept 127.0.0.1:80\r\n250 ExitPolicy=reject *:*\r\n',
  '250-net/listeners/socks="127.0.0.1:33915"\r\n250 OK\r\n',
  '552 Unrecognized key "no-such-key"\r\n',
  '550 Onion address collision\r\n',
  '251 No credentials for "pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd"\r\n'
]

const EVENTS = [
  '650 CIRC 1 LAUNCHED BUILD_FLAGS=ONEHOP_TUNNEL,IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-22T01:44:16.758793\r\n',
  '650 CIRC 3 BUILT $EAD8FC6B6065D931EFA9CEC5346625EEC7BCF5F8~tnrelay0,$07CF4B8AF4329E34B03A03211914FEE7229A7806~tnrelay1 BUILD_FLAGS=IS_INTERNAL,NEED_UPTIME PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_CONNECTING REND_QUERY=pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd\r\n',
  '650 STREAM 32 NEW 0 pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd.onion:80 SOURCE_ADDR=127.0.0.1:33658 PURPOSE=USER CLIENT_PROTOCOL=SOCKS5 NYM_EPOCH=0 SESSION_GROUP=-5 ISO_FIELDS=SOCKS_USERNAME,SOCKS_PASSWORD,CLIENTADDR,SESSION_GROUP,NYM_EPOCH\r\n',
  '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"\r\n',
  '650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-3600 SOURCE=DIRSERV:127.0.0.1:7000\r\n',
  '650 HS_DESC CREATED pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd UNKNOWN UNKNOWN a1VQT3A/SYhOhIH2di2c30abg9iOOadfbKjyMQQ9frg\r\n',
  '650 HS_DESC UPLOAD pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd UNKNOWN $07CF4B8AF4329E34B03A03211914FEE7229A7806~tnrelay1 a1VQT3A/SYhOhIH2di2c30abg9iOOadfbKjyMQQ9frg HSDIR_INDEX=A16046C0F30117E1B42A073E9DD9B371F05F89DBD843CB48BD985D9CB2A6177C\r\n',
  '650 HS_DESC UPLOADED pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd UNKNOWN $EBDB4AA6029C0DF823CC523B5F9B0906BE86B39C~tnauth2\r\n',
  '650 HS_DESC FAILED pg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszspudyd NO_AUTH $EBDB4AA6029C0DF823CC523B5F9B0906BE86B39C~tnauth2 REASON=UPLOAD_REJECTED\r\n',
  '650-CONF_CHANGED\r\n650-SocksPort=0\r\n650 OK\r\n',
  '650+NEWCONSENSUS\r\nr tnrelay1 B89LivQynjSwOgMhGRT+5yKaeAY Q1g3JQKDiD3rj0s0nlMI8u4/o7I 2038-01-01 00:00:00 127.0.0.1 23284 0\r\ns Exit Guard HSDir Running Stable V2Dir Valid\r\n.\r\n650 OK\r\n'
]

const CHUNKS = [1, 7, 64, 3, 512, 2, 4096]

/** Frames `input` in chunks and runs every parser over each reply; returns the replies. */
function frameAndParse (input: Uint8Array, parsers: 'all' | 'events'): ControlReply[] {
  // Small limits, so the fuzzer reaches them with short inputs.
  const framer = new ReplyFramer({ maxLineBytes: 512, maxReplyBytes: 8192, maxReplyLines: 64 })
  const replies: ControlReply[] = []
  let firstError: unknown
  for (let off = 0, k = input.byteLength; off < input.byteLength; k++) {
    const n = CHUNKS[k % CHUNKS.length]
    try {
      replies.push(...framer.push(input.subarray(off, off + n)))
    } catch (err) {
      firstError = err
      break
    }
    off += n
  }
  // Every parser on every reply: a parser handed the wrong reply type must reject it cleanly.
  for (const r of replies) {
    const runs: Array<() => unknown> = parsers === 'events'
      ? [() => parseEvent(r)]
      : [() => parseEvent(r), () => parseGetInfo(r), () => parseGetInfo(r, ['version']), () => parseGetConf(r), () => parseProtocolInfo(r),
          () => parseAddOnion(r), () => parseAuthChallenge(r), () => { for (const l of r.lines) parseOnionList(l.data ?? l.text) }]
    for (const run of runs) {
      try { run() } catch (err) { if (!isTorError(err)) throw err }
    }
  }
  if (firstError !== undefined) throw firstError
  return replies
}

export const torTargets: FuzzTarget[] = [
  {
    name: 'tor.control-reply',
    seeds: () => [...REPLIES.map(ascii), ascii(REPLIES.slice(0, 4).join('') + EVENTS[0])],
    decode: (input) => frameAndParse(input, 'all'),
    rejects: isTorError,
    maxInputBytes: 8192
  },
  {
    name: 'tor.control-event',
    seeds: () => [...EVENTS.map(ascii), ascii(EVENTS.join(''))],
    decode: (input) => frameAndParse(input, 'events'),
    rejects: isTorError,
    maxInputBytes: 8192
  },
  {
    name: 'tor.socks-reply',
    seeds: () => [
      Uint8Array.of(5, 0, 0, 1, 0, 0, 0, 0, 0, 0),
      Uint8Array.of(5, 0xf0, 0, 1, 0, 0, 0, 0, 0, 0),
      Uint8Array.of(5, 0, 0, 4, ...new Uint8Array(16), 0x1f, 0x90),
      Uint8Array.of(5, 0, 0, 3, 5, 0x61, 0x62, 0x63, 0x64, 0x65, 0, 80, 0x68, 0x69),
      Uint8Array.of(5, 0xf2, 0, 0)
    ],
    // As socksConnect reads: 4 bytes, then exactly what the decoder asks for, until complete.
    decode: (input) => {
      let have = Math.min(4, input.byteLength)
      for (;;) {
        const d = decodeSocksReply(input.subarray(0, have))
        if (!('need' in d)) {
          if (d.bytes !== have) throw new Error(`decoder says the reply is ${d.bytes} bytes, but it was given ${have}`)
          return d
        }
        if (d.need <= 0) throw new Error(`decoder asked for ${d.need} more bytes`)
        if (have + d.need > input.byteLength) return undefined // the peer closed mid-reply
        have += d.need
      }
    },
    rejects: isTorError,
    maxInputBytes: 512
  }
]
