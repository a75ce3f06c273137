// The command line, parsed once by the parent into a readonly object.
// Children never see argv: what they need travels in the IPC message.
import { readFileSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import yargs from 'yargs'
import { parseCidr, type AccessRules } from './cidr.js'
import { resolveCredentials, type Credentials } from './credentials.js'
import { parseRate, type Rate } from './rate-limit.js'
import { SERVICE_NAMES } from './services/index.js'

export type Overflow = 'queue' | 'reject'
export type Model = 'fork' | 'prefork'
export type LogFormat = 'text' | 'json'

/**
 * Where the server listens: a TCP address, a Unix-domain socket file, or a
 * listening descriptor it inherited (--fd, or systemd's socket activation).
 */
export type Endpoint =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'path'; readonly path: string }
  | { readonly kind: 'fd'; readonly fd: number; readonly from: '--fd' | 'LISTEN_FDS' }

const MODELS = ['fork', 'prefork'] as const
const LOG_FORMATS = ['text', 'json'] as const
const TCP_DEFAULTS = { host: '127.0.0.1', port: 7000 } as const
/** systemd passes its sockets from this descriptor on (SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3
const FORK_DEFAULTS = { maxChildren: 40, overflow: 'queue', queueLimit: 128, maxPerIp: 0 } as const
const PREFORK_DEFAULTS = { workers: availableParallelism(), maxConnsPerChild: 0 } as const
/** Options that belong to one model only, by their command-line names. */
const ONLY: Record<Model, readonly string[]> = {
  fork: ['max-children', 'overflow', 'queue-limit', 'max-per-ip', 'rate', 'spares'],
  prefork: ['workers', 'max-conns-per-child'],
}

export interface Options {
  readonly model: Model
  readonly endpoint: Endpoint
  readonly service: string | null
  readonly handler: string | null
  /** --exec: the program and its arguments, run with the connection as stdin and stdout; or null. */
  readonly exec: readonly string[] | null
  readonly maxChildren: number
  readonly overflow: Overflow
  readonly queueLimit: number
  readonly maxPerIp: number
  readonly spares: number
  /** --rate, or null when off. */
  readonly rate: Rate | null
  readonly workers: number
  readonly maxConnsPerChild: number
  readonly access: AccessRules
  readonly idleTimeout: number
  readonly grace: number
  readonly maxLifetime: number
  /** --user/--group as ids, or null to run children as the parent runs. */
  readonly credentials: Credentials | null
  readonly verbose: boolean
  readonly logFormat: LogFormat
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

const rateOption = (raw: unknown): Rate => {
  try {
    return parseRate(String(one('rate', raw)))
  } catch (err) {
    throw new Error(`--rate: ${(err as Error).message}`)
  }
}

const socketPath = (raw: unknown): string => {
  const path = String(one('path', raw))
  if (path === '') throw new Error('--path must not be empty')
  // sockaddr_un holds at most 107 bytes and a NUL.
  if (Buffer.byteLength(resolve(path)) > 107) throw new Error(`--path is too long for a Unix socket (at most 107 bytes): ${path}`)
  return resolve(path)
}

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
      host: { requiresArg: true, type: 'string', describe: `address to listen on; :: for IPv6 and IPv4 both [default: ${TCP_DEFAULTS.host}]`, coerce: (v: unknown) => String(one('host', v)) },
      port: { requiresArg: true, type: 'string', describe: `port; 0 = any free port [default: ${TCP_DEFAULTS.port}]`, coerce: integer('port', 0, 65535) },
      path: { requiresArg: true, type: 'string', describe: 'listen on a Unix-domain socket at this path instead of TCP', coerce: socketPath },
      fd: { requiresArg: true, type: 'string', describe: 'listen on this inherited listening descriptor (as systemd passes with LISTEN_FDS, used on its own)', coerce: integer('fd', 0, 65535) },
      exec: { type: 'boolean', describe: 'run the program after -- for each connection, with the connection as its stdin and stdout: --exec -- CMD [ARGS...]' },
      service: { requiresArg: true, type: 'string', describe: `built-in service: ${SERVICE_NAMES.join(', ')} [default: echo]`, coerce: choice('service', SERVICE_NAMES) },
      handler: { requiresArg: true, type: 'string', describe: 'module whose default export (socket, info) serves each connection, instead of --service', coerce: handlerPath },
      model: { requiresArg: true, type: 'string', default: 'fork', describe: 'fork: a child per connection; prefork: workers that accept for themselves', coerce: choice('model', MODELS) },
      'max-children': { requiresArg: true, type: 'string', describe: `fork: live children at once (tcpserver's -c) [default: ${FORK_DEFAULTS.maxChildren}]`, coerce: integer('max-children', 1) },
      overflow: { requiresArg: true, type: 'string', describe: `fork: over --max-children, queue or reject [default: ${FORK_DEFAULTS.overflow}]`, coerce: choice('overflow', ['queue', 'reject'] as const) },
      'queue-limit': { requiresArg: true, type: 'string', describe: `fork: connections that may wait for a free child [default: ${FORK_DEFAULTS.queueLimit}]`, coerce: integer('queue-limit', 1) },
      'max-per-ip': { requiresArg: true, type: 'string', describe: 'fork: live connections per source address; 0 = off [default: 0]', coerce: integer('max-per-ip', 0) },
      spares: { requiresArg: true, type: 'string', describe: 'fork: children forked ahead, waiting for a connection (they count toward --max-children) [default: 0]', coerce: integer('spares', 0) },
      rate: { requiresArg: true, type: 'string', describe: 'fork: new connections per source address, N/SECONDS (e.g. 20/10); off by default', coerce: rateOption },
      workers: { requiresArg: true, type: 'string', describe: `prefork: worker processes [default: the CPU count, ${PREFORK_DEFAULTS.workers}]`, coerce: integer('workers', 1) },
      'max-conns-per-child': { requiresArg: true, type: 'string', describe: 'prefork: connections a worker serves before it is replaced; 0 = never [default: 0]', coerce: integer('max-conns-per-child', 0) },
      allow: { requiresArg: true, type: 'string', array: true, default: [], describe: 'only these CIDRs may connect (repeatable)', coerce: cidrs('allow') },
      deny: { requiresArg: true, type: 'string', array: true, default: [], describe: 'these CIDRs may not connect (repeatable; most specific rule wins)', coerce: cidrs('deny') },
      'idle-timeout': { requiresArg: true, type: 'string', default: '0', describe: 'seconds of silence before the child closes the connection; 0 = never', coerce: integer('idle-timeout', 0) },
      grace: { requiresArg: true, type: 'string', default: '10', describe: 'seconds allowed for the drain at shutdown', coerce: integer('grace', 0) },
      'max-lifetime': { requiresArg: true, type: 'string', default: '0', describe: 'seconds a child may live before it is ended (SIGTERM, then SIGKILL); 0 = no limit', coerce: integer('max-lifetime', 0) },
      user: { requiresArg: true, type: 'string', describe: 'run children as this user (name or uid); needs root', coerce: (v: unknown) => String(one('user', v)) },
      group: { requiresArg: true, type: 'string', describe: "run children with this group (name or gid); default: the --user's group; needs root", coerce: (v: unknown) => String(one('group', v)) },
      verbose: { alias: 'v', type: 'boolean', default: false, describe: 'tcpserver-style log lines on stderr (text format)' },
      'log-format': { requiresArg: true, type: 'string', default: 'text', describe: 'text: tcpserver-style lines; json: one JSON object per event, every event', coerce: choice('log-format', LOG_FORMATS) },
    })
    .version(packageVersion())
    .help()
    .alias('help', 'h')
    .strict()
    .wrap(100)

