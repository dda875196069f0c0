export { openSocketInNetns, netnsPath, IP_NETNS_DIR } from './socket.js'
export type { OpenSocketOptions, NetnsSocket, SocketType } from './socket.js'
export * from './errors.js'
