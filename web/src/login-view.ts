/** Log in or register. */
import { el, on } from "./dom"

export type Credentials = { readonly username: string; readonly password: string }

export function renderLogin(
  root: HTMLElement,
  submit: (how: "login" | "register", c: Credentials) => Promise<void>,
  notice?: string,
): void {
  const username = el("input", {
    name: "username",
    autocomplete: "username",
    required: true,
    "aria-label": "Username",
  })
  const password = el("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "aria-label": "Password",
  })
  const login = el("button", { type: "submit", class: "primary login-button" }, "Log in")
  const register = el("button", { type: "button", class: "register-button" }, "Register")
  const error = el("p", { class: "error login-error", role: "alert" }, notice ?? "")
  const form = el(
    "form",
    { class: "login" },
    el("h1", {}, "Cove"),
    el("label", {}, "Username", el("br"), username),
    el("label", {}, "Password", el("br"), password),
    el("div", { class: "buttons" }, login, register),
    error,
  )
  const run = (how: "login" | "register") => {
    if (!form.reportValidity()) return
    login.disabled = true
    register.disabled = true
    error.textContent = ""
    submit(how, { username: username.value, password: password.value }).then(
      () => undefined,
      (err: unknown) => {
        error.textContent = err instanceof Error ? err.message : String(err)
        login.disabled = false
        register.disabled = false
      },
    )
  }
  on(form, "submit", (e) => {
    e.preventDefault()
    run("login")
  })
  on(register, "click", () => run("register"))
  root.replaceChildren(form)
  username.focus()
}
