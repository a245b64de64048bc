/**
 * Login throttling rules (docs/auth.md): each username and each client address gets some free
 * attempts; after them every attempt makes the next one wait, twice as long each time.
 */
import { isIP } from "node:net"
import type { ThrottleKey } from "../../lib/ports"

export type ThrottleSettings = {
  readonly accountFree: number
  readonly addressFree: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly windowMs: number
}

export function throttleRules(s: ThrottleSettings) {
  return {
    windowMs: s.windowMs,
    blockFor(scope: ThrottleKey["scope"], attempts: number): number {
      const over = attempts - (scope === "account" ? s.accountFree : s.addressFree)
      if (over <= 0) return 0
      return Math.min(s.maxDelayMs, s.baseDelayMs * 2 ** Math.min(over - 1, 40))
    },
  }
}

/**
 * The client's address as the proxy in front reports it (first hop of X-Forwarded-For, else
 * X-Real-IP). IPv6 addresses count per /64, the block one subscriber usually holds.
 * Undefined when no proxy header carries a valid address.
 */
export function clientAddress(headers: Readonly<Record<string, string | undefined>>): string | undefined {
  const candidate = (headers["x-forwarded-for"]?.split(",")[0] ?? headers["x-real-ip"])?.trim()
  if (candidate === undefined) return undefined
  const version = isIP(candidate)
  if (version === 4) return candidate
  if (version === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(candidate)?.[1]
    return mapped ?? ipv6Prefix64(candidate)
  }
  return undefined
}

function ipv6Prefix64(address: string): string {
  const lower = address.toLowerCase().split("%")[0] as string
  const [head = "", tail] = lower.split("::")
  const left = head === "" ? [] : head.split(":")
  const right = tail === undefined || tail === "" ? [] : tail.split(":")
  // An embedded IPv4 tail (::ffff:1.2.3.4) lies in the low 64 bits, which are dropped anyway.
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/64`
}