const usage = (message: string): Parsed =>
  // yargs' messages can span lines; a usage error is one line.
  ({ kind: 'exit', code: USAGE_EXIT, output: `forkserver: ${message.replace(/\s*\n\s*/g, ' ')} (see --help)\n` })

const FLAGS = /^(?:--help|--version|--verbose|--exec|-h|-v)=/
/** Option names yargs trips over (it keeps options in plain objects): never ours. */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype))

/** Mistakes yargs would not report, or would report with its own stack trace. */
const precheck = (options: readonly string[]): Parsed | null => {
  const flags = options.filter((arg) => arg.startsWith('-'))
  // yargs reads a value given to a flag (--verbose=yes) as false, silently.
  const valued = flags.find((arg) => FLAGS.test(arg))
  if (valued !== undefined) return usage(`${valued.split('=')[0]} takes no value, got "${valued}"`)
  const inherited = flags.map((arg) => arg.replace(/^--?(?:no-)?/, '').split('=')[0] ?? '').find((name) => INHERITED.has(name))
  return inherited === undefined ? null : usage(`Unknown argument: ${inherited}`)
}

/**
 * Parses argv (without node and script) into options, or into what to print
 * and the exit code. What follows `--` is the --exec command, left as it is.
 * `env` is read for systemd's LISTEN_FDS and LISTEN_PID only.
 */
