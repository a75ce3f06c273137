// The command line, parsed once by the parent into a readonly object.
// Children never see argv: what they need travels in the IPC message.
import { availableParallelism } from 'node:os'
import yargs, { type Options as YargsOption } from 'yargs'
import type { Overflow } from '../admission/admission.js'
import type { AccessRules } from '../net/cidr.js'
import { loadAddon } from '../native/addon.js'
import type { Endpoint } from '../net/listen.js'
import { resolveCredentials, type Credentials } from './credentials.js'
import { helpWidth, renderHelp } from './manual/help.js'
import { withSuggestion } from './hints.js'
import { childCeiling, queueCeiling, readMachine, type Machine } from './machine-limits.js'
import { DEFAULTS, OPTION_TABLE, onlyFor, type Model, type OptionDef } from './option-table.js'
import { choice, cidrs, handlerPath, integer, rate, socketPath, text } from './option-values.js'
import { packageVersion, versionReport } from './version.js'
import type { ProxySettings } from '../proxy/proxy-read.js'
import type { Rate } from '../admission/rate-limit.js'
import { readTcpserverForm, splitArgv, type Args } from './tcpserver-form.js'

export type { Endpoint, Model, Overflow }
export type LogFormat = 'text' | 'json'

/** systemd passes its sockets from this descriptor on (SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3
/** Options that belong to one model only, by their command-line names. */
const ONLY: Record<Model, readonly string[]> = { fork: onlyFor('fork'), prefork: onlyFor('prefork') }

export interface Options {
  readonly model: Model
  /** How the fork model makes a child: child_process.fork, or a real fork(2) of the zygote. */
  readonly start: 'auto' | 'spawn' | 'zygote'
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
  /** --zygote-max-forks: a zygote is replaced after this many forks; 0 = never. */
  readonly zygoteMaxForks: number
  /** --user/--group as ids, or null to run children as the parent runs. */
  readonly credentials: Credentials | null
  readonly verbose: boolean
  readonly logFormat: LogFormat
  /** --proxy-protocol: the balancers trusted to send a PROXY header, and its time limit; null when off. */
  readonly proxy: ProxySettings | null
}

/** What the command line asks for: serve with these options, or print and exit. */
export type Parsed =
  | { readonly kind: 'serve'; readonly options: Options }
  | { readonly kind: 'exit'; readonly code: number; readonly output: string }

export const USAGE_EXIT = 2

/** Options whose values are checked by a parser of their own; other text is taken as it is. */
const TEXT_VALUES: Readonly<Record<string, (raw: unknown) => unknown>> = {
  path: socketPath,
  handler: handlerPath,
  allow: cidrs('allow'),
  deny: cidrs('deny'),
  'proxy-from': cidrs('proxy-from'),
  rate,
}

/** An option as yargs is told it: every value is read as a string and checked here. */
const yargsOption = (o: OptionDef): YargsOption => {
  const t = o.takes
  const alias = o.alias === undefined ? {} : { alias: o.alias }
  if (t.kind === 'flag' || t.kind === 'command') return { type: 'boolean', ...alias }
  const coerce = t.kind === 'integer' ? integer(o.name, t.min, t.max, t.over) : t.kind === 'choice' ? choice(o.name, t.choices) : TEXT_VALUES[o.name] ?? text(o.name)
  return { type: 'string', requiresArg: true, coerce, ...alias, ...(o.repeatable ? { array: true, default: [] } : {}) }
}

/** yargs' own --help and --version decide when help wins; the help it prints is ours. */
const BUILT_IN = new Set(['help', 'version'])

const parser = () =>
  yargs()
    .scriptName('forkserver')
    .options(Object.fromEntries(OPTION_TABLE.filter((o) => !BUILT_IN.has(o.name)).map((o) => [o.name, yargsOption(o)])))
    .version(packageVersion())
    .help()
    .alias('help', 'h')
    .strict()
    .wrap(null)

