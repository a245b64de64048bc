/**
 * The only way the app builds DOM: elements with attributes and text nodes. User data reaches the
 * page as text (text nodes, `textContent`, attribute values), never as markup: nothing here
 * parses HTML.
 */

type Child = Node | string | null | undefined | false
type Attrs = Readonly<Record<string, string | number | boolean | undefined>>

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    // Handlers are added with on(); an "on…" attribute would be inline script (and CSP blocks it).
    if (/^on/i.test(name)) throw new Error(`el(): use on() for ${name}`)
    node.setAttribute(name, value === true ? "" : String(value))
  }
  append(node, ...children)
  return node
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child)
  }
}

/** addEventListener with the event type checked. */
export function on<K extends keyof HTMLElementEventMap>(
  target: HTMLElement,
  type: K,
  handler: (event: HTMLElementEventMap[K]) => void,
): void {
  target.addEventListener(type, handler as EventListener)
}

/** A URL from the server that may go into href/src: http(s) only, never javascript: or data:. */
export function safeUrl(url: string): string | undefined {
  try {
    const u = new URL(url, location.href)
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : undefined
  } catch {
    // Not a URL: nothing to link to.
    return undefined
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`
  return `${(n / 1024 ** 3).toFixed(1)} GB`
}

export function formatTime(iso: string): string {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
}
