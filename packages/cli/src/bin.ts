#!/usr/bin/env node
// The `cnm` executable: `cnm daemon`, `cnm network …`, `cnm sandbox …`, `cnm run …`, `cnm demo`.
import { main } from './cli.js'

process.exitCode = await main(process.argv.slice(2))
