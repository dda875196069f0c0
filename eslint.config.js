// ESLint flat config for the whole monorepo (STYLE.md §11, floors from ARCHITECTURE.md).
// `pnpm lint` runs `eslint .`; TypeScript under packages/*/{src,test} is linted with type information
// (typescript-eslint projectService, each package's own tsconfig.json).
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

// ---------------------------------------------------------------------------------------------
// Import rules. ESLint keeps only the last `no-restricted-imports` setting that applies to a file,
// so every block below builds its full option list through `restrictedImports()`.

/** Deep imports into another package's files: only what `exports` lists is public (STYLE.md §11). */
const deepImportPatterns = [
  {
    regex: '^@cnm/[^/]+/(src|dist)(/|$)',
    message: 'Deep import: use the package entry point (or a subpath it exports), never its src/ or dist/.',
  },
  {
    regex: '^(\\.\\./)+[\\w-][\\w.-]*/(src|dist)(/|$)',
    message: "Deep import into another package's files: import it by its @cnm/ name.",
  },
]

/** Node built-ins that do I/O: interface packages may not import them (ARCHITECTURE.md "Never"). */
const ioBuiltins = [
  'child_process',
  'cluster',
  'dgram',
  'dns',
  'dns/promises',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'inspector',
  'module',
  'net',
  'os',
  'readline',
  'repl',
  'tls',
  'tty',
  'worker_threads',
]

/**
 * The floors of ARCHITECTURE.md. A package imports only packages on lower floors; within floor 2 only
 * along the chains bitseq → idm and memberlist → networkdb. Add new packages here.
 */
const floors = {
  types: 0,
  ipamapi: 1,
  driverapi: 1,
  storeapi: 1,
  bitseq: 2,
  idm: 2,
  datastore: 2,
  logger: 2,
  osl: 2,
  iptables: 2,
  ipvs: 2,
  memberlist: 2,
  networkdb: 2,
  ipam: 3,
  'drivers-bridge': 3,
  resolver: 3,
  controller: 4,
  cli: 5,
}
/** Same-floor imports the architecture allows (importer → imported). */
const sameFloorChains = { idm: ['bitseq'], networkdb: ['memberlist'] }

/** The @cnm packages `name`'s src may import. */
function allowedImports(name) {
  const floor = floors[name]
  return Object.keys(floors).filter((other) => {
    if (other === name) return true
    if (sameFloorChains[name]?.includes(other)) return true
    if (floors[other] >= floor) return false
    // The controller composes drivers and IPAMs it receives as factories: floors 0–2 only.
    if (name === 'controller' && floors[other] === 3) return false
    // A driver never talks to networkdb itself; the controller's cluster agent does.
    if (name.startsWith('drivers-') && other === 'networkdb') return false
    return true
  })
}

const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Full `no-restricted-imports` options: deep imports are always forbidden, plus `extra` patterns. */
function restrictedImports({ paths = [], patterns = [] } = {}) {
  return ['error', { paths, patterns: [...deepImportPatterns, ...patterns] }]
}

function floorRules(name) {
  const allowed = allowedImports(name)
  const patterns = [
    {
      regex: `^@cnm/(?!(${allowed.map(escapeRegex).join('|')})(/|$))`,
      message:
        `ARCHITECTURE.md floors: @cnm/${name} (floor ${floors[name]}) may import only ` +
        allowed.map((n) => `@cnm/${n}`).join(', ') +
        (name === 'controller' ? '; concrete drivers and IPAMs arrive as factories from its caller.' : '.'),
    },
  ]
  const paths = []
  if (floors[name] <= 1) {
    for (const mod of ioBuiltins) {
      const message = 'Interface packages do no I/O: no Node built-ins that do I/O (ARCHITECTURE.md).'
      paths.push({ name: mod, message }, { name: `node:${mod}`, message })
    }
  }
  return restrictedImports({ paths, patterns })
}

const cliImport = {
  regex: '^@cnm/cli(/|$)',
  message: 'Nothing under packages/ imports @cnm/cli (floor 5); only tools/ and the CLI scenario tests do.',
}
const privateImport = {
  regex: '^@cnm/(test-utils|integration-tests)(/|$)',
  message: 'Private test packages are never imported from published sources.',
}

// ---------------------------------------------------------------------------------------------

const tsFiles = ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts']
const jsFiles = ['**/*.js', '**/*.mjs', '**/*.cjs']
// TypeScript files outside every package tsconfig (build and test configs): no type information.
const untypedTsFiles = ['*.ts', 'packages/*/*.ts', 'tools/**/*.ts']

export default tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', '**/build/**', 'bench/results/**', 'packages/osl/native/**/*.node'],
  },
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    // `let timer` read by a callback defined before the assignment: `const` there would risk a TDZ error.
    rules: { 'prefer-const': ['error', { ignoreReadBeforeAssign: true }] },
  },
  {
    rules: { 'no-restricted-imports': restrictedImports() },
  },
  {
    files: ['packages/**'],
    ignores: ['packages/cli/**', 'packages/integration-tests/**'],
    rules: { 'no-restricted-imports': restrictedImports({ patterns: [cliImport] }) },
  },

  // TypeScript with type information.
  {
    files: tsFiles,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
      // Async methods without `await` are how implementations of async contracts (null IPAM, memory
      // store, fakes) turn a synchronous throw into a rejection; dropping `async` would change that.
      '@typescript-eslint/require-await': 'off',
      // Off: its "receiver accepts the original type" check flags the `as readonly string[]` and
      // `as 'a' | 'b'` inside un-annotated exported DEFAULT_* objects, and removing them (its autofix)
      // changes those objects' public types (to `readonly never[]`, `string`).
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Re-rejecting a caught value (`catch (err) { return Promise.reject(err) }`) is legitimate.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `interface FooOptions extends AbortOptions {}` (STYLE.md §4) and reserved `<Thing>Init` objects.
      '@typescript-eslint/no-empty-object-type': [
        'error',
        { allowInterfaces: 'with-single-extends', allowWithName: '(Init|Options)$' },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: untypedTsFiles,
    extends: [tseslint.configs.recommended, tseslint.configs.disableTypeChecked],
    rules: {
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
    },
  },

  {
    // vitest's asymmetric matchers (`expect.stringContaining()`, `expect.any()`) are typed `any`.
    files: ['packages/*/test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },

  // Library sources: no console, no env reads, no `any`, and the import floors.
  {
    files: ['packages/*/src/**/*.ts'],
    rules: {
      'no-console': 'error',
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Only the daemon/CLI layer reads env vars (STYLE.md §7).' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': restrictedImports({ patterns: [cliImport, privateImport] }),
    },
  },
  ...Object.keys(floors).map((name) => ({
    files: [`packages/${name}/src/**/*.ts`],
    rules: { 'no-restricted-imports': floorRules(name) },
  })),

  // The faces and the test harnesses.
  {
    // The CLI is the program: it reads its environment. Its output goes through injected writers,
    // so `no-console` stays on.
    files: ['packages/cli/src/**/*.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Private test helpers: env switches (CNM_REQUIRE_NETNS) are theirs to read.
    files: ['packages/test-utils/src/**/*.ts', 'packages/integration-tests/src/**/*.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // The scenario tests drive the real CLI (client and daemon), so they import it.
    files: ['packages/integration-tests/src/**/*.ts'],
    rules: { 'no-restricted-imports': restrictedImports() },
  },

  // Plain JavaScript (benchmarks, tools, native build script, this file): no type information.
  {
    files: jsFiles,
    rules: {
      'no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
)
