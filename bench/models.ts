// The servers under test, how each is started, and whether this machine can
// run it: a peer without its tool is skipped with the reason.
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ServerSpec } from './launch.js'
import type { ModelName } from './results.js'

const path = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url))
// This file runs as dist/bench/models.js; the peers' sources stay in bench/peers.
const SERVER = path('../server.js')
const NODE_SINGLE = path('./peers/node-single.js')
const PYTHON_PEER = path('../../bench/peers/python-forking.py')
const C_PEER = path('../../bench/peers/c-fork.c')
const C_BINARY_DIR = path('./peers/')
const C_BINARY = path('./peers/c-fork')

export interface Model {
  readonly name: ModelName
  readonly spec: ServerSpec
}

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

export const availableModels = async (cpus: number): Promise<Availability[]> => {
  const fork: Availability = {
    ok: true,
    model: { name: 'fork', spec: node([SERVER, '--port', '0', '--host', '127.0.0.1', '--max-children', '64']) },
  }
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
  return [fork, prefork, single, python, c]
}

/** forkserver in prefork mode with -v, for the spread of connections over workers. */
export const verbose = (model: Model): Model => ({ ...model, spec: { ...model.spec, args: [...model.spec.args, '-v'] } })
