// What the JS side of a forked child must do before it runs anything else
// (the native side, uv_loop_fork and the worker threads, is done by then).
// The child is a copy of the parent's heap: whatever the parent cached, the
// child has too. Only descriptors are shared, the IPC channel's among them.
//
// Not done here, because JS cannot reach them: the parent's timers (Node 20
// keeps them in internal lists) and its other handles (servers, sockets).
// The forking code owns those, and closes or clears them in the child.
import { writeSync } from 'node:fs'
import { constants } from 'node:os'
import { inspect } from 'node:util'
import type { Addon } from '../native/addon.js'
import { reseedRandomState } from './random-state.js'

/**
 * Parent lifecycle listeners the child must not run: they belong to the
 * parent's life, not the child's. ('internalMessage' is Node's own, for the
 * channel: a handle's ACK, sent on a channel the child no longer has.)
 */
const PARENT_EVENTS = ['message', 'internalMessage', 'disconnect', 'beforeExit', 'exit', 'uncaughtException', 'unhandledRejection'] as const

/** The signals Node knows by name: a child drops the parent's listeners for them. */
const SIGNALS: ReadonlySet<string | symbol> = new Set(Object.keys(constants.signals))
/**
 * The key of the IPC channel's real handle on `process` (Node's private
 * kChannelHandle), looked for once in the parent: Node sets the channel up
 * before any module loads. Undefined in a process that has no channel.
 */
const CHANNEL_HANDLE = Object.getOwnPropertySymbols(process).find((symbol) => symbol.description === 'kChannelHandle')

/** True once this process's exits are _exit: in a child of a forked child, they already are. */
let exitsPatched = false

export const becomeChild = (addon: Addon): void => {
  correctPid(addon)
  closeChannel()
  dropParentListeners()
  // Messages the parent's channel had read before the fork wait on the tick
  // queue, each to be emitted; with no listener, Node would keep each for the
  // channel, which is gone, and throw. They were the parent's: drop them.
  process.on('message', () => {})
  reseedRandomState(addon)
  if (!exitsPatched) exitByUnderscoreExit(addon)
  exitsPatched = true
}

// Node reads the pid once, at start-up.
const correctPid = (addon: Addon): void => {
  Object.defineProperty(process, 'pid', { value: addon.getpid(), writable: false, enumerable: true, configurable: true })
}

// The child holds a copy of the parent's IPC descriptor, and after
// uv_loop_fork its loop would read the parent's messages and finish the
// parent's half-written ones. process.channel is only a wrapper: close the
// real handle now, before the loop runs, then let Node's JS side catch up.
const closeChannel = (): void => {
  const handle = CHANNEL_HANDLE === undefined ? undefined : (process as unknown as Record<symbol, { close(): void } | null>)[CHANNEL_HANDLE]
  if (handle === undefined || handle === null) return
  process.removeAllListeners('message').removeAllListeners('disconnect')
  handle.close()
  process.disconnect?.()
}

// The parent's signal handlers and lifecycle listeners are its own; once a
// signal has no listener, Node gives it back its default action.
const dropParentListeners = (): void => {
  for (const event of process.eventNames()) if (SIGNALS.has(event)) process.removeAllListeners(event)
  for (const event of PARENT_EVENTS) if (event !== 'uncaughtException' || !exitsPatched) process.removeAllListeners(event)
}

// Node's own end hangs in a forked child (it waits for worker tasks that will
// never finish, and joins threads that are not here): every way out must be
// _exit. process.exit() emits 'exit'; after its last listener, _exit with the
// status. A natural end never comes: the addon keeps the loop alive and
// calls back when nothing else does, and the child ends as Node would have,
// with 'beforeExit' (which may start more work) and then 'exit'. An uncaught
// exception is printed as Node prints it, then the same way out with status 1.
const exitByUnderscoreExit = (addon: Addon): void => {
  const emit = process.emit
  const statusOf = (code: unknown): number => (typeof code === 'number' ? code : Number(process.exitCode ?? 0) || 0)
  process.emit = function (this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    try {
      return Reflect.apply(emit, this, [event, ...args]) as boolean
    } finally {
      if (event === 'exit') addon.exit(statusOf(args[0]))
    }
  } as typeof process.emit
  ;(process as unknown as { reallyExit: (code?: number) => never }).reallyExit = (code) => addon.exit(statusOf(code))
  addon.whenIdle(() => {
    process.emit('beforeExit', statusOf(undefined))
    if (addon.idle()) process.exit()
  })
  process.on('uncaughtException', function fatal(err) {
    if (process.listenerCount('uncaughtException') > 1) return // the child's own listener handles it, as in Node
    writeSync(2, `${inspect(err)}\n`)
    process.exit(1)
  })
}
