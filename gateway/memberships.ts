/**
 * Which conversations each connected user is in, as this edge knows it: loaded from the
 * conversations function when the user's first socket opens here (the edge never reads the
 * database), then kept current by membership events. Forgotten when the user's last socket
 * closes.
 */

/** Asks the functions for every conversation of the user whose access token this is, and how many members each has. */
export type LoadMemberships = (
  token: string,
) => Promise<{ readonly ids: readonly string[]; readonly memberCounts?: readonly number[] }>

type Entry = {
  readonly conversations: Set<string>
  /**
   * Member counts as loaded, or as a membership event that added the user said (not kept
   * current otherwise: only presence uses them, as a size class).
   */
  readonly sizes: Map<string, number>
  readonly ready: Promise<void>
}

export class Memberships {
  private readonly users = new Map<string, Entry>()

  constructor(private readonly load: LoadMemberships) {}

  /** The user's conversations, loading them on first use; rejects if they cannot be loaded. */
  async of(userId: string, token: string): Promise<ReadonlySet<string>> {
    let entry = this.users.get(userId)
    if (entry === undefined) {
      const conversations = new Set<string>()
      const sizes = new Map<string, number>()
      const ready = this.load(token).then(({ ids, memberCounts }) => {
        ids.forEach((id, i) => {
          conversations.add(id)
          const count = memberCounts?.[i]
          if (count !== undefined) sizes.set(id, count)
        })
      })
      entry = { conversations, sizes, ready }
      this.users.set(userId, entry)
      // A failed load is forgotten, so the next socket (or send) tries again.
      ready.catch(() => {
        if (this.users.get(userId) === entry) this.users.delete(userId)
      })
    }
    await entry.ready
    return entry.conversations
  }

  /**
   * Applies a membership change for a user connected here. Events that arrive while the list is
   * loading are applied after it (add and remove are idempotent, so the order with the load does
   * not matter). Users not connected here are ignored.
   */
  async changed(userId: string, conv: string, joined: boolean, members?: number): Promise<boolean> {
    const entry = this.users.get(userId)
    if (entry === undefined) return false
    await entry.ready
    if (joined) entry.conversations.add(conv)
    else entry.conversations.delete(conv)
    if (joined && members !== undefined) entry.sizes.set(conv, members)
    else if (!joined) entry.sizes.delete(conv)
    return true
  }

  /** Of the user's conversations, those with at most `maxMembers` members (unknown sizes count as small). */
  withAtMost(userId: string, conversations: ReadonlySet<string>, maxMembers: number): Set<string> {
    const sizes = this.users.get(userId)?.sizes
    return new Set([...conversations].filter((c) => (sizes?.get(c) ?? 0) <= maxMembers))
  }

  /** The user's conversations if they are loaded, without waiting. */
  known(userId: string): ReadonlySet<string> {
    return this.users.get(userId)?.conversations ?? new Set()
  }

  forget(userId: string): void {
    this.users.delete(userId)
  }
}

/** The production loader: GET /function/conversations?view=ids with the user's own token. */
export function httpMembershipLoader(functionsUrl: string, timeoutMs: number): LoadMemberships {
  return async (token) => {
    const res = await fetch(`${functionsUrl}/function/conversations?view=ids`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    })
    if (!res.ok) throw new Error(`conversations answered ${res.status}`)
    const body = (await res.json()) as { ids?: unknown; member_counts?: unknown }
    if (!Array.isArray(body.ids) || !body.ids.every((id) => typeof id === "string")) {
      throw new Error("conversations answered without an ids list")
    }
    const counts = body.member_counts
    const countsOk =
      Array.isArray(counts) && counts.length === body.ids.length && counts.every((n) => Number.isInteger(n))
    return { ids: body.ids as string[], ...(countsOk ? { memberCounts: counts as number[] } : {}) }
  }
}
