// Summaries of samples.

/** Nearest-rank percentile of samples sorted ascending; NaN when there are none. */
export const percentile = (sorted: readonly number[], p: number): number => {
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] ?? NaN
}

export const mean = (samples: readonly number[]): number =>
  samples.length === 0 ? NaN : samples.reduce((sum, x) => sum + x, 0) / samples.length

export const ascending = (samples: readonly number[]): number[] => [...samples].sort((a, b) => a - b)

/** Rounds to `digits` decimals, so the JSON carries no false precision. */
export const round = (x: number, digits: number): number => Number(x.toFixed(digits))

/** A figure for the JSON: rounded, or null (never 0) when there was nothing to measure. */
export const figure = (x: number, digits: number): number | null => (Number.isFinite(x) ? round(x, digits) : null)

/** `total / count`, rounded; null when `count` is 0, as in a window where nothing completed. */
export const per = (total: number, count: number, digits: number): number | null => (count > 0 ? figure(total / count, digits) : null)
