// Admission: is a connection the parent has just accepted served now, does it
// wait in the queue, or is it turned away, and why? One pure function of the
// connection, the rules and the live counts. Its steps run in the order of
// ADMISSION_ORDER, and the first that decides gives the verdict: a connection turned
// away at one step never counts against a later one.
import { availableParallelism } from 'node:os'
import { isAllowed, type AccessRules } from '../net/cidr.js'
import type { Rate } from './rate-limit.js'

/** What happens to a connection over --max-children: it waits in the queue, or is turned away. */
export type Overflow = 'queue' | 'reject'

/** The limits, as the options set them. */
export interface Rules {
  readonly access: AccessRules
  readonly rate: Rate | null
  readonly maxPerIp: number
  readonly maxChildren: number
  readonly overflow: Overflow
  readonly queueLimit: number
}

/** The connection: its peer's (normalised) address, or a Unix-domain socket's peer, which has none. */
export interface Peer {
  readonly address: string
  readonly unix: boolean
}

/** What the parent knows at the moment it accepts. */
export interface LiveCounts {
  /** A shutdown has begun. */
  readonly draining: boolean
  /** Why too few descriptors are left to take a connection, or null when there are enough. */
  readonly descriptorsShort: string | null
  /** This address's connections within the --rate window. */
  readonly recent: number
  /** This address's connections being served and waiting. */
  readonly fromPeer: number
  /** Live children, and whether a spare waits for a connection. */
  readonly live: number
  readonly spareWaiting: boolean
  /** Children that are booting: forked, and not yet holding their socket (or, a spare, not yet ready). */
  readonly booting: number
  /** Connections in the queue. */
  readonly queued: number
}

export type Step = 'draining' | 'descriptors' | 'access' | 'rate' | 'per-ip' | 'max-children' | 'queue'

/** admit: start a child for it now; queue: wait for a free one; deny: --allow/--deny; drop: turned away. */
export type Verdict =
  | { readonly kind: 'admit' | 'queue' | 'deny'; readonly step: Step }
  | { readonly kind: 'drop'; readonly step: Step; readonly reason: string }

type Decision = { readonly kind: 'admit' | 'queue' | 'deny' } | { readonly kind: 'drop'; readonly reason: string } | null

const drop = (reason: string): Decision => ({ kind: 'drop', reason })

/** True while a child may be started: below --max-children, or a spare (which counts already) is waiting. */
export const hasRoom = (rules: Pick<Rules, 'maxChildren'>, live: number, spareWaiting: boolean): boolean =>
  live < rules.maxChildren || spareWaiting

/**
 * How many children may boot at once: one per core. A Node child's start-up
 * is CPU work (100 ms and more); more at once than there are cores finish no
 * sooner together, each later, and take the CPU the parent needs to accept
 * and to turn away what it cannot serve. The rest wait in the queue.
 */
export const BOOT_LIMIT = availableParallelism()

/** True when a connection may have a child now: a spare waits for it, or there is room and a boot slot. */
export const mayStart = (rules: Pick<Rules, 'maxChildren'>, now: Pick<LiveCounts, 'live' | 'spareWaiting' | 'booting'>): boolean =>
  now.spareWaiting || (hasRoom(rules, now.live, false) && now.booting < BOOT_LIMIT)

/** --allow and --deny: a peer with no address (a Unix-domain socket's) is not theirs to judge. */
const allowed = (access: AccessRules, peer: Peer): boolean => peer.unix || isAllowed(access, peer.address)

/** A prefork worker's verdict: --allow and --deny alone (the parent sees none of its connections, to count or queue them). */
export const judgeAccess = (access: AccessRules, peer: Peer): Verdict => ({ kind: allowed(access, peer) ? 'admit' : 'deny', step: 'access' })

/** The steps before the queue, in the order they run; null: this step lets the connection on to the next. */
const STEPS: readonly (readonly [Step, (peer: Peer, rules: Rules, now: LiveCounts) => Decision])[] = [
  // (A drain serves what it accepted, if a child slot is free: a PROXY header read late, say.)
  ['draining', (_, rules, now) => (now.draining && !hasRoom(rules, now.live, false) ? drop('shutting down') : null)],
  ['descriptors', (_, __, now) => (now.descriptorsShort === null ? null : drop(`out of descriptors (${now.descriptorsShort})`))],
  ['access', (peer, rules) => (allowed(rules.access, peer) ? null : { kind: 'deny' })],
  ['rate', (_, { rate }, now) => (rate === null || now.recent < rate.count ? null : drop(`rate ${rate.count}/${rate.seconds}s exceeded`))],
  ['per-ip', (_, { maxPerIp }, now) => (maxPerIp === 0 || now.fromPeer < maxPerIp ? null : drop(`max-per-ip ${maxPerIp} reached`))],
  ['max-children', (_, rules, now) => {
    if (mayStart(rules, now)) return { kind: 'admit' }
    // (Below the limit, with BOOT_LIMIT children booting, it waits its turn in the queue even under reject.)
    return rules.overflow === 'reject' && !hasRoom(rules, now.live, false) ? drop(`max-children ${rules.maxChildren} reached`) : null
  }],
]

// At the limit, with --overflow queue: the connection waits, if the queue has room.
const queue = (rules: Rules, now: LiveCounts): NonNullable<Decision> =>
  now.queued < rules.queueLimit ? { kind: 'queue' } : { kind: 'drop', reason: `queue full (${rules.queueLimit} waiting)` }

/** The order of the steps, for the tests and the docs. */
export const ADMISSION_ORDER: readonly Step[] = [...STEPS.map(([step]) => step), 'queue']

export const admit = (peer: Peer, rules: Rules, now: LiveCounts): Verdict => {
  for (const [step, decide] of STEPS) {
    const decision = decide(peer, rules, now)
    if (decision !== null) return { ...decision, step }
  }
  return { ...queue(rules, now), step: 'queue' }
}

/** True when the connection got past `step`: --rate counts every connection that passed its step. */
export const passed = (verdict: Verdict, step: Step): boolean => ADMISSION_ORDER.indexOf(verdict.step) > ADMISSION_ORDER.indexOf(step)
