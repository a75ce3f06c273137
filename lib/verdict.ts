// A timer that judges a child, not the parent's loop. A parent that was
// stopped (SIGSTOP, Ctrl-Z, a paused VM) runs its expired timers first when it
// resumes, before it reads what the children sent meanwhile: libuv's poll,
// cut short by the stop, may return without reading (epoll_wait is not restarted
// after SIGCONT), and the next turn of the loop begins with the timers. So the
// verdict waits for setImmediate: that runs after the loop's next poll phase,
// which reads every ready channel (libuv polls again while epoll fills its
// event array, up to 48 times, and reads each stream up to 32 times), and by
// then a child that answered while the parent was stopped has been heard.
// `stillDue` is asked then.

/** Like setTimeout(verdict, ms), but `verdict` runs only if `stillDue()` once the pending I/O has been read. */
export const verdictTimer = (ms: number, stillDue: () => boolean, verdict: () => void): NodeJS.Timeout =>
  setTimeout(() => setImmediate(() => stillDue() && verdict()), ms)
