// The hints a usage error carries: the option a typo was probably meant to
// be, and a command line written out again, as the user could type it.
import { OPTION_TABLE } from './option-table.js'

/** Edits from `a` to `b` (insert, delete, substitute, swap two neighbours): optimal string alignment. */
export const editDistance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      d[i]![j] = best
    }
  }
  return at(a.length, b.length)
}

/**
 * The option an unknown name was most likely meant to be, as `--host`, or
 * null when none is close: within one edit in three letters, or the start of
 * exactly one option's name.
 */
export const closestOption = (unknown: string): string | null => {
  const typed = unknown.toLowerCase()
  if (typed.length < 2) return null
  const names = OPTION_TABLE.map((o) => o.name)
  const scored = names.map((name) => ({ name, distance: editDistance(typed, name) })).sort((x, y) => x.distance - y.distance)
  const best = scored[0]
  if (best !== undefined && best.distance <= Math.floor(typed.length / 3)) return `--${best.name}`
  const prefixed = names.filter((name) => name.startsWith(typed))
  return prefixed.length === 1 ? `--${prefixed[0]}` : null
}

/** yargs' "Unknown argument(s): a, b", with a "did you mean" for the first when one is close. */
export const withSuggestion = (message: string): string => {
  const first = /^Unknown arguments?: ([^,\s]+)/.exec(message)?.[1]
  const suggestion = first === undefined ? null : closestOption(first)
  return suggestion === null ? message : `${message} (did you mean ${suggestion}?)`
}

/** A word as a POSIX shell reads it back: bare when that is safe, else in single quotes. */
export const shellWord = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

/** A command line, written as the user would type it. */
export const shellLine = (words: readonly string[]): string => words.map(shellWord).join(' ')
