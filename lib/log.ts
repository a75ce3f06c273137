// The parent's log lines, one fixed shape each, on stderr. People grep these,
// as they grep tcpserver's, so the shapes do not change:
//
//   listening on HOST:PORT        always, once listening
//   status: N/MAX                 -v, whenever the number of children changes
//   pid P from IP:PORT            -v, after each fork
//   end P status S                -v, when a child exits
//   end P signal SIG              -v, when a child is killed
//   deny IP:PORT                  -v, when --allow/--deny turns a peer away
//   warning: dropping connection, REASON: IP:PORT    always
//   warning: MESSAGE              always
//   fatal: MESSAGE                always, then a non-zero exit

export interface Log {
  readonly line: (text: string) => void
  readonly verbose: (text: string) => void
  readonly warning: (text: string) => void
  readonly drop: (reason: string, peer: string) => void
}

const LIMIT = 200

/**
 * Text that a peer or a child can influence is cleaned before it is logged:
 * anything but printable ASCII becomes `?`, and long text is cut, so a peer
 * cannot forge log lines or flood the log.
 */
export const sanitize = (text: string, limit = LIMIT): string => {
  const clean = text.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > limit ? `${clean.slice(0, limit)}...` : clean
}

export const createLog = (verbose: boolean, write: (s: string) => void = (s) => process.stderr.write(s)): Log => {
  const line = (text: string): void => write(`${text}\n`)
  return {
    line,
    verbose: verbose ? line : () => {},
    warning: (text) => line(`warning: ${sanitize(text)}`),
    drop: (reason, peer) => line(`warning: dropping connection, ${sanitize(reason)}: ${sanitize(peer)}`),
  }
}

/** The message of anything thrown. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** A signal name or status, as the `end` line prints it. */
export const endLine = (pid: number | undefined, code: number | null, signal: string | null): string =>
  signal ? `end ${pid ?? '?'} signal ${signal}` : `end ${pid ?? '?'} status ${code ?? '?'}`
