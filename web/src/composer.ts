/**
 * The message box: Enter sends, Shift+Enter breaks the line, and Enter that confirms an input
 * method's composition (Chinese pinyin, Japanese kana…) does nothing but confirm it.
 * Also: reply and edit modes, attaching files with upload progress, typing notices.
 */
import { el, on } from "./dom"
import { type ChatMessage, preview } from "./state"

export type ComposerActions = {
  send(text: string, replyTo: string | undefined): void
  edit(target: ChatMessage, text: string): void
  upload(file: File, progress: (sent: number, total: number) => void): Promise<void>
  typing(): void
}

export type Composer = {
  readonly element: HTMLElement
  replyTo(m: ChatMessage, name: string): void
  editing(m: ChatMessage): void
  focus(): void
}

/** Whether this keydown belongs to an input method's composition rather than to us. */
export function isComposing(e: KeyboardEvent, composing: boolean): boolean {
  // keyCode 229 is what browsers report for keys the IME consumed (Safari ends the composition
  // before the Enter keydown, so isComposing alone misses it).
  return e.isComposing || composing || e.keyCode === 229
}

export function createComposer(actions: ComposerActions): Composer {
  const input = el("textarea", {
    class: "input",
    rows: 1,
    placeholder: "Message",
    "aria-label": "Message",
    maxlength: 16384,
  })
  const sendButton = el("button", { class: "send primary", type: "button" }, "Send")
  const fileInput = el("input", { type: "file", class: "hidden file-input", multiple: true })
  const attach = el("button", { class: "attach", type: "button", title: "Attach a file" }, "Attach")
  const contextText = el("span", { class: "context-text" })
  const cancel = el("button", { class: "cancel", type: "button" }, "Cancel")
  const context = el("div", { class: "context hidden" }, contextText, cancel)
  const uploads = el("div", { class: "uploads" })
  const element = el(
    "div",
    { class: "composer" },
    context,
    uploads,
    el("div", { class: "row" }, attach, fileInput, input, sendButton),
  )

  let mode: { kind: "reply" | "edit"; message: ChatMessage } | undefined
  let composing = false
  let lastTyping = 0

  const setMode = (next: typeof mode, label: string) => {
    mode = next
    context.classList.toggle("hidden", next === undefined)
    contextText.textContent = label
  }
  const submit = () => {
    const text = input.value
    if (text.trim() === "") return
    if (mode?.kind === "edit") actions.edit(mode.message, text)
    else actions.send(text, mode?.kind === "reply" ? mode.message.id : undefined)
    input.value = ""
    setMode(undefined, "")
  }

  on(input, "compositionstart", () => {
    composing = true
  })
  on(input, "compositionend", () => {
    composing = false
  })
  on(input, "keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey) return
    if (isComposing(e, composing)) return
    e.preventDefault()
    submit()
  })
  on(input, "input", () => {
    // Typing notices are relayed to every member: at most one every 3 s.
    if (Date.now() - lastTyping < 3000 || input.value === "") return
    lastTyping = Date.now()
    actions.typing()
  })
  on(sendButton, "click", submit)
  on(cancel, "click", () => {
    if (mode?.kind === "edit") input.value = ""
    setMode(undefined, "")
  })
  on(attach, "click", () => fileInput.click())
  on(fileInput, "change", () => {
    for (const file of fileInput.files ?? []) startUpload(file)
    fileInput.value = ""
  })

  const startUpload = (file: File) => {
    const bar = el("progress", { max: file.size || 1, value: 0 })
    const label = el("span", { class: "upload-name" }, file.name)
    const status = el("span", { class: "upload-status" }, "0%")
    const row = el("div", { class: "upload" }, label, bar, status)
    uploads.append(row)
    actions
      .upload(file, (sent, total) => {
        bar.max = total || 1
        bar.value = sent
        status.textContent = `${total === 0 ? 100 : Math.floor((sent / total) * 100)}%`
      })
      .then(
        () => row.remove(),
        (err: unknown) => {
          status.textContent = `Failed: ${err instanceof Error ? err.message : String(err)}`
          row.classList.add("error")
        },
      )
  }

  return {
    element,
    replyTo(m, name) {
      setMode({ kind: "reply", message: m }, `Replying to ${name}: ${preview(m).slice(0, 80)}`)
      input.focus()
    },
    editing(m) {
      if (m.body?.kind !== "text") return
      setMode({ kind: "edit", message: m }, "Editing message")
      input.value = m.body.text
      input.focus()
    },
    focus() {
      input.focus()
    },
  }
}
