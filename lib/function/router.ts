/** Method + path routing inside one function, with `:name` path parameters. */

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE"

export type RouteMatch<T> =
  | { kind: "found"; value: T; params: Record<string, string> }
  | { kind: "method-not-allowed"; allowed: Method[] }
  | { kind: "not-found" }

type Entry<T> = { method: Method; segments: string[]; value: T }

export class Router<T> {
  private readonly entries: Entry<T>[] = []

  add(method: Method, path: string, value: T): this {
    this.entries.push({ method, segments: split(path), value })
    return this
  }

  match(method: string, path: string): RouteMatch<T> {
    const segments = split(path)
    const allowed: Method[] = []
    for (const entry of this.entries) {
      const params = matchSegments(entry.segments, segments)
      if (params === undefined) continue
      if (entry.method === method) return { kind: "found", value: entry.value, params }
      allowed.push(entry.method)
    }
    return allowed.length > 0 ? { kind: "method-not-allowed", allowed } : { kind: "not-found" }
  }
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "")
}

function matchSegments(pattern: string[], actual: string[]): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string
    const a = actual[i] as string
    if (p.startsWith(":")) {
      let decoded: string
      try {
        decoded = decodeURIComponent(a)
      } catch {
        // A malformed %-escape cannot name any resource.
        return undefined
      }
      params[p.slice(1)] = decoded
    } else if (p !== a) return undefined
  }
  return params
}
