// Shared by the reducer and the validator (modules import each other by relative path).
export const MAX_ENTRIES = 200
export const MAX_NAME = 40
export const MAX_MESSAGE = 280
