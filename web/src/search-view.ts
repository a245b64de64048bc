/** Search across the user's conversations; results show snippets with the matches marked. */
import type { SearchHit } from "../../sdk/src/index"
import { el, formatTime, on } from "./dom"
import { parseSnippet } from "./snippet"

export type SearchActions = {
  search(q: string): Promise<readonly SearchHit[]>
  where(hit: SearchHit): string
  open(hit: SearchHit): void
}

/** The snippet as text nodes and <mark> elements: never parsed as HTML. */
export function renderSnippet(snippet: string): HTMLElement {
  const out = el("div", { class: "snippet" })
  for (const part of parseSnippet(snippet)) out.append(part.marked ? el("mark", {}, part.text) : part.text)
  return out
}

export function createSearch(actions: SearchActions): { form: HTMLElement; results: HTMLElement } {
  const input = el("input", {
    type: "search",
    class: "search-input",
    placeholder: "Search messages",
    "aria-label": "Search",
  })
  const form = el(
    "form",
    { class: "search-form", role: "search" },
    input,
    el("button", { type: "submit" }, "Search"),
  )
  const results = el("ul", { class: "search-results hidden", "aria-label": "Search results" })
  on(form, "submit", (e) => {
    e.preventDefault()
    const q = input.value.trim()
    if (q === "") {
      results.classList.add("hidden")
      return
    }
    results.classList.remove("hidden")
    results.replaceChildren(el("li", { class: "muted search-status" }, "Searching…"))
    actions.search(q).then(
      (hits) => {
        if (hits.length === 0) {
          results.replaceChildren(el("li", { class: "muted search-status" }, "No messages found"))
          return
        }
        results.replaceChildren(
          ...hits.map((hit) => {
            const item = el(
              "li",
              { class: "search-result", "data-conv": hit.conv, "data-msg-id": hit.id, tabindex: 0 },
              el("div", { class: "where" }, `${actions.where(hit)} · ${formatTime(hit.ts)}`),
              renderSnippet(hit.snippet),
            )
            on(item, "click", () => actions.open(hit))
            return item
          }),
        )
      },
      (err: unknown) => {
        results.replaceChildren(
          el("li", { class: "error search-status" }, err instanceof Error ? err.message : "Search failed"),
        )
      },
    )
  })
  return { form, results }
}
