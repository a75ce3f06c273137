// tcpserver's form of the command: `forkserver [options] HOST PORT PROGRAM
// [ARGS...]` means `--host HOST --port PORT --exec -- PROGRAM ARGS...`, so a
// tcpserver user switches by changing one word. As under tcpserver, options
// come first, and every word after PROGRAM is the program's, options included.
import { shellLine } from './hints.js'
import { takesValue } from './option-table.js'
import { checkInteger } from './option-values.js'

export const TCPSERVER_FORM = 'forkserver [options] HOST PORT [PROGRAM [ARGS...]]'

/** argv cut where the options end. */
export interface SplitArgv {
  /** Options and their values, up to the first word that is neither. */
  readonly options: readonly string[]
  /** From that word on: HOST PORT PROGRAM ARGS..., as given. */
  readonly positionals: readonly string[]
  /** The words after a `--` that ends the options: --exec's program. */
  readonly command: readonly string[]
}

/** The parsed options, by long name, as yargs gives them. */
export type Args = Record<string, unknown>

const isOption = (word: string): boolean => word.length > 1 && word.startsWith('-')

/**
 * Where the options end: at `--`, or at the first word that is not an option
 * and not the value of the option before it. `--opt value` takes the next
 * word unless it looks like an option; `--opt=value` and flags take none.
 */
export const splitArgv = (argv: readonly string[]): SplitArgv => {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (word === '--') return { options: argv.slice(0, i), positionals: [], command: argv.slice(i + 1) }
    if (!isOption(word)) return { options: argv.slice(0, i), positionals: argv.slice(i), command: [] }
    const next = argv[i + 1]
    if (/^--[^=]+$/.test(word) && takesValue(word.slice(2)) && next !== undefined && !isOption(next)) i++
  }
  return { options: argv, positionals: [], command: [] }
}

const isPort = (word: string): boolean => /^\d{1,5}$/.test(word) && Number(word) <= 65535

/** --exec with words but no `--`: tcpserver's form given with --exec, or the `--` forgotten. */
const execMistake = (split: SplitArgv): string => {
  const [, port] = split.positionals
  if (port !== undefined && isPort(port)) return `--exec cannot be given with HOST PORT: the PROGRAM after them is run already, as in: ${TCPSERVER_FORM}`
  return `--exec needs -- before its program, as in: ${shellLine(['forkserver', ...split.options, '--', ...split.positionals])}`
}

/**
 * `args` with HOST PORT PROGRAM ARGS... read into --host, --port and --exec,
 * and the program's words; or the usage error's message.
 */
export const readTcpserverForm = (args: Args, split: SplitArgv): { args: Args; command: readonly string[] } | string => {
  const words = split.positionals
  const [host, port, program] = words
  if (host === undefined) return { args, command: split.command }
  const given = (name: string): boolean => args[name] !== undefined
  if (args.exec === true) return execMistake(split)
  if (port === undefined) return `Unknown argument: ${host}; a HOST needs a PORT after it: ${TCPSERVER_FORM}`
  const endpoint = ['host', 'port', 'path', 'fd'].find(given)
  if (endpoint !== undefined) return `HOST PORT cannot be given with --${endpoint}: say where to listen one way`
  if (host === '') return 'HOST must not be empty'
  let portNumber: number
  try {
    portNumber = checkInteger('PORT', port, 0, 65535)
  } catch (err) {
    return `${(err as Error).message}${isOption(port) ? ' (options go before HOST PORT)' : ''}`
  }
  if (program === undefined) return { args: { ...args, host, port: portNumber }, command: [] }
  const serving = ['service', 'handler'].find(given)
  if (serving !== undefined) return `a PROGRAM after HOST PORT cannot be given with --${serving}: the program serves each connection`
  if (program === '') return 'PROGRAM must not be empty'
  if (isOption(program)) return `PROGRAM ${program} looks like an option: options go before HOST PORT`
  return { args: { ...args, host, port: portNumber, exec: true }, command: words.slice(2) }
}
