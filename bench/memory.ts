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
}

export const treePss = (root: number): TreeMemory => {
  const sizes = [root, ...descendants(root)].map(pssKB).filter((kb) => kb !== null)
  return { pssKB: sizes.reduce((sum, kb) => sum + kb, 0), processes: sizes.length }
}
