/** Network namespaces for tests: testkit/netns.ts, shared with the benchmarks (bench/ never imports test/). */
export * from '../../testkit/netns.ts'
