// RFC 863 discard: read everything, answer nothing.
import type { Socket } from 'node:net'

export default function discard(socket: Socket): void {
  socket.resume()
  socket.on('end', () => socket.end())
}
