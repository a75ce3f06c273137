// A server's memory: PSS summed over its process tree. Summed RSS would count
// the Node binary's shared text once per process (about 35 of a child's 41
// MB); PSS charges each shared page to its sharers in equal parts.
import { readFileSync } from 'node:fs'
import { descendants } from './proctree.js'

/** The process's PSS in kB, or null if it is gone (or a zombie, which has no smaps). */
const pssKB = (pid: number): number | null => {
  try {
    const match = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

export interface TreeMemory {
  readonly pssKB: number
  /** Processes that were counted. */
  readonly processes: number
  /** Each counted process's PSS in kB, by pid. */
  readonly byPid: ReadonlyMap<number, number>
}

export const treePss = (root: number): TreeMemory => {
  const byPid = new Map<number, number>()
  for (const pid of [root, ...descendants(root)]) {
    const kb = pssKB(pid)
    if (kb !== null) byPid.set(pid, kb)
  }
  return { pssKB: [...byPid.values()].reduce((sum, kb) => sum + kb, 0), processes: byPid.size, byPid }
}

/**
 * The processes of `held` that `idle` did not have (the children of held
 * connections), and their mean PSS in kB; null when there are none.
 */
export const newProcessPss = (idle: TreeMemory, held: TreeMemory): { readonly count: number; readonly meanKB: number | null } => {
  const fresh = [...held.byPid].filter(([pid]) => !idle.byPid.has(pid)).map(([, kb]) => kb)
  return { count: fresh.length, meanKB: fresh.length > 0 ? fresh.reduce((sum, kb) => sum + kb, 0) / fresh.length : null }
}
