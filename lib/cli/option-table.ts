// Every option, once: the parser (lib/cli/options.ts), --help (lib/cli/manual/help.ts) and
// the man page (lib/cli/manual/man-page.ts) are built from this table, and a test holds
// the README's table to it. A default here is the one the parser applies.
import { SERVICE_NAMES } from '../serve/services/index.js'

export type Model = 'fork' | 'prefork'

/** What the parser applies when an option is not given (--workers: the CPU count, found at start). */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 7000,
  service: 'echo',
  model: 'fork',
  start: 'auto',
  maxChildren: 40,
  spares: 0,
  overflow: 'queue',
  queueLimit: 128,
  maxPerIp: 0,
  maxConnsPerChild: 0,
  idleTimeout: 0,
  grace: 10,
  maxLifetime: 0,
  zygoteMaxForks: 10_000,
  logFormat: 'text',
  proxyTimeout: 3,
} as const

/** What an option takes after its name. */
export type Takes =
  | { readonly kind: 'flag' }
  /** --exec: a flag, and the words after `--`. */
  | { readonly kind: 'command' }
  /** `over`, when given, says why `max` is the most: the error quotes it. */
  | { readonly kind: 'integer'; readonly min: number; readonly max?: number; readonly over?: string }
  | { readonly kind: 'choice'; readonly choices: readonly string[] }
  /** Checked by a parser of its own; `type` names it for a reader. */
  | { readonly kind: 'text'; readonly type: string }

export interface OptionDef {
  /** The long name, without its dashes. */
  readonly name: string
  readonly alias?: string
  /** The word the documents show for its value: --port PORT. */
  readonly meta?: string
  readonly takes: Takes
  /** A value the parser takes, and applies when the option is absent. */
  readonly default?: string
  /** What happens without the option, where that is not a value: "off", "the CPU count". */
  readonly otherwise?: string
  readonly describe: string
  /** Given once per value: --allow A --allow B. */
  readonly repeatable?: true
  /** The model it belongs to, if only one. */
  readonly model?: Model
  readonly group: string
}

const LISTEN = 'Where to listen'
const SERVE = 'What serves each connection'
const FORK = 'Fork model only (--model fork)'
const PREFORK = 'Prefork model only (--model prefork)'
const ACCESS = 'Who may connect'
const BALANCER = 'Behind a load balancer'
const TIME = 'Time limits'
const CHILDREN = 'Children'
const LOGS = 'Logging'
const OTHER = 'Help'

const count = (min: number): Takes => ({ kind: 'integer', min })

/**
 * Node's timers hold a signed 32-bit count of milliseconds: a longer delay
 * fires after 1 ms instead (TimeoutOverflowWarning). Every duration option
 * becomes such a timer, so none may be longer.
 */
export const LONGEST_TIMER_S = Math.floor((2 ** 31 - 1) / 1000)
const duration: Takes = { kind: 'integer', min: 0, max: LONGEST_TIMER_S, over: `${LONGEST_TIMER_S} s (24.8 days), Node's longest timer` }

