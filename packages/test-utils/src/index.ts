export { canUseNetns, netnsAvailable, uniquePrefix, run, nsExec, NetnsFixture, listNetns } from './netns.js'
export { capturingLogger } from './logger.js'
export type { LogLine } from './logger.js'
