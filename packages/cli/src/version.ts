/** The version of @cnm/cli, reported by `cnm version` and `GET /version`. */
export const VERSION = '0.0.0'