const usage = (message: string): Parsed =>
  // yargs' messages can span lines; a usage error is one line.
  ({ kind: 'exit', code: USAGE_EXIT, output: `forkserver: ${message.replace(/\s*\n\s*/g, ' ')} (see --help)\n` })

/** Every way to write a flag: --verbose, -v, ... */
const FLAGS = new Set(
  OPTION_TABLE.filter((o) => o.takes.kind === 'flag' || o.takes.kind === 'command').flatMap((o) => [`--${o.name}`, ...(o.alias === undefined ? [] : [`-${o.alias}`])]),
)
/** Option names yargs trips over (it keeps options in plain objects): never ours. */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype))

/** Mistakes yargs would not report, or would report with its own stack trace. */
const precheck = (options: readonly string[]): Parsed | null => {
  const flags = options.filter((arg) => arg.startsWith('-'))
  // yargs reads a value given to a flag (--verbose=yes) as false, silently.
  const valued = flags.find((arg) => arg.includes('=') && FLAGS.has(arg.slice(0, arg.indexOf('='))))
  if (valued !== undefined) return usage(`${valued.split('=')[0]} takes no value, got "${valued}"`)
  const inherited = flags.map((arg) => arg.replace(/^--?(?:no-)?/, '').split('=')[0] ?? '').find((name) => INHERITED.has(name))
  return inherited === undefined ? null : usage(`Unknown argument: ${inherited}`)
}

/**
 * Parses argv (without node and script) into options, or into what to print
 * and the exit code. What follows `--`, or tcpserver's PROGRAM, is the
 * program's, left as it is. `env` is read for systemd's LISTEN_FDS and
 * LISTEN_PID, and for COLUMNS when --help is not written to a terminal;
 * `machine`, for the limits that counts are held to.
 */
export const parseOptions = async (argv: readonly string[], env: NodeJS.ProcessEnv = process.env, machine: () => Machine = () => readMachine()): Promise<Parsed> =>
  new Promise((done) => {
    const split = splitArgv(argv)
    const mistake = precheck(split.options)
    if (mistake !== null) return done(mistake)
    try {
      void parser().parse([...split.options], {}, (err: Error | undefined, args: Args, output: string) => {
        if (err) return done(usage(withSuggestion(err.message)))
        if (args.help === true) return done({ kind: 'exit', code: 0, output: renderHelp(helpWidth(process.stdout, env)) })
        if (args.version === true) return void versionReport().then((report) => done({ kind: 'exit', code: 0, output: report }))
        if (output) return done({ kind: 'exit', code: 0, output: `${output}\n` })
        const form = readTcpserverForm(args, split)
        if (typeof form === 'string') return done(usage(form))
        done(toOptions(form.args, form.command, env, machine))
      })
    } catch (err) {
      // Should yargs throw after all, the user still gets one line.
      done(usage(err instanceof Error ? err.message : String(err)))
    }
  })

/** Options that need a TCP peer's address. */
const TCP_ONLY = ['allow', 'deny', 'rate', 'max-per-ip'] as const

const given = (args: Args, name: string): boolean =>
  args[name] !== undefined && !(Array.isArray(args[name]) && args[name].length === 0)

/** Where to listen: at most one of --path, --fd and --host/--port; else systemd's socket, else TCP. */
const toEndpoint = (args: Args, env: NodeJS.ProcessEnv): Endpoint | string => {
  const tcp = given(args, 'host') || given(args, 'port')
  if (given(args, 'fd') && (tcp || given(args, 'path'))) return '--fd cannot be given with --host, --port or --path: the descriptor is already bound'
  if (given(args, 'fd')) return { kind: 'fd', fd: args.fd as number, from: '--fd' }
  if (given(args, 'path') && tcp) return '--path cannot be given with --host or --port: a Unix socket has neither'
  if (given(args, 'path')) {
    // (Behind a balancer, the peers are the clients its headers name, and they have addresses.)
    const tcpOnly = args['proxy-protocol'] === true ? undefined : TCP_ONLY.find((name) => given(args, name))
    if (tcpOnly !== undefined) return `--${tcpOnly} cannot be given with --path: a Unix socket's peers have no address`
    return { kind: 'path', path: args.path as string }
  }
  // Socket activation (sd_listen_fds): the variables are for this process only.
  if (!tcp && env.LISTEN_PID === String(process.pid) && Number(env.LISTEN_FDS) >= 1) {
    return { kind: 'fd', fd: SD_LISTEN_FDS_START, from: 'LISTEN_FDS' }
  }
  return { kind: 'tcp', host: (args.host as string | undefined) ?? DEFAULTS.host, port: (args.port as number | undefined) ?? DEFAULTS.port }
}

