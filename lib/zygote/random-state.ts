// The random state a forked child must not share. A fork copies the parent's
// heap, and with it V8's Math.random state and Node's own caches of random
// bytes: `uuidData` in lib/internal/crypto/random.js (128 UUIDs' worth,
// which crypto.randomUUID, globalThis.crypto.randomUUID and Node 24's
// randomUUIDv7 hand out 16 bytes at a time) and `randomCache` (which
// crypto.randomInt reads 6 bytes at a time). Every child would draw the same
// numbers as its siblings, and as its parent after it.
//
// The parent readies that state once, before its first fork: Math.random
// becomes a generator whose state JS can reach, and the two caches are found
// through the inspector (a module's private variables can be reached no
// other way). Each child then overwrites all three with bytes from
// getrandom(2): three system calls, where drawing past the caches' refill
// points (128 UUIDs) cost about 100 page faults per child. Where the caches
// cannot be found (a Node without the inspector, or one that renamed them),
// the child draws past their refill points instead, as before.
import { createRequire } from 'node:module'
import { randomInt, randomUUID } from 'node:crypto'
import type { Runtime, Session } from 'node:inspector'
import type { Addon } from '../native/addon.js'

/** Draws that pass each cache's refill point at least once: 16 bytes a UUID from 2048, 6 bytes a randomInt from 6144. */
const UUID_DRAWS = 128
const RANDOM_INT_DRAWS = 1024

/** The names of Node's caches, in lib/internal/crypto/random.js (Node 20 to 26). */
const CACHES = ['uuidData', 'randomCache'] as const

/** xoshiro128**'s state: 128 bits, refilled in each child. */
const state = new Int32Array(4)
/** Node's caches, once found; null when they could not be, and the child drains them. */
let caches: readonly Uint8Array[] | null = null
/** Set once the state is ready: why the caches were not found, or null. */
let notFound: string | null | undefined

/**
 * In the parent, before its first fork (forkChild calls it; only the first
 * call does anything): Math.random becomes xoshiro128**, and Node's caches
 * are looked for. Returns why they could not be found, or null.
 */
export const prepareRandomState = (addon: Addon, { lookUp = true } = {}): string | null => {
  if (notFound !== undefined) return notFound
  addon.fillRandom(state)
  state[3] = state[3]! | 1 // never all zero
  Math.random = xoshiro
  Math.random() // compiled here, not in every child
  const found = lookUp ? findCaches() : 'not looked for'
  caches = typeof found === 'string' ? null : found
  notFound = typeof found === 'string' ? found : null
  return notFound
}

/** In a child: state of its own for Math.random, randomUUID and randomInt. */
export const reseedRandomState = (addon: Addon): void => {
  addon.fillRandom(state)
  state[3] = state[3]! | 1
  if (caches === null) return drainCaches()
  for (const cache of caches) addon.fillRandom(cache)
}

// Without a hold on the caches: draw until each has been refilled in this
// process (OpenSSL reseeds itself after a fork), as many draws as a cache holds.
const drainCaches = (): void => {
  for (let i = 0; i < UUID_DRAWS; i++) randomUUID()
  for (let i = 0; i < RANDOM_INT_DRAWS; i++) randomInt(2)
}

// V8's Math.random state lives in the isolate and cannot be reseeded, so it
// is replaced: xoshiro128**, as fast, and no more cryptographic than
// Math.random ever was. 53 random bits, as V8 gives: 27 from one draw and 26
// from the next.
const xoshiro = (): number => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992

const next = (): number => {
  const a = state[0]!
  const b = state[1]!
  const c = state[2]!
  const d = state[3]!
  const t = b << 9
  const c2 = c ^ a
  const d2 = d ^ b
  state[0] = a ^ d2
  state[1] = b ^ c2
  state[2] = c2 ^ t
  state[3] = rotl(d2, 11)
  return Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k))

/** Where the caches pass through globalThis on their way out of the inspector (for an instant). */
const KEY = '__forkserverRandomState'

/**
 * Node's caches, taken from the closure of crypto.randomUUID through an
 * in-process inspector session, or why they cannot be had.
 */
const findCaches = (): Uint8Array[] | string => {
  randomUUID() // uuidData is made at the first draw
  randomInt(1) // randomCache at the module's load, in the Nodes known; at the first draw, were that to change
  let session: Session
  try {
    // Required here, not imported: a Node built without the inspector throws at the import.
    session = new (createRequire(import.meta.url)('node:inspector') as typeof import('node:inspector')).Session()
    session.connect()
  } catch (err) {
    return `no inspector: ${err instanceof Error ? err.message : String(err)}`
  }
  const holder = globalThis as unknown as Record<string, unknown>
  try {
    const found = closureVariables(session, randomUUID)
    return CACHES.map((name) => {
      const objectId = found.get(name)
      if (objectId === undefined) throw new Error(`no ${name} beside crypto.randomUUID`)
      post(session, 'Runtime.callFunctionOn', { objectId, functionDeclaration: `function () { globalThis.${KEY} = this }` })
      const cache = holder[KEY]
      if (!(cache instanceof Uint8Array)) throw new Error(`${name} is not a Uint8Array`)
      return cache
    })
  } catch (err) {
    return `Node's caches of random bytes were not found: ${err instanceof Error ? err.message : String(err)}`
  } finally {
    delete holder[KEY]
    session.disconnect()
  }
}

/** The variables of `fn`'s closures (not the global scope), by name: their remote object ids. */
const closureVariables = (session: Session, fn: unknown): Map<string, string> => {
  const holder = globalThis as unknown as Record<string, unknown>
  holder[KEY] = fn
  const { result } = post<Runtime.EvaluateReturnType>(session, 'Runtime.evaluate', { expression: `globalThis.${KEY}` })
  const scopes = propertiesOf(session, result.objectId).internalProperties?.find((p) => p.name === '[[Scopes]]')?.value?.objectId
  const found = new Map<string, string>()
  for (const scope of propertiesOf(session, scopes).result) {
    if (scope.value?.description === 'Global') continue
    for (const variable of propertiesOf(session, scope.value?.objectId).result) if (variable.value?.objectId !== undefined) found.set(variable.name, variable.value.objectId)
  }
  return found
}

const propertiesOf = (session: Session, objectId: string | undefined): Runtime.GetPropertiesReturnType => {
  if (objectId === undefined) throw new Error('the inspector gave no object')
  return post<Runtime.GetPropertiesReturnType>(session, 'Runtime.getProperties', { objectId, ownProperties: true })
}

/** session.post, which for an in-process session answers before it returns. */
const post = <T>(session: Session, method: string, params: object): T => {
  let answer: { error: Error | null; result: unknown } | null = null
  ;(session.post as (method: string, params: object, callback: (error: Error | null, result: unknown) => void) => void).call(session, method, params, (error, result) => (answer = { error, result }))
  const { error, result } = answer ?? { error: new Error(`${method} did not answer at once`), result: null }
  if (error !== null) throw error
  return result as T
}
