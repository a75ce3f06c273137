// How this server makes its children, by --start: `spawn` (child_process.fork,
// spawn-starter.ts) or `zygote` (a real fork(2) by a warm process,
// zygote-starter.ts). Tests may name a module in FORKSERVER_TEST_STARTER
// whose default export wraps the real starter, to show that the parent works
// with any starter (test/fixtures/starters/).
import { pathToFileURL } from 'node:url'
import type { Options } from '../cli/options.js'
import { loadAddon } from '../native/addon.js'
import { spawnStarter } from './spawn-starter.js'
import type { Starter, StarterParts } from './starter.js'

type StartOptions = Pick<Options, 'start' | 'credentials'> & Partial<Pick<Options, 'zygoteMaxForks'>>

export const chooseStarter = async (options: StartOptions, parts: StarterParts): Promise<Starter> => {
  const starter = await chosen(options, parts)
  const test = process.env.FORKSERVER_TEST_STARTER
  if (test === undefined) return starter
  const module = (await import(pathToFileURL(test).href)) as { default: (starter: Starter) => Starter }
  return module.default(starter)
}

const chosen = async ({ start, credentials, zygoteMaxForks = 0 }: StartOptions, parts: StarterParts): Promise<Starter> => {
  if (start === 'spawn') return spawnStarter(credentials, parts)
  const { addon, reason } = loadAddon()
  if (addon === null) throw new Error(`--start zygote is unavailable: ${reason}`)
  const { ZygoteStarter } = await import('./zygote-starter.js')
  return new ZygoteStarter(addon, credentials, parts, zygoteMaxForks)
}
