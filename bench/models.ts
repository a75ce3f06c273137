// The servers under test, how each is started, and whether this machine can
// run it: a peer without its tool is skipped with the reason.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { zygoteFlags } from '../lib/zygote/warm-fork.js'
import { launch, type ServerSpec } from './launch.js'
import type { ModelName } from './results.js'

const path = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url))
// This file runs as dist/bench/models.js; the peers' sources stay in bench/peers.
const SERVER = path('../server.js')
const NODE_SINGLE = path('./peers/node-single.js')
const NODE_FORK = path('./peers/node-fork.js')
const PYTHON_PEER = path('../../bench/peers/python-forking.py')
const C_PEER = path('../../bench/peers/c-fork.c')
const C_BINARY_DIR = path('./peers/')
const C_BINARY = path('./peers/c-fork')
/** The fork(2) addon that --start zygote needs (the Makefile's native target). */
export const NATIVE_ADDON = path('../native/forkserver.node')

export interface Model {
  readonly name: ModelName
  readonly spec: ServerSpec
  /** forkserver's fork model: its parent's own CPU time per connection is worth reporting. */
  readonly parentCpu?: boolean
  /** --spares, for fork+spares and fork (zygote)+spares. */
  readonly spares?: number
  /** --start zygote: a zygote under the server forks the children. */
  readonly zygote?: true
}

/** fork+spares: the fork model with this many children forked ahead. */
export const SPARES = 8
/** fork (zygote)+spares: as many forked ahead by the zygote (the zygote issue's `--spares 4`). */
export const ZYGOTE_SPARES = 4

export type Availability = { readonly ok: true; readonly model: Model } | { readonly ok: false; readonly name: ModelName; readonly reason: string }

const node = (args: readonly string[], resident = 0): ServerSpec => ({ command: process.execPath, args, resident })

const firstLine = (text: string | Buffer | null | undefined): string =>
  String(text ?? '').split('\n').find((line) => line.trim() !== '')?.trim() ?? ''

/** The tool's version line, or null if it does not run. */
export const toolVersion = (command: string, args: readonly string[]): string | null => {
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 })
  if (run.error || run.status !== 0) return null
  return firstLine(run.stdout) || firstLine(run.stderr) || null
}

const compileC = (): string | null => {
  mkdirSync(C_BINARY_DIR, { recursive: true })
  const run = spawnSync('cc', ['-O2', '-Wall', '-o', C_BINARY, C_PEER], { encoding: 'utf8', timeout: 60_000 })
  if (run.error) return `cc: ${(run.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : run.error.message}`
  if (run.status !== 0) return `cc -O2 failed: ${firstLine(run.stderr)}`
  return null
}

const FORK_ARGS = [SERVER, '--port', '0', '--host', '127.0.0.1', '--max-children', '64'] as const
// Each start named, so that the server's default start does not matter.
const SPAWN = [...FORK_ARGS, '--start', 'spawn'] as const
const NO_SPARES = /Unknown argument: spares/

/**
 * Starts the server once and stops it: the line of its output that matches
 * `refusal` when it would not start for that reason, else null (any other
 * failure to start is left for the model's scenarios to fail on and report).
 */
const refusedWith = async (spec: ServerSpec, refusal: RegExp): Promise<string | null> => {
  try {
    const probe = await launch(spec, { readyMs: 10_000 })
    await probe.stop()
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    return why.split('\n').find((l) => refusal.test(l))?.trim() ?? null
  }
  return null
}

/**
 * fork+spares, if this build of the server has --spares: started once and
 * stopped. Skipped only when the server says it does not know the option;
 * any other failure to start leaves the model in, so that its scenarios fail
 * and say why (a server with --spares must be measured).
 */
const withSpares = async (): Promise<Availability> => {
  const model: Model = {
    name: 'fork+spares',
    // Its spares live as long as the server: wait for them before measuring, and count them as resident.
    spec: node([...SPAWN, '--spares', String(SPARES)], SPARES),
    parentCpu: true,
    spares: SPARES,
  }
  const line = await refusedWith(model.spec, NO_SPARES)
  if (line !== null) return { ok: false, name: 'fork+spares', reason: `the server has no --spares yet (${line})` }
  return { ok: true, model }
}

/** cat per connection, with the connection as its stdin and stdout: the exec rows, and tcpserver's. */
const CAT = ['--exec', '--', 'cat'] as const
const ZYGOTE = ['--start', 'zygote'] as const
const ZYGOTE_UNAVAILABLE = /--start zygote is unavailable/
/** A server that will not take --spares with --start zygote says so, naming --spares (or does not know it). */
const ZYGOTE_SPARES_REFUSED = /--spares|Unknown argument: spares/

/**
 * fork (zygote) and exec (zygote): --start zygote, its echo service and
 * cat. The zygote lives as long as the server: it is resident. Both are
 * skipped, with the reason, when `addon` is not built, or when the server
 * says the zygote cannot be had on this machine (found by starting it once);
 * any other failure to start leaves them in, so that their scenarios fail and say why.
 */
