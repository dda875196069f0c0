import { driverComplianceTests } from '@cnm/driverapi/testing'
import { hostDriver, nullDriver } from '../src/index.js'

// The built-in trivial drivers implement NetworkDriver: they run the generic contract.
for (const [name, make] of [
  ['host', hostDriver],
  ['null', nullDriver],
] as const) {
  driverComplianceTests({
    name: `${name} driver compliance`,
    setup: () => make(),
    assignsAddress: false,
    rejectsDeleteWithEndpoints: false,
    implementsRestore: true,
  })
}
