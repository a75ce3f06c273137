// RFC 862 echo: every byte back, unchanged.
import type { Socket } from 'node:net'

export default function echo(socket: Socket): void {
  // When the client half-closes, keep our side open until every byte it
  // sent has been written back; pipe() then ends our side (flush, then FIN).
  socket.allowHalfOpen = true
  socket.pipe(socket)
}
