// `debug` tracing, loaded only when DEBUG is set: a child that is not being
// traced should not pay for the module on every connection.

export type Trace = (format: string, ...args: unknown[]) => void

const off: Trace = () => {}

/** A `debug` logger for `forkserver:NAME`, or a no-op when DEBUG is unset. */
export const openTrace = async (name: string): Promise<Trace> => {
  if (!process.env.DEBUG) return off
  const { default: debug } = await import('debug')
  return debug(`forkserver:${name}`)
}