export const parseOptions = async (argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Parsed> =>
  new Promise((done) => {
    const split = argv.indexOf('--')
    const options = split < 0 ? argv : argv.slice(0, split)
    const command = split < 0 ? [] : argv.slice(split + 1)
    const mistake = precheck(options)
    if (mistake !== null) return done(mistake)
    try {
      void parser().parse([...options], {}, (err: Error | undefined, args: Record<string, unknown>, output: string) => {
        if (err) return done(usage(err.message))
        if (output) return done({ kind: 'exit', code: 0, output: `${output}\n` })
        done(toOptions(args, command, env))
      })
    } catch (err) {
      // Should yargs throw after all, the user still gets one line.
      done(usage(err instanceof Error ? err.message : String(err)))
    }
  })

/** Options that need a TCP peer's address. */
const TCP_ONLY = ['allow', 'deny', 'rate', 'max-per-ip'] as const

const given = (args: Record<string, unknown>, name: string): boolean =>
  args[name] !== undefined && !(Array.isArray(args[name]) && args[name].length === 0)

/** Where to listen: at most one of --path, --fd and --host/--port; else systemd's socket, else TCP. */
const toEndpoint = (args: Record<string, unknown>, env: NodeJS.ProcessEnv): Endpoint | string => {
  const tcp = given(args, 'host') || given(args, 'port')
  if (given(args, 'fd') && (tcp || given(args, 'path'))) return '--fd cannot be given with --host, --port or --path: the descriptor is already bound'
  if (given(args, 'fd')) return { kind: 'fd', fd: args.fd as number, from: '--fd' }
  if (given(args, 'path') && tcp) return '--path cannot be given with --host or --port: a Unix socket has neither'
  if (given(args, 'path')) {
    const tcpOnly = TCP_ONLY.find((name) => given(args, name))
    if (tcpOnly !== undefined) return `--${tcpOnly} cannot be given with --path: a Unix socket's peers have no address`
    return { kind: 'path', path: args.path as string }
  }
  // Socket activation (sd_listen_fds): the variables are for this process only.
  if (!tcp && env.LISTEN_PID === String(process.pid) && Number(env.LISTEN_FDS) >= 1) {
    return { kind: 'fd', fd: SD_LISTEN_FDS_START, from: 'LISTEN_FDS' }
  }
  return { kind: 'tcp', host: (args.host as string | undefined) ?? TCP_DEFAULTS.host, port: (args.port as number | undefined) ?? TCP_DEFAULTS.port }
}

/** The parsed arguments, checked across options and given their defaults. */
const toOptions = (args: Record<string, unknown>, command: readonly string[], env: NodeJS.ProcessEnv): Parsed => {
  const stray = (args._ as unknown[] | undefined) ?? []
  if (stray.length > 0) return usage(`unexpected argument: ${String(stray[0])}`)
  const exec = args.exec === true
  if (!exec && command.length > 0) return usage(`unexpected argument: ${command[0]} (to run a program per connection: --exec -- CMD [ARGS...])`)
  if (exec && command.length === 0) return usage('--exec needs a program after --, as in: --exec -- cat')
  if (exec && command[0] === '') return usage('--exec: the program name is empty')
  const serving = ['exec', 'handler', 'service'].filter((name) => given(args, name) && args[name] !== false)
  if (serving.length > 1) return usage(`${serving.map((name) => `--${name}`).join(' and ')} cannot be given together`)
  if (exec && (args['idle-timeout'] as number) > 0) {
    return usage('--idle-timeout cannot be used with --exec: the program reads and writes the connection, unseen by forkserver')
  }
  const endpoint = toEndpoint(args, env)
  if (typeof endpoint === 'string') return usage(endpoint)
  const model = args.model as Model
  const other: Model = model === 'fork' ? 'prefork' : 'fork'
  const misplaced = ONLY[other].find((name) => args[name] !== undefined)
  if (misplaced !== undefined) {
    const why = other === 'fork'
      ? 'prefork workers accept for themselves, so the parent sees no connection to count or queue'
      : 'it applies to --model prefork only'
    return usage(`--${misplaced} is not available with --model ${model}: ${why}`)
  }
  let credentials: Credentials | null
  try {
    credentials = resolveCredentials(args.user as string | undefined, args.group as string | undefined)
  } catch (err) {
    return usage((err as Error).message)
  }
  if (credentials !== null && process.getuid?.() !== 0) {
    return usage(`--user and --group need root to switch ids, and forkserver runs as uid ${process.getuid?.()}`)
  }
  const maxChildren = (args['max-children'] as number | undefined) ?? FORK_DEFAULTS.maxChildren
  const spares = (args.spares as number | undefined) ?? 0
  if (spares > maxChildren) return usage(`--spares ${spares} is more than --max-children ${maxChildren}: spares count toward it`)
  const handler = (args.handler as string | undefined) ?? null
  return {
    kind: 'serve',
    options: {
      model,
      endpoint,
      service: handler === null && !exec ? (args.service as string | undefined) ?? 'echo' : null,
      handler,
      exec: exec ? command : null,
      maxChildren,
      spares,
      overflow: (args.overflow as Overflow | undefined) ?? FORK_DEFAULTS.overflow,
      queueLimit: (args['queue-limit'] as number | undefined) ?? FORK_DEFAULTS.queueLimit,
      maxPerIp: (args['max-per-ip'] as number | undefined) ?? FORK_DEFAULTS.maxPerIp,
      rate: (args.rate as Rate | undefined) ?? null,
      workers: (args.workers as number | undefined) ?? PREFORK_DEFAULTS.workers,
      maxConnsPerChild: (args['max-conns-per-child'] as number | undefined) ?? PREFORK_DEFAULTS.maxConnsPerChild,
      access: { allow: args.allow as AccessRules['allow'], deny: args.deny as AccessRules['deny'] },
      idleTimeout: args['idle-timeout'] as number,
      grace: args.grace as number,
      maxLifetime: args['max-lifetime'] as number,
      credentials,
      verbose: args.verbose as boolean,
      logFormat: args['log-format'] as LogFormat,
    },
  }
}
