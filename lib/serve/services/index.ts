// The built-in services, the inetd classics. Each lives in its own module
// and is imported only by the child that serves it, so a child pays for the
// one service it runs and nothing else.
import type { Socket } from 'node:net'
import type { ConnectionInfo } from '../../protocol.js'

/** What a service or a --handler module exports as default. */
export type Handler = (socket: Socket, info: ConnectionInfo) => void | Promise<void>

interface HandlerModule {
  readonly default: Handler
}

export const SERVICES = {
  echo: () => import('./echo.js'),
  discard: () => import('./discard.js'),
  daytime: () => import('./daytime.js'),
  chargen: () => import('./chargen.js'),
  time: () => import('./time.js'),
} as const satisfies Record<string, () => Promise<HandlerModule>>

export type ServiceName = keyof typeof SERVICES

export const SERVICE_NAMES = Object.keys(SERVICES) as readonly ServiceName[]

export const isServiceName = (name: string): name is ServiceName =>
  Object.hasOwn(SERVICES, name)
