// The command line, parsed once by the parent into a readonly object.
// Children never see argv: what they need travels in the IPC message.
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import yargs from 'yargs'
import { parseCidr, type AccessRules } from './cidr.js'
import { SERVICE_NAMES, isServiceName } from './services/index.js'

export type Overflow = 'queue' | 'reject'

export interface Options {
  readonly host: string
  readonly port: number
  readonly service: string | null
  readonly handler: string | null
  readonly maxChildren: number
  readonly overflow: Overflow
  readonly queueLimit: number
  readonly maxPerIp: number
  readonly access: AccessRules
  readonly idleTimeout: number
  readonly grace: number
  readonly verbose: boolean
}

/** What the command line asks for: serve with these options, or print and exit. */
export type Parsed =
  | { readonly kind: 'serve'; readonly options: Options }
  | { readonly kind: 'exit'; readonly code: number; readonly output: string }

export const USAGE_EXIT = 2

const one = (name: string, value: unknown): unknown => {
  if (Array.isArray(value)) throw new Error(`--${name} was given more than once`)
  return value
}

const integer = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => (raw: unknown): number => {
  const value = one(name, raw)
  const n = /^\d+$/.test(String(value)) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`
    throw new Error(`--${name} must be ${range}, got ${JSON.stringify(value)}`)
  }
  return n
}

const choice = <T extends string>(name: string, choices: readonly T[]) => (raw: unknown): T => {
  const value = String(one(name, raw))
  const found = choices.find((c) => c === value)
  if (found === undefined) throw new Error(`--${name}: unknown value "${value}" (choose from ${choices.join(', ')})`)
  return found
}

const cidrs = (name: string) => (raw: unknown): AccessRules['allow'] =>
  [raw].flat().map((text) => {
    try {
      return parseCidr(String(text))
    } catch (err) {
      throw new Error(`--${name}: ${(err as Error).message}`)
    }
  })

const handlerPath = (raw: unknown): string => {
  const path = resolve(String(one('handler', raw)))
  let isFile = false
  try {
    isFile = statSync(path).isFile()
  } catch {
    // reported below
  }
  if (!isFile) throw new Error(`--handler: no such file: ${path}`)
  return path
}

const packageVersion = (): string => {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg: { name?: string; version?: string } = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'))
      if (pkg.name === 'forkserver' && pkg.version) return pkg.version
    } catch {
      // not here; look one directory up
    }
    if (dir.pathname === '/') return 'unknown'
  }
}

const parser = () =>
  yargs()
    .scriptName('forkserver')
    .usage('Usage: forkserver [options]\n\nA fork-per-connection TCP server: accept, fork a child, hand it the socket, reap it.')
    .options({
      host: { requiresArg: true, type: 'string', default: '127.0.0.1', describe: 'address to listen on', coerce: (v: unknown) => String(one('host', v)) },
      port: { requiresArg: true, type: 'string', default: '7000', describe: 'port; 0 = any free port', coerce: integer('port', 0, 65535) },
      service: { requiresArg: true, type: 'string', describe: `built-in service: ${SERVICE_NAMES.join(', ')} [default: echo]`, coerce: choice('service', SERVICE_NAMES) },
      handler: { requiresArg: true, type: 'string', describe: 'module whose default export (socket, info) serves each connection, instead of --service', coerce: handlerPath },
      'max-children': { requiresArg: true, type: 'string', default: '40', describe: "live children at once (tcpserver's -c)", coerce: integer('max-children', 1) },
      overflow: { requiresArg: true, type: 'string', default: 'queue', describe: 'over --max-children: queue or reject', coerce: choice('overflow', ['queue', 'reject'] as const) },
      'queue-limit': { requiresArg: true, type: 'string', default: '128', describe: 'connections that may wait for a free child; past it they are rejected', coerce: integer('queue-limit', 1) },
      'max-per-ip': { requiresArg: true, type: 'string', default: '0', describe: 'live connections per source address; 0 = off', coerce: integer('max-per-ip', 0) },
      allow: { requiresArg: true, type: 'string', array: true, default: [], describe: 'only these CIDRs may connect (repeatable)', coerce: cidrs('allow') },
      deny: { requiresArg: true, type: 'string', array: true, default: [], describe: 'these CIDRs may not connect (repeatable; most specific rule wins)', coerce: cidrs('deny') },
      'idle-timeout': { requiresArg: true, type: 'string', default: '0', describe: 'seconds of silence before the child closes the connection; 0 = never', coerce: integer('idle-timeout', 0) },
      grace: { requiresArg: true, type: 'string', default: '10', describe: 'seconds allowed for the drain at shutdown', coerce: integer('grace', 0) },
      verbose: { alias: 'v', type: 'boolean', default: false, describe: 'tcpserver-style log lines on stderr' },
    })
    .conflicts('handler', 'service')
    .version(packageVersion())
    .help()
    .alias('help', 'h')
    .strict()
    .wrap(100)

/** Parses argv (without node and script) into options, or into what to print and the exit code. */
export const parseOptions = async (argv: readonly string[]): Promise<Parsed> =>
  new Promise((done) => {
    void parser().parse([...argv], {}, (err: Error | undefined, args: Record<string, unknown>, output: string) => {
      if (err) {
        // yargs' messages can span lines; a usage error is one line.
        const message = err.message.replace(/\s*\n\s*/g, ' ')
        return done({ kind: 'exit', code: USAGE_EXIT, output: `forkserver: ${message} (see --help)\n` })
      }
      if (output) return done({ kind: 'exit', code: 0, output: `${output}\n` })
      const service = args.service as string | undefined
      const handler = (args.handler as string | undefined) ?? null
      done({
        kind: 'serve',
        options: {
          host: args.host as string,
          port: args.port as number,
          service: handler === null ? service ?? 'echo' : null,
          handler,
          maxChildren: args['max-children'] as number,
          overflow: args.overflow as Overflow,
          queueLimit: args['queue-limit'] as number,
          maxPerIp: args['max-per-ip'] as number,
          access: { allow: args.allow as AccessRules['allow'], deny: args.deny as AccessRules['deny'] },
          idleTimeout: args['idle-timeout'] as number,
          grace: args.grace as number,
          verbose: args.verbose as boolean,
        },
      })
    })
  })

