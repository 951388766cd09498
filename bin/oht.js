#!/usr/bin/env node
// The `oht` command: registers tsx (the project runs its TypeScript sources directly, never
// compiled), then hands over to src/cli/main.ts.
import { register } from 'tsx/esm/api'

register()
const { runCli } = await import('../src/cli/main.ts')
await runCli(process.argv.slice(2))