export const OPTION_TABLE: readonly OptionDef[] = [
  { group: LISTEN, name: 'host', meta: 'HOST', takes: { kind: 'text', type: 'address' }, default: DEFAULTS.host,
    describe: 'address to listen on; :: for IPv6 and IPv4 both, 0 for every IPv4 address' },
  { group: LISTEN, name: 'port', meta: 'PORT', takes: { kind: 'integer', min: 0, max: 65535 }, default: String(DEFAULTS.port),
    describe: 'port to listen on; 0 picks any free port (the listening line shows which)' },
  { group: LISTEN, name: 'path', meta: 'PATH', takes: { kind: 'text', type: 'path' },
    describe: 'listen on a Unix-domain socket at PATH instead of TCP' },
  { group: LISTEN, name: 'fd', meta: 'FD', takes: { kind: 'integer', min: 0, max: 65535 },
    describe: 'listen on descriptor FD, inherited already listening (TCP or Unix); under systemd, LISTEN_FDS needs no option' },
  { group: SERVE, name: 'model', meta: 'MODEL', takes: { kind: 'choice', choices: ['fork', 'prefork'] }, default: DEFAULTS.model,
    describe: 'fork: a fresh child per connection; prefork: long-lived workers that accept for themselves' },
  { group: SERVE, model: 'fork', name: 'start', meta: 'HOW', takes: { kind: 'choice', choices: ['auto', 'spawn', 'zygote'] }, default: DEFAULTS.start,
    describe: 'fork model only. zygote: a real fork(2) of a warm process that has the service loaded; spawn: each child a fresh Node (child_process.fork); auto: the zygote where the native addon loads and its fork self-test passes, else spawn, with a line saying why' },
  { group: SERVE, name: 'service', meta: 'NAME', takes: { kind: 'choice', choices: SERVICE_NAMES }, default: DEFAULTS.service,
    describe: 'the built-in service each connection gets' },
  { group: SERVE, name: 'handler', meta: 'MODULE', takes: { kind: 'text', type: 'path' },
    describe: 'a module whose default export (socket, info) serves each connection, instead of --service' },
  { group: SERVE, name: 'exec', meta: '-- PROGRAM [ARGS...]', takes: { kind: 'command' },
    describe: 'run PROGRAM for each connection, with the connection as its stdin and stdout, instead of --service' },
  { group: FORK, model: 'fork', name: 'max-children', meta: 'N', takes: count(1), default: String(DEFAULTS.maxChildren),
    describe: "live children at once, spares included (tcpserver's -c)" },
  { group: FORK, model: 'fork', name: 'spares', meta: 'N', takes: count(0), default: String(DEFAULTS.spares),
    describe: 'children forked ahead, waiting with the service loaded; each still serves one connection' },
  { group: FORK, model: 'fork', name: 'overflow', meta: 'MODE', takes: { kind: 'choice', choices: ['queue', 'reject'] }, default: DEFAULTS.overflow,
    describe: 'what happens to connections over --max-children' },
  { group: FORK, model: 'fork', name: 'queue-limit', meta: 'N', takes: count(1), default: String(DEFAULTS.queueLimit),
    describe: 'connections that may wait for a free child; past it they are rejected' },
  { group: FORK, model: 'fork', name: 'max-per-ip', meta: 'N', takes: count(0), default: String(DEFAULTS.maxPerIp),
    describe: 'live connections (busy or queued) per source address; 0 = off' },
  { group: FORK, model: 'fork', name: 'rate', meta: 'RATE', takes: { kind: 'text', type: 'N/SECONDS' }, otherwise: 'off',
    describe: 'new connections per source address in a sliding window, such as 20/10; past it the address is turned away' },
  { group: FORK, model: 'fork', name: 'zygote-max-forks', meta: 'N', takes: count(0), default: String(DEFAULTS.zygoteMaxForks),
    describe: '--start zygote: children a zygote forks before a fresh one (a new exec, so a new address layout) replaces it; 0 = never' },
  { group: PREFORK, model: 'prefork', name: 'workers', meta: 'N', takes: count(1), otherwise: 'the CPU count',
    describe: 'worker processes' },
  { group: PREFORK, model: 'prefork', name: 'max-conns-per-child', meta: 'N', takes: count(0), default: String(DEFAULTS.maxConnsPerChild),
    describe: 'connections a worker serves before it is replaced; 0 = never' },
  { group: ACCESS, name: 'allow', meta: 'CIDR', takes: { kind: 'text', type: 'CIDR' }, repeatable: true,
    describe: 'only peers in CIDR may connect; IPv4 and IPv6' },
  { group: ACCESS, name: 'deny', meta: 'CIDR', takes: { kind: 'text', type: 'CIDR' }, repeatable: true,
    describe: 'peers in CIDR may not connect; the most specific rule wins' },
  { group: BALANCER, name: 'proxy-protocol', takes: { kind: 'flag' }, otherwise: 'off',
    describe: "every connection begins with a PROXY header (HAProxy's, v1 or v2) naming the client; the rules, the logs, the handler and --exec's variables see that client" },
  { group: BALANCER, name: 'proxy-from', meta: 'CIDR', takes: { kind: 'text', type: 'CIDR' }, repeatable: true,
    describe: 'the balancers trusted to send a PROXY header; needed with --proxy-protocol, and other peers are closed without a fork' },
  { group: BALANCER, name: 'proxy-timeout', meta: 'SECONDS', takes: { kind: 'integer', min: 1, max: LONGEST_TIMER_S, over: `${LONGEST_TIMER_S} s (24.8 days), Node's longest timer` }, default: String(DEFAULTS.proxyTimeout),
    describe: 'seconds for the whole PROXY header to arrive; a slower one is closed without a fork' },
  { group: TIME, name: 'idle-timeout', meta: 'SECONDS', takes: duration, default: String(DEFAULTS.idleTimeout),
    describe: 'seconds of silence before the child closes the connection; 0 = never' },
  { group: TIME, name: 'grace', meta: 'SECONDS', takes: duration, default: String(DEFAULTS.grace),
    describe: 'seconds children get to finish at shutdown, and old workers after SIGHUP' },
  { group: TIME, name: 'max-lifetime', meta: 'SECONDS', takes: duration, default: String(DEFAULTS.maxLifetime),
    describe: 'seconds a child may live before it is ended (SIGTERM, then SIGKILL 2 s later); 0 = no limit' },
  { group: CHILDREN, name: 'user', meta: 'USER', takes: { kind: 'text', type: 'name or uid' },
    describe: 'run children as USER, with its group unless --group is given; needs root' },
  { group: CHILDREN, name: 'group', meta: 'GROUP', takes: { kind: 'text', type: 'name or gid' }, otherwise: "the --user's group",
    describe: 'run children with GROUP; supplementary groups are dropped; needs root' },
  { group: LOGS, name: 'verbose', alias: 'v', takes: { kind: 'flag' }, otherwise: 'off',
    describe: 'tcpserver-style log lines on stderr' },
  { group: LOGS, name: 'log-format', meta: 'FORMAT', takes: { kind: 'choice', choices: ['text', 'json'] }, default: DEFAULTS.logFormat,
    describe: 'text: tcpserver-style lines; json: one JSON object per event, every event, -v or not' },
  { group: OTHER, name: 'help', alias: 'h', takes: { kind: 'flag' }, describe: 'print this help and exit' },
  { group: OTHER, name: 'version', takes: { kind: 'flag' },
    describe: "print forkserver's version, the Node's version, the native addon's state (or why it is missing, and how to build it) and the fork self-test's verdict, and exit" },
]

