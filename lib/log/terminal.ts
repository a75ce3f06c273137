// The terminal a process was started from, and what happens when it closes.
//
// Closing a terminal sends SIGHUP to the process that leads it, and from
// then on every write to the terminal fails with EIO. Node, as it exits,
// restores the terminal settings of each stdio descriptor that was a terminal,
// and aborts if that fails. So a process whose terminal is gone moves its
// stdio to /dev/null before it exits: its log is lost, but it exits with its
// own status, and the children it forks afterwards never see the dead terminal.
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs'

/**
 * True when stderr was a terminal that has since been closed (hung up).
 * (Asked of descriptor 2, so that a child that never logs never builds
 * process.stderr: that would cost every connection.)
 */
export const terminalGone = (): boolean => {
  try {
    if (!fstatSync(2).isCharacterDevice()) return false
    writeSync(2, '')
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EIO'
  }
}

/**
 * If the terminal is gone, points stdin, stdout and stderr at /dev/null.
 * (open() takes the lowest free descriptor: the one just closed.) True if it did.
 */
export const leaveDeadTerminal = (): boolean => {
  if (!terminalGone()) return false
  for (const fd of [0, 1, 2]) {
    try {
      closeSync(fd)
    } catch {
      // not open
    }
    const opened = openSync('/dev/null', fd === 0 ? 'r' : 'w')
    if (opened !== fd) closeSync(opened) // another thread took it: leave that descriptor closed
  }
  return true
}

let guarded = false

/**
 * process.stderr, for the log. Writes to a terminal that has gone fail with
 * EIO: the process serves on without its log, rather than die of it.
 */
export const logStream = (): NodeJS.WriteStream => {
  if (!guarded) process.stderr.on('error', () => {})
  guarded = true
  return process.stderr
}
