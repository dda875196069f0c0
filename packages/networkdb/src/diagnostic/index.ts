export { startDiagnosticServer, DIAGNOSTIC_PATHS } from './server.js'
export type { DiagnosticServer, DiagnosticServerOptions } from './server.js'
