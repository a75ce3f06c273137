// The few SVG elements the pictures need, written by hand: no dependency, and
// the same bytes on every machine, so a test can tell a stale picture.

export const SANS = 'Helvetica, Arial, sans-serif'
export const MONO = 'Menlo, Consolas, "DejaVu Sans Mono", monospace'

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A number as the SVG writes it: at most one decimal, so the output does not drift with float noise. */
const n = (value: number): string => String(Math.round(value * 10) / 10)

/** A label's parts: text between backticks is code, set in the monospace face. */
const parts = (label: string): { code: boolean; text: string }[] =>
  label.split('`').map((text, i) => ({ code: i % 2 === 1, text })).filter((part) => part.text !== '')

/** About how wide a label is drawn, to size the box behind it (the fonts differ a little by machine). */
export const widthOf = (label: string, size: number): number =>
  parts(label).reduce((sum, part) => sum + part.text.length * size * (part.code ? 0.6 : 0.56), 0)

export interface TextStyle {
  readonly size: number
  readonly anchor?: 'start' | 'middle' | 'end'
  readonly weight?: 'bold'
  readonly fill?: string
}

export const text = (x: number, y: number, label: string, style: TextStyle): string => {
  const spans = parts(label).map((part) => (part.code ? `<tspan font-family='${MONO}'>${escape(part.text)}</tspan>` : escape(part.text)))
  const weight = style.weight === undefined ? '' : ` font-weight="${style.weight}"`
  return `<text x="${n(x)}" y="${n(y)}" font-size="${style.size}" text-anchor="${style.anchor ?? 'start'}" fill="${style.fill ?? '#111'}"${weight}>${spans.join('')}</text>`
}

export interface BoxStyle {
  readonly fill: string
  readonly stroke: string
  readonly dashed?: boolean
  readonly radius?: number
}

export const box = (x: number, y: number, width: number, height: number, style: BoxStyle): string =>
  `<rect x="${n(x)}" y="${n(y)}" width="${n(width)}" height="${n(height)}" rx="${style.radius ?? 6}" fill="${style.fill}" stroke="${style.stroke}" stroke-width="1.5"${style.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`

export const line = (x1: number, y1: number, x2: number, y2: number, stroke: string, dashed = false): string =>
  `<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}" stroke="${stroke}" stroke-width="1"${dashed ? ' stroke-dasharray="4 4"' : ''}/>`

/** An arrowhead whose tip is at (x, y), pointing right (dir 1) or left (dir -1). */
const head = (x: number, y: number, dir: 1 | -1, fill: string): string =>
  `<path d="M${n(x)},${n(y)} L${n(x - dir * 10)},${n(y - 5)} L${n(x - dir * 10)},${n(y + 5)} Z" fill="${fill}"/>`

/** A horizontal arrow from x1 to x2, with a head at x2, and at x1 too when `both`. */
export const arrow = (x1: number, x2: number, y: number, stroke: string, width: number, both = false): string => {
  const dir = x2 > x1 ? 1 : -1
  const shaft = `<line x1="${n(x1 + (both ? dir * 8 : 0))}" y1="${n(y)}" x2="${n(x2 - dir * 8)}" y2="${n(y)}" stroke="${stroke}" stroke-width="${width}"/>`
  return [shaft, head(x2, y, dir, stroke), ...(both ? [head(x1, y, dir === 1 ? -1 : 1, stroke)] : [])].join('')
}

export const circle = (x: number, y: number, r: number, fill: string): string => `<circle cx="${n(x)}" cy="${n(y)}" r="${r}" fill="${fill}"/>`

export const svg = (width: number, height: number, body: readonly string[]): string =>
  [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${SANS}">`,
    // An explicit white ground: GitHub's dark theme would otherwise show dark text on dark.
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
