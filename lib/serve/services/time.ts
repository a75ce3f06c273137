// RFC 868 time: seconds since 1900-01-01 00:00 UTC, 4 bytes big-endian, then close.
import type { Socket } from 'node:net'

/** Seconds between 1900-01-01 and the Unix epoch, 1970-01-01. */
export const EPOCH_1900 = 2_208_988_800

export const timeBytes = (now: Date): Buffer => {
  const buffer = Buffer.alloc(4)
  // The 32-bit count wraps in 2036, as RFC 868 clients expect.
  buffer.writeUInt32BE((Math.floor(now.getTime() / 1000) + EPOCH_1900) % 2 ** 32)
  return buffer
}

export default function time(socket: Socket): void {
  socket.end(timeBytes(new Date()), () => socket.destroy())
}
