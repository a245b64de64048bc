/** Where the SDK keeps the outbox and the tokens between runs. */
import type { Storage } from "./types"

/** Kept in memory only: the default on Node.js, and for tests. */
export function memoryStorage(): Storage {
  const values = new Map<string, string>()
  return {
    get: (key) => values.get(key),
    set: (key, value) => {
      values.set(key, value)
    },
    remove: (key) => {
      values.delete(key)
    },
  }
}

type LocalStorageLike = {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/**
 * The browser's localStorage under `prefix`, so that unacked sends and the tokens survive a page
 * reload. Tabs of one origin share it: give each account its own prefix if an app signs in twice.
 */
export function browserStorage(prefix = "cove:", local?: LocalStorageLike): Storage {
  const store = local ?? (globalThis as { localStorage?: LocalStorageLike }).localStorage
  if (store === undefined) throw new Error("browserStorage needs localStorage (use memoryStorage elsewhere)")
  return {
    get: (key) => store.getItem(prefix + key) ?? undefined,
    set: (key, value) => store.setItem(prefix + key, value),
    remove: (key) => store.removeItem(prefix + key),
  }
}

export function readJson<T>(storage: Storage, key: string): T | undefined {
  const text = storage.get(key)
  if (text === undefined) return undefined
  try {
    return JSON.parse(text) as T
  } catch {
    // Something else wrote this key, or it was cut short: start without it rather than fail to start.
    storage.remove(key)
    return undefined
  }
}
