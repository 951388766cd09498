// Every host checks each op with this before the reducer sees it. Return true, or a reason.
import { MAX_NAME, MAX_MESSAGE } from './limits.js'

export function validate (state, body, ctx) {
  if (body === null || typeof body !== 'object' || body.type !== 'sign') return 'the only op is { type: "sign", name, message }'
  if (typeof body.name !== 'string' || body.name.trim() === '' || body.name.length > MAX_NAME) return `a name is 1..${MAX_NAME} characters`
  if (typeof body.message !== 'string' || body.message.trim() === '' || body.message.length > MAX_MESSAGE) return `a message is 1..${MAX_MESSAGE} characters`
  return true
}