/** What serves each connection: --exec's program, a --handler, or a --service. */
const toServing = (args: Args, command: readonly string[]): Pick<Options, 'service' | 'handler' | 'exec'> | string => {
  const exec = args.exec === true
  if (!exec && command.length > 0) return `unexpected argument: ${command[0]} (to run a program per connection: --exec -- CMD [ARGS...])`
  if (exec && command.length === 0) return '--exec needs a program after --, as in: --exec -- cat'
  if (exec && command[0] === '') return '--exec: the program name is empty'
  const serving = ['exec', 'handler', 'service'].filter((name) => given(args, name) && args[name] !== false)
  if (serving.length > 1) return `${serving.map((name) => `--${name}`).join(' and ')} cannot be given together`
  if (exec && ((args['idle-timeout'] as number | undefined) ?? DEFAULTS.idleTimeout) > 0) {
    return '--idle-timeout cannot be used with --exec: the program reads and writes the connection, unseen by forkserver'
  }
  const handler = (args.handler as string | undefined) ?? null
  const service = handler === null && !exec ? (args.service as string | undefined) ?? DEFAULTS.service : null
  return { service, handler, exec: exec ? command : null }
}

/** An option given that belongs to the other model, as a usage error's message; or null. */
const misplaced = (args: Args, model: Model): string | null => {
  const other: Model = model === 'fork' ? 'prefork' : 'fork'
  const name = ONLY[other].find((n) => args[n] !== undefined)
  if (name === undefined) return null
  const why = other === 'fork'
    ? 'prefork workers accept for themselves, so the parent sees no connection to count or queue'
    : 'it applies to --model prefork only'
  return `--${name} is not available with --model ${model}: ${why}`
}

/** --user and --group as ids, or null; they need root. */
const toCredentials = (args: Args): Credentials | null | string => {
  let credentials: Credentials | null
  try {
    credentials = resolveCredentials(args.user as string | undefined, args.group as string | undefined)
  } catch (err) {
    return (err as Error).message
  }
  if (credentials !== null && process.getuid?.() !== 0) {
    return `--user and --group need root to switch ids, and forkserver runs as uid ${process.getuid?.()}`
  }
  return credentials
}

/** Why --start zygote cannot be had on this machine; null when it can. (--start auto goes without it, and says why.) */
const zygoteProblem = (): string | null => {
  const { reason } = loadAddon()
  return reason === null ? null : `--start zygote is unavailable: ${reason}`
}

/**
 * --proxy-protocol and its two companions, or null when it is off; a usage
 * error's message when they do not fit together, or the header cannot be read
 * here (it is read by peeking, through the native addon).
 */
const toProxy = (args: Args): ProxySettings | null | string => {
  const on = args['proxy-protocol'] === true
  const from = args['proxy-from'] as ProxySettings['from']
  const companion = ['proxy-from', 'proxy-timeout'].find((name) => given(args, name))
  if (!on) return companion === undefined ? null : `--${companion} needs --proxy-protocol`
  if (from.length === 0) return '--proxy-protocol needs --proxy-from CIDR: the balancers trusted to name the client (0.0.0.0/0 for any)'
  const { reason } = loadAddon()
  if (reason !== null) return `--proxy-protocol is unavailable without the native addon, which reads the header by a peek: ${reason}`
  return { from, timeoutS: (args['proxy-timeout'] as number | undefined) ?? DEFAULTS.proxyTimeout }
}

