/** A private Tor network per test file, and loopback servers: testkit/tor-testnet.ts, shared with the benchmarks (bench/ never imports test/). */
export * from '../../testkit/tor-testnet.ts'
