// Connections over --max-children wait here, paused, in arrival order.
//
// tcpserver stops calling accept() at its limit and lets the kernel's backlog
// hold the rest. Node cannot pause accept(), so the parent accepts and holds
// the paused socket here instead, until a child exits. A waiting client that
// goes away leaves the queue (see peer-state.ts): found by a sweep while any
// wait, and, where the addon can ask one socket, a client that reset is found
// again as it leaves the queue, so that no child is forked for it.
import { departed, peerState } from '../net/peer-state.js'
import type { Accepted } from './intake.js'
import { loadAddon, type Addon } from '../native/addon.js'


/** The sweep with the addon: a peek per queued socket, whatever the host holds. */
const SWEEP_MS = 250
/**
 * Without it, the sweep reads the host's whole TCP table: at most every 2 s,
 * and never more often than 100 times the read took (docs/internals.md,
 * "Measured choices", says what that saves).
 */
const TABLE_SWEEP_MS = 2000
const TABLE_SHARE = 100

type PeerCheck = Pick<Addon, 'peerState'> | null

export class WaitQueue {
  readonly #items: Accepted[] = []
  #sweeping: NodeJS.Timeout | null = null
  #nextMs = SWEEP_MS

  /**
   * `onLeave` hears of each waiting client that went away; its socket is
   * already closed. `addon`: how one socket is asked (null: by the table only).
   * `closedLeft`: whether a client that closed its side with nothing sent is
   * taken to have left, asked at each sweep. Such a client may still want an
   * answer (`nc -N` with nothing to send, a daytime client), so the parent
   * says yes only while its clients wait for a child slot, which may take
   * long; one that waits only for a boot slot keeps its place.
   */
  constructor(
    readonly limit: number,
    private readonly onLeave: (conn: Accepted) => void,
    private readonly addon: PeerCheck = loadAddon().addon,
    private readonly closedLeft: () => boolean = () => true,
  ) {
    if (addon === null) this.#nextMs = TABLE_SWEEP_MS
  }

  get size(): number {
    return this.#items.length
  }

  /** Adds a connection at the back; false when the queue is full. */
  push(conn: Accepted): boolean {
    if (this.#items.length >= this.limit) return false
    this.#items.push(conn)
    conn.socket.once('close', () => this.#remove(conn))
    this.#sweep()
    return true
  }

  /**
   * Takes the connection that has waited longest, passing over any whose
   * client reset. (One that closed its side with nothing sent may still want
   * an answer, as `nc -N` with nothing to send does: only the sweep, as ever,
   * takes it to have left.)
   */
  shift(): Accepted | undefined {
    for (let conn; (conn = this.#items.shift()); ) {
      if (this.addon === null || peerState(this.addon, conn.socket) !== 'reset') return conn
      this.#leave(conn)
    }
    return undefined
  }

  /** Takes every waiting connection but the `keep` that waited longest, for the drain. */
  drain(keep = 0): Accepted[] {
    return this.#items.splice(keep)
  }

  countFrom(address: string): number {
    return this.#items.filter((w) => w.info.remoteAddress === address).length
  }

  #remove(conn: Accepted): void {
    const i = this.#items.indexOf(conn)
    if (i >= 0) this.#items.splice(i, 1)
  }

  #leave(conn: Accepted): void {
    this.#remove(conn)
    conn.socket.destroy()
    this.onLeave(conn)
  }

  // Look for clients that left, while any wait.
  #sweep(): void {
    if (this.#sweeping !== null) return
    this.#sweeping = setTimeout(async () => {
      const items = [...this.#items]
      const { addon } = this
      const closedLeft = this.closedLeft()
      if (addon !== null) {
        for (const conn of items) {
          const state = peerState(addon, conn.socket)
          if (state === 'reset' || (state === 'closed' && closedLeft)) this.#leave(conn)
        }
      } else {
        const began = performance.now()
        const gone = await departed(items.map((w) => w.info), closedLeft)
        this.#nextMs = Math.max(TABLE_SWEEP_MS, (performance.now() - began) * TABLE_SHARE)
        for (const i of gone) {
          const conn = items[i]
          if (conn !== undefined && this.#items.includes(conn)) this.#leave(conn)
        }
      }
      this.#sweeping = null
      if (this.#items.length > 0) this.#sweep()
    }, this.#nextMs)
    this.#sweeping.unref()
  }
}
