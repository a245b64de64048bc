/** Sizes and durations as written in stack.yml and by OpenFaaS ("256kb", "10s", "1m30s"). */

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text)
  if (m === null) return undefined
  const factor = BYTE_UNITS[(m[2] ?? "b").toLowerCase()] ?? 1
  return Math.floor(Number(m[1]) * factor)
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Go-style durations as used by of-watchdog (`exec_timeout: 10s`); a bare number is seconds. */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const parts = trimmed.match(/\d+(?:\.\d+)?(?:ms|s|m|h)/g)
  if (parts === null || parts.join("") !== trimmed) return undefined
  let total = 0
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(part)
    if (m === null) return undefined
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] ?? 0)
  }
  return Math.round(total)
}