/** Counts held to what the machine can run: children (processes), or queued sockets (descriptors). */
const COUNTS = ['workers', 'max-children', 'spares', 'queue-limit'] as const

/**
 * A count given over what this machine can hold, as a usage error's
 * message; or null. Defaults are left to the run-time checks (a failed fork
 * is a warning, and descriptors are kept in reserve).
 */
const overCeiling = (args: Args, machine: () => Machine): string | null => {
  const counts = COUNTS.filter((name) => args[name] !== undefined)
  if (counts.length === 0) return null
  const m = machine()
  for (const name of counts) {
    const ceiling = name === 'queue-limit' ? queueCeiling(m) : childCeiling(m)
    const value = args[name] as number
    if (ceiling !== null && value > ceiling.most) return `--${name} ${value} is more than this machine can hold: at most ${ceiling.most} (${ceiling.why})`
  }
  return null
}

/** The parsed arguments, checked across options and given their defaults. */
const toOptions = (args: Args, command: readonly string[], env: NodeJS.ProcessEnv, machine: () => Machine): Parsed => {
  const stray = (args._ as unknown[] | undefined) ?? []
  if (stray.length > 0) return usage(`unexpected argument: ${String(stray[0])}`)
  const serving = toServing(args, command)
  if (typeof serving === 'string') return usage(serving)
  const endpoint = toEndpoint(args, env)
  if (typeof endpoint === 'string') return usage(endpoint)
  const model = (args.model as Model | undefined) ?? DEFAULTS.model
  const wrongModel = misplaced(args, model)
  if (wrongModel !== null) return usage(wrongModel)
  const tooMany = overCeiling(args, machine)
  if (tooMany !== null) return usage(tooMany)
  const credentials = toCredentials(args)
  if (typeof credentials === 'string') return usage(credentials)
  const maxChildren = (args['max-children'] as number | undefined) ?? DEFAULTS.maxChildren
  const spares = (args.spares as number | undefined) ?? DEFAULTS.spares
  if (spares > maxChildren) return usage(`--spares ${spares} is more than --max-children ${maxChildren}: spares count toward it`)
  const start = (args.start as Options['start'] | undefined) ?? DEFAULTS.start
  const zygote = start === 'zygote' ? zygoteProblem() : null
  if (zygote !== null) return usage(zygote)
  if (start === 'spawn' && given(args, 'zygote-max-forks')) return usage('--zygote-max-forks needs --start zygote: a spawned child is a fresh exec, with an address layout of its own')
  const proxy = toProxy(args)
  if (typeof proxy === 'string') return usage(proxy)
  return {
    kind: 'serve',
    options: {
      model,
      start,
      endpoint,
      ...serving,
      maxChildren,
      spares,
      overflow: (args.overflow as Overflow | undefined) ?? DEFAULTS.overflow,
      queueLimit: (args['queue-limit'] as number | undefined) ?? DEFAULTS.queueLimit,
      maxPerIp: (args['max-per-ip'] as number | undefined) ?? DEFAULTS.maxPerIp,
      rate: (args.rate as Rate | undefined) ?? null,
      workers: (args.workers as number | undefined) ?? availableParallelism(),
      maxConnsPerChild: (args['max-conns-per-child'] as number | undefined) ?? DEFAULTS.maxConnsPerChild,
      access: { allow: args.allow as AccessRules['allow'], deny: args.deny as AccessRules['deny'] },
      idleTimeout: (args['idle-timeout'] as number | undefined) ?? DEFAULTS.idleTimeout,
      grace: (args.grace as number | undefined) ?? DEFAULTS.grace,
      maxLifetime: (args['max-lifetime'] as number | undefined) ?? DEFAULTS.maxLifetime,
      zygoteMaxForks: (args['zygote-max-forks'] as number | undefined) ?? DEFAULTS.zygoteMaxForks,
      credentials,
      verbose: args.verbose === true,
      logFormat: (args['log-format'] as LogFormat | undefined) ?? DEFAULTS.logFormat,
      proxy,
    },
  }
}
