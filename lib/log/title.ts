// The process title, as nginx and unicorn set theirs, so that `ps` and
// `top` show the loop: `forkserver: parent 127.0.0.1:7000`, `forkserver:
// zygote (generation 2)`, `forkserver: spare`, and for a child serving a
// client, `forkserver: 127.0.0.1:51234`. Node writes it over the process's
// argv (libuv's uv_set_process_title), so a title longer than the command
// line it was started with is cut to that length; `top` shows the first 15
// characters, Linux's comm.
export const TITLE_PREFIX = 'forkserver: '

export const setTitle = (what: string): void => {
  process.title = `${TITLE_PREFIX}${what}`
}