export const zygoteModels = async (addon: string = NATIVE_ADDON): Promise<readonly [Availability, Availability]> => {
  const fork: Model = { name: 'fork (zygote)', spec: node([...FORK_ARGS, ...ZYGOTE], 1), parentCpu: true, zygote: true }
  const exec: Model = { name: 'exec (zygote)', spec: node([...FORK_ARGS, ...ZYGOTE, ...CAT], 1), parentCpu: true, zygote: true }
  const skipBoth = (reason: string): readonly [Availability, Availability] => [
    { ok: false, name: fork.name, reason },
    { ok: false, name: exec.name, reason },
  ]
  const missing = addonMissing(addon)
  if (missing !== null) return skipBoth(missing)
  const line = await refusedWith(fork.spec, ZYGOTE_UNAVAILABLE)
  if (line !== null) return skipBoth(line)
  return [
    { ok: true, model: fork },
    { ok: true, model: exec },
  ]
}

/**
 * fork (zygote)+spares: --start zygote --spares 4, the zygote with children
 * forked ahead. Skipped, with the server's own line, when it refuses the
 * pair (as it did before spares came to the zygote) or has no zygote here;
 * any other failure to start leaves it in, so that its scenarios fail and say why.
 */
export const zygoteSparesModel = async (addon: string = NATIVE_ADDON): Promise<Availability> => {
  const name = 'fork (zygote)+spares'
  const missing = addonMissing(addon)
  if (missing !== null) return { ok: false, name, reason: missing }
  // The zygote and its spares live as long as the server: resident.
  const model: Model = { name, spec: node([...FORK_ARGS, ...ZYGOTE, '--spares', String(ZYGOTE_SPARES)], 1 + ZYGOTE_SPARES), parentCpu: true, spares: ZYGOTE_SPARES, zygote: true }
  const line = await refusedWith(model.spec, new RegExp(`${ZYGOTE_UNAVAILABLE.source}|${ZYGOTE_SPARES_REFUSED.source}`))
  if (line === null) return { ok: true, model }
  return { ok: false, name, reason: ZYGOTE_UNAVAILABLE.test(line) ? line : `the server refuses --spares with --start zygote (${line})` }
}

/** Why the addon cannot be used, or null when it is built. */
const addonMissing = (addon: string): string | null =>
  existsSync(addon) ? null : `the native addon is not built (no ${addon}; \`make build\` compiles it when cc and c++ are there)`

/**
 * node-fork: the floor under the zygote (bench/peers/node-fork.ts), a bare
 * Node that forks per connection with the addon and the zygote's flags.
 * Skipped, with the reason, when the addon is not built.
 */
export const nodeForkModel = (addon: string = NATIVE_ADDON): Availability => {
  const missing = addonMissing(addon)
  if (missing !== null) return { ok: false, name: 'node-fork', reason: missing }
  return { ok: true, model: { name: 'node-fork', spec: node([...zygoteFlags, NODE_FORK, '0']) } }
}

/** ucspi-tcp's tcpserver running cat: no DNS or ident lookups (-H -R -l 0), -c as forkserver's --max-children. */
const tcpserverCat = (): Availability => {
  const run = spawnSync('tcpserver', [], { encoding: 'utf8', timeout: 10_000 })
  // With no arguments it prints its usage and exits 100: found.
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return { ok: false, name: 'tcpserver+cat', reason: 'tcpserver not found (ucspi-tcp)' }
  const args = ['-1', '-H', '-R', '-l', '0', '-c', '64', '127.0.0.1', '0', 'cat']
  return { ok: true, model: { name: 'tcpserver+cat', spec: { command: 'tcpserver', args, resident: 0, portOnStdout: true } } }
}

export const availableModels = async (cpus: number): Promise<Availability[]> => {
  // Started first, so that they run while python3 and cc are looked at (they block this thread, not them).
  const probingSpares = withSpares()
  const probingZygote = zygoteModels()
  const probingZygoteSpares = zygoteSparesModel()
  const fork: Availability = { ok: true, model: { name: 'fork', spec: node(SPAWN), parentCpu: true } }
  const exec: Availability = { ok: true, model: { name: 'exec', spec: node([...SPAWN, ...CAT]), parentCpu: true } }
  const prefork: Availability = {
    ok: true,
    model: {
      name: 'prefork',
      spec: node([SERVER, '--port', '0', '--host', '127.0.0.1', '--model', 'prefork', '--workers', String(cpus)], cpus),
    },
  }
  const single: Availability = { ok: true, model: { name: 'node-single', spec: node([NODE_SINGLE, '0']) } }
  const python: Availability =
    toolVersion('python3', ['--version']) === null
      ? { ok: false, name: 'python-forking', reason: 'python3 not found' }
      : { ok: true, model: { name: 'python-forking', spec: { command: 'python3', args: [PYTHON_PEER, '0'], resident: 0 } } }
  const ccFailed = compileC()
  const c: Availability = ccFailed
    ? { ok: false, name: 'c-fork', reason: ccFailed }
    : { ok: true, model: { name: 'c-fork', spec: { command: C_BINARY, args: ['0'], resident: 0 } } }
  const [forkZygote, execZygote] = await probingZygote
  return [fork, await probingSpares, forkZygote, await probingZygoteSpares, nodeForkModel(), exec, execZygote, prefork, single, python, tcpserverCat(), c]
}

/** forkserver in prefork mode with -v, for the spread of connections over workers. */
export const verbose = (model: Model): Model => ({ ...model, spec: { ...model.spec, args: [...model.spec.args, '-v'] } })
