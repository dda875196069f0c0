export { defaultLogger } from './logger.js'
export type { DefaultLoggerInit } from './logger.js'
export { noopLogger } from '@cnm/types'
