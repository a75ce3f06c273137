// A timer that judges a child, not the parent's loop. A parent that was
// stopped (SIGSTOP, Ctrl-Z, a paused VM) runs its expired timers first when it
// resumes, before it reads what the children sent meanwhile: libuv's poll,
// cut short by the stop, may return without reading (epoll_wait is not restarted
// after SIGCONT), and the next turn of the loop begins with the timers. So the
// verdict waits for setImmediate: that runs after the loop's next poll phase,
// which reads every ready channel (libuv polls again while epoll fills its
// event array, up to 48 times, and reads each stream up to 32 times), and by
// then a child that answered while the parent was stopped has been heard.
//
// That is not enough when the stop held up the parent's own side: a message
// to the child (a zygote's fork request, say) still queued in the parent when
// it stopped goes out only now, and its answer cannot be there yet. So a timer
// that fires more than STALL_MS late says that this loop stalled, and judges
// nothing: the child gets its whole time again, counted from now.

/** A timer this much late or more means the parent's loop stalled. */
export const STALL_MS = 1000

/**
 * Like setTimeout(verdict, ms), but `verdict` runs only if `stillDue()` once
 * the pending I/O has been read, and only if the loop kept time meanwhile.
 * The same Timeout is re-armed (refresh()), so clearTimeout on it still stops it.
 */
export const verdictTimer = (ms: number, stillDue: () => boolean, verdict: () => void): NodeJS.Timeout => {
  let due = performance.now() + ms
  const timer = setTimeout(() => {
    const late = performance.now() - due
    setImmediate(() => {
      if (!stillDue()) return
      if (late < STALL_MS) return verdict()
      due = performance.now() + ms
      timer.refresh()
    })
  }, ms)
  return timer
}