/** The option of that long name (camelCase too, as yargs reads it), if there is one. */
export const optionNamed = (name: string): OptionDef | undefined => {
  const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
  return OPTION_TABLE.find((o) => o.name === kebab)
}

/** Whether `--name` reads the next word as its value. */
export const takesValue = (name: string): boolean => {
  const kind = optionNamed(name)?.takes.kind
  return kind !== undefined && kind !== 'flag' && kind !== 'command'
}

/** How an option is written: `-v, --verbose`, `--port PORT`, `--exec -- PROGRAM [ARGS...]`. */
export const optionLabel = (o: OptionDef): string =>
  `${o.alias === undefined ? '' : `-${o.alias}, `}--${o.name}${o.meta === undefined ? '' : ` ${o.meta}`}`

/** The kind of value, as the documents show it: "integer 0-65535", "fork|prefork", "flag". */
export const typeText = (o: OptionDef): string => {
  const t = o.takes
  switch (t.kind) {
    case 'flag': return 'flag'
    case 'command': return 'the words after --'
    case 'choice': return t.choices.join('|')
    case 'text': return o.repeatable ? `${t.type}, repeatable` : t.type
    case 'integer': return t.max === undefined ? `integer >= ${t.min}` : `integer ${t.min}-${t.max}`
  }
}

/** What the documents show as the default, or null for none. */
export const defaultText = (o: OptionDef): string | null => o.default ?? o.otherwise ?? null

/** The note each document ends an option with: "integer 0-65535; default: 7000". */
export const typeNote = (o: OptionDef): string => {
  const shown = defaultText(o)
  return shown === null ? typeText(o) : `${typeText(o)}; default: ${shown}`
}

/** Option names by the model they belong to. */
export const onlyFor = (model: Model): string[] => OPTION_TABLE.filter((o) => o.model === model).map((o) => o.name)
