// Connections over --max-children wait here, paused, in arrival order.
//
// tcpserver stops calling accept() at its limit and lets the kernel's backlog
// hold the rest. Node cannot pause accept(), so the parent accepts and holds
// the paused socket here instead, until a child exits. A waiting client that
// goes away leaves the queue (see peer-state.ts).
import type { Socket } from 'node:net'
import { departed } from './peer-state.js'
import type { ConnectionInfo } from './protocol.js'

export interface Waiting {
  readonly socket: Socket
  readonly info: ConnectionInfo
  /** When the parent accepted it (Date.now()), for the log's timings. */
  readonly acceptedAt: number
}

const SWEEP_MS = 250

export class WaitQueue {
  readonly #items: Waiting[] = []
  #sweeping: NodeJS.Timeout | null = null

  /** `onLeave` hears of each waiting client that went away; its socket is already closed. */
  constructor(
    readonly limit: number,
    private readonly onLeave: (waiting: Waiting) => void,
  ) {}

  get size(): number {
    return this.#items.length
  }

  /** Adds a connection at the back; false when the queue is full. */
  push(waiting: Waiting): boolean {
    if (this.#items.length >= this.limit) return false
    this.#items.push(waiting)
    waiting.socket.once('close', () => this.#remove(waiting))
    this.#sweep()
    return true
  }

  /** Takes the connection that has waited longest. */
  shift(): Waiting | undefined {
    return this.#items.shift()
  }

  /** Takes every waiting connection, for the shutdown. */
  drain(): Waiting[] {
    return this.#items.splice(0)
  }

  countFrom(address: string): number {
    return this.#items.filter((w) => w.info.remoteAddress === address).length
  }

  #remove(waiting: Waiting): void {
    const i = this.#items.indexOf(waiting)
    if (i >= 0) this.#items.splice(i, 1)
  }

  // Look at the kernel's view of the waiting connections while any wait.
  #sweep(): void {
    if (this.#sweeping !== null) return
    this.#sweeping = setTimeout(async () => {
      const items = [...this.#items]
      const gone = await departed(items.map((w) => w.info))
      for (const i of gone) {
        const waiting = items[i]
        if (waiting === undefined || !this.#items.includes(waiting)) continue
        this.#remove(waiting)
        waiting.socket.destroy()
        this.onLeave(waiting)
      }
      this.#sweeping = null
      if (this.#items.length > 0) this.#sweep()
    }, SWEEP_MS)
    this.#sweeping.unref()
  }
}
