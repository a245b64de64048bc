/**
 * Full-text search over the caller's conversations: membership is read first, and the
 * conversations become part of the index search itself (docs/search.md).
 */
import { AppError } from "../../lib/errors"
import type { Caller, ConversationStore, SearchCursor, SearchHit, SearchStore } from "../../lib/ports"
import { snippet } from "../../lib/search/snippet"
import { queryTerms } from "../../lib/search/tokenize"
import { monthOf, monthStart, monthsQuery, scopeQuery, termsQuery } from "../../lib/search/tsearch"
import { decodeCursor, encodeCursor, type Resume, searchDigest, type Tier } from "./cursor"
import type { SearchInput } from "./input"

export type SearchPorts = {
  readonly search: SearchStore
  readonly conversations: Pick<ConversationStore, "roleOf" | "idsFor">
  readonly maxQueryChars: number
  /** A query with at least this many hits in a window of recent months is ranked within it. */
  readonly windowMin: number
  readonly now: () => Date
}

/** Most terms in one query: each is a GIN lookup. */
const MAX_TERMS = 16
/**
 * Up to this many conversations are ORed into the index search; a caller in more (a bot in
 * thousands) is filtered by conversation id alone, after the words.
 */
const MAX_SCOPED_CONVERSATIONS = 1_000
/**
 * The window of recent months a common query is ranked in: the current month and the one before,
 * so that it always spans at least one whole month.
 */
const WINDOW_MONTHS = 2

export type SearchItem = { conv: string; seq: number; id: string; from: string; ts: string; snippet: string }
export type SearchPage = { items: SearchItem[]; next_cursor: string | null }

/**
 * Ranking every hit of a word found in half the messages would read them all. So a search looks
 * at the current and the previous month first: with at least `windowMin` hits there, those are
 * ranked (relevance, then recency), and the hits before them follow, ranked among themselves, on
 * later pages. Any other query is ranked over all time in one go (docs/search.md).
 */
export async function search(input: SearchInput, caller: Caller, p: SearchPorts): Promise<SearchPage> {
  if ([...input.q].length > p.maxQueryChars)
    throw new AppError(
      "SEARCH_QUERY_TOO_LONG",
      `The search query is longer than ${p.maxQueryChars} characters.`,
    )
  const terms = queryTerms(input.q)
  if (terms.length === 0) throw new AppError("SEARCH_QUERY_EMPTY")
  if (terms.length > MAX_TERMS)
    throw new AppError("SEARCH_QUERY_TOO_LONG", `The search query has more than ${MAX_TERMS} words.`)
  const digest = searchDigest([input.q, input.conv, input.from, input.after, input.before])
  const resume = input.cursor === undefined ? undefined : decodeCursor(input.cursor, digest)

  let conversations: string[]
  if (input.conv !== undefined) {
    // As in history: a conversation the caller is not in does not exist for them.
    if ((await p.conversations.roleOf(input.conv, caller.userId)) === undefined)
      throw new AppError("NOT_FOUND", "No such conversation.")
    conversations = [input.conv]
  } else conversations = await p.conversations.idsFor(caller.userId)
  if (conversations.length === 0) return { items: [], next_cursor: null }

  const now = p.now()
  const userBefore = input.before === undefined ? undefined : new Date(input.before)
  const fetch = (tier: Tier, position: SearchCursor | undefined, limit: number) => {
    const before = tier.kind === "rest" ? monthStart(tier.before) : undefined
    return p.search.search({
      match: termsQuery(terms),
      scope: conversations.length <= MAX_SCOPED_CONVERSATIONS ? scopeQuery(conversations) : undefined,
      months: tier.kind === "window" ? monthsQuery(monthsSince(tier.from, now)) : undefined,
      conversations,
      from: input.from,
      after: input.after === undefined ? undefined : new Date(input.after),
      before: before !== undefined && (userBefore === undefined || before < userBefore) ? before : userBefore,
      cursor: position,
      limit,
    })
  }

  let tier: Tier = { kind: "all" }
  let found: SearchHit[] | undefined
  if (resume === undefined) {
    // Recent months cost little to look at, even for the commonest word (the month lexeme is
    // one more GIN condition); a query with fewer hits there is ranked over all time.
    const window: Tier = { kind: "window", from: monthOf(now, 1 - WINDOW_MONTHS) }
    const first = await fetch(window, undefined, input.limit + 1)
    if (first.candidates >= p.windowMin) {
      tier = window
      found = first.hits
    }
  } else tier = resume.tier
  found ??= (await fetch(tier, resume?.position, input.limit + 1)).hits

  let page = found.slice(0, input.limit)
  let next: Resume | undefined
  const last = page.at(-1)
  if (found.length > input.limit && last !== undefined) next = { tier, position: last.position }
  else if (tier.kind === "window") {
    // The window is done: the page goes on with the months before it.
    const rest: Tier = { kind: "rest", before: tier.from }
    const need = input.limit - page.length
    const older = (await fetch(rest, undefined, need + 1)).hits
    page = [...page, ...older.slice(0, need)]
    if (older.length > need) next = { tier: rest, position: need === 0 ? undefined : page.at(-1)?.position }
  }
  return {
    items: page.map((h) => ({
      conv: h.conv,
      seq: h.seq,
      id: h.id,
      from: h.from,
      ts: h.ts,
      snippet: snippet(h.content, terms),
    })),
    next_cursor: next === undefined ? null : encodeCursor(next, digest),
  }
}

/**
 * The months from `from` to the one after `now` (a clock a little ahead stays covered); at most
 * 24, whatever a cursor says.
 */
function monthsSince(from: string, now: Date): string[] {
  const months: string[] = []
  for (let delta = 1; months.length < 24; delta--) {
    const m = monthOf(now, delta)
    months.push(m)
    if (m <= from) break
  }
  return months
}
