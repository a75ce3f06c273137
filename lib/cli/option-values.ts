// One option's value, checked: each parser returns the value or throws the
// one line the user sees, naming the option.
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseCidr, type AccessRules } from '../net/cidr.js'
import { parseRate, type Rate } from '../admission/rate-limit.js'

export const one = (name: string, value: unknown): unknown => {
  if (Array.isArray(value)) throw new Error(`--${name} was given more than once`)
  return value
}

/**
 * `value` as an integer from `min` to `max`; `label` names it in the error (--port, or PORT).
 * `over` says why `max` is the most, for an error that names the limit.
 */
export const checkInteger = (label: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER, over?: string): number => {
  const n = /^\d+$/.test(String(value)) ? Number(value) : NaN
  if (over !== undefined && Number.isSafeInteger(n) && n > max) throw new Error(`${label} must be at most ${over}, got ${n}`)
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`
    throw new Error(`${label} must be ${range}, got ${JSON.stringify(value)}`)
  }
  return n
}

export const integer = (name: string, min: number, max?: number, over?: string) => (raw: unknown): number =>
  checkInteger(`--${name}`, one(name, raw), min, max, over)

export const choice = <T extends string>(name: string, choices: readonly T[]) => (raw: unknown): T => {
  const value = String(one(name, raw))
  const found = choices.find((c) => c === value)
  if (found === undefined) throw new Error(`--${name}: unknown value "${value}" (choose from ${choices.join(', ')})`)
  return found
}

export const text = (name: string) => (raw: unknown): string => String(one(name, raw))

export const cidrs = (name: string) => (raw: unknown): AccessRules['allow'] =>
  [raw].flat().map((value) => {
    try {
      return parseCidr(String(value))
    } catch (err) {
      throw new Error(`--${name}: ${(err as Error).message}`)
    }
  })

export const rate = (raw: unknown): Rate => {
  try {
    return parseRate(String(one('rate', raw)))
  } catch (err) {
    throw new Error(`--rate: ${(err as Error).message}`)
  }
}

export const socketPath = (raw: unknown): string => {
  const path = String(one('path', raw))
  if (path === '') throw new Error('--path must not be empty')
  // sockaddr_un holds at most 107 bytes and a NUL.
  if (Buffer.byteLength(resolve(path)) > 107) throw new Error(`--path is too long for a Unix socket (at most 107 bytes): ${path}`)
  return resolve(path)
}

export const handlerPath = (raw: unknown): string => {
  const path = resolve(String(one('handler', raw)))
  let isFile = false
  try {
    isFile = statSync(path).isFile()
  } catch {
    // reported below
  }
  if (!isFile) throw new Error(`--handler: no such file: ${path}`)
  return path
}
