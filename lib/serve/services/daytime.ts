// RFC 867 daytime: one human-readable date line, then close.
import type { Socket } from 'node:net'

export const daytimeLine = (now: Date): string => `${now.toUTCString()}\r\n`

export default function daytime(socket: Socket): void {
  socket.end(daytimeLine(new Date()), () => socket.destroy())
}
