// How this server makes its children, by --start: `zygote` (a real fork(2)
// by a warm process, zygote-starter.ts), `spawn` (child_process.fork,
// spawn-starter.ts), or `auto`, the default: the zygote where the native
// addon loads and the zygote proves it can fork, else spawn, and the log
// says why. Tests may name a module in FORKSERVER_TEST_STARTER whose default
// export wraps the real starter, to show that the parent works with any
// starter (test/fixtures/starters/).
import { pathToFileURL } from 'node:url'
import type { Options } from '../cli/options.js'
import { loadAddon } from '../native/addon.js'
import { spawnStarter } from './spawn-starter.js'
import type { Starter, StarterParts } from './starter.js'

/** The starter, and under --start auto what to fall back on if its zygote proves unfit (null: nothing). */
export interface Chosen {
  readonly starter: Starter
  readonly fallback: Starter | null
  /** --start auto without the addon: why the server spawns (null: it did not fall back). */
  readonly spawnsBecause: string | null
}

type StartOptions = Pick<Options, 'start' | 'credentials' | 'model'> & Partial<Pick<Options, 'zygoteMaxForks'>>

export const chooseStarter = async (options: StartOptions, parts: StarterParts): Promise<Chosen> => {
  const chosen = await choose(options, parts)
  const test = process.env.FORKSERVER_TEST_STARTER
  if (test === undefined) return chosen
  const module = (await import(pathToFileURL(test).href)) as { default: (starter: Starter) => Starter }
  return { ...chosen, starter: module.default(chosen.starter), fallback: chosen.fallback && module.default(chosen.fallback) }
}

const choose = async ({ start, credentials, model, zygoteMaxForks = 0 }: StartOptions, parts: StarterParts): Promise<Chosen> => {
  const spawn = (spawnsBecause: string | null = null): Chosen => ({ starter: spawnStarter(credentials, parts), fallback: null, spawnsBecause })
  // (Prefork workers are spawned: they serve many connections each, and --start is the fork model's.)
  if (start === 'spawn' || model === 'prefork') return spawn()
  const { addon, reason } = loadAddon()
  if (addon === null && start === 'auto') return spawn(reason)
  if (addon === null) throw new Error(`--start zygote is unavailable: ${reason}`)
  const { ZygoteStarter } = await import('./zygote-starter.js')
  const starter = new ZygoteStarter(addon, credentials, parts, zygoteMaxForks)
  return { starter, fallback: start === 'auto' ? spawnStarter(credentials, parts) : null, spawnsBecause: null }
}
