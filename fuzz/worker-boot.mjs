// A worker thread does not inherit its parent's tsx loader: register it, then load the
// TypeScript worker. (Plain JavaScript, so that it loads before any loader is in place.)
import { register } from 'tsx/esm/api'
register()
await import('./worker.ts')
