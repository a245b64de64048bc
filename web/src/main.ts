/**
 * The web app's entry: reads /app/config.json (where the edge is), resumes the saved login or
 * shows the login form, then starts the app. The SDK keeps the tokens and the unacknowledged
 * sends in localStorage (browserStorage), so a reload loses nothing.
 */
import { browserStorage, CoveClient, FrameError, type User } from "../../sdk/src/index"
import { startApp } from "./app"
import { renderLogin } from "./login-view"

type AppConfig = { readonly edge_url: string }

/** Who is signed in (the access token may not carry the username). */
const USER_KEY = "cove.user"
/** Codes after which only a new login helps (docs/protocol.md "Closes"). */
const LOGIN_ENDED = new Set([
  "AUTH_SESSION_REVOKED",
  "AUTH_USER_DISABLED",
  "AUTH_TOKEN_INVALID",
  "AUTH_TOKEN_EXPIRED",
])

async function main(root: HTMLElement): Promise<void> {
  const res = await fetch("/app/config.json", { cache: "no-store" })
  if (!res.ok) throw new Error(`/app/config.json answered ${res.status}`)
  const config = (await res.json()) as AppConfig
  const options = { baseUrl: location.origin, edgeUrl: config.edge_url, storage: browserStorage("cove:") }

  const signOut = (notice?: string) => {
    localStorage.removeItem(USER_KEY)
    showLogin(notice)
  }
  const run = (client: CoveClient) => {
    localStorage.setItem(USER_KEY, JSON.stringify(client.user))
    client.on("error", (err) => {
      if (err instanceof FrameError && LOGIN_ENDED.has(err.code)) {
        void client.close()
        signOut("Your session has ended: please log in again.")
      }
    })
    startApp(root, client, () => {
      client.auth.logout().then(
        () => signOut(),
        () => signOut(),
      )
    })
    client.connect().catch((err: unknown) => {
      // The first connection failed for good (the login is over); reconnects are the SDK's.
      signOut(err instanceof Error ? err.message : String(err))
    })
  }
  const showLogin = (notice?: string) =>
    renderLogin(
      root,
      async (how, credentials) => {
        const o = { ...options, ...credentials }
        run(how === "login" ? await CoveClient.login(o) : await CoveClient.register(o))
      },
      notice,
    )

  const user = savedUser()
  let client: CoveClient | undefined
  try {
    client = user === undefined ? undefined : new CoveClient({ ...options, user })
  } catch {
    // No tokens kept (logged out, or the login ended): log in again.
    client = undefined
  }
  if (client === undefined) showLogin()
  else run(client)
}

function savedUser(): User | undefined {
  const text = localStorage.getItem(USER_KEY)
  if (text === null) return undefined
  try {
    return JSON.parse(text) as User
  } catch {
    // A damaged entry: log in again.
    return undefined
  }
}

const root = document.getElementById("app")
if (root !== null) {
  main(root).catch((err: unknown) => {
    root.textContent = `Cove could not start: ${err instanceof Error ? err.message : String(err)}`
  })
}
