// RFC 864 chargen: rotating 72-character lines of the 95 printable ASCII
// characters, until the client goes away.
import type { Socket } from 'node:net'

const FIRST = 0x20
const PRINTABLE = 95
const WIDTH = 72

/** One full rotation: 95 lines of 72 characters plus CR LF, 7,030 bytes. */
export const chargenCycle = (): Buffer => {
  const lines: string[] = []
  for (let start = 0; start < PRINTABLE; start++) {
    let line = ''
    for (let i = 0; i < WIDTH; i++) line += String.fromCharCode(FIRST + ((start + i) % PRINTABLE))
    lines.push(`${line}\r\n`)
  }
  return Buffer.from(lines.join(''), 'latin1')
}

export default function chargen(socket: Socket): void {
  const cycle = chargenCycle()
  // One rotation per turn of the event loop while the socket takes more, then
  // wait for 'drain': a client that never reads leaves us parked with at most
  // one buffer queued, and a fast reader cannot starve the loop.
  const pump = (): void => {
    if (socket.destroyed) return
    if (socket.write(cycle)) setImmediate(pump)
    else socket.once('drain', pump)
  }
  socket.resume() // what the client sends is ignored, as RFC 864 says
  socket.on('end', () => socket.destroy())
  pump()
}
