// Calls a bundle's handler.js the way the OpenFaaS node20 template's index.js does:
// require('./function/handler')(event, context, cb), where an error passed to the callback or
// thrown becomes a response with context's status (200 unless set). Prints what a client
// would get, as JSON, for the test to check. Usage: node template-call.mjs handler.js METHOD PATH
import { createRequire } from "node:module"

const [handlerPath, method, path] = process.argv.slice(2)
const handler = createRequire(import.meta.url)(handlerPath)
if (typeof handler !== "function") {
  process.stdout.write(JSON.stringify({ contract: "module.exports is not a function" }))
  process.exit(0)
}
let status = 200
let headers = {}
let answered = false
const reply = (body) => {
  if (answered) return
  answered = true
  process.stdout.write(
    `\nRESULT ${JSON.stringify({ status, headers, body: typeof body === "string" ? body : JSON.stringify(body) })}\n`,
  )
  handler.close?.().finally(() => process.exit(0))
}
const context = {
  status(code) {
    if (code === undefined) return status
    status = code
    return context
  },
  headers(values) {
    if (values === undefined) return headers
    headers = values
    return context
  },
  succeed: reply,
  fail: (err) => reply(String(err)),
}
Promise.resolve(
  handler({ body: {}, headers: {}, method, query: {}, path }, context, (err, value) => reply(err ?? value)),
)
  .then((value) => reply(value))
  .catch((err) => reply(String(err)))
